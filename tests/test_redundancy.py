"""``plastax experiment redundancy``: end to end at a tiny size, and its definitions."""

from __future__ import annotations

import argparse
import json
import math
import os

import pytest

from plastax.experiment_cli import add_experiment, cmd_experiment
from plastax.experiments.redundancy import (
    RedundancyConfig,
    _add_recovery,
    merge_results,
    summarise,
)

N = 8


def _parse(argv):
    parser = argparse.ArgumentParser(prog="plastax")
    sub = parser.add_subparsers(dest="command")
    add_experiment(sub).set_defaults(run=cmd_experiment)
    return parser.parse_args(argv)


def test_tiny_experiment_end_to_end_through_the_cli(tmp_path, capsys):
    out = tmp_path / "out.json"
    plots = tmp_path / "plots"
    args = _parse(
        [
            "experiment", "redundancy", "--tasks", "sine", "--cells", "rnn",
            "--optimizers", "adam,sgd", "--seeds", "1", "--hidden", str(N), "--ks", "2",
            "--scale-hidden", "", "--pretrain-steps", "100", "--adapt-steps", "100",
            "--cosine-steps", "20", "--pretrain-epochs", "2", "--lr-sgd", "0.01",
            "--json", str(out), "--plots", str(plots), "--no-progress",
        ]
    )  # fmt: skip
    assert args.run(args) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(stdout[-1])
    assert summary["experiment"] == "redundancy" and summary["json"] == str(out)

    result = json.loads(out.read_text())
    runs = result["runs"]
    conditions = {r["condition"] for r in runs}
    assert conditions == {"frozen", "sltt", "k=0", "k=2", "full"}
    for r in runs:
        assert {"post_shift_mse", "recovery", "cosine", "cosine_recurrent", "seed", "k"} <= set(r)
        assert r["post_shift_mse"] is not None and r["post_shift_mse"] > 0
        if r["condition"] != "frozen":
            assert -1.0 <= r["cosine_recurrent"] <= 1.0 + 1e-6
            assert -1.0 <= r["cosine"] <= 1.0 + 1e-6
        assert r["recovery"] is not None
    by = {(r["optimizer"], r["condition"]): r for r in runs}
    for opt in ("adam", "sgd"):
        assert by[opt, "k=0"]["recovery"] == 0.0  # by definition
        assert by[opt, "full"]["recovery"] == 1.0
        assert by[opt, "full"]["k"] == N - 1 and by[opt, "full"]["cosine_recurrent"] == 1.0
        assert by[opt, "frozen"]["cosine"] is None
        # the recovery is the log-gap ratio of the seed's own losses
        l0, lf, lk = (by[opt, c]["post_shift_mse"] for c in ("k=0", "full", "k=2"))
        expected = (math.log(l0) - math.log(lk)) / (math.log(l0) - math.log(lf))
        assert by[opt, "k=2"]["recovery"] == pytest.approx(expected, rel=1e-6)
    # the frozen model is the same for both optimizers; each run starts from it
    assert by["adam", "frozen"]["post_shift_mse"] == by["sgd", "frozen"]["post_shift_mse"]
    assert {s["condition"] for s in result["summary"]} == conditions
    assert result["seeds"][0]["pre_shift_mse"] is not None
    assert result["paper"]["recovery_k4_n64"]["mean"] == 0.84
    assert result["plots"] and all(os.path.exists(p) for p in result["plots"])


def _row(cond, loss, seed=0, opt="adam"):
    return dict(
        task="lorenz", cell="rnn", n=8, optimizer=opt, seed=seed, condition=cond, k=None,
        post_shift_mse=loss, recovery=None, cosine=None, cosine_cumulative=None,
        skipped_updates=0,
    )  # fmt: skip


