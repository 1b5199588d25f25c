"""Tests for the ``plastax`` command line (plastax.cli, ``python -m plastax``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import plastax
from plastax.cli import main
from plastax.tasks import Randman

TRAIN_OPTIONS = [
    "--task",
    "--learner",
    "--window",
    "--neuron",
    "--hidden",
    "--layers",
    "--recurrent",
    "--no-recurrent",
    "--readout",
    "--readout-tau",
    "--epochs",
    "--batch-size",
    "--lr",
    "--seed",
    "--metrics",
    "--no-progress",
    "--clip-norm",
    "--devices",
    "--checkpoint-dir",
    "--checkpoint-every",
    "--resume",
    "--distributed",
    "--coordinator-address",
    "--num-processes",
    "--process-id",
]

SUMMARY_KEYS = {
    "task",
    "learner",
    "neuron",
    "hidden",
    "epochs",
    "seed",
    "test_accuracy",
    "train_accuracy",
    "test_loss",
    "train_seconds",
    "compile_seconds",
    "config",
}


@pytest.fixture
def small_task(monkeypatch):
    """Make ``--task randman`` a tiny Randman so that a CLI run takes a second."""
    small = Randman(n_classes=3, n_in=8, n_steps=12, n_train=10, n_test=4)
    real = plastax.tasks.make_task
    monkeypatch.setattr(
        plastax.tasks, "make_task", lambda name: small if name == "randman" else real(name)
    )
    return small


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "usage: plastax" in out


def test_train_help_mentions_every_option_and_default(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in TRAIN_OPTIONS:
        assert option in out
    assert out.count("default") >= len(TRAIN_OPTIONS) - 1  # --[no-]recurrent share one
    assert "runs/<task>-<learner>-<seed>.jsonl" in out


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().err


def _last_json_line(out: str) -> dict:
    lines = out.strip().splitlines()
    return json.loads(lines[-1])


def test_train_prints_json_summary(small_task, tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    code = main(
        ["train", "--epochs", "2", "--hidden", "8", "--batch-size", "10", "--seed", "3",
         "--metrics", str(metrics), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    summary = _last_json_line(captured.out)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["hidden"] == 8 and summary["epochs"] == 2 and summary["seed"] == 3
    assert summary["config"]["batch_size"] == 10
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert len(metrics.read_text().splitlines()) == 2
    assert captured.err == ""


def test_train_default_metrics_path(small_task, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--epochs", "1", "--hidden", "4", "--batch-size", "30"]
    assert main(argv + ["--learner", "tbptt", "--window", "5"]) == 0
    captured = capsys.readouterr()
    summary = _last_json_line(captured.out)
    assert summary["learner"] == "tbptt" and summary["config"]["window"] == 5
    assert (tmp_path / "runs" / "randman-tbptt-0.jsonl").exists()
    assert "1/1" in captured.err  # the progress bar is on stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learner", "nope"], "nope"),
        (["--neuron", "izhikevich"], "izhikevich"),
        (["--hidden", "0"], "hidden"),
        (["--epochs", "-1"], "epochs"),
        (["--lr", "0"], "lr"),
        (["--task", "mnist"], "mnist"),
        (["--batch-size", "1000"], "batch_size"),
    ],
)
def test_bad_input_exits_2_without_traceback(small_task, capsys, argv, message):
    assert main(["train", "--no-progress", "--epochs", "1", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("plastax: error: ")
    assert message in captured.err and "expected" in captured.err
    assert "Traceback" not in captured.err


def test_unparseable_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--hidden", "many"])
    assert info.value.code == 2
    assert "--hidden" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "plastax", "train", "--learner", "nope"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("plastax: error: ") and "nope" in result.stderr
    assert "Traceback" not in result.stderr
