"""Faults: NaN or Inf during training, a full or unwritable disk, gradient clipping.

Policy under test: shapes and dtypes of the data are checked before training; the
finiteness of every batch, of the loss, of every gradient leaf and of every updated
parameter is checked inside the jitted step.  A bad step is not applied, training stops
with a message naming the step, the tensor and the last good checkpoint, and that
checkpoint loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastax
from plastax import checkpoint, losses
from plastax.cli import main
from plastax.learners import BPTT
from plastax.tasks import Randman, Split, Task
from plastax.train import (
    NonFiniteError,
    TrainConfig,
    _train_step,
    build_model,
    make_optimizer,
    train,
)

BASE = Randman(n_classes=3, n_in=8, n_steps=12, n_train=20, n_test=6)  # 60 / 18 samples
BATCH, STEPS, SEED = 10, 6, 0
OPTIMIZER = optax.adam(1e-2)
LEARNER = BPTT()


@dataclasses.dataclass(frozen=True)
class Poisoned(Task):
    """``BASE`` with a NaN in one training sample."""

    name = "poisoned"
    sample: int = 0

    n_in = property(lambda self: BASE.n_in)
    n_out = property(lambda self: BASE.n_out)
    n_steps = property(lambda self: BASE.n_steps)

    def loss_mask(self):
        return BASE.loss_mask()

    def load(self, seed):
        train_split, test_split = BASE.load(seed)
        x = train_split.x.copy()
        x[self.sample, 3, 2] = np.nan
        return Split(x, train_split.y), test_split


def sample_fed_at(global_step: int) -> int:
    """The first training sample of the batch of ``global_step`` (1-based), from the same
    numpy generator as the training loop (one permutation per epoch)."""
    rng = np.random.default_rng(SEED)
    epoch, s = divmod(global_step - 1, STEPS)
    for _ in range(epoch + 1):
        perm = rng.permutation(BASE.n_train * BASE.n_classes)
    return int(perm[s * BATCH])


def model():
    return build_model(TrainConfig(hidden=8), BASE.n_in, BASE.n_out, jax.random.key(0))


@pytest.mark.parametrize("nan_step", [1, 5])
def test_nan_in_inputs_stops_at_that_step_and_last_checkpoint_loads(tmp_path, nan_step):
    task = Poisoned(sample_fed_at(nan_step))
    ckpt, metrics = tmp_path / "ckpt", tmp_path / "m.jsonl"
    with pytest.raises(NonFiniteError) as info:
        train(model(), task, LEARNER, OPTIMIZER, epochs=3, batch_size=BATCH, seed=SEED,
              progress=False, checkpoint_dir=ckpt, checkpoint_every=2,
              metrics_path=metrics)  # fmt: skip
    e = info.value
    message = str(e)
    assert e.global_step == nan_step and e.epoch == 1 and e.step == nan_step
    assert e.tensor == "inputs"
    assert f"global step {nan_step})" in message and "in inputs at epoch 1" in message
    assert f"training samples {task.sample} " in message and "clean the data" in message
    if nan_step == 1:
        assert e.checkpoint is None and "no checkpoint had been written yet" in message
        return
    last = checkpoint.list_checkpoints(ckpt)[-1]
    assert last[0] == 4 and e.checkpoint == last[1] and f"{last[1]} (global step 4)" in message
    opt_state = OPTIMIZER.init(eqx.filter(model(), eqx.is_inexact_array))
    like = {"model": model(), "opt_state": opt_state, "learner": LEARNER,
            "key": jax.random.key_data(jax.random.key(0))}  # fmt: skip
    tree, manifest = checkpoint.load(last[1], like)
    assert manifest["metadata"]["position"]["step_in_epoch"] == 4
    assert all(
        bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    )
    assert metrics.read_text() == ""  # no epoch was completed


def test_blow_up_names_the_tensor_and_suggests_clipping():
    with pytest.raises(NonFiniteError) as info:
        train(model(), BASE, LEARNER, optax.sgd(1e38), epochs=2, batch_size=BATCH, seed=SEED,
              progress=False)  # fmt: skip
    e = info.value
    assert e.tensor.startswith(("params.", "grads.", "loss"))
    assert (
        f"in {e.tensor} at epoch {e.epoch}, step {e.step} of 6 (global step {e.global_step})"
        in (str(e))
    )
    assert "--clip-norm 1.0" in str(e) and "--lr" in str(e)
    assert "pass --checkpoint-dir" in str(e)


def test_a_non_finite_step_is_not_applied():
    m = model()
    opt_state = OPTIMIZER.init(eqx.filter(m, eqx.is_inexact_array))
    split, _ = BASE.load(0)
    x = np.array(split.x)
    x[0, 0, 0] = np.inf
    args = (jnp.asarray(x), jnp.asarray(split.y), np.arange(4, dtype=np.int32),
            jnp.asarray(BASE.loss_mask()), jax.random.key(0), np.int32(0))  # fmt: skip
    new, new_state, value, flags = _train_step(
        m, opt_state, *args, LEARNER, OPTIMIZER, losses.cross_entropy
    )
    assert not bool(flags[0])  # the inputs; a spiking network may still give a finite loss
    for a, b in zip(
        jax.tree.leaves((m, opt_state)), jax.tree.leaves((new, new_state)), strict=True
    ):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_cli_nan_exits_3_with_the_step(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: Poisoned(sample_fed_at(3)))
    code = main(["train", "--hidden", "8", "--batch-size", "10", "--epochs", "2", "--no-progress",
                 "--metrics", str(tmp_path / "m.jsonl"), "--checkpoint-dir", str(tmp_path / "c"),
                 "--checkpoint-every", "1"])  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("plastax: error: non-finite value") and "(global step 3)" in err
    assert "step-00000002" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------
# Disks


@pytest.fixture
def file_size_limit():
    """Refuse writes beyond 32 KiB in this process (as a full disk refuses them); Python
    ignores SIGXFSZ, so a write fails with EFBIG instead of killing the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_full_disk_fails_before_training(tmp_path, file_size_limit):
    metrics = tmp_path / "m.jsonl"
    with pytest.raises(ValueError, match=r"cannot write to the checkpoint directory .*too large"):
        train(model(), BASE, LEARNER, OPTIMIZER, epochs=1, batch_size=BATCH, seed=SEED,
              progress=False, checkpoint_dir=tmp_path / "c", metrics_path=metrics)  # fmt: skip
    assert not metrics.exists()  # nothing was compiled or trained
    assert os.listdir(tmp_path / "c") == []  # the probe was removed


