"""``plastax experiment``: experiments that reproduce a paper's claims.

    plastax experiment redundancy [--quick] [--json PATH] [--plots DIR] ...

Registered in :data:`plastax.cli.COMMANDS` as ``"experiment": (add_experiment,
cmd_experiment)``.  As every subcommand: a human-readable table on stdout, then one
JSON object as the last line; the progress bar on stderr; bad options raise
``ValueError`` (reported by the CLI as ``plastax: error: ...``, exit code 2).
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_experiment", "cmd_experiment", "cmd_experiment_redundancy"]


def _names(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, received {text!r}")
    return values


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 128,256, received {text!r}"
        ) from None
    return values


def _ks(text: str) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for v in (v.strip() for v in text.split(",")):
        if not v:
            continue
        if v in ("full", "n-1"):
            out.append("full")
            continue
        try:
            out.append(int(v))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers or 'full' (= n - 1), such as 1,2,4,full, "
                f"received {text!r}"
            ) from None
    if not out:
        raise argparse.ArgumentTypeError(f"expected at least one k, received {text!r}")
    return tuple(out)


def add_experiment(subparsers) -> argparse.ArgumentParser:
    from .experiments.redundancy import CELLS, OPTIMIZERS, RedundancyConfig
    from .tasks.streams import STREAMS

    full, quick = RedundancyConfig(), RedundancyConfig.quick()
    p = subparsers.add_parser(
        "experiment",
        help="experiments that reproduce a paper's claims (redundancy, ...)",
        description="Experiments that test a paper's claims with plastax's learners, "
        "with baselines, and report what they measure.",
    )
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", title="experiments")
    r = sub.add_parser(
        "redundancy",
        help="sparse RTRL (k paths per neuron) against full RTRL, e-prop and J = 0 "
        "after a shift in a stream",
        description=(
            "Pre-train a recurrent network on the first part of a stream, then let every "
            "condition (frozen, SLTT / J = 0, e-prop for the LSTM, SparseRTRL(k) for each "
            "k, full RTRL) adapt online after a shift from the same weights and state, "
            "with the optimizer applied at every step.  Reports per run the post-shift "
            "MSE, the log-gap recovery (log L_0 - log L_k) / (log L_0 - log L_full) and "
            "the cosine to the exact RTRL gradient, and per group the mean, s.d. and "
            "coefficient of variation over seeds.  Options left unset take the value of "
            "the preset: the full plan, or --quick."
        ),
    )

    def opt(flag, help, full_value, quick_value, **kwargs):
        r.add_argument(
            flag,
            default=None,
            help=f"{help} (default: {full_value}; with --quick: {quick_value})",
            **kwargs,
        )

    def show(v):
        return ",".join(map(str, v)) if isinstance(v, tuple) else v

    r.add_argument(
        "--quick",
        action="store_true",
        help="small preset: n = 32, 2 seeds, short streams, k in 1,4 plus the "
        "baselines, no scale sizes; a few minutes on 2 CPU cores",
    )
    opt(
        "--tasks",
        f"comma-separated stream tasks among {', '.join(STREAMS)}",
        show(full.tasks),
        show(quick.tasks),
        type=_names,
    )
    opt(
        "--cells",
        f"comma-separated cells among {', '.join(CELLS)}",
        show(full.cells),
        show(quick.cells),
        type=_names,
    )
    opt(
        "--optimizers",
        f"comma-separated optimizers among {', '.join(OPTIMIZERS)}",
        show(full.optimizers),
        show(quick.optimizers),
        type=_names,
    )
    opt("--seeds", "number of seeds", full.seeds, quick.seeds, type=int)
    opt("--first-seed", "first seed (seeds are consecutive)", 0, 0, type=int)
    opt("--hidden", "hidden units n of the k sweep", full.hidden, quick.hidden, type=int)
    opt(
        "--ks",
        "comma-separated paths per neuron swept at --hidden ('full' = n - 1); the "
        "baselines k=0 and full always run",
        show(full.ks),
        show(quick.ks),
        type=_ks,
    )
    opt(
        "--scale-hidden",
        "comma-separated further sizes at which only the baselines and --scale-ks run "
        "(empty string: none)",
        show(full.scale_hidden),
        show(quick.scale_hidden) or "none",
        type=_ints,
    )
    opt("--scale-ks", "paths per neuron at the scale sizes", "4", "4", type=_ints)
    opt(
        "--full-max-hidden",
        "run the full-RTRL baseline (and so recovery and cosine) only up to this size",
        "every size",
        "every size",
        type=int,
    )
    opt("--pretrain-steps", "stream steps before the shift", full.pretrain_steps,
        quick.pretrain_steps, type=int)  # fmt: skip
    opt("--adapt-steps", "stream steps after the shift", full.adapt_steps, quick.adapt_steps,
        type=int)  # fmt: skip
    opt(
        "--cosine-steps",
        "post-shift steps during which exact RTRL rides along for the gradient cosine",
        full.cosine_steps,
        quick.cosine_steps,
        type=int,
    )
    opt("--pretrain-epochs", "passes of truncated BPTT over the pre-shift stream",
        full.pretrain_epochs, quick.pretrain_epochs, type=int)  # fmt: skip
    opt("--lr-adam", "Adam learning rate after the shift", full.lr_adam, quick.lr_adam,
        type=float)  # fmt: skip
    opt("--lr-sgd", "SGD learning rate after the shift", full.lr_sgd, quick.lr_sgd,
        type=float)  # fmt: skip
    r.add_argument(
        "--json",
        metavar="PATH",
        default=None,
        help="write the full result (config, every run, summary) as JSON to PATH, atomically",
    )
    r.add_argument(
        "--plots",
        metavar="DIR",
        default=None,
        help="write PNG plots (recovery and cosine against k, loss curves per seed, "
        "scaling in n) into DIR",
    )
    r.add_argument(
        "--merge",
        metavar="PATHS",
        type=_names,
        default=None,
        help="run nothing: merge these comma-separated JSON results (parts of one sweep run "
        "with different options), recompute the summary, and write --json / --plots",
    )
    r.add_argument(
        "--cosine-from",
        metavar="PATHS",
        type=_names,
        default=None,
        help="with --merge: comma-separated JSON results of a shorter re-run of the same "
        "runs (--adapt-steps equal to --cosine-steps) whose recurrent-layer cosine fills "
        "that of merged runs that lack it (checked to be the same trajectory)",
    )
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar (stderr)")
    r.set_defaults(experiment_run=cmd_experiment_redundancy)
    return p


def cmd_experiment(args: argparse.Namespace) -> int:
    run = getattr(args, "experiment_run", None)
    if run is None:
        raise ValueError(
            "experiment: expected an experiment name, received none; see plastax experiment --help"
        )
    return run(args)


_FIELDS = {
    "tasks": "tasks",
    "cells": "cells",
    "optimizers": "optimizers",
    "seeds": "seeds",
    "first_seed": "first_seed",
    "hidden": "hidden",
    "ks": "ks",
    "scale_hidden": "scale_hidden",
    "scale_ks": "scale_ks",
    "full_max_hidden": "full_max_hidden",
    "pretrain_steps": "pretrain_steps",
    "adapt_steps": "adapt_steps",
    "cosine_steps": "cosine_steps",
    "pretrain_epochs": "pretrain_epochs",
    "lr_adam": "lr_adam",
    "lr_sgd": "lr_sgd",
}


def _fmt(mean, sd, digits=3, pct=False) -> str:
    if mean is None:
        return "-"
    scale, unit = (100.0, "%") if pct else (1.0, "")
    text = f"{mean * scale:.{digits}g}{unit}"
    if sd is not None:
        text += f" ± {sd * scale:.{digits}g}{unit}" if pct else f" ± {sd * scale:.{digits}g}"
    return text


def _load(path: str, flag: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{flag}: expected readable JSON results, received {path!r} ({e})"
        ) from None


def cmd_experiment_redundancy(args: argparse.Namespace) -> int:
    import os

    from ._io import probe_writable, write_json
    from .experiments.redundancy import (
        RedundancyConfig,
        merge_results,
        plot_redundancy,
        run_redundancy,
    )

    if args.json:
        probe_writable(
            os.path.dirname(os.path.abspath(args.json)),
            1 << 16,
            "the folder of the JSON file",
            "choose another --json path",
        )
    if args.cosine_from and not args.merge:
        raise ValueError("--cosine-from: expected it with --merge, received it alone")
    if args.merge:
        result = merge_results(
            [_load(p, "--merge") for p in args.merge],
            [_load(p, "--cosine-from") for p in args.cosine_from or ()],
        )
    else:
        overrides = {
            field: getattr(args, attr)
            for attr, field in _FIELDS.items()
            if getattr(args, attr, None) is not None
        }
        config = (
            RedundancyConfig.quick(**overrides) if args.quick else RedundancyConfig(**overrides)
        )
        result = run_redundancy(config, progress=not args.no_progress)
    plots = plot_redundancy(result, args.plots) if args.plots else []
    result["plots"] = plots
    if args.json:
        write_json(args.json, result)

    header = (
        f"{'task':<8} {'cell':<5} {'n':>4} {'opt':<5} {'condition':<9} "
        f"{'post-shift MSE':>22} {'recovery':>18} {'cos (layer)':>14} {'cos (all)':>14} "
        f"{'CV':>6}"
    )
    print(header)
    print("-" * len(header))
    for s in result["summary"]:
        cv = s["post_shift_mse_cv"]
        print(
            f"{s['task']:<8} {s['cell']:<5} {s['n']:>4} {s['optimizer']:<5} "
            f"{s['condition']:<9} {_fmt(s['post_shift_mse_mean'], s['post_shift_mse_sd']):>22} "
            f"{_fmt(s['recovery_mean'], s['recovery_sd'], 2, pct=True):>18} "
            f"{_fmt(s.get('cosine_recurrent_mean'), s.get('cosine_recurrent_sd'), 2):>14} "
            f"{_fmt(s['cosine_mean'], s['cosine_sd'], 2):>14} "
            f"{'-' if cv is None else f'{cv:.0%}':>6}"
        )
    for note in result["not_run"]:
        print(f"not run: {note}")
    print(
        json.dumps(
            {
                "experiment": "redundancy",
                "json": args.json,
                "plots": plots,
                "runs": len(result["runs"]),
                "wall_seconds": round(result["wall_seconds"], 1),
                "config": result["config"],
            }
        ),
        flush=True,
    )
    return 0
