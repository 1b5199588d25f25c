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
from plastax.neurons import ALIF, LIF, LSTM, AbstractNeuron, CuBaLIF
from plastax.surrogate import FastSigmoid


class ExcInhLIF(AbstractNeuron):
    """A LIF with separate excitatory and inhibitory synaptic currents (m = 2), each
    filtered, and a detached reset: its blocks are constants, so its traces are
    factorised with two currents per neuron."""

    state_names = ("e", "i", "v")
    n_currents = 2

    def init_state(self):
        return (0.0, 0.0, 0.0)

    def step(self, state, currents):
        e, i, v = state
        z = jax.lax.stop_gradient(self.output(state))
        e, i = 0.8 * e + currents[0], 0.6 * i + currents[1]
        return (e, i, 0.9 * v + e - 0.5 * i - z)

    def output(self, state):
        return FastSigmoid(10.0)(state[2] - 1.0)


NEURONS = {
    "LIF": LIF,  # full traces, d = 1
    "LIF-detached": lambda: LIF(detach_reset=True),  # factorised traces
    "ALIF": ALIF,  # full traces, d = 2
    "CuBaLIF-detached": lambda: CuBaLIF(detach_reset=True),  # factorised, d = 2
    "LSTM": LSTM,  # m = 4 currents
    "LIF-tau": lambda: LIF(tau_mem=jnp.full(7, 20.0)),  # per-neuron parameters
    "ExcInh": ExcInhLIF,  # factorised, d = 3, m = 2
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
    ("ExcInh", "linear", 1),
    ("ExcInh", "leaky", 1),
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
    if neuron.endswith(("detached", "ExcInh")):
        assert EProp().is_factorised(model.layers[0], model.dtype)
    for cls in (EProp, SLTT):
        loss1, g1 = _vg(cls(chunk=1), model, x, t, mask)
        loss8, g8 = _vg(cls(chunk=8), model, x, t, mask)
        stats = compare_grads(g8, g1)
        assert stats["max_rel_error"] < 1e-12, (cls.__name__, stats)
        assert jnp.allclose(loss8, loss1, rtol=1e-12)
        assert stats["norm_ratio"] > 0  # the gradient is not trivially zero


def test_default_chunk_follows_the_trace_mode():
    """``EProp()`` picks 32 steps per chunk when every layer is factorised, 16 when any
    layer keeps full traces; an explicit ``chunk`` always wins."""

    def net(*neurons):
        return plastax.Network(
            [plastax.Layer(nrn, 4) for nrn in neurons],
            plastax.LinearReadout(2),
            n_in=3,
            key=jax.random.key(0),
        )

    factorised = net(LIF(detach_reset=True), CuBaLIF(detach_reset=True))
    mixed = net(LIF(detach_reset=True), ALIF())
    assert EProp().chunk_size(factorised) == 32
    assert EProp().chunk_size(mixed) == 16
    assert EProp(factorise=False).chunk_size(factorised) == 16
    assert EProp(chunk=5).chunk_size(factorised) == 5
    assert SLTT().chunk_size(factorised) == 8


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


@pytest.mark.parametrize(
    "learner",
    [EProp(chunk=4), SLTT(chunk=4), SLTT(k=3, chunk=4)],
    ids=["EProp", "SLTT", "SLTT-K"],
)
def test_advance_in_chunks_equals_step_by_step(x64, learner):
    """``advance`` (a block of steps between two optimizer updates) goes in chunks and
    leaves exactly the state that T calls of ``step`` leave: network state, traces,
    readout filter, accumulated gradient and loss, time and key; T = 13 is 3 chunks of
    4 and one step left over, which must not be padded (the state is carried on)."""
    T, B, n_in = 13, 3, 5
    model = plastax.Network(
        [plastax.Layer(ALIF(), 6), plastax.Layer(LIF(), 5)],
        plastax.LeakyReadout(3, 8.0),
        n_in=n_in,
        key=jax.random.key(0),
    )
    k1, k2 = jax.random.split(jax.random.key(2))
    x = (jax.random.uniform(k1, (T, B, n_in)) < 0.4).astype(float)
    t = jax.random.randint(k2, (T, B), 0, 3)
    w = jnp.linspace(0.5, 1.5, T) / T
    mask = jnp.ones(T)
    start = learner.init(model, B, key=jax.random.key(3), mask=mask)
    start = start._replace(
        net=jax.tree.map(lambda a: a + 0.3, start.net)  # carried in from earlier steps
    )

    @eqx.filter_jit
    def stepwise(start):
        st = start
        for i in range(T):
            st, _ = learner.step(model, st, x[i], t[i], w[i])
        return st

    chunked = eqx.filter_jit(learner.advance)(model, start, x, t, w)
    reference = stepwise(start)
    assert int(chunked.t) == int(reference.t) == T
    a_leaves = jax.tree.leaves(eqx.filter(chunked, eqx.is_inexact_array))
    b_leaves = jax.tree.leaves(eqx.filter(reference, eqx.is_inexact_array))
    assert len(a_leaves) == len(b_leaves)
    for a, b in zip(a_leaves, b_leaves, strict=True):
        assert jnp.allclose(a, b, rtol=1e-11, atol=1e-13), float(jnp.max(jnp.abs(a - b)))
    assert jnp.array_equal(jax.random.key_data(chunked.key), jax.random.key_data(reference.key))
    assert float(jnp.abs(chunked.loss)) > 0
    # Padding the last chunk instead runs the network on through the padding steps.
    padded = eqx.filter_jit(lambda s: learner.advance(model, s, x, t, w, pad=True))(start)
    assert int(padded.t) == 16
