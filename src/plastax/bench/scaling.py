"""Scaling benchmarks: the Graphax e-prop paper's Figure 1 (Lohoff et al. 2025).

* :func:`scaling_hidden` (``plastax bench scaling-hidden``), Figure 1a: time of one
  step against the hidden size, for every learner, with the inference-only forward
  pass (``model(x)``) as the floor and, for e-prop, the memory-traffic floor of its
  traces.
* :func:`scaling_time` (``plastax bench scaling-time``), Figure 1b: peak memory
  against the sequence length at a fixed hidden size, both from XLA's compiled memory
  analysis and measured (the run peak of a fresh process, see
  :mod:`plastax.bench.timing`).

Time per step is the median time of one jitted ``value_and_grad`` over a whole
sequence of T steps divided by T (for inference, of the jitted ``model(x)``), after a
warm-up run; compile time is reported apart.  RTRL and EPropDense cost O(n^4) per
step: they are skipped where their influence tensors need more than ``max_bytes`` or a
step is estimated to take longer than ``max_step_s``, and measured over fewer steps
(labelled with their T) where a full sequence would take longer than ``budget_s``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import jax.numpy as jnp

from ..learners import RTRL, EProp
from .timing import (
    NEURON_NOTES,
    NEURONS,
    build_network,
    device_of,
    inference_function,
    learner_function,
    machine_info,
    make_inputs,
    measure_config,
    parse_learner,
    peak_is_upper_bound,
    run_in_subprocess,
    time_interleaved,
    trace_bytes,
    traffic_floor_function,
)

__all__ = [
    "HiddenConfig",
    "TimeConfig",
    "scaling_hidden",
    "scaling_time",
    "hidden_targets",
    "time_targets",
    "format_hidden",
    "format_time",
]

# Learners whose influence is dense over the parameters: O(n^3) memory, O(n^4) compute.
DENSE = ("rtrl", "eprop_dense", "sparse_rtrl")


def _base_name(spec: str) -> str:
    return spec.split(":")[0].lower().replace("-", "_")


def _check_sizes(owner, **values):
    for name, v in values.items():
        items = v if isinstance(v, tuple) else (v,)
        if not items or any(isinstance(x, bool) or not isinstance(x, int) or x <= 0 for x in items):
            raise ValueError(f"{owner}: expected {name} to be positive integers, received {v!r}")


def _check_common(owner, neurons, learners, readout):
    for neuron in neurons:
        if neuron not in NEURONS:
            raise ValueError(
                f"{owner}: unknown neuron {neuron!r}; expected one of: {', '.join(NEURONS)}"
            )
    for spec in learners:
        parse_learner(spec)  # clear error for unknown names and options
    if readout not in ("linear", "leaky"):
        raise ValueError(f"{owner}: expected readout 'linear' or 'leaky', received {readout!r}")


@dataclasses.dataclass(frozen=True)
class HiddenConfig:
    """What ``plastax bench scaling-hidden`` measures."""

    neurons: tuple[str, ...] = ("lif_detach", "alif")
    hidden: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    batch: tuple[int, ...] = (1, 32)
    steps: int = 1000
    learners: tuple[str, ...] = ("eprop", "eprop_dense", "rtrl", "bptt", "sltt")
    n_in: int = 100
    n_out: int = 10
    readout: str = "linear"
    repeats: int = 5
    budget_s: float = 30.0  # longest timed run; slower configurations use fewer steps
    max_step_s: float = 30.0  # skip configurations whose step is estimated slower
    max_bytes: int = 6 * 2**30  # skip RTRL / EPropDense where the influence needs more
    min_steps: int = 2

    def __post_init__(self):
        _check_sizes(
            "bench scaling-hidden",
            hidden=self.hidden,
            batch=self.batch,
            steps=self.steps,
            n_in=self.n_in,
            n_out=self.n_out,
            repeats=self.repeats,
            min_steps=self.min_steps,
        )
        _check_common("bench scaling-hidden", self.neurons, self.learners, self.readout)


QUICK_HIDDEN = dict(hidden=(32, 64), batch=(8,), steps=100, repeats=3, budget_s=2.0)


@dataclasses.dataclass(frozen=True)
class TimeConfig:
    """What ``plastax bench scaling-time`` measures."""

    steps: tuple[int, ...] = (100, 300, 1000, 3000, 10000)
    hidden: int = 128
    batch: int = 32
    neuron: str = "alif"
    learners: tuple[str, ...] = ("eprop", "eprop_dense", "rtrl", "bptt", "sltt")
    n_in: int = 100
    n_out: int = 10
    readout: str = "linear"
    measure: bool = True  # also the measured run peak, in a fresh process per configuration
    budget_s: float = 120.0  # skip measured runs estimated to take longer
    max_bytes: int = 6 * 2**30

    def __post_init__(self):
        _check_sizes(
            "bench scaling-time",
            steps=self.steps,
            hidden=self.hidden,
            batch=self.batch,
            n_in=self.n_in,
            n_out=self.n_out,
        )
        _check_common("bench scaling-time", (self.neuron,), self.learners, self.readout)


QUICK_TIME = dict(steps=(100, 1000), hidden=32, batch=4, budget_s=10.0)


def _nice_floor(x: float) -> int:
    """Largest of 1, 2, 5, 10, 20, 50, ... not above ``x`` (at least 1)."""
    if x < 1:
        return 1
    k = 10 ** int(math.floor(math.log10(x)))
    return max(m * k for m in (1, 2, 5) if m * k <= x)


def _dense_bytes(spec: str, model, batch: int) -> int:
    learner = parse_learner(spec)
    est = getattr(learner, "estimate_bytes", None)
    return int(est(model, batch) if est is not None else RTRL().estimate_bytes(model, batch))


def _guess_dense_step_s(model, batch: int) -> float:
    """A cautious first guess of an O(n^4) step, before any measurement: a dense
    (n d x n d) Jacobian times the (n d x |theta|) influence, 2 B (n d)^2 |theta| flops,
    at 5 GFLOP/s (what these batched products reach on 2 cores)."""
    flops = 0
    p = model.n_in
    for layer in model.layers:
        size = (p + layer.n + 1) * layer.n * layer.n_currents
        flops += 2 * batch * (layer.n * layer.n_states) ** 2 * size
        p = layer.n
    return flops / 5e9


def _log(progress, text):
    if progress:
        print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# scaling-hidden


def scaling_hidden(config: HiddenConfig, progress: bool = True) -> dict:
    """Time per step against hidden size.  Returns ``{"config", "machine", "rows",
    "targets"}``; each row is one (neuron, hidden, batch, what) with ``what`` a learner
    spec, ``"inference"`` or ``"traffic_floor"``.

    The functions of one (neuron, hidden, batch) are timed against each other in
    rounds (:func:`plastax.bench.timing.time_interleaved`), so that the ratios between
    them (the targets) are measured in one run."""
    rows = []
    last: dict = {}  # (neuron, batch, what) -> (hidden, step_s) of the last measurement
    t_start = time.perf_counter()
    for neuron in config.neurons:
        for batch in config.batch:
            for n in sorted(config.hidden):
                model = build_network(
                    neuron, n, n_in=config.n_in, n_out=config.n_out, readout=config.readout
                )
                base = dict(neuron=neuron, hidden=n, batch=batch)
                jobs, meta, group = {}, {}, []
                # The floors: inference, and one fused read+write of e-prop's traces.
                x, t, m = make_inputs(model, config.steps, batch)
                f, p = inference_function(model)
                jobs["inference"] = (f, (p, x))
                meta["inference"] = (config.steps, {})
                if any(_base_name(s) == "eprop" for s in config.learners):
                    tb, shapes = trace_bytes(EProp(), model, batch)
                    T = config.steps
                    prev = last.get((neuron, batch, "eprop"))
                    pred = prev[1] * (n / prev[0]) ** 2 if prev else None
                    if pred is not None and pred * T > config.budget_s:
                        T = max(config.min_steps, _nice_floor(config.budget_s / pred))
                    f, e0 = traffic_floor_function(shapes, model.dtype)
                    a = jnp.full((T,), 0.9, model.dtype)
                    b = jnp.full((T,), 0.1, model.dtype)
                    jobs["traffic_floor"] = (f, (e0, a, b))
                    meta["traffic_floor"] = (T, {"trace_bytes": tb})
                for spec in config.learners:
                    plan = _plan_learner(config, model, base, spec, batch, last)
                    if "skipped" in plan:
                        group.append(plan)
                    else:
                        jobs[spec] = (plan["f"], plan["args"])
                        meta[spec] = (plan["T"], plan["extra"])
                timed = time_interleaved(jobs, repeats=config.repeats, budget_s=config.budget_s)
                for what, r in timed.items():
                    T, extra = meta[what]
                    row = _row(base, what, T, r, **extra)
                    if what not in ("inference", "traffic_floor"):
                        last[(neuron, batch, what)] = (n, row["step_s"])
                        last[(neuron, what, n)] = (batch, row["step_s"])
                    group.append(row)
                order = ["inference", "traffic_floor", *config.learners]
                group.sort(key=lambda r: order.index(r["what"]))
                for row in group:
                    rows.append(row)
                    _log(progress, _line(row, t_start))
    result = {
        "benchmark": "scaling-hidden",
        "config": dataclasses.asdict(config),
        "machine": machine_info(),
        "neurons": {k: NEURON_NOTES[k] for k in config.neurons},
        "rows": rows,
        "seconds": time.perf_counter() - t_start,
    }
    result["targets"] = hidden_targets(result)
    return result


def _row(base, what, T, r, **extra):
    return {
        **base,
        "what": what,
        "T": T,
        "step_s": r["median_s"] / T,
        "min_step_s": r["min_s"] / T,
        "compile_s": r["compile_s"],
        "repeats": len(r["runs"]),
        "temp_bytes": r.get("temp_bytes"),
        "skipped": None,
        **extra,
    }


def _skip(base, what, reason, **extra):
    return {**base, "what": what, "T": None, "step_s": None, "skipped": reason, **extra}


def _plan_learner(config: HiddenConfig, model, base, spec, batch, last) -> dict:
    """What to time for one learner: ``{"f", "args", "T", "extra"}``, or a skipped row
    (too much memory, or a step estimated slower than ``max_step_s``).  RTRL-like
    learners run over fewer steps where a whole sequence would exceed ``budget_s``."""
    n = base["hidden"]
    name = _base_name(spec)
    key = (base["neuron"], batch, spec)
    dense = name in DENSE
    extra = {}
    if name == "eprop":
        extra["factorised"] = all(parse_learner(spec).is_factorised(l) for l in model.layers)
    if dense:
        need = _dense_bytes(spec, model, batch)
        extra["estimated_bytes"] = need
        if need > config.max_bytes:
            return _skip(
                base,
                spec,
                f"needs {need / 2**30:.1f} GiB > {config.max_bytes / 2**30:.1f} GiB",
                **extra,
            )
    prev = last.get(key)
    other = last.get((base["neuron"], spec, n))  # same size, measured at another batch
    if prev is not None:
        pred = prev[1] * (n / prev[0]) ** (4 if dense else 2)
    elif other is not None:
        pred = other[1] * max(batch / other[0], 1.0)
    else:
        pred = _guess_dense_step_s(model, batch) if dense else None
    if pred is not None and pred > config.max_step_s:
        return _skip(base, spec, f"estimated {pred:.0f} s per step", **extra)
    T = config.steps
    if pred is not None and pred * T > config.budget_s:
        T = max(config.min_steps, _nice_floor(config.budget_s / pred))
    learner = parse_learner(spec)
    if dense and hasattr(learner, "max_bytes"):
        learner = dataclasses.replace(learner, max_bytes=2 * config.max_bytes)
    f, p = learner_function(learner, model)
    x, t, m = make_inputs(model, T, batch)
    return {"f": f, "args": (p, x, t, m), "T": T, "extra": extra}


def _line(row, t0) -> str:
    head = f"[{time.perf_counter() - t0:6.0f} s] {row['neuron']:<10} n={row['hidden']:<5} "
    head += f"B={row['batch']:<3} {row['what']:<14}"
    if row["skipped"]:
        return head + f" skipped: {row['skipped']}"
    return (
        head
        + f" T={row['T']:<5} {row['step_s'] * 1e6:12.1f} us/step  "
        + f"compile {row['compile_s']:.1f} s"
    )


def _lookup(rows, **keys):
    for r in rows:
        if all(r.get(k) == v for k, v in keys.items()):
            return r
    return None


def _target(name, value, threshold, op, detail=""):
    detail = detail.strip().removeprefix(";").removesuffix(";").strip()
    if value is None:
        return {"target": name, "value": None, "threshold": threshold, "met": None,
                "detail": detail or "not measured in this run"}  # fmt: skip
    met = value <= threshold if op == "<=" else value >= threshold
    return {"target": name, "value": value, "threshold": threshold, "met": bool(met),
            "detail": detail}  # fmt: skip


def _ratio(rows, num, den, **keys):
    """``(ratio of the fastest runs, ratio of the medians, T of num)`` of two rows
    measured in the same group, or None where one is missing or skipped."""
    a = _lookup(rows, what=num, **keys)
    b = _lookup(rows, what=den, **keys)
    if not a or not b or a["skipped"] or b["skipped"]:
        return None
    return a["min_step_s"] / b["min_step_s"], a["step_s"] / b["step_s"], a["T"], b["T"]


def _ratio_target(name, r, threshold, op, why=""):
    """A target whose value is the ratio of the fastest runs (the least disturbed by
    other processes); the ratio of the medians is given in the detail."""
    if r is None:
        return _target(name, None, threshold, op, why)
    fastest, median, Ta, Tb = r
    steps = f"T={Ta}" if Ta == Tb else f"T={Ta} and {Tb}"
    return _target(name, fastest, threshold, op, f"{steps}; medians: {median:.3g}; {why}")


def hidden_targets(result: dict) -> list[dict]:
    """The issue's targets that this benchmark measures, each with its value: the
    ratio of the fastest of the interleaved runs (see :func:`_ratio_target`)."""
    rows, cfg = result["rows"], result["config"]
    out = []
    if "eprop" not in cfg["learners"]:
        return out
    for neuron in cfg["neurons"]:
        for batch in cfg["batch"]:
            if "eprop_dense" in cfg["learners"] and 512 in cfg["hidden"]:
                at = dict(neuron=neuron, hidden=512, batch=batch)
                dense = _lookup(rows, what="eprop_dense", **at)
                skipped = dense and dense["skipped"]
                why = f"EPropDense skipped: {skipped}" if skipped else ""
                out.append(
                    _ratio_target(
                        f"{neuron} B={batch}: EPropDense / EProp step at n=512",
                        _ratio(rows, "eprop_dense", "eprop", **at),
                        20.0,
                        ">=",
                        why,
                    )
                )
            if "rtrl" in cfg["learners"]:
                fits = [
                    r["hidden"]
                    for r in rows
                    if r["neuron"] == neuron
                    and r["batch"] == batch
                    and r["what"] == "rtrl"
                    and not r["skipped"]
                ]
                if fits:
                    n = max(fits)
                    out.append(
                        _ratio_target(
                            f"{neuron} B={batch}: RTRL / EProp step at n={n} (largest RTRL fit)",
                            _ratio(rows, "rtrl", "eprop", neuron=neuron, hidden=n, batch=batch),
                            100.0,
                            ">=",
                        )
                    )
    if 32 in cfg["batch"] and 256 in cfg["hidden"]:
        if "lif_detach" in cfg["neurons"]:
            out.append(
                _ratio_target(
                    "lif_detach n=256 B=32: EProp / inference step",
                    _ratio(rows, "eprop", "inference", neuron="lif_detach", hidden=256, batch=32),
                    2.0,
                    "<=",
                )
            )
        if "alif" in cfg["neurons"]:
            out.append(
                _ratio_target(
                    "alif n=256 B=32: EProp / memory-traffic floor step",
                    _ratio(rows, "eprop", "traffic_floor", neuron="alif", hidden=256, batch=32),
                    1.5,
                    "<=",
                )
            )
    if "bptt" in cfg["learners"]:
        for neuron in ("lif_detach", "lif"):
            if neuron not in cfg["neurons"]:
                continue
            for batch in cfg["batch"]:
                for n in sorted(h for h in cfg["hidden"] if h <= 256):
                    r = _ratio(rows, "eprop", "bptt", neuron=neuron, hidden=n, batch=batch)
                    if r is not None and r[2] != r[3]:
                        r = None  # measured over different T: not comparable
                    out.append(
                        _ratio_target(f"{neuron} n={n} B={batch}: EProp / BPTT step", r, 1.0, "<=")
                    )
    return out


# --------------------------------------------------------------------------------------
# scaling-time


def scaling_time(config: TimeConfig, progress: bool = True) -> dict:
    """Peak memory against sequence length.  One fresh process per (learner, T):
    XLA's compiled memory analysis and, where it fits the time budget, the measured
    run peak.  Returns ``{"config", "machine", "rows", "targets"}``."""
    t_start = time.perf_counter()
    network = dict(
        neuron=config.neuron,
        hidden=config.hidden,
        n_in=config.n_in,
        n_out=config.n_out,
        readout=config.readout,
    )
    model = build_network(**network)
    rows = []
    for spec in config.learners:
        name = _base_name(spec)
        extra = {}
        if name in DENSE:
            need = _dense_bytes(spec, model, config.batch)
            extra["estimated_bytes"] = need
            if need > config.max_bytes:
                for T in sorted(config.steps):
                    rows.append(
                        {
                            "learner": spec,
                            "T": T,
                            "skipped": f"needs {need / 2**30:.1f} GiB",
                            **extra,
                        }  # fmt: skip
                    )
                continue
        # Seconds per step: measured at the previous T; for O(n^4) learners a cautious
        # guess before the first measurement.
        step_s = _guess_dense_step_s(model, config.batch) if name in DENSE else None
        for T in sorted(config.steps):
            run = config.measure
            note = None
            if run and step_s is not None and 2 * step_s * T > config.budget_s:
                run = False
                note = (
                    f"measured run skipped: two runs would take ~{2 * step_s * T:.0f} s "
                    f"(budget {config.budget_s:.0f} s)"
                )
            kwargs = dict(network=network, learner=spec, n_steps=T, batch=config.batch)
            if config.measure:  # a fresh process: nothing of another configuration resident
                r = run_in_subprocess(
                    "plastax.bench.timing:measure_config",
                    dict(kwargs, run=run, repeats=3, budget_s=config.budget_s),
                )
            else:  # compiled memory analysis only: no run, no need for a fresh process
                r = measure_config(**kwargs, run=False)
            row = {"learner": spec, "T": T, "skipped": r.get("error"), "note": note, **extra}
            for k in (
                "temp_bytes",
                "argument_bytes",
                "output_bytes",
                "run_peak_bytes",
                "run_peaks_bytes",
                "process_peak_bytes",
                "rss_start_bytes",
                "device_resident_after_run_bytes",
                "compile_s",
                "run_s",
                "method",
            ):
                if k in r:
                    row[k] = r[k]
            if "run_s" in r:
                step_s = r["run_s"] / T
                row["step_s"] = step_s
            rows.append(row)
            _log(progress, _time_line(row, t_start))
    result = {
        "benchmark": "scaling-time",
        "config": dataclasses.asdict(config),
        "machine": machine_info(),
        "neuron": NEURON_NOTES[config.neuron],
        "rows": rows,
        "seconds": time.perf_counter() - t_start,
    }
    result["targets"] = time_targets(result)
    return result


def _mib(b):
    return "—" if b is None else f"{b / 2**20:.2f}"


def _time_line(row, t0):
    head = f"[{time.perf_counter() - t0:6.0f} s] {row['learner']:<14} T={row['T']:<6}"
    if row.get("skipped"):
        return head + f" skipped: {row['skipped']}"
    return (
        head
        + f" compiled temp {_mib(row.get('temp_bytes'))} MiB, "
        + f"measured run peak {_mib(row.get('run_peak_bytes'))} MiB"
        + (f" ({row['note']})" if row.get("note") else "")
    )


def time_targets(result: dict) -> list[dict]:
    rows, cfg = result["rows"], result["config"]
    steps = sorted(cfg["steps"])
    lo, hi = steps[0], steps[-1]
    out = []
    for spec in cfg["learners"]:
        a = _lookup(rows, learner=spec, T=lo)
        b = _lookup(rows, learner=spec, T=hi)
        if a is None or b is None or a.get("skipped") or b.get("skipped"):
            continue
        for key, label in (("temp_bytes", "compiled"), ("run_peak_bytes", "measured")):
            va, vb = a.get(key), b.get(key)
            if not va or vb is None:
                continue
            if key == "run_peak_bytes" and (peak_is_upper_bound(a) or peak_is_upper_bound(b)):
                continue  # not a measurement of the run alone
            ratio = vb / va
            if _base_name(spec) == "eprop":
                out.append(_target(f"EProp {label} memory T={hi} / T={lo}", ratio, 1.05, "<="))
            elif _base_name(spec) == "bptt":
                slope = math.log(max(vb, 1)) - math.log(max(va, 1))
                slope /= math.log(hi) - math.log(lo)
                out.append(
                    {
                        "target": f"BPTT {label} memory T={hi} / T={lo} (linear: {hi / lo:.0f})",
                        "value": ratio,
                        "threshold": None,
                        "met": bool(slope > 0.8),
                        "detail": f"log-log slope {slope:.2f} (1 = linear)",
                    }
                )
    return out


# --------------------------------------------------------------------------------------
# Tables (markdown)


def _us(s):
    if s is None:
        return "—"
    us = s * 1e6
    return f"{us:.3g}" if us < 100 else f"{us:,.0f}"


def format_hidden(result: dict) -> str:
    """Markdown tables: time per step (µs) and compile time (s), one pair per neuron."""
    rows, cfg = result["rows"], result["config"]
    learners = list(cfg["learners"])
    out = []
    for neuron in cfg["neurons"]:
        out.append(
            f"**{result['neurons'][neuron]}**: time per step (µs, median of the interleaved "
            f"runs), T = {cfg['steps']}; the two ratios are of the fastest runs"
        )
        out.append("")
        head = ["n", "B", "inference", "traffic floor", *learners]
        head += ["EProp / inference", "EProp / floor"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        notes = {}
        for batch in cfg["batch"]:
            for n in sorted(cfg["hidden"]):
                key = dict(neuron=neuron, hidden=n, batch=batch)
                cells = [str(n), str(batch)]
                for what in ("inference", "traffic_floor", *learners):
                    r = _lookup(rows, what=what, **key)
                    if r is None:
                        cells.append("")
                    elif r["skipped"]:
                        mark = notes.setdefault(r["skipped"], f"s{len(notes) + 1}")
                        cells.append(f"skip ({mark})")
                    else:
                        c = _us(r["step_s"])
                        if r["T"] != cfg["steps"]:
                            c += f" (T={r['T']})"
                        cells.append(c)
                for den in ("inference", "traffic_floor"):
                    r = _ratio(rows, "eprop", den, **key)
                    cells.append("—" if r is None else f"{r[0]:.2f}")
                out.append("| " + " | ".join(cells) + " |")
        if notes:
            out.append("")
            out.append("Skipped: " + "; ".join(f"{m}: {why}" for why, m in notes.items()) + ".")
        out.append("")
    out.append("Compile time (s) of each configuration (lowering and XLA compilation):")
    out.append("")
    head = ["neuron", "n", "B", "inference", *learners]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for neuron in cfg["neurons"]:
        for batch in cfg["batch"]:
            for n in sorted(cfg["hidden"]):
                cells = [neuron, str(n), str(batch)]
                for what in ("inference", *learners):
                    r = _lookup(rows, neuron=neuron, hidden=n, batch=batch, what=what)
                    ok = r is not None and not r["skipped"]
                    cells.append(f"{r['compile_s']:.1f}" if ok else "—")
                out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append(format_targets(result["targets"]))
    return "\n".join(out)


def format_time(result: dict) -> str:
    """Markdown table: compiled temp and measured run peak (MiB) per learner and T."""
    rows, cfg = result["rows"], result["config"]
    steps = sorted(cfg["steps"])
    device = device_of(result.get("machine", {}))
    where = "process resident memory" if device is None else f"device memory of the {device}"
    out = [
        f"**{result['neuron']}**, n = {cfg['hidden']}, B = {cfg['batch']}: "
        f"compiled temp / measured run peak (MiB; {where})",
        "",
        "| learner | " + " | ".join(f"T={T}" for T in steps) + " | ratio T_max / T_min |",
        "|---|" + "---|" * (len(steps) + 1),
    ]
    for spec in cfg["learners"]:
        cells = [spec]
        first = last = None
        for T in steps:
            r = _lookup(rows, learner=spec, T=T)
            if r is None or r.get("skipped"):
                cells.append("skip" if r is None else f"skip: {r['skipped']}")
                continue
            meas = r.get("run_peak_bytes")
            bound = "≤ " if peak_is_upper_bound(r) else ""
            meas = f"{bound}{_mib(meas)}" if meas is not None else "—"
            cells.append(f"{_mib(r.get('temp_bytes'))} / {meas}")
            first = first or r
            last = r
        if first is not None and last is not None and first is not last:
            ratio = last["temp_bytes"] / first["temp_bytes"]
            mr = (
                f"{last['run_peak_bytes'] / first['run_peak_bytes']:.3f}"
                if first.get("run_peak_bytes") and last.get("run_peak_bytes") is not None
                else "—"
            )
            if peak_is_upper_bound(first) or peak_is_upper_bound(last):
                mr = "—"  # a ratio with an upper bound in it says nothing
            cells.append(f"{ratio:.3f} / {mr}")
        else:
            cells.append("—")
        out.append("| " + " | ".join(cells) + " |")
    if any(peak_is_upper_bound(r) for r in rows):
        out.append("")
        out.append(
            "≤: the device allocator's peak had already been set before the run (by "
            "earlier work in the process) and cannot be reset: the run's own peak is at "
            "most the value shown; the compiled temp is exact."
        )
    out.append("")
    out.append(format_targets(result["targets"]))
    return "\n".join(out)


def format_targets(targets: list[dict]) -> str:
    if not targets:
        return ""
    out = ["| target | value | threshold | met |", "|---|---|---|---|"]
    for t in targets:
        v = "—" if t["value"] is None else f"{t['value']:.3g}"
        th = "" if t["threshold"] is None else f"{t['threshold']:g}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        detail = f" ({t['detail']})" if t.get("detail") else ""
        out.append(f"| {t['target']}{detail} | {v} | {th} | {met} |")
    return "\n".join(out)
