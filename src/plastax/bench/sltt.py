"""SLTT and SLTT-K against BPTT: memory and time on a multi-layer spiking network.

``plastax bench sltt`` reproduces the claim of Meng et al. (2023, ICCV): spatial
learning through time needs far less memory than BPTT (it stores nothing across
steps) and less time.  For each learner and sequence length T, one fresh process
compiles ``value_and_grad`` (XLA's memory analysis: ``temp_bytes``) and measures the
run peak (median of three runs; see :mod:`plastax.bench.timing`).  Time is measured
apart, all learners of one T in one fresh process, ``repeats`` interleaved rounds
after a warm-up, compile time reported apart
(:func:`plastax.bench.timing.time_learners`), so that the time saving is a ratio
measured in one run.  Reported: memory and time per step, and
the saving against BPTT at the same T (``1 - learner / BPTT``).
"""

from __future__ import annotations

import dataclasses
import sys
import time

from .scaling import _lookup, _target, format_targets
from .timing import NEURON_NOTES, NEURONS, machine_info, parse_learner, run_in_subprocess

__all__ = ["SLTTConfig", "sltt_benchmark", "sltt_targets", "format_sltt"]


@dataclasses.dataclass(frozen=True)
class SLTTConfig:
    """What ``plastax bench sltt`` measures."""

    steps: tuple[int, ...] = (10, 50, 100, 500)
    learners: tuple[str, ...] = ("bptt", "sltt", "sltt:k=4")
    hidden: int = 256
    n_layers: int = 3
    recurrent: bool = False  # SLTT targets feed-forward SNNs (Meng et al. 2023)
    batch: int = 32
    n_in: int = 100
    n_out: int = 10
    neuron: str = "lif"
    readout: str = "linear"
    repeats: int = 5
    budget_s: float = 60.0  # fewer timed runs for configurations slower than this

    def __post_init__(self):
        for name in ("hidden", "n_layers", "batch", "n_in", "n_out", "repeats"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(
                    f"bench sltt: expected {name} to be a positive integer, received {v!r}"
                )
        if not self.steps or any(not isinstance(t, int) or t <= 0 for t in self.steps):
            raise ValueError(
                f"bench sltt: expected positive sequence lengths, received {self.steps!r}"
            )
        if self.neuron not in NEURONS:
            raise ValueError(
                f"bench sltt: unknown neuron {self.neuron!r}; expected one of: {', '.join(NEURONS)}"
            )
        if "bptt" not in self.learners:
            raise ValueError("bench sltt: expected bptt among the learners (the reference)")
        for spec in self.learners:
            parse_learner(spec)


QUICK_SLTT = dict(steps=(10, 100), hidden=64, batch=8, repeats=3)


def sltt_benchmark(config: SLTTConfig, progress: bool = True) -> dict:
    """Measure; returns ``{"config", "machine", "rows", "targets"}``."""
    t_start = time.perf_counter()
    network = dict(
        neuron=config.neuron,
        hidden=config.hidden,
        n_layers=config.n_layers,
        recurrent=config.recurrent,
        n_in=config.n_in,
        n_out=config.n_out,
        readout=config.readout,
    )
    rows = []
    for T in sorted(config.steps):
        # Memory: one fresh process per learner (nothing else resident), run peak over
        # three runs.  Time: the learners against each other in one fresh process,
        # interleaved, so that their ratio is measured in one run.
        timed = run_in_subprocess(
            "plastax.bench.timing:time_learners",
            dict(
                network=network,
                learners=list(config.learners),
                n_steps=T,
                batch=config.batch,
                repeats=config.repeats,
                budget_s=config.budget_s,
            ),
        )
        for spec in config.learners:
            r = run_in_subprocess(
                "plastax.bench.timing:measure_config",
                dict(
                    network=network,
                    learner=spec,
                    n_steps=T,
                    batch=config.batch,
                    repeats=3,
                    budget_s=config.budget_s,
                ),
            )
            row = {"learner": spec, "T": T, "skipped": r.get("error") or timed.get("error")}
            for k in (
                "temp_bytes",
                "argument_bytes",
                "run_peak_bytes",
                "run_peaks_bytes",
                "process_peak_bytes",
                "rss_start_bytes",
                "method",
            ):
                if k in r:
                    row[k] = r[k]
            if spec in timed:
                t = timed[spec]
                row.update(
                    compile_s=t["compile_s"],
                    median_s=t["median_s"],
                    runs=t["runs"],
                    step_s=t["median_s"] / T,
                    min_step_s=t["min_s"] / T,
                )
            rows.append(row)
            if progress:
                text = f"[{time.perf_counter() - t_start:5.0f} s] T={T:<5} {spec:<10}"
                if row["skipped"]:
                    text += f" failed: {row['skipped']}"
                else:
                    text += (
                        f" temp {row['temp_bytes'] / 2**20:8.2f} MiB, run peak "
                        f"{row['run_peak_bytes'] / 2**20:8.2f} MiB, "
                        f"{row['step_s'] * 1e6:9.1f} us/step, compile {row['compile_s']:.1f} s"
                    )
                print(text, file=sys.stderr, flush=True)
    for row in rows:
        ref = _lookup(rows, learner="bptt", T=row["T"])
        if ref is None or ref.get("skipped") or row.get("skipped"):
            continue
        for key, out in (
            ("temp_bytes", "compiled_saving"),
            ("run_peak_bytes", "measured_saving"),
            ("step_s", "time_saving"),
            ("min_step_s", "time_saving_fastest"),
        ):
            if ref.get(key):
                row[out] = 1.0 - row[key] / ref[key]
    result = {
        "benchmark": "sltt",
        "config": dataclasses.asdict(config),
        "machine": machine_info(),
        "neuron": NEURON_NOTES[config.neuron],
        "rows": rows,
        "seconds": time.perf_counter() - t_start,
    }
    result["targets"] = sltt_targets(result)
    return result


def sltt_targets(result: dict) -> list[dict]:
    """SLTT at T = 100: >= 70 % less memory and >= 30 % less time than BPTT."""
    rows = result["rows"]
    out = []
    T = 100 if 100 in result["config"]["steps"] else max(result["config"]["steps"])
    r = _lookup(rows, learner="sltt", T=T)
    if r is None or r.get("skipped"):
        return out
    for key, label in (
        ("compiled_saving", "compiled memory"),
        ("measured_saving", "measured run peak"),
    ):
        if key in r:
            out.append(_target(f"SLTT {label} saving vs BPTT at T={T}", r[key], 0.70, ">="))
    if "time_saving_fastest" in r:
        out.append(
            _target(
                f"SLTT time saving vs BPTT at T={T} (fastest runs)",
                r["time_saving_fastest"],
                0.30,
                ">=",
                f"medians: {r['time_saving']:.3g}",
            )
        )
    return out


def _pct(x):
    return "—" if x is None else f"{100 * x:.0f} %"


def format_sltt(result: dict) -> str:
    cfg, rows = result["config"], result["rows"]
    layer = "recurrent" if cfg["recurrent"] else "feed-forward"
    out = [
        f"**{cfg['n_layers']} {layer} layers of {cfg['hidden']} neurons** "
        f"({result['neuron']}), B = {cfg['batch']}, n_in = {cfg['n_in']}, "
        f"{cfg['readout']} readout",
        "",
        "| T | learner | compiled temp (MiB) | measured run peak (MiB) | time per step (µs) "
        "| compile (s) | memory saving vs BPTT (compiled / measured) | time saving vs BPTT |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for T in sorted(cfg["steps"]):
        for spec in cfg["learners"]:
            r = _lookup(rows, learner=spec, T=T)
            if r is None or r.get("skipped"):
                out.append(f"| {T} | {spec} | failed: {r and r.get('skipped')} | | | | | |")
                continue
            saving = (
                ""
                if spec == "bptt"
                else f"{_pct(r.get('compiled_saving'))} / {_pct(r.get('measured_saving'))}"
            )
            out.append(
                f"| {T} | {spec} | {r['temp_bytes'] / 2**20:.2f} | "
                f"{r['run_peak_bytes'] / 2**20:.2f} | {r['step_s'] * 1e6:,.1f} | "
                f"{r['compile_s']:.1f} | {saving} | "
                f"{'' if spec == 'bptt' else _pct(r.get('time_saving'))} |"
            )
    out.append("")
    out.append(format_targets(result["targets"]))
    return "\n".join(out)
