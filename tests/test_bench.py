"""The paper-figure benchmarks (plastax.bench.{timing,scaling,alignment,sltt,plots} and
plastax.bench_cli), each run end to end at a tiny size."""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastax.bench import timing
from plastax.bench.alignment import parse_architecture
from plastax.bench.scaling import _nice_floor, format_time, hidden_targets, time_targets
from plastax.bench_cli import add_bench_commands
from plastax.learners import SLTT, EProp


def _run(argv, capsys):
    """Parse ``argv`` with a parser holding only the bench commands, run it and
    return (exit code, stdout, the summary of the last stdout line)."""
    parser = argparse.ArgumentParser(prog="plastax bench")
    add_bench_commands(parser.add_subparsers(dest="bench"))
    args = parser.parse_args(argv)
    code = args.bench_run(args)
    out = capsys.readouterr().out
    return code, out, json.loads(out.strip().splitlines()[-1])


def _png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------- helpers


def test_parse_learner_options_and_errors():
    assert timing.parse_learner("sltt:k=4") == SLTT(k=4)
    with pytest.raises(ValueError, match="takes no option"):
        timing.parse_learner("sltt:window=3")
    with pytest.raises(ValueError, match="key=value"):
        timing.parse_learner("sltt:4")
    with pytest.raises(ValueError, match="unknown learner"):
        timing.parse_learner("nope")


def test_parse_architecture():
    assert parse_architecture("ff1") == (False, 1)
    assert parse_architecture("rec3") == (True, 3)
    with pytest.raises(ValueError, match="ff1, rec1"):
        parse_architecture("lstm2")


def test_nice_floor():
    assert [_nice_floor(x) for x in (0.3, 1, 3, 7, 19, 450, 1000)] == [1, 1, 2, 5, 10, 200, 1000]


def test_time_interleaved_runs_every_function_in_rounds():
    def make(k):
        def f(x):
            return jnp.sin(x) * k

        return f

    jobs = {"a": (make(1.0), (jnp.ones(8),)), "b": (make(2.0), (jnp.ones(8),))}
    r = timing.time_interleaved(jobs, repeats=4)
    assert set(r) == {"a", "b"}
    for v in r.values():
        assert len(v["runs"]) == 4 and v["compile_s"] > 0
        assert v["min_s"] == min(v["runs"]) and v["median_s"] >= v["min_s"]
    # a budget smaller than one run still times each function once
    r = timing.time_interleaved(jobs, repeats=4, budget_s=0.0)
    assert all(len(v["runs"]) == 1 for v in r.values())


def test_time_jitted_reports_compile_apart_and_median():
    r = timing.time_jitted(lambda x: jnp.sin(x) * 2, jnp.ones(8), repeats=3)
    assert r["compile_s"] > 0 and len(r["runs"]) == 3
    assert r["median_s"] == sorted(r["runs"])[1]
    assert r["temp_bytes"] >= 0


def test_traffic_floor_has_the_traces_size():
    model = timing.build_network("alif", 8, n_in=5, n_out=3)
    total, shapes = timing.trace_bytes(EProp(), model, 2)
    # Full ALIF traces (B, d, m, q, n) for W_in, W_rec, bias, and no per-neuron params.
    assert (2, 2, 1, 5, 8) in shapes and (2, 2, 1, 8, 8) in shapes
    assert total == 4 * sum(int(np.prod(s)) for s in shapes)
    f, e0 = timing.traffic_floor_function(shapes, jnp.float32)
    out = jax.jit(f)(e0, jnp.full((3,), 0.5), jnp.ones(3))
    assert [o.shape for o in out] == shapes
    np.testing.assert_allclose(out[0], 1.75)  # e = 0.5 e + 1, three times from 0


def test_factorised_lif_has_small_traces():
    model = timing.build_network("lif_detach", 16, n_in=5, n_out=3)
    assert EProp().is_factorised(model.layers[0])
    total, _ = timing.trace_bytes(EProp(), model, 2)
    assert total == 4 * 2 * (5 + 16 + 1)  # (B, d, m, q): shared by all neurons


def test_subprocess_failure_is_reported():
    r = timing.run_in_subprocess("json:no_such_function", {})
    assert "error" in r and "no_such_function" in r["error"]


