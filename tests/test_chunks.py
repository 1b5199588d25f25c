"""EProp and SLTT advance their traces ``chunk`` steps at a time in value_and_grad
(plastax.learners.eprop.local_traces_chunk); the result must equal step-by-step
(``chunk=1``) to rounding, in float64, for every trace mode, readout and depth, with
a sequence length that leaves a padded last chunk."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import plastax
from plastax.bench import compare_grads
from plastax.learners import SLTT, EProp
from plastax.neurons import ALIF, LIF, LSTM, CuBaLIF

NEURONS = {
    "LIF": LIF,  # full traces, d = 1
    "LIF-detached": lambda: LIF(detach_reset=True),  # factorised traces
    "ALIF": ALIF,  # full traces, d = 2
    "CuBaLIF-detached": lambda: CuBaLIF(detach_reset=True),  # factorised, d = 2
    "LSTM": LSTM,  # m = 4 currents
    "LIF-tau": lambda: LIF(tau_mem=jnp.full(7, 20.0)),  # per-neuron parameters
}


@eqx.filter_jit
def _vg(learner, model, x, t, m):
    return learner.value_and_grad(model, x, t, m)


CASES = [  # (neuron, readout, layers): every trace mode with and without the leak filter
    ("LIF", "leaky", 2),
    ("LIF-detached", "linear", 1),
    ("LIF-detached", "leaky", 2),
    ("ALIF", "linear", 2),
    ("ALIF", "leaky", 1),
    ("CuBaLIF-detached", "leaky", 1),
    ("LSTM", "linear", 1),
    ("LIF-tau", "leaky", 1),
]


@pytest.mark.parametrize("neuron,readout,layers", CASES)
def test_chunks_equal_single_steps(x64, neuron, readout, layers):
    T, B, n_in = 23, 3, 5  # 23 = 2 chunks of 8 + 7 steps: the last chunk is padded
    k1, k2 = jax.random.split(jax.random.key(1))
    x = (jax.random.uniform(k1, (T, B, n_in)) < 0.3).astype(float)
    t = jax.random.randint(k2, (T, B), 0, 3)
    mask = jnp.zeros(T).at[T // 4 :].set(1.0)
    head = plastax.LinearReadout(3) if readout == "linear" else plastax.LeakyReadout(3, 8.0)
    model = plastax.Network(
        [plastax.Layer(NEURONS[neuron](), 7, recurrent=True) for _ in range(layers)],
        head,
        n_in=n_in,
        key=jax.random.key(0),
    )
    for cls in (EProp, SLTT):
        loss1, g1 = _vg(cls(chunk=1), model, x, t, mask)
        loss8, g8 = _vg(cls(chunk=8), model, x, t, mask)
        stats = compare_grads(g8, g1)
        assert stats["max_rel_error"] < 1e-12, (cls.__name__, stats)
        assert jnp.allclose(loss8, loss1, rtol=1e-12)
        assert stats["norm_ratio"] > 0  # the gradient is not trivially zero


def test_chunk_longer_than_the_sequence(x64):
    model = plastax.Network(
        [plastax.Layer(ALIF(), 6)], plastax.LinearReadout(2), n_in=4, key=jax.random.key(0)
    )
    x = jnp.ones((5, 2, 4))
    t = jnp.zeros((5, 2), int)
    _, g1 = _vg(EProp(chunk=1), model, x, t, None)
    _, g64 = _vg(EProp(chunk=64), model, x, t, None)
    assert compare_grads(g64, g1)["max_rel_error"] < 1e-12


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, 10_000])
def test_bad_chunk_is_refused(bad):
    with pytest.raises(ValueError, match="chunk"):
        EProp(chunk=bad)
    with pytest.raises(ValueError, match="chunk"):
        SLTT(chunk=bad)
