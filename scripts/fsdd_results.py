"""Results on spiking FSDD: BPTT, EProp and SLTT on a recurrent ALIF network.

    python scripts/fsdd_results.py                      # the full sweep (resumable)
    python scripts/fsdd_results.py --plots-only         # figures and table from the state
    python scripts/fsdd_results.py --readme README.md   # also fill the README section

For every learner and seed (standard split) and every left-out speaker (leave one
speaker out), the script trains the network with the public API
(``plastax.build_model`` + ``plastax.train``) on :class:`plastax.tasks.fsdd.FSDD`
with its default encoding, and records:

* the test accuracy after the last epoch (no early stopping, no model selection);
* the time per epoch: median wall time between consecutive epochs, read from the
  moments the metrics file receives its lines (training steps and the exact
  evaluation of both splits; compilation excluded);
* the compiled memory of one ``value_and_grad`` at the training batch size
  (``plastax.bench.memory.compiled_memory``: XLA's temporary bytes, inputs excluded);
* the confusion matrix on the test set.

Each finished run is saved at once to the state file (``--state``), so an
interrupted sweep resumes where it stopped.  The figures go to ``docs/img/``:
``fsdd_raster.png`` (one encoded sample) and ``fsdd_confusion.png``.  The table is
printed as Markdown; with ``--readme`` it replaces the text between the markers
``<!-- fsdd-results:start -->`` and ``<!-- fsdd-results:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import plastax  # noqa: E402
from plastax._io import write_json  # noqa: E402
from plastax.bench.memory import compiled_memory  # noqa: E402
from plastax.learners import make_learner  # noqa: E402
from plastax.tasks.fsdd import FSDD  # noqa: E402
from plastax.tasks.shd import read_spike_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- fsdd-results:start -->", "<!-- fsdd-results:end -->"
NAMES = {"bptt": "BPTT", "eprop": "EProp", "sltt": "SLTT"}

# The network and training settings of every run (the same for every learner).
CONFIG = dict(
    neuron="alif",
    hidden=128,
    layers=1,
    recurrent=True,
    readout="leaky",
    readout_tau=20.0,
    batch_size=32,
    lr=2e-3,
)
EPOCHS = 30


class EpochClock:
    """Records when each line arrives in a metrics file (one line per epoch)."""

    def __init__(self, path: Path):
        self.path, self.stamps, self._stop = path, [], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _poll(self) -> None:
        try:
            n = self.path.read_bytes().count(b"\n")
        except OSError:
            n = 0
        self.stamps.extend([time.perf_counter()] * (n - len(self.stamps)))

    def _watch(self):
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._poll()  # the last line, written just before training returned

    def epoch_seconds(self) -> float:
        gaps = np.diff(self.stamps)
        return float(np.median(gaps)) if gaps.size else float("nan")


def predictions(model, split, mask, batch: int = 250) -> np.ndarray:
    forward = eqx.filter_jit(lambda m, x: jnp.argmax(jnp.einsum("tbc,t->bc", m(x), mask), -1))
    out = []
    for i in range(0, len(split), batch):
        x = jnp.swapaxes(jnp.asarray(split.x[i : i + batch]), 0, 1)
        out.append(np.asarray(forward(model, x)))
    return np.concatenate(out)


def one_run(learner_name: str, seed: int, split: str, epochs: int) -> dict:
    task = FSDD(split=split)
    config = plastax.TrainConfig(
        task="fsdd", learner=learner_name, epochs=epochs, seed=seed, **CONFIG
    )
    learner = make_learner(learner_name)
    model = plastax.build_model(config, task.n_in, task.n_out, jax.random.key(seed))
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "metrics.jsonl"
        t0 = time.perf_counter()
        with EpochClock(metrics) as clock:
            model, history = plastax.train(
                model,
                task,
                learner,
                optax.adam(config.lr),
                epochs=epochs,
                batch_size=config.batch_size,
                seed=seed,
                metrics_path=metrics,
                progress=sys.stderr.isatty(),
            )
        wall = time.perf_counter() - t0
    _, test = task.load(seed)
    pred = predictions(model, test, jnp.asarray(task.loss_mask()))
    confusion = np.zeros((task.n_out, task.n_out), np.int64)
    np.add.at(confusion, (test.y, pred), 1)
    memory = compiled_memory(learner, model, task.n_steps, config.batch_size)
    return {
        "learner": learner_name,
        "seed": seed,
        "split": split,
        "epochs": epochs,
        "test_accuracy": history[-1]["test_accuracy"],
        "train_accuracy": history[-1]["train_accuracy"],
        "best_test_accuracy": max(h["test_accuracy"] for h in history),
        "epoch_seconds": clock.epoch_seconds(),
        "wall_seconds": wall,
        "temp_bytes": memory["temp_bytes"],
        "confusion": confusion.tolist(),
        "history": history,
        "config": dataclasses.asdict(config),
        "task": task.describe(),
    }


# --------------------------------------------------------------------------------------
# Figures and table


def raster_figure(path: Path, index: int = 0) -> None:
    task = FSDD()
    encoder = task.encoder
    raw = read_spike_file(task.encode())
    data = task.load_binned()
    name = data.filenames[index]
    t, u = raw["times"][index], raw["units"][index]
    C, L = encoder.n_channels, len(encoder.gains)
    freqs = encoder.frequencies
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    ax = axes[0]
    ax.scatter(t * 1000, u, s=2, c="k", marker="|", linewidths=0.7)
    for level in range(1, L):
        ax.axhline(level * C - 0.5, color="tab:red", lw=0.8, ls="--")
    for level, g in enumerate(encoder.gains):
        db = -encoder.dynamic_range_db * (1 - 1 / g)
        ax.text(
            1.0,
            (level + 0.5) * C,
            f" above {db:.0f} dB",
            transform=ax.get_yaxis_transform(),
            rotation=90,
            va="center",
            ha="left",
            fontsize=8,
            color="tab:red",
        )
    ticks = [level * C + k for level in range(L) for k in (0, C // 2)] + [L * C - 1]
    ax.set_yticks(ticks, [f"{freqs[k % C]:.0f} Hz" for k in ticks], fontsize=7)
    ax.set(
        xlabel="time (ms)",
        ylabel="unit (centre frequency)",
        ylim=(-0.5, C * L - 0.5),
        title=f"{name}: {len(t)} spikes, {encoder.dt * 1000:g} ms resolution",
    )
    axes[1].imshow(
        data.x[index].T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, task.n_steps * task.dt * 1000, -0.5, task.n_in - 0.5),
    )
    axes[1].set(
        xlabel="time (ms)",
        ylabel="input channel",
        title=f"network input: {task.n_steps} steps of {task.dt * 1000:g} ms, binary",
    )
    fig.suptitle(
        f"One recording of FSDD encoded by the cochlea-like encoder "
        f"({C} gammatone channels x {L} thresholds)"
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)


def confusion_figure(path: Path, runs: list[dict]) -> None:
    chosen = [r for r in runs if r["split"] == "standard" and r["seed"] == 0]
    chosen.sort(key=lambda r: list(NAMES).index(r["learner"]))
    if not chosen:
        return
    fig, axes = plt.subplots(
        1, len(chosen), figsize=(3.6 * len(chosen), 3.5), constrained_layout=True, squeeze=False
    )
    for ax, r in zip(axes[0], chosen, strict=True):
        c = np.asarray(r["confusion"])
        ax.imshow(c, cmap="Blues")
        for i in range(c.shape[0]):
            for j in range(c.shape[1]):
                if c[i, j]:
                    ax.text(
                        j,
                        i,
                        str(c[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if c[i, j] > c.max() / 2 else "black",
                    )
        ax.set(
            xlabel="predicted digit",
            ylabel="spoken digit",
            xticks=range(10),
            yticks=range(10),
            title=f"{NAMES[r['learner']]}: test accuracy {r['test_accuracy']:.3f}",
        )
    fig.suptitle("Spiking FSDD, standard split (300 test recordings), seed 0")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _mean_sd(values) -> str:
    v = np.asarray(values, float)
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.3f} ± {sd:.3f}"


def table(runs: list[dict]) -> str:
    lines = [
        "| learner | test accuracy, standard split (mean ± s.d., seeds) | "
        "leave one speaker out (mean ± s.d. over speakers) | time per epoch (s) | "
        "compiled memory (MiB) |",
        "|---|---|---|---|---|",
    ]
    for name in NAMES:
        std = [r for r in runs if r["learner"] == name and r["split"] == "standard"]
        loso = [r for r in runs if r["learner"] == name and r["split"] != "standard"]
        if not std and not loso:
            continue
        acc = f"{_mean_sd([r['test_accuracy'] for r in std])} ({len(std)})" if std else "-"
        lo = (
            f"{_mean_sd([r['test_accuracy'] for r in loso])} ({len(loso)} speakers)"
            if loso
            else "-"
        )
        sec = np.median([r["epoch_seconds"] for r in std or loso])
        mem = np.median([r["temp_bytes"] for r in std or loso]) / 2**20
        lines.append(f"| `{NAMES[name]}` | {acc} | {lo} | {sec:.1f} | {mem:.1f} |")
    speakers = sorted({r["split"].split(":", 1)[1] for r in runs if r["split"] != "standard"})
    if speakers:
        lines += [
            "",
            "Leave one speaker out, test accuracy per left-out speaker:",
            "",
            "| learner | " + " | ".join(speakers) + " |",
            "|---|" + "---|" * len(speakers),
        ]
        for name in NAMES:
            cells = []
            for s in speakers:
                acc = [
                    r["test_accuracy"]
                    for r in runs
                    if r["learner"] == name and r["split"] == f"speaker:{s}"
                ]
                cells.append(f"{np.mean(acc):.3f}" if acc else "-")
            if any(c != "-" for c in cells):
                lines.append(f"| `{NAMES[name]}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fill_readme(path: Path, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    if START not in content or END not in content:
        raise SystemExit(f"{path}: the markers {START} and {END} are missing; add them first")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


# --------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", default="bptt,eprop,sltt")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument(
        "--loso", default="all", help="speakers to leave out (comma-separated), 'all' or 'none'"
    )
    p.add_argument("--loso-learners", default="bptt,eprop,sltt")
    p.add_argument("--state", default=str(ROOT / "runs" / "fsdd_results.json"))
    p.add_argument("--img", default=str(ROOT / "docs" / "img"))
    p.add_argument("--readme", default=None)
    p.add_argument("--plots-only", action="store_true")
    args = p.parse_args(argv)

    state_path = Path(args.state)
    runs = json.loads(state_path.read_text())["runs"] if state_path.is_file() else []
    learners = [s for s in args.learners.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.loso == "none":
        speakers = []
    elif args.loso == "all":
        speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    else:
        speakers = [s for s in args.loso.split(",") if s]
    jobs = [(name, seed, "standard") for seed in seeds for name in learners]
    jobs += [
        (name, 0, f"speaker:{s}")
        for name in args.loso_learners.split(",")
        if name
        for s in speakers
    ]

    if not args.plots_only:
        FSDD().encode(progress=sys.stderr.isatty())  # encode once, before timing anything
        for name, seed, split in jobs:
            done = any(
                r["learner"] == name
                and r["seed"] == seed
                and r["split"] == split
                and r["epochs"] == args.epochs
                for r in runs
            )
            if done:
                continue
            print(f"[fsdd] {name} seed {seed} {split} ...", file=sys.stderr, flush=True)
            r = one_run(name, seed, split, args.epochs)
            print(
                f"[fsdd] {name} seed {seed} {split}: test {r['test_accuracy']:.3f}, "
                f"{r['epoch_seconds']:.1f} s/epoch",
                file=sys.stderr,
                flush=True,
            )
            runs.append(r)
            write_json(
                state_path,
                {
                    "runs": runs,
                    "machine": {"backend": jax.default_backend(), "cpus": os.cpu_count()},
                },
            )

    img = Path(args.img)
    img.mkdir(parents=True, exist_ok=True)
    raster_figure(img / "fsdd_raster.png")
    confusion_figure(img / "fsdd_confusion.png", runs)
    text = table(runs)
    print(text)
    if args.readme:
        fill_readme(Path(args.readme), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