def test_targets_from_synthetic_results():
    # median step_s and fastest min_step_s: the targets use the fastest runs
    rows = [
        dict(
            neuron="lif_detach",
            hidden=256,
            batch=32,
            what=w,
            step_s=s,
            min_step_s=s / 2 if w == "eprop" else s,
            skipped=None,
            T=1000,
        )
        for w, s in (("inference", 1.0), ("eprop", 3.0), ("bptt", 2.0))
    ]
    cfg = dict(
        neurons=["lif_detach"], batch=[32], hidden=[256], learners=["eprop", "bptt"], steps=1000
    )
    targets = {t["target"]: t for t in hidden_targets({"rows": rows, "config": cfg})}
    inference = targets["lif_detach n=256 B=32: EProp / inference step"]
    assert inference["value"] == 1.5 and inference["met"]
    assert "medians: 3" in inference["detail"]
    assert targets["lif_detach n=256 B=32: EProp / BPTT step"]["value"] == 0.75
    rows[1]["T"] = 500  # different sequence lengths are not compared with BPTT
    targets = {t["target"]: t for t in hidden_targets({"rows": rows, "config": cfg})}
    assert targets["lif_detach n=256 B=32: EProp / BPTT step"]["met"] is None
    rows = [
        dict(learner="eprop", T=100, temp_bytes=100, run_peak_bytes=100, skipped=None),
        dict(learner="eprop", T=10000, temp_bytes=104, run_peak_bytes=110, skipped=None),
    ]
    cfg = dict(steps=[100, 10000], learners=["eprop"])
    met = [t["met"] for t in time_targets({"rows": rows, "config": cfg})]
    assert met == [True, False]


def test_device_peaks_that_are_upper_bounds_are_shown_so_and_set_no_target():
    """An accelerator's allocator peak that was set before the run bounds the run's
    peak without measuring it: the table marks it with '≤' and no ratio or measured
    target is computed from it; the compiled target still is."""
    bound = timing.UPPER_BOUND
    rows = [
        dict(learner="eprop", T=100, temp_bytes=100, run_peak_bytes=100, method="device_peak",
             skipped=None),
        dict(learner="eprop", T=10000, temp_bytes=101, run_peak_bytes=250, method=bound,
             skipped=None),
    ]  # fmt: skip
    result = {
        "rows": rows,
        "config": dict(steps=[100, 10000], learners=["eprop"], hidden=128, batch=32),
        "neuron": "ALIF",
        "machine": {"backend": "gpu", "device_kind": "NVIDIA H100"},
    }
    result["targets"] = time_targets(result)
    assert [t["target"] for t in result["targets"]] == ["EProp compiled memory T=10000 / T=100"]
    table = format_time(result)
    assert "device memory of the NVIDIA H100" in table
    assert "≤ 0.00" in table and "| 1.010 / — |" in table


def test_device_peak_is_the_first_runs_peak_minus_what_stays_allocated(monkeypatch):
    """On an accelerator the run peak is the allocator's high-water mark during the first
    run minus what is still allocated after it (arguments, and what the executable
    keeps, such as constants allocated at its first run), from a fake allocator."""
    state = {"in_use": 1000, "peak": 1000, "calls": 0}

    def stats():
        return {"bytes_in_use": state["in_use"], "peak_bytes_in_use": state["peak"]}

    def compiled(*args):
        state["calls"] += 1
        if state["calls"] == 1:
            state["in_use"] += 64  # kept: constants loaded at the first run
        state["peak"] = max(state["peak"], state["in_use"] + 500)  # the run's scratch
        return jnp.zeros(())

    monkeypatch.setattr(timing, "_device_memory_stats", stats)
    r = timing._peak_of(compiled, (), rss_start=0, repeats=2)
    assert r["run_peak_bytes"] == 500
    assert r["device_resident_after_run_bytes"] == 64
    assert r["method"] == "device_peak" and len(r["runs"]) == 2
    state["peak"] = 10**6  # a peak set before the run: only a bound
    r = timing._peak_of(compiled, (), rss_start=0)
    assert "upper bound" in r["method"]


# ----------------------------------------------------------------------- end to end


def test_scaling_hidden_end_to_end(tmp_path, capsys):
    code, out, summary = _run(
        [
            "scaling-hidden",
            "--neurons=alif",
            "--hidden=8",
            "--batch=2",
            "--steps=10",
            "--learners=eprop,bptt",
            "--repeats=1",
            f"--json={tmp_path / 'h.json'}",
            f"--plot={tmp_path / 'h.png'}",
        ],
        capsys,
    )
    assert code == 0 and "| n | B | inference | traffic floor |" in out
    result = json.loads((tmp_path / "h.json").read_text())
    whats = {r["what"]: r for r in result["rows"]}
    assert set(whats) == {"inference", "traffic_floor", "eprop", "bptt"}
    assert whats["inference"]["step_s"] > 0 and whats["traffic_floor"]["step_s"] > 0
    assert whats["traffic_floor"]["trace_bytes"] > 0
    assert whats["eprop"]["factorised"] is False
    assert _png(tmp_path / "h.png") and summary["plot"] == str(tmp_path / "h.png")
    # Redraw from the saved JSON without measuring.
    code, out2, _ = _run(
        [
            "scaling-hidden",
            f"--from-json={tmp_path / 'h.json'}",
            f"--plot={tmp_path / 'h2.png'}",
        ],
        capsys,
    )
    assert code == 0 and out2.splitlines()[0] == out.splitlines()[0]
    assert _png(tmp_path / "h2.png")


