"""The ``plastax`` command line: a thin layer over the public API.

    plastax train [--task randman] [--learner bptt] [--hidden 128] ...

Every subcommand is one ``add_<name>`` function that registers its parser and one
``cmd_<name>`` function that runs it; :data:`COMMANDS` lists them, so a new subcommand
(``bench``, ``experiment``, ``data``) is two functions and one entry.  Machine-readable
results go to stdout (the last line is one JSON object), everything for humans
(progress bars, notes) to stderr.  Bad input (``ValueError``) is reported as
``plastax: error: <message>`` with exit code 2 and no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

PROG = "plastax"


def _config_defaults() -> dict:
    from .train import TrainConfig

    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


# --------------------------------------------------------------------------------------
# plastax train


def _option(parser, flag: str, help: str, **kwargs) -> None:
    """Add an option whose help text ends with its default."""
    parser.add_argument(flag, help=f"{help} (default: %(default)s)", **kwargs)


def add_train(subparsers) -> argparse.ArgumentParser:
    from .learners import LEARNERS
    from .tasks import TASKS
    from .tasks.streams import STREAMS
    from .train import NEURONS, READOUTS

    d = _config_defaults()
    p = subparsers.add_parser(
        "train",
        help="train a network on a task and print a JSON summary",
        description=(
            "Train a network on a task, evaluate it exactly on the training and "
            "test sets after every epoch, write one JSON line per epoch to the metrics "
            "file and print a one-line JSON summary as the last line on stdout.  The "
            "progress bar goes to stderr.  With --checkpoint-dir, checkpoints are saved "
            "periodically, at the end and on SIGINT/SIGTERM (exit code 130/143), and "
            "--resume continues bit-identically.  A NaN or Inf in a step stops training "
            "with exit code 3."
        ),
        epilog=_STREAM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _option(
        p,
        "--task",
        f"task, built with its default parameters; one of: {', '.join(sorted(TASKS))}; or a "
        f"streaming task, trained online in one pass: {', '.join(sorted(STREAMS))} (see "
        "'streaming tasks' below)",
        default=d["task"],
    )
    _option(
        p,
        "--steps",
        "streaming tasks only: stream length, with the shift at two thirds of it; unset: "
        "the task's default (3000 steps, shift at 2000)",
        type=int,
        default=None,
        metavar="T",
    )
    _option(
        p,
        "--data-dir",
        "shd, fsdd: folder of the data set (shd: the one holding shd_train.h5 and "
        "shd_test.h5; fsdd: the one holding recordings/); unset: fsdd reads "
        "../shared/data/fsdd beside the checkout, shd has no default.  Nothing is "
        "downloaded",
        default=d["data_dir"],
        metavar="DIR",
    )
    _option(
        p,
        "--split",
        "shd, fsdd: 'standard' (fsdd: recordings 0-4 of each speaker and digit are the "
        "test set) or 'speaker:<name>' (leave that speaker out for testing); unset: "
        "standard",
        default=d["split"],
    )
    _option(
        p,
        "--learner",
        f"gradient rule; one of: {', '.join(sorted(LEARNERS))}",
        default=d["learner"],
    )
    _option(
        p, "--window", "truncation window in time steps (tbptt only)", type=int, default=d["window"]
    )
    _option(
        p,
        "--neuron",
        f"neuron model of the hidden layers; one of: {', '.join(NEURONS)}",
        default=d["neuron"],
    )
    _option(p, "--hidden", "neurons per hidden layer", type=int, default=d["hidden"])
    _option(p, "--layers", "number of hidden layers", type=int, default=d["layers"])
    _option(
        p,
        "--recurrent",
        "recurrent weights in the hidden layers (--no-recurrent: feed-forward)",
        action=argparse.BooleanOptionalAction,
        default=d["recurrent"],
    )
    _option(
        p,
        "--readout",
        f"readout, one of: {', '.join(READOUTS)} (leaky integrator with "
        "time constant --readout-tau, or memoryless linear)",
        default=d["readout"],
    )
    _option(
        p,
        "--readout-tau",
        "time constant of the leaky readout, in time steps",
        type=float,
        default=d["readout_tau"],
    )
    _option(
        p,
        "--update-every",
        "online learners only: apply the optimizer every N time steps inside each sequence "
        "(true online learning; traces carry on); unset: once per sequence",
        type=int,
        default=d["update_every"],
        metavar="N",
    )
    _option(
        p,
        "--k",
        "sltt: number of sampled time steps per sequence that contribute to the "
        "gradient (SLTT-K; unset: every step); sparse_rtrl: recurrent paths kept per "
        "neuron (required)",
        type=int,
        default=d["k"],
    )
    _option(p, "--epochs", "passes over the training set", type=int, default=d["epochs"])
    _option(p, "--batch-size", "training examples per step", type=int, default=d["batch_size"])
    _option(p, "--lr", "learning rate of Adam", type=float, default=d["lr"])
    _option(
        p,
        "--clip-norm",
        "clip the gradient to this global norm before Adam (a remedy for a loss that "
        "blows up); unset: no clipping",
        type=float,
        default=d["clip_norm"],
        metavar="C",
    )
    _option(
        p,
        "--seed",
        "seed of the task data, the initial weights and the shuffling",
        type=int,
        default=d["seed"],
    )
    _option(
        p,
        "--devices",
        "number of devices for data-parallel training: the batch is sharded over them "
        "(--batch-size must be divisible by N); unset: every visible device",
        type=int,
        default=d["devices"],
        metavar="N",
    )
    p.add_argument(
        "--metrics",
        metavar="PATH",
        default=None,
        help="JSONL file to which one line per epoch is appended; it holds no wall-clock "
        "time, so the same seed and options give the same file "
        "(default: runs/<task>-<learner>-<seed>.jsonl)",
    )
    _option(
        p,
        "--checkpoint-dir",
        "folder of checkpoints (model, optimizer, random state, data position, "
        "configuration; no pickle, checksummed, written atomically, last 3 kept); saved "
        "every --checkpoint-every steps, at the end and on SIGINT/SIGTERM; unset: none",
        default=None,
        metavar="DIR",
    )
    _option(
        p,
        "--checkpoint-every",
        "save a checkpoint every N optimizer steps; unset: at the end of every epoch",
        type=int,
        default=None,
        metavar="N",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest valid checkpoint in --checkpoint-dir, with the same "
        "options (--epochs, --lr, --clip-norm and --devices may change); the metrics file "
        "ends up as if the run had not stopped (default: start a new run)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (default: shown on stderr)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host training: call jax.distributed.initialize() before anything else, "
        "with the cluster detected from the environment (SLURM, Open MPI, Kubernetes, "
        "Cloud TPU) or given by --coordinator-address, --num-processes and --process-id "
        "(default: one process)",
    )
    _option(
        p,
        "--coordinator-address",
        "with --distributed: host:port of process 0",
        default=None,
        metavar="HOST:PORT",
    )
    _option(p, "--num-processes", "with --distributed: number of processes", type=int, default=None)
    _option(p, "--process-id", "with --distributed: this process's index", type=int, default=None)
    p.set_defaults(train_parser=p)
    return p


def cmd_train(args: argparse.Namespace) -> int:
    import warnings

    from .tasks.streams import STREAMS
    from .train import NonFiniteError, TrainConfig, TrainingInterrupted, run

    if args.task in STREAMS:
        return _cmd_train_stream(args)
    if args.steps is not None:
        raise ValueError(
            f"--steps: expected a streaming task ({', '.join(sorted(STREAMS))}), received "
            f"--task {args.task}; drop --steps"
        )
    manual = (args.coordinator_address, args.num_processes, args.process_id)
    if any(v is not None for v in manual) and not args.distributed:
        raise ValueError(
            "--coordinator-address, --num-processes and --process-id: expected --distributed "
            "with them, received none; add --distributed"
        )
    if args.distributed:
        import jax

        try:
            jax.distributed.initialize(
                coordinator_address=args.coordinator_address,
                num_processes=args.num_processes,
                process_id=args.process_id,
            )
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"--distributed: jax.distributed.initialize() failed ({e}); run under a "
                "supported cluster manager or pass --coordinator-address, --num-processes "
                "and --process-id"
            ) from None
    config = TrainConfig(
        task=args.task,
        learner=args.learner,
        window=args.window,
        neuron=args.neuron,
        hidden=args.hidden,
        layers=args.layers,
        recurrent=args.recurrent,
        readout=args.readout,
        readout_tau=args.readout_tau,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        update_every=args.update_every,
        k=args.k,
        clip_norm=args.clip_norm,
        devices=args.devices,
        data_dir=args.data_dir,
        split=args.split,
    )
    metrics = args.metrics
    if metrics is None:
        metrics = f"runs/{config.task}-{config.learner}-{config.seed}.jsonl"

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{PROG}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", RuntimeWarning)
            warnings.showwarning = show
            summary = run(
                config,
                metrics_path=metrics,
                progress=not args.no_progress,
                checkpoint_dir=args.checkpoint_dir,
                checkpoint_every=args.checkpoint_every,
                resume=args.resume,
            )
    except TrainingInterrupted as e:
        message = f"{PROG}: {e}"
        if e.checkpoint is not None:
            message += f"; resume with: {_train_resume_command(args)}"
        print(message, file=sys.stderr, flush=True)
        return 128 + int(e.signum)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no checkpoint was saved", file=sys.stderr, flush=True)
        return 130
    except NonFiniteError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr, flush=True)
        return 3
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


_STREAM_EPILOG = """\
streaming tasks (sine, lorenz, delayed):
  One long stream with a shift mid-stream, trained online in a single pass: the
  prediction of every step is scored before any update that uses it, the optimizer is
  applied every --update-every steps (default: every step; bptt/tbptt: every --window
  steps, truncated BPTT over each block), and the learner's state (network state,
  traces) carries across the compiled segments of the stream.  Options not given take
  the streaming defaults: --learner eprop --neuron tanh --hidden 64 --readout linear
  --lr 1e-3 --batch-size 1 (parallel streams).  --epochs, --checkpoint-dir, --resume
  and --devices do not apply.  The metrics file gets one line per 500-step segment;
  the summary reports mse_first, mse_pre_shift, mse_post_shift and mse_final.
