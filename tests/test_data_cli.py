"""The real-data tasks through the command line: ``plastax data encode`` and
``plastax train --task fsdd/shd --data-dir ... --split ...``, end to end on a small
subset of the Free Spoken Digit Dataset (copied into a temporary folder, never into
the repository; nothing is downloaded)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from plastax.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"
needs_fsdd = pytest.mark.skipif(
    not (SHARED / "recordings").is_dir(),
    reason=f"FSDD not found at {SHARED} (expected beside the checkout as ../shared/data/fsdd)",
)


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    """20 recordings: digits 0-9 of george and theo, index 0 (test) and 5 (training)."""
    root = tmp_path_factory.mktemp("fsdd")
    (root / "recordings").mkdir()
    for d in range(10):
        for s in ("george", "theo"):
            for i in (0, 5):
                name = f"{d}_{s}_{i}.wav"
                shutil.copyfile(SHARED / "recordings" / name, root / "recordings" / name)
    shutil.copyfile(SHARED / "README.md", root / "README.md")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PLASTAX_CACHE", str(folder))  # never the user's cache
    return folder


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@needs_fsdd
def test_data_encode_keeps_the_licence_beside_the_file(subset, tmp_path, capsys):
    out = tmp_path / "digits.h5"
    argv = ["data", "encode", "--source", str(subset / "recordings"), "--out", str(out)]
    assert main([*argv, "--channels", "8", "--gains", "3", "--no-progress"]) == 0
    summary = _last_json(capsys)
    assert summary["n_samples"] == 40 and summary["n_channels"] == 8
    notice = tmp_path / "digits.README.md"
    assert summary["notice"] == str(notice)
    assert "CC BY-SA 4.0" in notice.read_text()  # FSDD's own README, found beside
    assert main(["data", "info", str(out)]) == 0
    assert _last_json(capsys)["samples_per_label"] == {str(d): 4 for d in range(10)}


@needs_fsdd
def test_train_fsdd_end_to_end(subset, cache, tmp_path, capsys):
    split = "standard"  # leave-one-speaker-out through plastax.run: tests/test_fsdd.py
    argv = [
        "train",
        "--task",
        "fsdd",
        "--data-dir",
        str(subset),
        "--split",
        split,
        "--neuron",
        "alif",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "10",
        "--lr",
        "5e-3",
        "--no-progress",
        "--metrics",
        str(tmp_path / "m.jsonl"),
    ]
    assert main(argv) == 0
    summary = _last_json(capsys)
    assert summary["task"] == "fsdd" and summary["task_params"]["split"] == split
    assert summary["task_params"]["data_dir"] == str(subset)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # the encoded and binned caches went to the cache folder, each with the licence
    (encoded,) = (cache / "fsdd").glob("*.h5")
    assert "CC BY-SA 4.0" in encoded.with_name(encoded.stem + ".README.md").read_text()
    (binned,) = (cache / "binned").glob("*.npz")
    assert "CC BY-SA 4.0" in binned.with_name(binned.stem + ".README.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "randman", "--data-dir", "x"], "expected a task that takes data_dir"),
        (["--task", "evidence", "--split", "standard"], "expected a task that takes split"),
        (["--task", "fsdd", "--split", "random"], "expected split to be 'standard'"),
    ],
)
def test_train_bad_data_options_exit_2(tmp_path, capsys, argv, message):
    metrics = ["--metrics", str(tmp_path / "m.jsonl"), "--no-progress", "--epochs", "1"]
    assert main(["train", *argv, *metrics]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plastax: error:") and "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "shd"], r"needs data_dir.*zenkelab\.org/datasets.*--data-dir"),
        (["--task", "shd", "--data-dir", "{tmp}"], r"shd_train\.h5.*gunzip"),
        (["--task", "fsdd", "--data-dir", "{tmp}/nowhere"], "FSDD folder not found.*--data-dir"),
    ],
)
def test_missing_data_says_where_to_get_it(tmp_path, capsys, argv, message):
    """Missing files are an OSError (exit code 1) with the way out in the message."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    metrics = ["--metrics", str(tmp_path / "m.jsonl"), "--no-progress"]
    assert main(["train", *argv, *metrics]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plastax: error:") and "Traceback" not in err
    assert re.search(message, err), err
