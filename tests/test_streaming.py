"""Online training on a stream (``plastax train --task sine``): the learner's state
carries across the compiled segments, so the result equals one step-by-step loop."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastax
from plastax.cli import main
from plastax.learners import BPTT, RTRL, EProp, SparseRTRL
from plastax.losses import mse
from plastax.neurons import LIF, TanhRNN
from plastax.streaming import StreamConfig, run_stream, train_stream
from plastax.tasks.streams import make_stream


def _model(neuron=None, n=8, seed=0):
    return plastax.Network(
        [plastax.Layer(neuron or TanhRNN(tau=2.0), n, recurrent=True)],
        plastax.LinearReadout(1),
        n_in=1,
        key=jax.random.key(seed),
    )


def _stream(T=60, B=2):
    x, y, _ = make_stream("sine", n_steps=T, shift_at=T // 2, n_streams=B).make(0)
    return x.astype(np.float64), y.astype(np.float64)


def _reference(model, x, y, learner, optimizer, update_every, key):
    """One Python loop over every step with the public online API."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    st = learner.init(model, x.shape[1], key=key)
    losses = []
    for t in range(x.shape[0]):
        net = eqx.combine(params, static)
        st, _ = learner.step(net, st, x[t], y[t], 1.0 / update_every, loss=mse)
        losses.append(float(jnp.mean(mse(st.net.readout, y[t]))))
        if (t + 1) % update_every == 0 or t + 1 == x.shape[0]:
            updates, opt_state = optimizer.update(learner.grads(st), opt_state, params)
            params = eqx.apply_updates(params, updates)
            st = learner.reset_grads(st)
    return eqx.combine(params, static), np.asarray(losses)


@pytest.mark.parametrize(
    "learner", [EProp(), RTRL(), SparseRTRL(k=2)], ids=["eprop", "rtrl", "sparse_rtrl"]
)
def test_segments_carry_the_learner_state(x64, learner):
    model = _model()
    x, y = _stream()
    opt = optax.adam(1e-2)
    key = jax.random.key(3)
    ref_model, ref = _reference(model, x, y, learner, opt, 3, key)
    for segment in (3, 7, 60):  # 7 is rounded up to 9 (a multiple of update_every)
        out_model, losses = train_stream(
            model, x, y, learner, opt, update_every=3, segment=segment, key=key
        )
        np.testing.assert_allclose(losses, ref, rtol=1e-10, atol=1e-14)
        for a, b in zip(
            jax.tree.leaves(eqx.filter(out_model, eqx.is_inexact_array)),
            jax.tree.leaves(eqx.filter(ref_model, eqx.is_inexact_array)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    # Had the traces been reset at segment boundaries, the result would differ.
    assert np.max(np.abs(ref)) > 0


def test_resetting_state_between_segments_would_change_the_result(x64):
    """The segment invariance above is not trivial: two halves trained from a fresh
    learner state give a different result from one pass that carries the state."""
    model = _model()
    x, y = _stream()
    opt = optax.sgd(0.05)
    _, whole = train_stream(model, x, y, EProp(), opt, update_every=1, segment=60)
    m1, first = train_stream(model, x[:30], y[:30], EProp(), opt, update_every=1, segment=30)
    _, second = train_stream(m1, x[30:], y[30:], EProp(), opt, update_every=1, segment=30)
    np.testing.assert_allclose(first, whole[:30], rtol=1e-12)
    assert np.max(np.abs(second - whole[30:])) > 1e-6


def test_truncated_bptt_blocks_carry_the_network_state(x64):
    model = _model()
    x, y = _stream()
    opt = optax.adam(1e-2)
    _, a = train_stream(model, x, y, BPTT(), opt, update_every=5, segment=5)
    _, b = train_stream(model, x, y, BPTT(), opt, update_every=5, segment=60)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    # the first block's predictions are those of the untrained model
    _, yp, _ = model.run(x[:5])
    np.testing.assert_allclose(a[:5], np.mean((np.asarray(yp) - y[:5]) ** 2, axis=(1, 2)))


def test_spiking_layer_trains_on_a_stream(x64):
    neuron = LIF(tau_mem=5.0)
    model = plastax.Network(
        [plastax.Layer(neuron, 16, recurrent=True, input_gain=5.0)],
        plastax.LeakyReadout(1, 3.0),
        n_in=1,
        key=jax.random.key(0),
    )
    x, y = _stream(T=40)
    _, losses = train_stream(model, x, y, EProp(), optax.adam(1e-2), update_every=2, segment=20)
    assert losses.shape == (40,) and np.all(np.isfinite(losses))


def test_online_learning_reduces_the_error_and_adapts_after_the_shift():
    summary = run_stream(StreamConfig(task="sine", steps=1500, seed=0), progress=False)
    assert summary["shift_at"] == 1000 and summary["window"] == 250
    assert summary["mse_pre_shift"] < 0.2 * summary["mse_first"], summary
    assert summary["mse_final"] < summary["mse_first"], summary
    assert summary["skipped_updates"] == 0


def test_bad_input_is_refused():
    model = _model()
    x, y = _stream()
    with pytest.raises(ValueError, match="expected targets of shape"):
        train_stream(model, x, y[:, :, :0], EProp(), optax.adam(1e-3))
    with pytest.raises(ValueError, match="update_every to be a positive integer"):
        train_stream(model, x, y, EProp(), optax.adam(1e-3), update_every=0)
    with pytest.raises(ValueError, match="expected one of"):
        StreamConfig(task="randman")
    with pytest.raises(ValueError, match="a stream has no end"):
        StreamConfig(learner="sltt", k=4)
    with pytest.raises(ValueError, match="required options"):
        StreamConfig(learner="sparse_rtrl")


def test_cli_trains_a_stream(tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    code = main(
        ["train", "--task", "sine", "--steps", "600", "--hid", "16", "--no-progress"]
        + ["--metrics", str(metrics)]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["learner"] == "eprop" and summary["steps"] == 600
    assert summary["config"]["hidden"] == 16 and summary["config"]["neuron"] == "tanh"
    lines = [json.loads(s) for s in metrics.read_text().splitlines()]
    assert [r["step"] for r in lines] == [500, 600]
    assert [r["phase"] for r in lines] == ["shift", "post-shift"]
    # explicit options win over the streaming defaults
    code = main(
        ["train", "--task", "delayed", "--steps", "300", "--learner", "bptt", "--window", "10"]
        + ["--neuron", "lstm", "--hidden", "8", "--no-progress", "--metrics", str(metrics)]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["update_every"] == 10 and summary["config"]["neuron"] == "lstm"


def test_cli_refuses_options_that_do_not_apply_to_streams(capsys):
    assert main(["train", "--task", "sine", "--epochs", "3"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", "--task", "randman", "--steps", "10"]) == 2
    assert "streaming task" in capsys.readouterr().err