"""

_STREAM_DEFAULTS = {
    "learner": "eprop",
    "neuron": "tanh",
    "hidden": 64,
    "readout": "linear",
    "lr": 1e-3,
    "batch_size": 1,
}


def _explicit_options(args: argparse.Namespace) -> set[str]:
    """Names of the options given on the command line (argparse's unique-prefix
    abbreviations included)."""
    parser = args.train_parser
    given = set()
    for token in getattr(args, "argv", ()):
        if not token.startswith("--"):
            continue
        flag = token.split("=", 1)[0]
        for action in parser._actions:
            names = [o for o in action.option_strings if o.startswith("--")]
            names += ["--no-" + o[2:] for o in names if action.nargs == 0 and "no-" not in o]
            if flag in names or any(o.startswith(flag) for o in names):
                given.add(action.dest)
    return given


def _cmd_train_stream(args: argparse.Namespace) -> int:
    from .streaming import StreamConfig, run_stream
    from .train import NonFiniteError

    given = _explicit_options(args)
    unsupported = {
        "epochs": "--epochs",
        "checkpoint_dir": "--checkpoint-dir",
        "checkpoint_every": "--checkpoint-every",
        "resume": "--resume",
        "devices": "--devices",
        "distributed": "--distributed",
        "data_dir": "--data-dir",
        "split": "--split",
    }
    bad = [flag for dest, flag in unsupported.items() if dest in given]
    if bad:
        raise ValueError(
            f"--task {args.task}: a streaming task is trained in one online pass; expected "
            f"none of {', '.join(bad)}, received them; drop them"
        )
    values = {name: getattr(args, name) for name in _STREAM_DEFAULTS}
    values.update({n: v for n, v in _STREAM_DEFAULTS.items() if n not in given})
    config = StreamConfig(
        task=args.task,
        k=args.k,
        window=args.window,
        layers=args.layers,
        recurrent=args.recurrent,
        readout_tau=args.readout_tau,
        clip_norm=args.clip_norm,
        seed=args.seed,
        steps=args.steps,
        update_every=args.update_every,
        **values,
    )
    metrics = args.metrics
    if metrics is None:
        metrics = f"runs/{config.task}-{config.learner}-{config.seed}.jsonl"
    try:
        summary = run_stream(config, metrics_path=metrics, progress=not args.no_progress)
    except NonFiniteError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr, flush=True)
        return 3
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    print(json.dumps(summary), flush=True)
    return 0


def _train_resume_command(args: argparse.Namespace) -> str:
    """The ``plastax train`` command line that resumes the run of ``args``: its options
    that differ from their defaults, then ``--resume``."""
    import shlex

    defaults = _config_defaults()
    words = [PROG, "train"]
    for name in defaults:
        value = getattr(args, name)
        if value == defaults[name]:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, str(value)]
    for name in ("metrics", "checkpoint_dir", "checkpoint_every"):
        if getattr(args, name) is not None:
            words += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    if args.no_progress:
        words.append("--no-progress")
    words.append("--resume")
    return " ".join(shlex.quote(w) for w in words)


# --------------------------------------------------------------------------------------
# plastax bench


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 100,1000, received {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer, received none")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_bench(subparsers) -> argparse.ArgumentParser:
    from .bench.memory import MemoryConfig

    d = {f.name: f.default for f in dataclasses.fields(MemoryConfig)}
    p = subparsers.add_parser(
        "bench",
        help="benchmarks of the learners (memory, scaling-hidden, scaling-time, alignment, sltt)",
        description="Benchmarks that compare the learners on the same model and machine.",
    )
    sub = p.add_subparsers(dest="bench", metavar="BENCHMARK", title="benchmarks")
    m = sub.add_parser(
        "memory",
        help="compiled memory of each learner against sequence length",
        description=(
            "For each learner and sequence length T, compile value_and_grad and report "
            "XLA's memory analysis (temporary bytes; inputs are arguments and reported "
            "apart) and the ratio to the shortest T.  Nothing is executed."
        ),
    )
    _option(
        m,
        "--learners",
        "comma-separated learner names",
        type=_name_list,
        default=",".join(d["learners"]),
    )
    _option(
        m,
        "--steps",
        "comma-separated sequence lengths T",
        type=_int_list,
        default=",".join(map(str, d["steps"])),
    )
    _option(m, "--batch", "batch size B", type=int, default=d["batch"])
    _option(m, "--hidden", "neurons in the recurrent layer", type=int, default=d["hidden"])
    _option(m, "--n-in", "input channels", type=int, default=d["n_in"])
    _option(m, "--neuron", "neuron model", default=d["neuron"])
    _option(
        m,
        "--rtrl-hidden",
        "layer size used for rtrl and eprop_dense (O(n^3) memory); unset: same as --hidden",
        type=int,
        default=d["rtrl_hidden"],
    )
    _option(
        m,
        "--json",
        "also write the rows as JSON to this file (atomically)",
        metavar="PATH",
        default=None,
    )
    m.set_defaults(bench_run=cmd_bench_memory)
    from .bench_cli import add_bench_commands

    add_bench_commands(sub)
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    run = getattr(args, "bench_run", None)
    if run is None:
        raise ValueError(
            "bench: expected a benchmark name, received none; see plastax bench --help"
        )
    return run(args)


def cmd_bench_memory(args: argparse.Namespace) -> int:
    from ._io import write_json
    from .bench.memory import MemoryConfig, memory_table

    config = MemoryConfig(
        learners=args.learners,
        steps=args.steps,
        batch=args.batch,
        hidden=args.hidden,
        n_in=args.n_in,
        neuron=args.neuron,
        rtrl_hidden=args.rtrl_hidden,
    )
    header = f"{'learner':<12} {'hidden':>6} {'T':>6} {'temp MiB':>10} {'args MiB':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))

    def show(r):
        print(
            f"{r['learner']:<12} {r['hidden']:>6} {r['T']:>6} {r['temp_bytes'] / 2**20:>10.2f} "
            f"{r['argument_bytes'] / 2**20:>9.2f} {r['ratio_to_shortest']:>7.3f}",
            flush=True,
        )

    rows = memory_table(config, progress=show)
    if args.json:
        write_json(
            args.json, {"benchmark": "memory", "config": dataclasses.asdict(config), "rows": rows}
        )
    return 0


from .data_cli import add_data, cmd_data  # noqa: E402
from .experiment_cli import add_experiment, cmd_experiment  # noqa: E402

COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "train": (add_train, cmd_train),
    "bench": (add_bench, cmd_bench),
    "experiment": (add_experiment, cmd_experiment),
    "data": (add_data, cmd_data),
}
"""Subcommand name -> (function adding its parser, function running it)."""


# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Train recurrent and spiking networks with BPTT and online gradient rules "
            "(e-prop, RTRL, SLTT) and compare them."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add, run in COMMANDS.values():
        add(subparsers).set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``plastax`` console script; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