def test_recovery_and_coefficient_of_variation():
    runs = [
        _row("k=0", 1.0, 0), _row("full", 0.01, 0), _row("k=4", 0.1, 0), _row("sltt", 2.0, 0),
        _row("k=0", 1.0, 1), _row("full", 0.1, 1), _row("k=4", 0.1, 1), _row("sltt", 1.0, 1),
    ]  # fmt: skip
    _add_recovery(runs)
    rec = {(r["seed"], r["condition"]): r["recovery"] for r in runs}
    assert rec[0, "k=4"] == pytest.approx(0.5) and rec[1, "k=4"] == pytest.approx(1.0)
    assert rec[0, "sltt"] == pytest.approx(-math.log(2) / math.log(100))
    assert rec[0, "k=0"] == 0.0 and rec[1, "full"] == 1.0
    rows = {s["condition"]: s for s in summarise(runs)}
    assert rows["k=4"]["recovery_mean"] == pytest.approx(0.75)
    assert rows["k=4"]["recovery_sd"] == pytest.approx(math.sqrt(0.125))
    assert rows["k=4"]["post_shift_mse_cv"] == 0.0
    assert rows["full"]["post_shift_mse_cv"] == pytest.approx(
        math.sqrt(((0.01 - 0.055) ** 2 + (0.1 - 0.055) ** 2) / 1) / 0.055
    )


def test_recovery_undefined_without_a_gap():
    runs = [_row("k=0", 1.0), _row("full", 1.0), _row("k=4", 0.5)]
    _add_recovery(runs)
    assert all(r["recovery"] is None for r in runs)


def test_conditions_and_ks():
    c = RedundancyConfig(hidden=16, ks=(1, 4, "full"), scale_hidden=(32,), full_max_hidden=16)
    assert [name for name, _ in c.conditions("rnn", 16)] == [
        "frozen", "sltt", "k=0", "k=1", "k=4", "full",
    ]  # fmt: skip
    assert [name for name, _ in c.conditions("lstm", 32)] == [
        "frozen", "sltt", "eprop", "k=0", "k=4",
    ]  # fmt: skip
    assert c.conditions("rnn", 16)[-1] == ("full", 15)
    quick = RedundancyConfig.quick()
    assert quick.hidden == 32 and quick.seeds == 2 and quick.scale_hidden == ()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(tasks=("sine", "nope")), "tasks"),
        (dict(tasks="sine"), "tasks"),
        (dict(cells=("gru",)), "cells"),
        (dict(optimizers=("rmsprop",)), "optimizers"),
        (dict(seeds=0), "seeds"),
        (dict(hidden=8, ks=(8,), scale_hidden=()), "k"),
        (dict(ks=(-1,)), "k"),
        (dict(scale_hidden=(64,)), "scale_hidden"),
        (dict(cosine_steps=2000), "cosine_steps"),
        (dict(lr_adam=0.0), "lr_adam"),
        (dict(pretrain_window=5000), "pretrain_window"),
    ],
)
def test_invalid_options_raise(overrides, match):
    with pytest.raises(ValueError, match=match) as info:
        RedundancyConfig(**overrides)
    assert "expected" in str(info.value) and "received" in str(info.value)


def test_cli_without_an_experiment_name_raises():
    with pytest.raises(ValueError, match="expected an experiment name"):
        cmd_experiment(argparse.Namespace())


def test_cli_rejects_bad_k_lists():
    with pytest.raises(SystemExit):
        _parse(["experiment", "redundancy", "--ks", "1,two"])


def _result(runs, cosine_steps=200):
    return {"experiment": "redundancy", "config": {"cosine_steps": cosine_steps}, "runs": runs}


def test_merge_and_fill_the_recurrent_cosine_from_a_rerun():
    a = [_row("k=0", 1.0), _row("full", 0.1), _row("k=4", 0.5)]
    b = [_row("k=0", 2.0, opt="sgd"), _row("full", 0.2, opt="sgd")]
    for r in a:
        r["cosine"] = 0.9
    rerun = [dict(r, cosine_recurrent=0.7, cosine_recurrent_cumulative=0.8) for r in a]
    merged = merge_results([_result(a), _result(b)], [_result(rerun)])
    assert len(merged["runs"]) == 5 and len(merged["parts"]) == 2
    filled = [r for r in merged["runs"] if r["optimizer"] == "adam"]
    assert all(r["cosine_recurrent"] == 0.7 for r in filled)
    assert {s["condition"] for s in merged["summary"]} == {"k=0", "full", "k=4"}
    with pytest.raises(ValueError, match="same trajectory"):
        merge_results([_result(a)], [_result([dict(r, cosine=0.5) for r in rerun])])
    with pytest.raises(ValueError, match="same window"):
        merge_results([_result(a)], [_result(rerun, cosine_steps=100)])
    with pytest.raises(ValueError, match="one part only"):
        merge_results([_result(a), _result(a)])
    with pytest.raises(ValueError, match="--cosine-from"):
        cmd_experiment(_parse(["experiment", "redundancy", "--cosine-from", "x.json"]))
