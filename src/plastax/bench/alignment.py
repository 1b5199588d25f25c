"""How far each learner's gradient is from BPTT's, and how that grows with depth.

``plastax bench alignment``: on the same network, inputs and loss, every learner's
gradient is compared with the exact BPTT gradient by :func:`plastax.bench.compare_grads`
(cosine, max relative error per parameter array, median absolute deviation relative to
the median BPTT entry, norm ratio), for a feed-forward layer, a recurrent layer and
2- and 3-layer networks, over several initialisation seeds.  The cosine of each
layer's own parameters is reported too, bottom layer first: it shows where, with depth,
the online rules lose the temporal routes between layers (DESIGN.md section 1).

Inputs are a batch of the task's training set (Randman by default: spike-timing
patterns), the loss is per-step cross-entropy on the task's loss mask, and the network
is initialised with the gains of :func:`plastax.build_model` (input 5, recurrent 0.3),
so that every layer spikes.  The gradient is taken at initialisation.  A learner
that returns a zero gradient for a layer where BPTT's is not gets cosine 0 there.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..learners import BPTT
from ..tasks import make_task
from .compare import compare_grads
from .timing import NEURON_NOTES, NEURONS, build_network, machine_info, parse_learner

__all__ = ["AlignmentConfig", "alignment", "format_alignment", "parse_architecture"]

_ARCH = re.compile(r"^(ff|rec)(\d+)$")


def parse_architecture(spec: str) -> tuple[bool, int]:
    """``"ff1"``, ``"rec3"``, ... -> (recurrent, number of layers)."""
    m = _ARCH.match(str(spec))
    if m is None or int(m.group(2)) < 1:
        raise ValueError(
            f"bench alignment: expected an architecture such as ff1, rec1, ff2, rec3 "
            f"(feed-forward or recurrent, then the number of layers), received {spec!r}"
        )
    return m.group(1) == "rec", int(m.group(2))


@dataclasses.dataclass(frozen=True)
class AlignmentConfig:
    """What ``plastax bench alignment`` measures."""

    neurons: tuple[str, ...] = ("lif", "alif")
    architectures: tuple[str, ...] = ("ff1", "rec1", "ff2", "rec2", "ff3", "rec3")
    learners: tuple[str, ...] = ("eprop", "rtrl", "sltt", "tbptt:window=10")
    hidden: int = 64
    batch: int = 16
    seeds: tuple[int, ...] = (0, 1, 2)
    task: str = "randman"
    readout: str = "leaky"
    input_gain: float = 5.0
    recurrent_gain: float = 0.3
    x64: bool = False

    def __post_init__(self):
        for name in ("hidden", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(
                    f"bench alignment: expected {name} to be a positive integer, received {v!r}"
                )
        if not self.seeds:
            raise ValueError("bench alignment: expected at least one seed, received none")
        for neuron in self.neurons:
            if neuron not in NEURONS:
                raise ValueError(
                    f"bench alignment: unknown neuron {neuron!r}; expected one of: "
                    f"{', '.join(NEURONS)}"
                )
        for arch in self.architectures:
            parse_architecture(arch)
        for spec in self.learners:
            parse_learner(spec)
        make_task(self.task)


QUICK_ALIGNMENT = dict(
    neurons=("alif",), architectures=("ff1", "rec1", "rec2", "rec3"), hidden=16, batch=4,
    seeds=(0,),
)  # fmt: skip


def _data(config: AlignmentConfig, dtype):
    task = make_task(config.task)
    train, _ = task.load(seed=0)
    x = jnp.asarray(train.x[: config.batch], dtype).transpose(1, 0, 2)  # (T, B, n_in)
    y = jnp.asarray(train.y[: config.batch])
    targets = jnp.broadcast_to(y, x.shape[:2])
    mask = jnp.asarray(task.loss_mask(), dtype)
    return task, x, targets, mask


def _cosine(stats) -> float:
    """A zero gradient where BPTT's is not has no direction: counted as cosine 0."""
    if not np.isfinite(stats["cosine"]) and stats["norm_ratio"] == 0.0:
        return 0.0
    return stats["cosine"]


def _layer_cosines(g, ref) -> list[float]:
    return [_cosine(compare_grads(gl, rl)) for gl, rl in zip(g.layers, ref.layers, strict=True)]


def alignment(config: AlignmentConfig, progress: bool = True) -> dict:
    """Measure; returns ``{"config", "machine", "rows", "summary"}``: one row per
    (neuron, architecture, learner, seed), and their mean / min / max over seeds."""
    previous = bool(jax.config.read("jax_enable_x64"))
    if config.x64:
        jax.config.update("jax_enable_x64", True)
    try:
        return _alignment(config, progress)
    finally:
        jax.config.update("jax_enable_x64", previous)


