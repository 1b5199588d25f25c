"""Tests for plastax.checkpoint and for exact resumption of training.

The learner, optimizer and task objects are module constants: jit caches by them, so
each training setup compiles once for the whole module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastax
from plastax import checkpoint
from plastax.checkpoint import CheckpointError
from plastax.cli import main
from plastax.learners import BPTT, EProp
from plastax.tasks import Randman
from plastax.train import TrainConfig, TrainingInterrupted, build_model, train

TASK = Randman(n_classes=3, n_in=8, n_steps=12, n_train=20, n_test=6)  # 60 / 18 samples
BATCH = 10  # 6 steps per epoch
OPTIMIZER = optax.adam(1e-2)
LEARNERS = {"bptt": BPTT(), "eprop": EProp()}


def model_for(seed=0, hidden=8):
    return build_model(TrainConfig(hidden=hidden), TASK.n_in, TASK.n_out, jax.random.key(seed))


def run_train(learner="bptt", **kwargs):
    args = dict(epochs=2, batch_size=BATCH, seed=0, progress=False)
    args.update(kwargs)
    return train(model_for(), TASK, LEARNERS[learner], OPTIMIZER, **args)


def assert_same_arrays(a, b):
    la, lb = (
        jax.tree.leaves(eqx.filter(a, eqx.is_array)),
        jax.tree.leaves(eqx.filter(b, eqx.is_array)),
    )
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))


def signal_when_checkpoint(directory, signum=signal.SIGINT):
    """Send ``signum`` to this process, from another thread, as soon as the first
    checkpoint appears in ``directory``: a real signal, at a time the test does not
    choose exactly."""

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if checkpoint.list_checkpoints(directory):
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------------------
# The format


def small_tree():
    model = model_for()
    opt_state = OPTIMIZER.init(eqx.filter(model, eqx.is_inexact_array))
    return {"model": model, "opt_state": opt_state, "key": jax.random.key_data(jax.random.key(3))}


def test_save_load_round_trip(tmp_path):
    tree = small_tree()
    path = checkpoint.save(tmp_path, 7, tree, {"note": "hello", "big": 2**100})
    assert os.path.basename(path) == "step-00000007"
    assert sorted(os.listdir(path)) == [checkpoint.ARRAYS, checkpoint.MANIFEST]
    like = {
        "model": model_for(seed=1),  # other values, same structure
        "opt_state": OPTIMIZER.init(eqx.filter(model_for(seed=1), eqx.is_inexact_array)),
        "key": jax.random.key_data(jax.random.key(0)),
    }
    loaded, manifest = checkpoint.load(path, like)
    assert_same_arrays(loaded, tree)
    extra = {"scalar": np.float32(1.5), "numpy": np.arange(3), "hyper": 0.25}
    path = checkpoint.save(tmp_path, 8, extra)
    back, _ = checkpoint.load(
        path, {"scalar": np.float32(0), "numpy": np.zeros(3, int), "hyper": 1}
    )
    assert back["scalar"] == np.float32(1.5) and isinstance(back["scalar"], np.float32)
    assert isinstance(back["numpy"], np.ndarray) and back["hyper"] == 1  # not an array: kept
    assert manifest["step"] == 7 and manifest["metadata"] == {"note": "hello", "big": 2**100}
    assert manifest["leaves"][0]["path"].startswith("['key']")  # dict keys sort first
    assert isinstance(loaded["model"], plastax.Network)


def test_arrays_file_is_plain_npy_records_without_pickle(tmp_path):
    path = checkpoint.save(tmp_path, 1, small_tree())
    data = Path(path, checkpoint.ARRAYS).read_bytes()
    assert data.startswith(b"\x93NUMPY")
    # every record loads with pickling forbidden, and they fill the file exactly
    import io

    f, n = io.BytesIO(data), 0
    while f.tell() < len(data):
        np.load(f, allow_pickle=False)
        n += 1
    manifest = json.loads(Path(path, checkpoint.MANIFEST).read_text())
    assert n == len(manifest["leaves"])


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError):
        checkpoint.save(tmp_path, 1, {"bad": np.array([{"a": 1}], dtype=object)})
    assert checkpoint.list_checkpoints(tmp_path) == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def corrupt(path, how):
    arrays, manifest = Path(path, checkpoint.ARRAYS), Path(path, checkpoint.MANIFEST)
    target = arrays if "arrays" in how else manifest
    if how.startswith("flip"):
        data = bytearray(target.read_bytes())
        where = {"start": 0, "middle": len(data) // 2, "end": len(data) - 2}[how.split("-")[-1]]
        data[where] ^= 0x01
        target.write_bytes(bytes(data))
    elif how.startswith("truncate"):
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif how == "delete-arrays":
        arrays.unlink()
    elif how == "empty-manifest":
        manifest.write_bytes(b"")


CORRUPTIONS = [
    "flip-arrays-start",
    "flip-arrays-middle",
    "flip-arrays-end",
    "flip-manifest-start",
    "flip-manifest-middle",
    "flip-manifest-end",
    "truncate-arrays",
    "truncate-manifest",
    "delete-arrays",
    "empty-manifest",
]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corrupted_checkpoint_is_refused_and_the_previous_good_one_named(tmp_path, how):
    tree = small_tree()
    good = checkpoint.save(tmp_path, 1, tree)
    bad = checkpoint.save(tmp_path, 2, tree)
    corrupt(bad, how)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(bad, tree)
    message = str(info.value)
    assert bad in message and f"previous good checkpoint is {good}" in message
    with pytest.raises(CheckpointError):
        checkpoint.verify(bad)
    restored = checkpoint.restore_latest(tmp_path, tree)
    assert restored.path == good and [p for p, _ in restored.skipped] == [bad]
    assert_same_arrays(restored.tree, tree)


def test_every_single_byte_flip_is_detected(tmp_path):
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = checkpoint.save(tmp_path, 1, tree)
    for name in (checkpoint.ARRAYS, checkpoint.MANIFEST):
        target = Path(path, name)
        original = target.read_bytes()
        for i in range(0, len(original), 7):
            data = bytearray(original)
            data[i] ^= 0x20
            target.write_bytes(bytes(data))
            with pytest.raises(CheckpointError):
                checkpoint.load(path, tree)
        target.write_bytes(original)
    assert_same_arrays(checkpoint.load(path, tree)[0], tree)


def test_no_good_checkpoint_at_all(tmp_path):
    tree = small_tree()
    only = checkpoint.save(tmp_path, 5, tree)
    corrupt(only, "truncate-arrays")
    with pytest.raises(CheckpointError, match="no older valid checkpoint"):
        checkpoint.load(only, tree)
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        checkpoint.restore_latest(tmp_path, tree)
    assert checkpoint.restore_latest(tmp_path / "empty", tree) is None


def test_shape_mismatch_is_a_clear_error(tmp_path):
    path = checkpoint.save(tmp_path, 1, {"model": model_for(hidden=8)})
    with pytest.raises(CheckpointError, match=r"shape .*configuration stored in manifest.json"):
        checkpoint.load(path, {"model": model_for(hidden=6)})


def test_keep_prunes_old_checkpoints_and_temporaries(tmp_path):
    tree = {"w": np.ones(3, np.float32)}
    for step in range(1, 6):
        checkpoint.save(tmp_path, step, tree, keep=2)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [4, 5]
    checkpoint.save(tmp_path, 5, {"w": np.zeros(3, np.float32)}, keep=2)  # same step again
    assert np.array_equal(checkpoint.load(tmp_path / "step-00000005", tree)[0]["w"], np.zeros(3))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


# --------------------------------------------------------------------------------------
# Training: resume exactly


@pytest.mark.parametrize("learner", ["bptt", "eprop"])
def test_sigint_then_resume_is_bit_identical(tmp_path, learner):
    ckpt, m_int, m_ref = tmp_path / "ckpt", tmp_path / "int.jsonl", tmp_path / "ref.jsonl"
    # the handler the process had: Python's default, or SIG_IGN when pytest was started
    # in the background by a non-interactive shell
    before = signal.getsignal(signal.SIGINT)
    signal_when_checkpoint(ckpt, signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as info:
        run_train(learner, epochs=1000, checkpoint_dir=ckpt, checkpoint_every=1, metrics_path=m_int)
    stop = info.value
    assert stop.signum == signal.SIGINT and "checkpoint saved to" in str(stop)
    assert os.path.basename(stop.checkpoint) == f"step-{stop.global_step:08d}"
    assert signal.getsignal(signal.SIGINT) is before  # restored
    epochs = stop.global_step // 6 + 2  # at least one full epoch after the interruption

    resumed, history = run_train(
        learner, epochs=epochs, checkpoint_dir=ckpt, resume=True, metrics_path=m_int
    )
    reference, ref_history = run_train(learner, epochs=epochs, metrics_path=m_ref)
    assert_same_arrays(resumed, reference)
    assert history == ref_history and len(history) == epochs
    assert m_int.read_bytes() == m_ref.read_bytes()


def test_sigint_without_checkpoint_dir_says_so(tmp_path):
    metrics = tmp_path / "m.jsonl"

    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if metrics.exists() and metrics.read_text():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)

    threading.Thread(target=watch, daemon=True).start()
    with pytest.raises(TrainingInterrupted) as info:
        run_train(epochs=1000, metrics_path=metrics)
    assert info.value.checkpoint is None
    assert "no checkpoint was saved" in str(info.value) and "--checkpoint-dir" in str(info.value)


def test_resume_from_a_mid_epoch_checkpoint_is_bit_identical(tmp_path):
    # checkpoints every 4 steps with 6 steps per epoch: steps 4, 8 and 16 are mid-epoch
    ref_dir = tmp_path / "ref"
    reference, ref_history = run_train(
        epochs=3, checkpoint_dir=ref_dir, checkpoint_every=4, keep_checkpoints=100
    )
    assert [s for s, _ in checkpoint.list_checkpoints(ref_dir)] == [4, 8, 12, 16, 18]
    for step in (8, 12):  # epoch 2 after 2 steps; end of epoch 2
        alone = tmp_path / f"from-{step}"
        shutil.copytree(ref_dir / f"step-{step:08d}", alone / f"step-{step:08d}")
        resumed, history = run_train(epochs=3, checkpoint_dir=alone, resume=True)
        assert_same_arrays(resumed, reference)
        assert history == ref_history


def test_same_seed_same_metrics_file(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_train(metrics_path=a)
    run_train(metrics_path=b)
    assert a.read_bytes() == b.read_bytes()
    records = [json.loads(line) for line in a.read_text().splitlines()]
    assert all("seconds" not in r and "compile_seconds" not in r for r in records)


def test_resume_falls_back_to_the_previous_good_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    reference, _ = run_train(epochs=3)
    run_train(epochs=2, checkpoint_dir=ckpt)  # checkpoints at steps 6 and 12
    newest = ckpt / "step-00000012"
    corrupt(str(newest), "flip-arrays-middle")
    with pytest.warns(RuntimeWarning, match=r"step-00000012 is unusable .*step-00000006"):
        resumed, history = run_train(epochs=3, checkpoint_dir=ckpt, resume=True)
    assert_same_arrays(resumed, reference)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert (ckpt / "corrupted-step-00000012").is_dir()  # kept for inspection, never read


def test_resume_already_finished_run_returns_it(tmp_path):
    ckpt = tmp_path / "ckpt"
    model, history = run_train(epochs=2, checkpoint_dir=ckpt)
    again, again_history = run_train(epochs=2, checkpoint_dir=ckpt, resume=True)
    assert_same_arrays(again, model)
    assert again_history == history


def test_fresh_start_refuses_a_directory_with_checkpoints(tmp_path):
    run_train(epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="already holds checkpoints.*resume"):
        run_train(epochs=1, checkpoint_dir=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resume": True}, "checkpoint_dir"),
        ({"checkpoint_every": 2}, "checkpoint_dir"),
        ({"checkpoint_every": 0, "checkpoint_dir": "x"}, "checkpoint_every"),
        ({"resume": "yes", "checkpoint_dir": "x"}, "resume"),
        ({"keep_checkpoints": 0, "checkpoint_dir": "x"}, "keep_checkpoints"),
    ],
)
def test_checkpoint_arguments_are_checked(tmp_path, kwargs, message):
    if "checkpoint_dir" in kwargs:
        kwargs["checkpoint_dir"] = tmp_path / kwargs["checkpoint_dir"]
    with pytest.raises(ValueError, match=message):
        run_train(**kwargs)


def test_resume_refuses_other_settings(tmp_path):
    run_train(epochs=2, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"differs \(seed=0 in the checkpoint, 1 now\)"):
        run_train(epochs=3, checkpoint_dir=tmp_path, resume=True, seed=1)
    with pytest.raises(ValueError, match="completed 2 epochs, more than epochs=1"):
        run_train(epochs=1, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="no checkpoint in"):
        run_train(epochs=2, checkpoint_dir=tmp_path / "nothing", resume=True)


def test_clip_norm_may_change_on_resume(tmp_path, monkeypatch):
    small = Randman(n_classes=3, n_in=8, n_steps=12, n_train=20, n_test=6)
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: small)
    config = TrainConfig(hidden=8, epochs=1, batch_size=BATCH, lr=1e-2)
    plastax.run(config, checkpoint_dir=tmp_path, progress=False)
    more = TrainConfig(hidden=8, epochs=2, batch_size=BATCH, lr=5e-3, clip_norm=1.0)
    summary = plastax.run(more, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert summary["resumed_from"].endswith("step-00000006")
    assert summary["checkpoint"].endswith("step-00000012")
    with pytest.raises(ValueError, match="hidden=8 in the checkpoint, 6 now"):
        plastax.run(TrainConfig(hidden=6, epochs=3, batch_size=BATCH), checkpoint_dir=tmp_path,
                    resume=True, progress=False)  # fmt: skip


# --------------------------------------------------------------------------------------
# The command line


@pytest.fixture
def small_task(monkeypatch):
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: TASK)
    return TASK


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_saves_and_says_how_to_resume(small_task, tmp_path, capsys, signum, code):
    ckpt, metrics = tmp_path / "ckpt", tmp_path / "m.jsonl"
    argv = ["train", "--hidden", "8", "--batch-size", "10", "--no-progress",
            "--metrics", str(metrics), "--checkpoint-dir", str(ckpt),
            "--checkpoint-every", "1"]  # fmt: skip
    signal_when_checkpoint(ckpt, signum)
    assert main(argv + ["--epochs", "1000"]) == code
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in captured.err and "checkpoint saved to" in captured.err
    resume_line = captured.err.split("resume with: ", 1)[1].strip()
    assert resume_line.startswith("plastax train ") and resume_line.endswith("--resume")
    assert f"--checkpoint-dir {ckpt}" in resume_line and "--epochs 1000" in resume_line
    done = checkpoint.list_checkpoints(ckpt)[-1][0]
    epochs = done // 6 + 1
    assert main(argv + ["--epochs", str(epochs), "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["resumed_from"].endswith(f"step-{done:08d}")
    assert [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()] == list(
        range(1, epochs + 1)
    )


def test_cli_resume_errors_are_clear(small_task, tmp_path, capsys):
    argv = ["train", "--hidden", "8", "--batch-size", "10", "--no-progress", "--epochs", "1",
            "--checkpoint-dir", str(tmp_path / "c"),
            "--metrics", str(tmp_path / "m.jsonl")]  # fmt: skip
    assert main(argv + ["--resume"]) == 2
    assert "no checkpoint in" in capsys.readouterr().err
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    corrupt(checkpoint.list_checkpoints(tmp_path / "c")[-1][1], "truncate-arrays")
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "no valid checkpoint" in err and "truncated" in err and "Traceback" not in err


def test_model_survives_round_trip_through_training_checkpoint(tmp_path):
    model, _ = run_train(epochs=1, checkpoint_dir=tmp_path)
    opt_state = OPTIMIZER.init(eqx.filter(model_for(), eqx.is_inexact_array))
    like = {"model": model_for(), "opt_state": opt_state, "learner": BPTT(),
            "key": jax.random.key_data(jax.random.key(0))}  # fmt: skip
    tree, manifest = checkpoint.load(tmp_path / "step-00000006", like)
    assert_same_arrays(tree["model"], model)
    meta = manifest["metadata"]
    assert meta["position"] == {"epochs_done": 1, "step_in_epoch": 0, "global_step": 6,
                                "steps_per_epoch": 6}  # fmt: skip
    assert meta["run"]["task"]["n_train"] == 20 and meta["run"]["learner"] == "BPTT()"
    assert int(jnp.asarray(tree["opt_state"][0].count)) == 6
