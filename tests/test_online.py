"""Online updates inside a sequence, and the memory benchmark."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastax
from plastax.bench.memory import MemoryConfig, memory_table
from plastax.cli import main
from plastax.learners import BPTT, SLTT, EProp
from plastax.train import _online_train_step, _train_step


def _setup(T=12, B=4, n_in=5):
    model = plastax.Network(
        [plastax.Layer(plastax.neurons.ALIF(), 8, recurrent=True)],
        plastax.LeakyReadout(3),
        n_in=n_in,
        key=jax.random.key(0),
    )
    rng = np.random.default_rng(0)
    x_all = jnp.asarray((rng.random((10, T, n_in)) < 0.3).astype(np.float32))
    y_all = jnp.asarray(rng.integers(0, 3, 10).astype(np.int32))
    mask = jnp.ones(T)
    idx = jnp.arange(B, dtype=jnp.int32)
    return model, x_all, y_all, mask, idx


def test_update_every_whole_sequence_equals_one_update():
    model, x_all, y_all, mask, idx = _setup()
    opt = optax.sgd(0.1)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    key = jax.random.key(0)
    args = (
        model,
        opt_state,
        x_all,
        y_all,
        idx,
        mask,
        key,
        0,  # step of the run (selects the learner's key)
        EProp(),
        opt,
        plastax.losses.cross_entropy,
    )
    m1, _, l1, _ = eqx.filter_jit(_train_step)(*args)
    m2, _, l2, _ = eqx.filter_jit(_online_train_step)(*args, update_every=12)
    assert jnp.allclose(l1, l2, rtol=1e-5)
    for a, b in zip(
        jax.tree.leaves(eqx.filter(m1, eqx.is_array)),
        jax.tree.leaves(eqx.filter(m2, eqx.is_array)),
        strict=True,
    ):
        assert jnp.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_update_every_applies_several_updates():
    model, x_all, y_all, mask, idx = _setup()
    opt = optax.sgd(0.1)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    args = (
        model,
        opt_state,
        x_all,
        y_all,
        idx,
        mask,
        jax.random.key(0),
        0,
        EProp(),
        opt,
        plastax.losses.cross_entropy,
    )
    m_once, _, _, _ = eqx.filter_jit(_train_step)(*args)
    m_online, _, loss, _ = eqx.filter_jit(_online_train_step)(*args, update_every=3)
    assert np.isfinite(float(loss))
    diff = jnp.max(jnp.abs(m_once.readout.weight - m_online.readout.weight))
    assert diff > 1e-6  # four updates within the sequence differ from one at its end


def test_update_every_blocks_go_in_chunks_and_equal_single_steps(x64):
    """Each block of ``--update-every`` steps advances through ``learner.advance``, in
    chunks: EProp(chunk=4) and EProp(chunk=1) train to the same parameters (blocks of
    5 steps: a chunk and one step left over, the network state carried between
    blocks)."""
    model, x_all, y_all, mask, idx = _setup()
    assert model.dtype == jnp.float64
    x_all = x_all.astype(jnp.float64)
    opt = optax.sgd(0.1)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    results = []
    for learner in (EProp(chunk=1), EProp(chunk=4)):
        args = (model, opt_state, x_all, y_all, idx, mask, jax.random.key(0), 0, learner, opt,
                plastax.losses.cross_entropy)  # fmt: skip
        results.append(eqx.filter_jit(_online_train_step)(*args, update_every=5))
    (m1, _, l1, _), (m4, _, l4, _) = results
    assert jnp.allclose(l1, l4, rtol=1e-11)
    changed = jnp.max(jnp.abs(m1.readout.weight - model.readout.weight))
    assert changed > 1e-6
    for a, b in zip(
        jax.tree.leaves(eqx.filter(m1, eqx.is_array)),
        jax.tree.leaves(eqx.filter(m4, eqx.is_array)),
        strict=True,
    ):
        assert jnp.allclose(a, b, rtol=1e-11, atol=1e-13)


def test_update_every_needs_an_online_learner():
    with pytest.raises(ValueError, match="expected an online learner"):
        plastax.TrainConfig(learner="bptt", update_every=5)
    with pytest.raises(ValueError, match="expected a positive integer"):
        plastax.TrainConfig(learner="eprop", update_every=0)


def test_cli_train_online_updates(capsys):
    code = main(
        [
            "train",
            "--learner",
            "eprop",
            "--update-every",
            "10",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--no-progress",
            "--metrics",
            "/dev/null",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["update_every"] == 10 and summary["learner"] == "eprop"


def test_sltt_k_from_the_command_line(capsys):
    code = main(
        [
            "train",
            "--learner",
            "sltt",
            "--k",
            "5",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--no-progress",
            "--metrics",
            "/dev/null",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["config"]["k"] == 5


def test_online_memory_is_flat_and_bptt_grows():
    rows = memory_table(
        MemoryConfig(
            learners=("bptt", "eprop", "sltt", "rtrl"),
            steps=(50, 1000),
            batch=4,
            hidden=48,
            n_in=32,
        )
    )
    ratio = {r["learner"]: r["ratio_to_shortest"] for r in rows if r["T"] == 1000}
    for name in ("eprop", "sltt", "rtrl"):
        assert ratio[name] <= 1.05, ratio
    assert ratio["bptt"] >= 5, ratio


def test_cli_bench_memory_json(tmp_path, capsys):
    out = tmp_path / "mem.json"
    code = main(
        [
            "bench",
            "memory",
            "--learners",
            "eprop,bptt",
            "--steps",
            "20,40",
            "--batch",
            "2",
            "--hidden",
            "8",
            "--n-in",
            "4",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert {(r["learner"], r["T"]) for r in data["rows"]} == {
        ("eprop", 20),
        ("eprop", 40),
        ("bptt", 20),
        ("bptt", 40),
    }
    assert "temp MiB" in capsys.readouterr().out


def test_cli_bench_memory_bad_input(capsys):
    assert main(["bench", "memory", "--learners", "nope"]) == 2
    assert "unknown learner" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "memory", "--steps", "10,x"])


def test_sltt_k_uses_key():
    model, x_all, y_all, mask, idx = _setup()
    x = jnp.swapaxes(x_all[:4], 0, 1)
    t = jnp.broadcast_to(y_all[:4], x.shape[:2])
    _, g1 = SLTT(k=2).value_and_grad(model, x, t, mask, key=jax.random.key(1))
    _, g2 = SLTT(k=2).value_and_grad(model, x, t, mask, key=jax.random.key(2))
    _, g3 = SLTT(k=2).value_and_grad(model, x, t, mask, key=jax.random.key(1))
    assert not jnp.allclose(g1.readout.weight, g2.readout.weight)
    assert jnp.array_equal(g1.readout.weight, g3.readout.weight)
    _, g_bptt = BPTT().value_and_grad(model, x, t, mask)
    assert g_bptt.readout.weight.shape == g1.readout.weight.shape
