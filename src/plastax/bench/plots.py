"""PNG plots of the benchmarks' results (matplotlib, Agg backend: no display needed).

Each function takes the result dictionary that its benchmark returns (and writes as
JSON), so a plot can be redrawn from a saved JSON file without measuring again:
``plot(json.load(open(path)), "out.png")``.
"""

from __future__ import annotations

import os

from .timing import device_of, peak_is_upper_bound

__all__ = ["plot_scaling_hidden", "plot_scaling_time", "plot_alignment", "plot_sltt", "PLOTS"]

_COLORS = {
    "eprop": "C0",
    "eprop_dense": "C1",
    "rtrl": "C3",
    "bptt": "k",
    "sltt": "C2",
    "inference": "0.5",
    "traffic_floor": "C4",
}
_LABELS = {
    "eprop": "EProp (sparse e-prop)",
    "eprop_dense": "EPropDense (naive e-prop)",
    "rtrl": "RTRL",
    "bptt": "BPTT",
    "sltt": "SLTT",
    "inference": "inference (floor)",
    "traffic_floor": "trace traffic floor",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _color(spec: str, i: int = 0) -> str:
    # Variants (sltt:k=4, tbptt:window=10) get their own colour, not their base's.
    return _COLORS.get(spec, ("C9", "C8", "C6", "C5")[i % 4])


def _label(spec: str) -> str:
    if spec in _LABELS:
        return _LABELS[spec]
    name, *opts = spec.split(":")
    return f"{_LABELS.get(name, name)} ({', '.join(opts)})" if opts else _LABELS.get(name, name)


def _save(fig, path) -> str:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_scaling_hidden(result: dict, path) -> str:
    """Time per step against hidden size (log-log), one panel per (neuron, batch)."""
    plt = _pyplot()
    cfg, rows = result["config"], result["rows"]
    neurons, batches = cfg["neurons"], cfg["batch"]
    fig, axes = plt.subplots(
        len(neurons),
        len(batches),
        figsize=(4.6 * len(batches), 3.6 * len(neurons)),
        squeeze=False,
        sharex=True,
        layout="constrained",  # the title clears the panels' titles
    )
    whats = ["inference", "traffic_floor", *cfg["learners"]]
    for i, neuron in enumerate(neurons):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            for k, what in enumerate(whats):
                pts = sorted(
                    (r["hidden"], r["step_s"] * 1e6)
                    for r in rows
                    if r["neuron"] == neuron
                    and r["batch"] == batch
                    and r["what"] == what
                    and not r["skipped"]
                )
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                style = "--" if what in ("inference", "traffic_floor") else "-"
                ax.plot(xs, ys, style, marker="o", ms=3, color=_color(what, k), label=_label(what))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(
                f"{result.get('neurons', {}).get(neuron, neuron)}\nB = {batch}", fontsize=9
            )
            ax.grid(True, which="both", alpha=0.3)
            if i == len(neurons) - 1:
                ax.set_xlabel("hidden neurons n")
            if j == 0:
                ax.set_ylabel("time per step (µs)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    machine = result.get("machine", {})
    where = device_of(machine) or f"{machine.get('cpu_count', '?')} CPU cores"
    fig.suptitle(f"Time per step against hidden size (T = {cfg['steps']}, {where})", fontsize=10)
    return _save(fig, path)


def plot_scaling_time(result: dict, path) -> str:
    """Memory against sequence length (log-log): compiled (solid), measured (dashed)."""
    plt = _pyplot()
    cfg, rows = result["config"], result["rows"]
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for k, spec in enumerate(cfg["learners"]):
        for key, style, suffix in (
            ("temp_bytes", "-", "compiled"),
            ("run_peak_bytes", "--", "measured"),
        ):
            pts = sorted(
                (r["T"], r[key] / 2**20)
                for r in rows
                if r["learner"] == spec
                and not r.get("skipped")
                and r.get(key)
                # an accelerator's peak set before the run bounds it, does not measure it
                and not (key == "run_peak_bytes" and peak_is_upper_bound(r))
            )
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(
                xs,
                ys,
                style,
                marker="o" if style == "-" else "x",
                ms=4,
                color=_color(spec, k),
                label=f"{_label(spec)}, {suffix}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("peak memory (MiB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"Memory against sequence length ({result.get('neuron', cfg['neuron'])}, "
        f"n = {cfg['hidden']}, B = {cfg['batch']})",
        fontsize=9,
    )
    return _save(fig, path)


def plot_alignment(result: dict, path) -> str:
    """Cosine with BPTT per network (grouped bars, mean over seeds, min-max as error
    bars), one column per neuron: the whole gradient (top row) and the parameters of
    the bottom layer alone (bottom row), where dropped cross-layer routes show first."""
    import numpy as np

    plt = _pyplot()
    cfg, rows = result["config"], result["summary"]
    neurons, archs, learners = cfg["neurons"], cfg["architectures"], cfg["learners"]
    fig, axes = plt.subplots(
        2, len(neurons), figsize=(5.2 * len(neurons), 6.4), squeeze=False, sharey="row"
    )
    width = 0.8 / max(len(learners), 1)
    for i, neuron in enumerate(neurons):
        for row, what in enumerate(("whole", "bottom")):
            ax = axes[row][i]
            for k, spec in enumerate(learners):
                means, lo, hi = [], [], []
                for arch in archs:
                    r = next(
                        (
                            r
                            for r in rows
                            if r["neuron"] == neuron and r["arch"] == arch and r["learner"] == spec
                        ),
                        None,
                    )
                    if r is None or r.get("cosine_mean") is None:
                        means.append(np.nan)
                        lo.append(0.0)
                        hi.append(0.0)
                    elif what == "whole":
                        means.append(r["cosine_mean"])
                        lo.append(r["cosine_mean"] - r["cosine_min"])
                        hi.append(r["cosine_max"] - r["cosine_mean"])
                    else:
                        means.append(r["layer_cosines"][0])
                        lo.append(0.0)
                        hi.append(0.0)
                xs = np.arange(len(archs)) + (k - (len(learners) - 1) / 2) * width
                ax.bar(
                    xs,
                    means,
                    width,
                    yerr=[lo, hi] if what == "whole" else None,
                    color=_color(spec, k),
                    label=_label(spec),
                    capsize=2,
                )
            ax.set_xticks(np.arange(len(archs)))
            ax.set_xticklabels(archs)
            ax.axhline(1.0, color="k", lw=0.5)
            ax.grid(True, axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(result.get("neurons", {}).get(neuron, neuron), fontsize=9)
            if i == 0:
                ax.set_ylabel(
                    "cosine with BPTT\n(whole gradient)"
                    if what == "whole"
                    else "cosine with BPTT\n(bottom layer's parameters)"
                )
        axes[1][i].set_ylim(min(0.0, axes[1][i].get_ylim()[0]), 1.05)
    axes[1][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"Gradient alignment with BPTT (n = {cfg['hidden']}, B = {cfg['batch']}, "
        f"{cfg['task']}, {'float64' if cfg.get('x64') else 'float32'}, "
        f"{len(cfg['seeds'])} seeds)",
        fontsize=10,
    )
    return _save(fig, path)


def plot_sltt(result: dict, path) -> str:
    """SLTT and SLTT(k) against BPTT: memory and time per step against T."""
    plt = _pyplot()
    cfg, rows = result["config"], result["rows"]
    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.35})
    for k, spec in enumerate(cfg["learners"]):
        pts = sorted(
            (r["T"], r.get("temp_bytes"), r.get("run_peak_bytes"), r.get("step_s"))
            for r in rows
            if r["learner"] == spec and not r.get("skipped")
        )
        if not pts:
            continue
        T = [p[0] for p in pts]
        c = _color(spec, k)
        ax_m.plot(T, [p[1] / 2**20 for p in pts], "-o", ms=4, color=c, label=f"{_label(spec)}")
        if all(p[2] is not None for p in pts):
            ax_m.plot(T, [max(p[2], 1) / 2**20 for p in pts], "--x", ms=4, color=c)
        if all(p[3] is not None for p in pts):
            ax_t.plot(T, [p[3] * 1e6 for p in pts], "-o", ms=4, color=c, label=_label(spec))
    for ax in (ax_m, ax_t):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.grid(True, which="both", alpha=0.3)
    ax_m.set_ylabel("memory (MiB): compiled (solid), measured (dashed)")
    ax_t.set_ylabel("time per step (µs)")
    ax_m.legend(fontsize=7)
    layer = "recurrent" if cfg.get("recurrent") else "feed-forward"
    fig.suptitle(
        f"SLTT against BPTT: {cfg['n_layers']} {layer} layers of {cfg['hidden']} "
        f"{cfg['neuron']}, B = {cfg['batch']}",
        fontsize=10,
    )
    return _save(fig, path)


PLOTS = {
    "scaling-hidden": plot_scaling_hidden,
    "scaling-time": plot_scaling_time,
    "alignment": plot_alignment,
    "sltt": plot_sltt,
}
"""Benchmark name -> its plot function."""
