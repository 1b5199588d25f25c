"""The learner x neuron identity suite (DESIGN.md section 1), in float64.

Exact where the maths says exact:
  * EProp == BPTT on one feed-forward layer, linear and leaky readouts, spikes and
    differentiated reset included;
  * RTRL == BPTT on a recurrent layer;
  * factorised EProp == unfactorised EProp;  EPropDense == EProp;
  * SLTT == BPTT when the neuron keeps no memory across steps.
Each case reports cosine and max relative error (per parameter array), not a median.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import plastax
from plastax.bench import compare_grads
from plastax.learners import BPTT, RTRL, SLTT, EProp, EPropDense
from plastax.neurons import ALIF, GRU, LIF, LSTM, CuBaLIF, TanhRNN

COS_MIN, REL_MAX = 0.999999, 1e-6

SPIKING = {"LIF": LIF, "ALIF": ALIF, "CuBaLIF": CuBaLIF}
RATE = {"TanhRNN": lambda: TanhRNN(tau=5.0), "LSTM": LSTM, "GRU": GRU}
READOUTS = {
    "linear": lambda: plastax.LinearReadout(3),
    "leaky": lambda: plastax.LeakyReadout(3, 8.0),
}


def _data(T=40, B=3, n_in=6, seed=1):
    k1, k2 = jax.random.split(jax.random.key(seed))
    x = (jax.random.uniform(k1, (T, B, n_in)) < 0.3).astype(float)
    t = jax.random.randint(k2, (T, B), 0, 3)
    mask = jnp.zeros(T).at[T // 4 :].set(1.0)
    return x, t, mask


def _model(neuron, readout, recurrent, n=10, n_in=6, layers=1, seed=0):
    return plastax.Network(
        [plastax.Layer(neuron, n, recurrent=recurrent) for _ in range(layers)],
        readout,
        n_in=n_in,
        key=jax.random.key(seed),
    )


def _spike_rate(model, x):
    _, _, zs = model.run(x)
    return float(jnp.mean(zs[0]))


def _assert_equal_grads(g, ref, what):
    stats = compare_grads(g, ref)
    print(f"{what}: cosine={stats['cosine']:.12f} max_rel_error={stats['max_rel_error']:.3e}")
    assert stats["cosine"] >= COS_MIN, (what, stats)
    assert stats["max_rel_error"] <= REL_MAX, (what, stats)


@pytest.mark.parametrize("readout", sorted(READOUTS))
@pytest.mark.parametrize("neuron", sorted(SPIKING) + sorted(RATE))
def test_eprop_equals_bptt_on_feedforward_layer(x64, neuron, readout):
    make = {**SPIKING, **RATE}[neuron]
    model = _model(make(), READOUTS[readout](), recurrent=False)
    x, t, mask = _data()
    if neuron in SPIKING:
        rate = _spike_rate(model, x)
        assert 0.02 < rate < 0.9, f"spikes must occur for the identity to mean anything: {rate}"
    loss_ref, g_ref = BPTT().value_and_grad(model, x, t, mask)
    loss, g = eqx.filter_jit(EProp().value_and_grad)(model, x, t, mask)
    assert jnp.allclose(loss, loss_ref, rtol=1e-12)
    _assert_equal_grads(g, g_ref, f"EProp vs BPTT, {neuron}, {readout} readout")


@pytest.mark.parametrize("readout", sorted(READOUTS))
@pytest.mark.parametrize("neuron", sorted(SPIKING) + sorted(RATE))
def test_rtrl_equals_bptt_on_recurrent_layer(x64, neuron, readout):
    make = {**SPIKING, **RATE}[neuron]
    model = _model(make(), READOUTS[readout](), recurrent=True)
    x, t, mask = _data(T=30)
    if neuron in SPIKING:
        assert _spike_rate(model, x) > 0.02
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = eqx.filter_jit(RTRL().value_and_grad)(model, x, t, mask)
    _assert_equal_grads(g, g_ref, f"RTRL vs BPTT, {neuron}, {readout} readout")


def test_rtrl_with_trainable_per_neuron_time_constants(x64):
    neuron = LIF(tau_mem=jnp.linspace(5.0, 30.0, 10))
    model = _model(neuron, plastax.LeakyReadout(3, 8.0), recurrent=True)
    x, t, mask = _data(T=30)
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = RTRL().value_and_grad(model, x, t, mask)
    assert jnp.any(g.layers[0].neuron.tau_mem != 0)
    _assert_equal_grads(g, g_ref, "RTRL vs BPTT, trainable tau_mem")


def test_eprop_trains_per_neuron_parameters_exactly(x64):
    neuron = ALIF(tau_mem=jnp.linspace(5.0, 30.0, 10), tau_adapt=jnp.full(10, 50.0))
    model = _model(neuron, plastax.LinearReadout(3), recurrent=False)
    x, t, mask = _data()
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = EProp().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g, g_ref, "EProp vs BPTT, trainable ALIF time constants")


@pytest.mark.parametrize(
    "neuron",
    [LIF(detach_reset=True), LIF(reset="none"), CuBaLIF(detach_reset=True)],
    ids=["LIF-detached", "LIF-noreset", "CuBaLIF-detached"],
)
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
def test_factorised_eprop_equals_unfactorised(x64, neuron, recurrent):
    model = _model(neuron, plastax.LeakyReadout(3, 8.0), recurrent=recurrent)
    assert EProp().is_factorised(model.layers[0])
    x, t, mask = _data()
    _, g_full = EProp(factorise=False).value_and_grad(model, x, t, mask)
    _, g_fact = EProp().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g_fact, g_full, f"factorised vs full EProp, {neuron}")
    # the factorised traces drop the neuron axis (the last axis of full traces)
    state = EProp().init(model, 3)
    assert state.traces[0].e_in.shape == (3, neuron.n_states, 1, 6)
    assert EProp(factorise=False).init(model, 3).traces[0].e_in.shape == (
        3,
        neuron.n_states,
        1,
        6,
        10,
    )


@pytest.mark.parametrize(
    "neuron",
    [LIF(), ALIF(), TanhRNN(tau=3.0), LSTM(), GRU()],
    ids=["LIF", "ALIF", "Tanh", "LSTM", "GRU"],
)
def test_state_dependent_blocks_are_not_factorised(neuron):
    model = _model(neuron, plastax.LinearReadout(3), recurrent=False)
    assert not EProp().is_factorised(model.layers[0])
    with pytest.raises(ValueError, match="cannot be factorised"):
        EProp(factorise=True).init(model, 2)


def test_eprop_dense_equals_eprop(x64):
    model = _model(ALIF(), plastax.LeakyReadout(3, 8.0), recurrent=True, n=8)
    x, t, mask = _data(T=25)
    _, g = EProp().value_and_grad(model, x, t, mask)
    _, g_dense = EPropDense().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g_dense, g, "EPropDense vs EProp")


@pytest.mark.parametrize("readout", sorted(READOUTS))
@pytest.mark.parametrize(
    "neuron", [TanhRNN(), LIF(tau_mem=0.0, reset="none")], ids=["Tanh", "LIF-memoryless"]
)
def test_sltt_equals_bptt_without_neuron_memory(x64, neuron, readout):
    model = _model(neuron, READOUTS[readout](), recurrent=False)
    x, t, mask = _data()
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = SLTT().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g, g_ref, f"SLTT vs BPTT, {neuron}")


def test_sltt_differs_from_bptt_with_memory_and_k_selects_steps(x64):
    model = _model(LIF(), plastax.LinearReadout(3), recurrent=False)
    x, t, mask = _data()
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = SLTT().value_and_grad(model, x, t, mask)
    assert compare_grads(g, g_ref)["max_rel_error"] > 1e-3
    # SLTT(k) with k >= number of masked steps is SLTT
    n_masked = int(mask.sum())
    _, g_all = SLTT(k=n_masked).value_and_grad(model, x, t, mask, key=jax.random.key(5))
    _assert_equal_grads(g_all, g, "SLTT(k=all masked steps) vs SLTT")
    # with few steps the schedule has exactly k ones, all on masked steps
    sched = SLTT(k=3).sample_schedule(jax.random.key(1), mask)
    assert float(sched.sum()) == 3.0 and float((sched * (1 - mask)).sum()) == 0.0
    _, g_k = SLTT(k=3).value_and_grad(model, x, t, mask, key=jax.random.key(5))
    assert compare_grads(g_k, g)["max_rel_error"] > 1e-3


@pytest.mark.parametrize("layers", [2, 3])
def test_deep_memoryless_network_online_learners_equal_bptt(x64, layers):
    """With neurons that keep no memory and a linear readout, the spatial learning
    signals through the layers above are the whole gradient: every online learner
    equals BPTT in every layer, bottom included (the spike surrogate is differentiated
    inside the forward-mode blocks, so this fails if it is not)."""
    model = _model(LIF(tau_mem=0.0, reset="none"), plastax.LinearReadout(3), False, layers=layers)
    x, t, mask = _data()
    _, _, zs = model.run(x)
    for z in zs:
        assert 0.02 < float(jnp.mean(z)) < 0.9, [float(jnp.mean(z)) for z in zs]
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    assert all(float(jnp.abs(g.w_in).max()) > 0 for g in g_ref.layers)
    for learner in (EProp(), SLTT(), RTRL(), EPropDense()):
        _, g = learner.value_and_grad(model, x, t, mask)
        _assert_equal_grads(g, g_ref, f"{type(learner).__name__} vs BPTT, {layers} layers")


def test_eprop_is_approximate_for_recurrent_and_deep_networks(x64):
    """A test that the identities are not trivially satisfied: where e-prop drops
    routes, it differs from BPTT."""
    x, t, mask = _data()
    for recurrent, layers in [(True, 1), (False, 2)]:
        model = _model(LIF(), plastax.LinearReadout(3), recurrent=recurrent, layers=layers)
        _, g_ref = BPTT().value_and_grad(model, x, t, mask)
        _, g = EProp().value_and_grad(model, x, t, mask)
        stats = compare_grads(g, g_ref)
        assert stats["max_rel_error"] > 1e-4, stats
        assert stats["cosine"] > 0.5, stats


def test_deep_network_readout_and_top_layer_exact(x64):
    """With two feed-forward layers, the top layer and readout of e-prop are exact."""
    model = _model(LIF(), plastax.LeakyReadout(3, 8.0), recurrent=False, layers=2)
    x, t, mask = _data()
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = EProp().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g.readout, g_ref.readout, "readout")
    _assert_equal_grads(g.layers[1], g_ref.layers[1], "top layer")


# --------------------------------------------------------------------------------------
# A neuron model that plastax does not ship: written here in under 20 lines, it trains
# with EProp and passes the identity with no other code.


class QuadraticIF(plastax.neurons.AbstractNeuron):
    """Quadratic integrate-and-fire with a slow recovery variable and reset to zero."""

    state_names = ("v", "w")
    n_currents = 1
    tau: float = 10.0
    surrogate: plastax.surrogate.AbstractSurrogate = plastax.surrogate.Arctan(2.0)

    def init_state(self):
        return (0.0, 0.0)

    def step(self, state, currents):
        v, w = state
        z = self.output(state)
        v = (v + (v * v - w + currents[0]) / self.tau) * (1.0 - z)
        return (v, 0.95 * w + 0.05 * v + z)

    def output(self, state):
        return self.surrogate(state[0] - 1.0)


def test_user_neuron_identity_and_training(x64):
    model = _model(QuadraticIF(), plastax.LeakyReadout(3, 8.0), recurrent=False)
    x, t, mask = _data()
    x = 4.0 * x
    assert _spike_rate(model, x) > 0.02
    _, g_ref = BPTT().value_and_grad(model, x, t, mask)
    _, g = EProp().value_and_grad(model, x, t, mask)
    _assert_equal_grads(g, g_ref, "EProp vs BPTT, user-written QuadraticIF")

    import optax

    # learn to tell the three sequences apart (one label per sequence)
    t = jnp.broadcast_to(jnp.arange(3), t.shape)
    opt = optax.adam(1e-1)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = opt.init(params)

    @eqx.filter_jit
    def update(model, state):
        loss, g = EProp().value_and_grad(model, x, t, mask)
        upd, state = opt.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, upd), state, loss

    losses = []
    for _ in range(40):
        model, state, loss = update(model, state)
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0], losses


# --------------------------------------------------------------------------------------
# Combinations that cannot work fail early and name the way out.


def test_online_learner_refuses_sequence_loss():
    model = _model(LIF(), plastax.LinearReadout(3), recurrent=False, n=4)
    x, t, mask = _data(T=5, B=2)
    for learner in [EProp(), SLTT(), RTRL()]:
        with pytest.raises(ValueError, match="does not split over time.*BPTT"):
            learner.value_and_grad(
                model, x, t, mask, loss=plastax.losses.max_over_time_cross_entropy
            )
    BPTT().value_and_grad(model, x, t, mask, loss=plastax.losses.max_over_time_cross_entropy)


def test_rtrl_refuses_what_does_not_fit():
    model = _model(LIF(), plastax.LinearReadout(3), recurrent=True, n=64, n_in=100)
    need = RTRL().estimate_bytes(model, 8)
    with pytest.raises(ValueError, match=r"GiB.*EProp\(\)"):
        RTRL(max_bytes=need // 2).init(model, 8)
    RTRL(max_bytes=need).init(model, 1)


def test_online_state_is_constant_in_time():
    model = _model(ALIF(), plastax.LeakyReadout(3), recurrent=True, n=6)
    learner = EProp()
    state = learner.init(model, 2)
    shapes = jax.tree.map(jnp.shape, state)
    x, t, _ = _data(T=3, B=2)
    for i in range(3):
        state, _ = learner.step(model, state, x[i], t[i])
    assert jax.tree.map(jnp.shape, state) == shapes
    assert int(state.t) == 3