def test_full_metrics_disk_fails_before_training(tmp_path, file_size_limit):
    with pytest.raises(ValueError, match="cannot write to the metrics folder"):
        train(model(), BASE, LEARNER, OPTIMIZER, epochs=1, batch_size=BATCH, seed=SEED,
              progress=False, metrics_path=tmp_path / "m.jsonl")  # fmt: skip


@pytest.mark.parametrize("where", ["under-a-file", "in-proc", "is-a-file"])
def test_unusable_checkpoint_directory_is_a_clear_cli_error(tmp_path, capsys, where, monkeypatch):
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: BASE)
    (tmp_path / "file").write_text("x")
    target = {
        "under-a-file": tmp_path / "file" / "ckpt",
        "in-proc": "/proc/plastax-checkpoints",
        "is-a-file": tmp_path / "file",
    }[where]
    code = main(["train", "--hidden", "8", "--batch-size", "10", "--epochs", "1", "--no-progress",
                 "--metrics", str(tmp_path / "m.jsonl"),
                 "--checkpoint-dir", str(target)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("plastax: error: ") and "checkpoint directory" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_read_only_directory(tmp_path):  # pragma: no cover - CI runs as root here
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="Permission denied"):
        train(model(), BASE, LEARNER, OPTIMIZER, epochs=1, batch_size=BATCH, seed=SEED,
              progress=False, checkpoint_dir=folder / "c")  # fmt: skip


# --------------------------------------------------------------------------------------
# Gradient clipping


def test_clip_norm_clips_the_gradient():
    params = {"w": jnp.ones(4)}
    grads = {"w": jnp.full(4, 100.0)}  # global norm 200
    clipped = make_optimizer(TrainConfig(lr=1.0, clip_norm=1.0))
    plain = make_optimizer(TrainConfig(lr=1.0))
    u_clip, s_clip = clipped.update(grads, clipped.init(params), params)
    u_plain, s_plain = plain.update(grads, plain.init(params), params)
    # Adam normalises the first step either way; its moments show the clipping
    assert np.allclose(np.asarray(s_clip[1][0].nu["w"]), (1 - 0.999) * 0.5**2)
    assert np.allclose(np.asarray(s_plain[0].nu["w"]), (1 - 0.999) * 100.0**2)
    assert np.allclose(np.asarray(u_clip["w"]), np.asarray(u_plain["w"]))
    with pytest.raises(ValueError, match="clip_norm"):
        TrainConfig(clip_norm=0.0)


def test_cli_clip_norm_runs_and_is_recorded(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: BASE)
    code = main(["train", "--hidden", "8", "--batch-size", "10", "--epochs", "1", "--no-progress",
                 "--metrics", str(tmp_path / "m.jsonl"), "--clip-norm", "0.5"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["clip_norm"] == 0.5
