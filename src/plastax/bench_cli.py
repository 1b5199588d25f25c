"""The paper-figure benchmarks of ``plastax bench``: ``scaling-hidden``, ``scaling-time``,
``alignment`` and ``sltt``.

:func:`add_bench_commands` adds them to the ``bench`` subparsers of :mod:`plastax.cli`.
Each prints markdown tables to stdout (ready for the README), progress to stderr,
writes a PNG plot (``--plot``) and, with ``--json PATH``, every measurement; the last
line on stdout is a one-line JSON summary (paths, targets, seconds).  ``--quick`` runs
small sizes (about a minute or two on 2 cores); explicit size options override it.
``--from-json PATH`` redraws the tables and the plot from a saved result without
measuring again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

__all__ = ["add_bench_commands", "BENCHMARKS", "main"]


def _int_list(text):
    from .cli import _int_list as parse

    return parse(text)


def _name_list(text):
    from .cli import _name_list as parse

    return parse(text)


def _common(p, name: str) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, for a smoke run (about a minute or two on 2 cores)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        default=None,
        help="also write every measurement as JSON to this file (atomically)",
    )
    p.add_argument(
        "--plot",
        metavar="PATH",
        default=f"bench_{name.replace('-', '_')}.png",
        help="write the PNG plot here; 'none' for no plot (default: %(default)s)",
    )
    p.add_argument(
        "--from-json",
        metavar="PATH",
        default=None,
        help="do not measure: print the tables and draw the plot of a saved --json result",
    )


def _opt(p, flag, help, **kw):
    p.add_argument(flag, help=f"{help} (default: the benchmark's, see the description)", **kw)


def add_bench_commands(sub) -> None:
    """Add ``scaling-hidden``, ``scaling-time``, ``alignment`` and ``sltt`` to the
    ``bench`` subparsers object ``sub``; each sets ``bench_run``."""
    from .bench.alignment import AlignmentConfig
    from .bench.scaling import HiddenConfig, TimeConfig
    from .bench.sltt import SLTTConfig

    h = HiddenConfig()
    p = sub.add_parser(
        "scaling-hidden",
        help="time per step against hidden size (e-prop paper, Figure 1a)",
        description=(
            "Time of one step (a jitted value_and_grad over T steps, divided by T; median "
            "of several runs after a warm-up; compile time apart) against the hidden size, "
            "for each learner, with two floors: the inference-only forward pass model(x), "
            "and one fused read and write of arrays of e-prop's trace size per step (the "
            "memory-traffic floor). RTRL and EPropDense are skipped where their influence "
            "needs more than --max-gib or a step would take longer than --max-step-s, and "
            "run over fewer steps (labelled T=...) where a sequence would take longer than "
            f"--budget. Defaults: neurons {','.join(h.neurons)}, hidden "
            f"{','.join(map(str, h.hidden))}, batch {','.join(map(str, h.batch))}, T "
            f"{h.steps}, learners {','.join(h.learners)}, n_in {h.n_in}, {h.readout} readout."
        ),
    )
    _common(p, "scaling-hidden")
    _opt(p, "--neurons", "comma-separated neuron models (lif_detach, lif, alif)", type=_name_list)
    _opt(p, "--hidden", "comma-separated hidden sizes", type=_int_list)
    _opt(p, "--batch", "comma-separated batch sizes", type=_int_list)
    _opt(p, "--steps", "sequence length T", type=int)
    _opt(p, "--learners", "comma-separated learner specs, e.g. eprop,sltt:k=4", type=_name_list)
    _opt(p, "--n-in", "input channels", type=int)
    _opt(p, "--readout", "linear or leaky", choices=("linear", "leaky"))
    _opt(p, "--repeats", "timed runs per configuration (median)", type=int)
    _opt(p, "--budget", "longest timed run in seconds", type=float)
    _opt(p, "--max-step-s", "skip configurations estimated slower per step", type=float)
    _opt(p, "--max-gib", "skip RTRL / EPropDense needing more memory (GiB)", type=float)
    p.set_defaults(bench_run=cmd_scaling_hidden)

    t = TimeConfig()
    p = sub.add_parser(
        "scaling-time",
        help="peak memory against sequence length (e-prop paper, Figure 1b)",
        description=(
            "Peak memory of value_and_grad against the sequence length T, in a fresh "
            "process per (learner, T): XLA's compiled memory analysis (temporary bytes; "
            "inputs are arguments, apart) and the measured run peak (the high-water mark "
            "of resident memory during one run, minus the resident memory just before it; "
            "see plastax.bench.timing). Measured runs estimated longer than --budget are "
            f"skipped. Defaults: T {','.join(map(str, t.steps))}, n {t.hidden}, B "
            f"{t.batch}, neuron {t.neuron}, learners {','.join(t.learners)}."
        ),
    )
    _common(p, "scaling-time")
    _opt(p, "--steps", "comma-separated sequence lengths T", type=_int_list)
    _opt(p, "--hidden", "hidden neurons", type=int)
    _opt(p, "--batch", "batch size", type=int)
    _opt(p, "--neuron", "neuron model (lif_detach, lif, alif)")
    _opt(p, "--learners", "comma-separated learner specs", type=_name_list)
    _opt(p, "--budget", "longest measured run in seconds", type=float)
    _opt(p, "--max-gib", "skip RTRL / EPropDense needing more memory (GiB)", type=float)
    p.add_argument(
        "--no-measure",
        action="store_true",
        help="compiled memory analysis only (no measured runs)",
    )
    p.set_defaults(bench_run=cmd_scaling_time)

    a = AlignmentConfig()
    p = sub.add_parser(
        "alignment",
        help="each learner's gradient against BPTT's, with depth",
        description=(
            "Cosine, max relative error, median absolute deviation and norm ratio of each "
            "learner's gradient against the BPTT gradient on the same network and batch, "
            "for feed-forward and recurrent networks of 1 to 3 layers, over several seeds, "
            "with the cosine of each layer's parameters. Defaults: neurons "
            f"{','.join(a.neurons)}, networks {','.join(a.architectures)}, learners "
            f"{','.join(a.learners)}, n {a.hidden}, B {a.batch}, seeds "
            f"{','.join(map(str, a.seeds))}, task {a.task}, {a.readout} readout, float32."
        ),
    )
    _common(p, "alignment")
    _opt(p, "--neurons", "comma-separated neuron models", type=_name_list)
    _opt(p, "--networks", "comma-separated networks: ff1, rec1, ff2, rec2, ...", type=_name_list)
    _opt(p, "--learners", "comma-separated learner specs", type=_name_list)
    _opt(p, "--hidden", "neurons per layer", type=int)
    _opt(p, "--batch", "batch size", type=int)
    _opt(p, "--seeds", "comma-separated initialisation seeds", type=_int_list)
    _opt(p, "--task", "task whose training batch is the input")
    _opt(p, "--readout", "linear or leaky", choices=("linear", "leaky"))
    p.add_argument("--x64", action="store_true", help="float64 instead of float32")
    p.set_defaults(bench_run=cmd_alignment)

    s = SLTTConfig()
    p = sub.add_parser(
        "sltt",
        help="memory and time of SLTT and SLTT(k) against BPTT (Meng et al. 2023)",
        description=(
            "Memory (compiled and measured run peak) and time per step of SLTT, SLTT(k) "
            "and BPTT on a multi-layer spiking network, one fresh process per (learner, T), "
            "and the saving against BPTT at the same T. Defaults: T "
            f"{','.join(map(str, s.steps))}, learners {','.join(s.learners)}, "
            f"{s.n_layers} {'recurrent' if s.recurrent else 'feed-forward'} layers of "
            f"{s.hidden} {s.neuron}, B {s.batch}, n_in {s.n_in}, {s.readout} readout."
        ),
    )
    _common(p, "sltt")
    _opt(p, "--steps", "comma-separated sequence lengths T", type=_int_list)
    _opt(p, "--learners", "comma-separated learner specs (bptt first)", type=_name_list)
    _opt(p, "--hidden", "neurons per layer", type=int)
    _opt(p, "--layers", "number of layers", type=int)
    _opt(p, "--batch", "batch size", type=int)
    _opt(p, "--neuron", "neuron model")
    _opt(p, "--repeats", "timed runs per configuration (median)", type=int)
    p.set_defaults(bench_run=cmd_sltt)


def _config(cls, quick: dict, args, mapping: dict):
    """Defaults, then the quick sizes, then every option given explicitly."""
    values = dict(quick) if args.quick else {}
    for flag, field in mapping.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[field] = v
    return cls(**values)


def _measured(run, config) -> dict:
    """``run(config)``, with the load average of the machine before and after (other
    processes share the cores: the numbers are only as quiet as the machine was)."""
    start = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = run(config)
    end = os.getloadavg() if hasattr(os, "getloadavg") else None
    result.setdefault("machine", {})["load_average"] = {
        "start": None if start is None else list(start),
        "end": None if end is None else list(end),
    }
    return result


def _load_line(result) -> str:
    from .bench.timing import device_of

    m = result.get("machine", {})
    load = m.get("load_average") or {}
    start, end = load.get("start"), load.get("end")
    where, device = f"{m.get('cpu_count', '?')} CPU cores", device_of(m)
    if device is not None:
        where = f"one {device} ({where} beside it)"
    where += f", jax {m.get('jax', '?')}"
    if start and end:
        where += f"; load average (1 min) {start[0]:.2f} before, {end[0]:.2f} after"
    return f"Measured on {where}; {result.get('seconds', 0):.0f} s in all."


def _finish(name, args, result, fmt) -> int:
    from ._io import write_json
    from .bench.plots import PLOTS

    print(_load_line(result) + "\n", flush=True)
    print(fmt(result), flush=True)
    if args.json and not args.from_json:
        write_json(args.json, result)
    plot_path = None
    if args.plot and args.plot.lower() != "none":
        plot_path = PLOTS[name](result, args.plot)
    summary = {
        "benchmark": name,
        "json": args.json if not args.from_json else args.from_json,
        "plot": plot_path,
        "seconds": result.get("seconds"),
        "targets": result.get("targets", []),
    }
    print(json.dumps(summary))
    return 0


def _load(path, name, targets=None):
    """A saved result; its targets are evaluated again by ``targets`` (the current
    definitions), when given."""
    with open(path) as fh:
        result = json.load(fh)
    if result.get("benchmark") != name:
        raise ValueError(
            f"--from-json: expected a result of benchmark {name!r}, received "
            f"{result.get('benchmark')!r} in {path}"
        )
    if targets is not None:
        result["targets"] = targets(result)
    return result


def cmd_scaling_hidden(args: argparse.Namespace) -> int:
    from .bench import scaling

    if args.from_json:
        result = _load(args.from_json, "scaling-hidden", scaling.hidden_targets)
    else:
        config = _config(
            scaling.HiddenConfig,
            scaling.QUICK_HIDDEN,
            args,
            dict(
                neurons="neurons",
                hidden="hidden",
                batch="batch",
                steps="steps",
                learners="learners",
                n_in="n_in",
                readout="readout",
                repeats="repeats",
                budget="budget_s",
                max_step_s="max_step_s",
            ),
        )
        if args.max_gib is not None:
            config = dataclasses.replace(config, max_bytes=int(args.max_gib * 2**30))
        result = _measured(scaling.scaling_hidden, config)
    return _finish("scaling-hidden", args, result, scaling.format_hidden)


def cmd_scaling_time(args: argparse.Namespace) -> int:
    from .bench import scaling

    if args.from_json:
        result = _load(args.from_json, "scaling-time", scaling.time_targets)
    else:
        config = _config(
            scaling.TimeConfig,
            scaling.QUICK_TIME,
            args,
            dict(
                steps="steps",
                hidden="hidden",
                batch="batch",
                neuron="neuron",
                learners="learners",
                budget="budget_s",
            ),
        )
        if args.max_gib is not None:
            config = dataclasses.replace(config, max_bytes=int(args.max_gib * 2**30))
        if args.no_measure:
            config = dataclasses.replace(config, measure=False)
        result = _measured(scaling.scaling_time, config)
    return _finish("scaling-time", args, result, scaling.format_time)


def cmd_alignment(args: argparse.Namespace) -> int:
    from .bench import alignment

    if args.from_json:
        result = _load(args.from_json, "alignment")
    else:
        config = _config(
            alignment.AlignmentConfig,
            alignment.QUICK_ALIGNMENT,
            args,
            dict(
                neurons="neurons",
                networks="architectures",
                learners="learners",
                hidden="hidden",
                batch="batch",
                seeds="seeds",
                task="task",
                readout="readout",
            ),
        )
        if args.x64:
            config = dataclasses.replace(config, x64=True)
        result = _measured(alignment.alignment, config)
    return _finish("alignment", args, result, alignment.format_alignment)


def cmd_sltt(args: argparse.Namespace) -> int:
    from .bench import sltt

    if args.from_json:
        result = _load(args.from_json, "sltt", sltt.sltt_targets)
    else:
        config = _config(
            sltt.SLTTConfig,
            sltt.QUICK_SLTT,
            args,
            dict(
                steps="steps",
                learners="learners",
                hidden="hidden",
                layers="n_layers",
                batch="batch",
                neuron="neuron",
                repeats="repeats",
            ),
        )
        result = _measured(sltt.sltt_benchmark, config)
    return _finish("sltt", args, result, sltt.format_sltt)


BENCHMARKS = {
    "scaling-hidden": cmd_scaling_hidden,
    "scaling-time": cmd_scaling_time,
    "alignment": cmd_alignment,
    "sltt": cmd_sltt,
}
"""Benchmark name -> the function that runs it from parsed arguments."""


def main(argv=None) -> int:
    """``python -m plastax.bench_cli NAME ...``: the same as ``plastax bench NAME ...``."""
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m plastax.bench_cli", description="The paper-figure benchmarks."
    )
    add_bench_commands(parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True))
    args = parser.parse_args(argv)
    try:
        return args.bench_run(args)
    except ValueError as e:
        print(f"plastax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