def test_scaling_hidden_skips_what_does_not_fit(capsys):
    from plastax.bench.scaling import HiddenConfig, scaling_hidden

    result = scaling_hidden(
        HiddenConfig(
            neurons=("lif",),
            hidden=(16,),
            batch=(2,),
            steps=5,
            learners=("rtrl",),
            repeats=1,
            max_bytes=1000,
        ),
        progress=False,
    )
    (row,) = [r for r in result["rows"] if r["what"] == "rtrl"]
    assert row["skipped"].startswith("needs") and row["step_s"] is None


def test_scaling_time_end_to_end(tmp_path, capsys):
    code, out, summary = _run(
        [
            "scaling-time",
            "--steps=20,200",
            "--hidden=8",
            "--batch=2",
            "--learners=eprop,bptt",
            "--no-measure",  # measured runs (fresh processes) are covered by the sltt test
            f"--json={tmp_path / 't.json'}",
            f"--plot={tmp_path / 't.png'}",
        ],
        capsys,
    )
    assert code == 0 and "ratio T_max / T_min" in out
    result = json.loads((tmp_path / "t.json").read_text())
    rows = {(r["learner"], r["T"]): r for r in result["rows"]}
    assert all(r["temp_bytes"] > 0 for r in rows.values())
    # e-prop's compiled memory does not grow with T; BPTT's does.
    assert rows["eprop", 200]["temp_bytes"] <= 1.05 * rows["eprop", 20]["temp_bytes"]
    assert rows["bptt", 200]["temp_bytes"] > 3 * rows["bptt", 20]["temp_bytes"]
    assert _png(tmp_path / "t.png") and summary["targets"]


def test_alignment_eprop_is_exact_on_a_feed_forward_layer(tmp_path, capsys, x64):
    code, out, _ = _run(
        [
            "alignment",
            "--x64",
            "--neurons=lif",
            "--networks=ff1",
            "--learners=eprop",
            "--hidden=8",
            "--batch=3",
            "--seeds=0",
            f"--json={tmp_path / 'a.json'}",
            f"--plot={tmp_path / 'a.png'}",
        ],
        capsys,
    )
    assert code == 0 and "| network | eprop |" in out
    result = json.loads((tmp_path / "a.json").read_text())
    (row,) = result["rows"]
    assert row["cosine"] == pytest.approx(1.0, abs=1e-12)
    assert row["max_rel_error"] < 1e-9 and row["median_abs_dev"] < 1e-9
    assert row["spike_rates"][0] > 0  # the layer spikes: the comparison is not vacuous
    assert _png(tmp_path / "a.png")


def test_sltt_end_to_end(tmp_path, capsys):
    code, out, summary = _run(
        [
            "sltt",
            "--steps=64",
            "--learners=bptt,sltt",
            "--hidden=8",
            "--layers=2",
            "--batch=2",
            "--repeats=1",
            f"--json={tmp_path / 's.json'}",
            f"--plot={tmp_path / 's.png'}",
        ],
        capsys,
    )
    assert code == 0 and "memory saving vs BPTT" in out
    result = json.loads((tmp_path / "s.json").read_text())
    sltt = next(r for r in result["rows"] if r["learner"] == "sltt")
    assert (
        sltt["temp_bytes"] < next(r for r in result["rows"] if r["learner"] == "bptt")["temp_bytes"]
    )
    assert "compiled_saving" in sltt and "time_saving" in sltt
    # Measured in a fresh process: the run peak, and the process peak above its start.
    assert sltt["method"] == "clear_refs" and sltt["run_peak_bytes"] >= 0
    assert sltt["process_peak_bytes"] > sltt["rss_start_bytes"] > 0
    assert _png(tmp_path / "s.png") and summary["benchmark"] == "sltt"


def test_bad_options_raise_value_errors():
    from plastax.bench.alignment import AlignmentConfig
    from plastax.bench.scaling import HiddenConfig, TimeConfig
    from plastax.bench.sltt import SLTTConfig

    with pytest.raises(ValueError, match="unknown neuron"):
        HiddenConfig(neurons=("izhikevich",))
    with pytest.raises(ValueError, match="positive integers"):
        TimeConfig(steps=(0, 10))
    with pytest.raises(ValueError, match="architecture"):
        AlignmentConfig(architectures=("cnn",))
    with pytest.raises(ValueError, match="bptt"):
        SLTTConfig(learners=("sltt",))


def test_cli_registers_the_benchmarks(capsys):
    from plastax.cli import main

    try:
        main(["bench", "scaling-hidden", "--help"])
    except SystemExit as e:
        registered = e.code == 0
    else:  # pragma: no cover
        registered = False
    if not registered:
        pytest.skip("plastax.cli.add_bench does not call add_bench_commands yet")
    assert "--quick" in capsys.readouterr().out