def _alignment(config: AlignmentConfig, progress: bool) -> dict:
    t_start = time.perf_counter()
    dtype = jnp.float64 if config.x64 else jnp.float32
    task, x, targets, mask = _data(config, dtype)
    learners = {"bptt": BPTT(), **{s: parse_learner(s) for s in config.learners}}
    # One jitted function per learner; models of every seed and size share its cache.
    fns = {
        s: eqx.filter_jit(
            lambda model, x, t, m, key, L=L: L.value_and_grad(model, x, t, m, key=key)
        )
        for s, L in learners.items()
    }
    rows = []
    for neuron in config.neurons:
        for arch in config.architectures:
            recurrent, n_layers = parse_architecture(arch)
            for seed in config.seeds:
                model = build_network(
                    neuron,
                    config.hidden,
                    n_layers=n_layers,
                    recurrent=recurrent,
                    n_in=task.n_in,
                    n_out=task.n_out,
                    readout=config.readout,
                    seed=seed,
                    input_gain=config.input_gain,
                    recurrent_gain=config.recurrent_gain,
                    dtype=dtype,
                )
                _, _, zs = model.run(x)
                rates = [float(jnp.mean(z)) for z in zs]
                key = jax.random.key(seed)
                _, ref = fns["bptt"](model, x, targets, mask, key)
                for spec in config.learners:
                    try:
                        _, g = fns[spec](model, x, targets, mask, key)
                    except ValueError as e:  # e.g. RTRL refusing for memory
                        rows.append(_row(neuron, arch, spec, seed, rates, skipped=str(e)))
                        continue
                    stats = compare_grads(g, ref)
                    stats["cosine"] = _cosine(stats)
                    rows.append(
                        _row(
                            neuron,
                            arch,
                            spec,
                            seed,
                            rates,
                            **stats,
                            layer_cosines=_layer_cosines(g, ref),
                        )
                    )
                    if progress:
                        print(
                            f"[{time.perf_counter() - t_start:5.0f} s] {neuron:<10} {arch:<5} "
                            f"seed {seed} {spec:<16} cosine {stats['cosine']:.4f} "
                            f"max rel. error {stats['max_rel_error']:.2e}",
                            file=sys.stderr,
                            flush=True,
                        )
    return {
        "benchmark": "alignment",
        "config": dataclasses.asdict(config),
        "machine": machine_info(),
        "neurons": {k: NEURON_NOTES[k] for k in config.neurons},
        "rows": rows,
        "summary": _summarise(config, rows),
        "seconds": time.perf_counter() - t_start,
    }


def _row(neuron, arch, learner, seed, rates, skipped=None, **stats):
    return {
        "neuron": neuron,
        "arch": arch,
        "learner": learner,
        "seed": seed,
        "spike_rates": rates,
        "skipped": skipped,
        **stats,
    }


def _summarise(config, rows) -> list[dict]:
    out = []
    for neuron in config.neurons:
        for arch in config.architectures:
            for spec in config.learners:
                rs = [
                    r
                    for r in rows
                    if r["neuron"] == neuron
                    and r["arch"] == arch
                    and r["learner"] == spec
                    and not r["skipped"]
                ]
                s = {"neuron": neuron, "arch": arch, "learner": spec, "seeds": len(rs)}
                if rs:
                    cos = np.array([r["cosine"] for r in rs])
                    s.update(
                        cosine_mean=float(np.mean(cos)),
                        cosine_min=float(np.min(cos)),
                        cosine_max=float(np.max(cos)),
                        max_rel_error=float(np.mean([r["max_rel_error"] for r in rs])),
                        median_abs_dev=float(np.mean([r["median_abs_dev"] for r in rs])),
                        norm_ratio=float(np.mean([r["norm_ratio"] for r in rs])),
                        layer_cosines=np.mean([r["layer_cosines"] for r in rs], axis=0).tolist(),
                        spike_rates=np.mean([r["spike_rates"] for r in rs], axis=0).tolist(),
                    )
                out.append(s)
    return out


def format_alignment(result: dict) -> str:
    """Markdown: a cosine table (architectures x learners) per neuron, then details."""
    cfg, summary = result["config"], result["summary"]
    learners = list(cfg["learners"])
    out = []
    for neuron in cfg["neurons"]:
        out.append(
            f"**{result['neurons'][neuron]}**: cosine with BPTT, mean over "
            f"{len(cfg['seeds'])} seed(s) (n = {cfg['hidden']}, B = {cfg['batch']}, "
            f"{cfg['task']}, {'float64' if cfg['x64'] else 'float32'})"
        )
        out.append("")
        out.append("| network | " + " | ".join(learners) + " |")
        out.append("|---|" + "---|" * len(learners))
        for arch in cfg["architectures"]:
            cells = [arch]
            for spec in learners:
                s = _find(summary, neuron, arch, spec)
                cells.append(
                    "skip" if s is None or "cosine_mean" not in s else _f(s["cosine_mean"])
                )
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out.append(
        "Details (means over seeds): max relative error per parameter array, median "
        "absolute deviation relative to the median BPTT entry, norm ratio, cosine of "
        "each layer's parameters (bottom layer first), spike rate of each layer."
    )
    out.append("")
    out.append(
        "| neuron | network | learner | cosine (min) | max rel. error | median abs. dev. | "
        "norm ratio | cosine per layer | spike rates |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        if "cosine_mean" not in s:
            out.append(f"| {s['neuron']} | {s['arch']} | {s['learner']} | skipped | | | | | |")
            continue
        out.append(
            f"| {s['neuron']} | {s['arch']} | {s['learner']} | {_f(s['cosine_mean'])} "
            f"({_f(s['cosine_min'])}) | {s['max_rel_error']:.2e} | {s['median_abs_dev']:.2e} | "
            f"{s['norm_ratio']:.3f} | {', '.join(_f(c) for c in s['layer_cosines'])} | "
            f"{', '.join(f'{r:.3f}' for r in s['spike_rates'])} |"
        )
    return "\n".join(out)


def _f(c):
    if c is None or not np.isfinite(c):
        return "nan"
    return "1" if c == 1.0 else f"{c:.4f}"


def _find(summary, neuron, arch, spec):
    return next(
        (
            s
            for s in summary
            if s["neuron"] == neuron and s["arch"] == arch and s["learner"] == spec
        ),
        None,
    )
