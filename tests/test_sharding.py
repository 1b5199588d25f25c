"""Data parallelism over several devices (DESIGN.md section 7).

The checks run in one subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``, which must be set before JAX is
imported: four CPU devices.  That process compares the gradient of one batch on one
device with the same batch sharded over four (``BPTT`` and ``EProp``), trains on four
devices, resumes a sharded run exactly from a checkpoint, and prints the results as
one JSON line for the assertions here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import json, os, shutil, sys, tempfile
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import Mesh

    from plastax import checkpoint
    from plastax.bench import compare_grads
    from plastax.learners import BPTT, EProp
    from plastax.losses import cross_entropy
    from plastax.tasks import Randman
    from plastax.train import (
        TrainConfig, _loss_and_grads, _put, _train, build_model, train,
    )

    out = {"devices": len(jax.devices())}
    task = Randman(n_classes=3, n_in=8, n_steps=12, n_train=20, n_test=6)
    split, _ = task.load(0)
    model = build_model(TrainConfig(hidden=8), task.n_in, task.n_out, jax.random.key(0))
    x, y = jnp.asarray(split.x), jnp.asarray(split.y)
    mask = jnp.asarray(task.loss_mask())
    idx = np.arange(3, 19, dtype=np.int32)  # a batch of 16: 4 per device
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("batch",))
    grads_fn = eqx.filter_jit(_loss_and_grads)
    key = jax.random.key(0)
    for name, learner in (("bptt", BPTT()), ("eprop", EProp())):
        loss1, g1, _ = grads_fn(model, x, y, idx, mask, key, learner, cross_entropy, None)
        args = _put((model, x, y, idx, mask), mesh)
        loss4, g4, x4 = grads_fn(*args, key, learner, cross_entropy, mesh)
        lowered = grads_fn.lower(*args, key, learner, cross_entropy, mesh)
        hlo = lowered.compile().compiled.as_text()
        out[name] = {
            **compare_grads(g4, g1),
            "loss_rel_error": float(abs(loss4 - loss1) / abs(loss1)),
            "inputs_spec": list(x4.sharding.spec),
            "inputs_devices": len(x4.sharding.device_set),
            "grads_replicated": all(g.sharding.is_fully_replicated for g in jax.tree.leaves(g4)),
            "all_reduce": "all-reduce" in hlo,
        }

    # training on 4 devices against 1, and exact resumption of a sharded run
    opt = optax.adam(1e-2)
    common = dict(epochs=2, batch_size=8, seed=0, progress=False)
    folder = tempfile.mkdtemp()
    r4 = _train(model, task, BPTT(), opt, devices=4, checkpoint_dir=folder + "/a",
                checkpoint_every=3, keep_checkpoints=100, **common)
    r1 = _train(model, task, BPTT(), opt, devices=1, **common)
    shutil.copytree(folder + "/a/step-00000009", folder + "/b/step-00000009")  # mid-epoch 2
    resumed = _train(model, task, BPTT(), opt, devices=4, checkpoint_dir=folder + "/b",
                     resume=True, **common)
    p4, p1, pr = (jax.tree.leaves(eqx.filter(r.model, eqx.is_inexact_array))
                  for r in (r4, r1, resumed))
    out["train"] = {
        "devices": r4.devices,
        "history_4": r4.history,
        "history_1": r1.history,
        "max_param_rel_diff": max(
            float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(p4, p1)
        ),
        "params_replicated": all(a.sharding.is_fully_replicated for a in p4),
        "resumed_bit_identical": all(np.array_equal(a, b) for a, b in zip(pr, p4)),
        "resumed_history_equal": resumed.history == r4.history,
    }
    errors = {}
    for name, kwargs in (("indivisible", dict(devices=4, batch_size=6)),
                         ("too_many", dict(devices=5, batch_size=10))):
        try:
            train(model, task, BPTT(), opt, epochs=1, seed=0, progress=False, **kwargs)
        except ValueError as e:
            errors[name] = str(e)
    out["errors"] = errors
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def result():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_four_devices_are_visible(result):
    assert result["devices"] == 4


@pytest.mark.parametrize("learner", ["bptt", "eprop"])
def test_sharded_gradients_equal_one_device(result, learner):
    r = result[learner]
    assert r["max_rel_error"] <= 1e-5, r
    assert r["loss_rel_error"] <= 1e-5, r
    # the batch really is split over the four devices, and XLA reduces the gradient
    assert r["inputs_spec"][:2] == [None, "batch"] and r["inputs_devices"] == 4
    assert r["grads_replicated"] and r["all_reduce"]


def test_sharded_training_matches_one_device(result):
    r = result["train"]
    assert r["devices"] == 4 and r["params_replicated"]
    assert r["max_param_rel_diff"] <= 1e-4, r["max_param_rel_diff"]
    for a, b in zip(r["history_4"], r["history_1"], strict=True):
        assert a["epoch"] == b["epoch"] and a["train_accuracy"] == b["train_accuracy"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_sharded_run_resumes_bit_identically(result):
    assert result["train"]["resumed_bit_identical"]
    assert result["train"]["resumed_history_equal"]


def test_device_errors_are_clear(result):
    errors = result["errors"]
    assert "divisible by the number of devices (4)" in errors["indivisible"]
    assert "batch_size=4 or 8" in errors["indivisible"]
    assert "devices <= the 4 visible" in errors["too_many"]
    assert "xla_force_host_platform_device_count" in errors["too_many"]


TWO_PROCESSES = textwrap.dedent(
    """
    import sys
    import plastax
    from plastax.cli import main
    from plastax.tasks import Randman

    small = Randman(n_classes=3, n_in=8, n_steps=12, n_train=20, n_test=6)
    plastax.tasks.make_task = lambda name: small
    port, pid, folder = sys.argv[1:]
    sys.exit(main([
        "train", "--distributed", "--coordinator-address", f"localhost:{port}",
        "--num-processes", "2", "--process-id", pid,
        "--epochs", "2", "--hidden", "8", "--batch-size", "8", "--no-progress",
        "--metrics", f"{folder}/m{pid}.jsonl", "--checkpoint-dir", f"{folder}/ckpt",
    ]))
    """
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_train_as_one(tmp_path):
    """Multi-host data parallelism on one machine: two processes with two CPU devices
    each, joined by ``--distributed`` (``jax.distributed.initialize``) into one mesh of
    four devices.  Both compute the same run; only process 0 writes files."""
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TWO_PROCESSES, port, str(pid), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for pid in (0, 1)
    ]
    outputs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    a, b = outputs
    assert a["devices"] == b["devices"] == 4
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        assert a[key] == b[key]
    assert (tmp_path / "m0.jsonl").exists() and not (tmp_path / "m1.jsonl").exists()
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["step-00000007", "step-00000014"]
