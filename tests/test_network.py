"""Tests for plastax.network: shapes, hand-computed steps, masks, readouts, validation."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plastax
from plastax import Layer, LeakyReadout, LinearReadout, Network
from plastax.neurons import ALIF, GRU, LIF, LSTM, CuBaLIF, TanhRNN

KEY = jax.random.key(0)


def _np_tanh_net(x, w_in, w_rec, b):
    """Hand loop for a tanh layer: h_t = tanh(x_t W_in + h_{t-1} W_rec + b)."""
    h = np.zeros((x.shape[1], w_in.shape[1]))
    hs = []
    for xt in x:
        h = np.tanh(xt @ w_in + (h @ w_rec if w_rec is not None else 0.0) + b)
        hs.append(h)
    return np.stack(hs)


# ----------------------------------------------------------------------------
# shapes and construction


def test_output_shapes_and_parameter_shapes():
    model = Network(
        layers=[Layer(ALIF(), 4, recurrent=True), Layer(LSTM(), 3)],
        readout=LeakyReadout(2),
        n_in=5,
        key=KEY,
    )
    x = jnp.zeros((7, 2, 5))
    state, ys, zs = model.run(x)
    assert ys.shape == (7, 2, 2) and ys.dtype == jnp.float32
    assert [z.shape for z in zs] == [(7, 2, 4), (7, 2, 3)]
    assert [s.shape for s in state.layers] == [(2, 4, 2), (2, 3, 2)]
    assert state.readout.shape == (2, 2)
    l0, l1 = model.layers
    assert l0.w_in.shape == (5, 4, 1) and l0.w_rec.shape == (4, 4, 1) and l0.bias.shape == (4, 1)
    assert l1.w_in.shape == (4, 3, 4) and l1.w_rec is None and l1.bias.shape == (3, 4)
    assert model.readout.weight.shape == (3, 2) and model.readout.bias.shape == (2,)
    assert model.n_out == 2 and model.n_in == 5
    np.testing.assert_array_equal(np.asarray(l0.bias), 0.0)


def test_float64_network(x64):
    model = Network([Layer(TanhRNN(), 4, recurrent=True)], LinearReadout(3), n_in=3, key=KEY)
    assert model.dtype == jnp.float64
    assert model.layers[0].w_in.dtype == jnp.float64
    y = model(np.ones((3, 1, 3), np.float32))  # inputs are converted to the model's dtype
    assert y.dtype == jnp.float64


def test_per_neuron_parameters_are_broadcast_at_build(x64):
    model = Network([Layer(LIF(tau_mem=jnp.asarray(15.0)), 4)], LinearReadout(3), n_in=3, key=KEY)
    assert model.layers[0].neuron.tau_mem.dtype == jnp.float64
    assert model.layers[0].neuron.tau_mem.shape == (4,)
    np.testing.assert_allclose(np.asarray(model.layers[0].neuron.tau_mem), 15.0)


def test_initial_weights_are_random_and_scaled():
    n_in, n = 150, 160
    model = Network([Layer(TanhRNN(), n, recurrent=True)], LinearReadout(2), n_in=n_in, key=KEY)
    w_in, w_rec = model.layers[0].w_in, model.layers[0].w_rec
    # documented: std = gain / sqrt(fan_in), gain 1 for rate units
    assert float(jnp.std(w_in)) == pytest.approx(1 / math.sqrt(n_in), rel=0.02)
    assert float(jnp.std(w_rec)) == pytest.approx(1 / math.sqrt(n), rel=0.02)
    other = Network(
        [Layer(TanhRNN(), n, recurrent=True)], LinearReadout(2), n_in=n_in, key=jax.random.key(1)
    )
    assert not np.allclose(np.asarray(other.layers[0].w_in), np.asarray(w_in))


# ----------------------------------------------------------------------------
# hand computations


def test_tanh_network_step_by_hand(x64):
    rng = np.random.default_rng(0)
    T, B, p, n, k = 5, 2, 3, 2, 2
    w_in, w_rec, b = rng.normal(size=(p, n)), rng.normal(size=(n, n)), rng.normal(size=n)
    w_out, b_out = rng.normal(size=(n, k)), rng.normal(size=k)
    layer = Layer(
        TanhRNN(),
        n,
        recurrent=True,
        w_in=jnp.asarray(w_in[:, :, None]),
        w_rec=jnp.asarray(w_rec[:, :, None]),
        bias=jnp.asarray(b[:, None]),
    )
    model = Network(
        [layer],
        LinearReadout(k, weight=jnp.asarray(w_out), bias=jnp.asarray(b_out)),
        n_in=p,
        key=KEY,
    )
    # given weights are kept, not re-initialised
    np.testing.assert_array_equal(np.asarray(model.layers[0].w_in[..., 0]), w_in)
    x = rng.normal(size=(T, B, p))
    _, ys, (hs,) = model.run(jnp.asarray(x))
    h_ref = _np_tanh_net(x, w_in, w_rec, b)
    np.testing.assert_allclose(np.asarray(hs), h_ref, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(ys), h_ref @ w_out + b_out, rtol=1e-12)

    # one step by hand: currents = x W_in + z_prev W_rec + b
    state = model.init_state(B)
    state, y0, (z0,) = model.step(state, jnp.asarray(x[0]))
    np.testing.assert_allclose(np.asarray(z0), np.tanh(x[0] @ w_in + b), rtol=1e-14)
    cur = model.layers[0].currents(jnp.asarray(x[1]), z0)
    np.testing.assert_allclose(
        np.asarray(cur[..., 0]), x[1] @ w_in + np.asarray(z0) @ w_rec + b, rtol=1e-13
    )


def test_two_layer_feedforward_by_hand(x64):
    rng = np.random.default_rng(1)
    T, B, p, n1, n2 = 4, 3, 2, 3, 2
    w1, b1 = rng.normal(size=(p, n1)), rng.normal(size=n1)
    w2, r2, b2 = rng.normal(size=(n1, n2)), rng.normal(size=(n2, n2)), rng.normal(size=n2)
    model = Network(
        [
            Layer(TanhRNN(), n1, w_in=jnp.asarray(w1[..., None]), bias=jnp.asarray(b1[:, None])),
            Layer(
                TanhRNN(),
                n2,
                True,
                w_in=jnp.asarray(w2[..., None]),
                w_rec=jnp.asarray(r2[..., None]),
                bias=jnp.asarray(b2[:, None]),
            ),
        ],
        LinearReadout(1),
        n_in=p,
        key=KEY,
    )
    x = rng.normal(size=(T, B, p))
    _, _, (h1, h2) = model.run(jnp.asarray(x))
    h1_ref = _np_tanh_net(x, w1, None, b1)
    # the second layer sees the first layer's output of the SAME step
    h2_ref = _np_tanh_net(h1_ref, w2, r2, b2)
    np.testing.assert_allclose(np.asarray(h1), h1_ref, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(h2), h2_ref, rtol=1e-13)


def test_lif_network_by_hand(x64):
    """Recurrence uses the spikes of the previous step; reset by subtraction."""
    tau, thr = 5.0, 1.0
    alpha = math.exp(-1 / tau)
    w_in = np.array([[1.4, 0.3], [0.2, 0.9]])
    w_rec = np.array([[0.0, 0.8], [-0.5, 0.0]])
    b = np.array([0.05, -0.05])
    model = Network(
        [
            Layer(
                LIF(tau_mem=tau, threshold=thr),
                2,
                True,
                w_in=jnp.asarray(w_in[..., None]),
                w_rec=jnp.asarray(w_rec[..., None]),
                bias=jnp.asarray(b[:, None]),
            )
        ],
        LinearReadout(1),
        n_in=2,
        key=KEY,
    )
    x = np.array(
        [[[1.0, 0.0]], [[0.0, 0.5]], [[1.0, 1.0]], [[0.0, 0.0]], [[0.3, 0.9]], [[0.0, 0.0]]]
    )
    _, _, (z,) = model.run(jnp.asarray(x))
    v = np.zeros((1, 2))
    z_prev = np.zeros((1, 2))
    zs = []
    for xt in x:
        v = alpha * v + xt @ w_in + z_prev @ w_rec + b - z_prev * thr
        z_prev = (v > thr).astype(float)
        zs.append(z_prev)
    zs = np.stack(zs)
    np.testing.assert_array_equal(np.asarray(z), zs)
    assert 0 < zs.sum() < zs.size  # some spikes, not all


@pytest.mark.parametrize("tau", [1.0, 4.0, 30.0])
def test_leaky_readout_recursion(x64, tau):
    rng = np.random.default_rng(2)
    T, B, p, n, k = 6, 2, 3, 4, 3
    w, bo = rng.normal(size=(n, k)), rng.normal(size=k)
    model = Network(
        [Layer(TanhRNN(), n, True)],
        LeakyReadout(k, tau=tau, weight=jnp.asarray(w), bias=jnp.asarray(bo)),
        n_in=p,
        key=KEY,
    )
    assert model.readout.kappa == pytest.approx(math.exp(-1 / tau))
    x = rng.normal(size=(T, B, p))
    _, ys, (h,) = model.run(jnp.asarray(x))
    kappa = math.exp(-1 / tau)
    y = np.zeros((B, k))
    ref = []
    for ht in np.asarray(h):
        y = kappa * y + (1 - kappa) * (ht @ w + bo)
        ref.append(y)
    np.testing.assert_allclose(np.asarray(ys), np.stack(ref), rtol=1e-12)


def test_linear_readout_has_no_memory(x64):
    ro = LinearReadout(2, weight=jnp.asarray([[1.0, 2.0]]), bias=jnp.asarray([0.5, -0.5]))
    assert ro.kappa == 0.0
    y = ro.step(jnp.asarray([[100.0, 100.0]]), jnp.asarray([[3.0]]))
    np.testing.assert_allclose(np.asarray(y), [[3.5, 5.5]])


def test_run_continues_from_a_state(x64):
    model = Network(
        [Layer(ALIF(), 4, True), Layer(TanhRNN(), 3, True)], LeakyReadout(2), n_in=3, key=KEY
    )
    x = jax.random.normal(jax.random.key(3), (8, 2, 3))
    run = eqx.filter_jit(lambda m, xs, st: m.run(xs, st))
    _, ys, _ = model.run(x)
    st, y1, _ = run(model, x[:4], model.init_state(2))
    _, y2, _ = run(model, x[4:], st)
    np.testing.assert_allclose(
        np.asarray(jnp.concatenate([y1, y2])), np.asarray(ys), rtol=1e-13, atol=1e-15
    )


# ----------------------------------------------------------------------------
# connectivity and masks


@pytest.mark.parametrize("neuron", [LIF(), ALIF(), CuBaLIF()], ids=lambda n: type(n).__name__)
def test_no_self_connections_in_spiking_recurrent_layers(x64, neuron):
    model = Network([Layer(neuron, 4, recurrent=True)], LinearReadout(3), n_in=3, key=KEY)
    w = np.asarray(model.layers[0].w_rec[..., 0])
    np.testing.assert_array_equal(np.diag(w), 0.0)
    assert np.all(w[~np.eye(4, dtype=bool)] != 0.0)


@pytest.mark.parametrize("neuron", [TanhRNN(), LSTM(), GRU()], ids=lambda n: type(n).__name__)
def test_rate_layers_keep_self_connections(x64, neuron):
    model = Network([Layer(neuron, 4, recurrent=True)], LinearReadout(3), n_in=3, key=KEY)
    w = np.asarray(model.layers[0].w_rec)
    assert np.all(np.diagonal(w[..., 0]) != 0.0)


def test_gru_masked_currents(x64):
    model = Network([Layer(GRU(), 4, recurrent=True)], LinearReadout(3), n_in=3, key=KEY)
    layer = model.layers[0]
    w_in, w_rec = np.asarray(layer.w_in), np.asarray(layer.w_rec)
    np.testing.assert_array_equal(w_in[:, :, 3], 0.0)  # 'recurrent' current: no input
    np.testing.assert_array_equal(w_rec[:, :, 2], 0.0)  # 'input' current: no recurrence
    assert np.all(w_in[:, :, :3] != 0.0) and np.all(w_rec[:, :, [0, 1, 3]] != 0.0)
    m_in, m_rec = layer.masks(jnp.float64)
    np.testing.assert_array_equal(np.asarray(m_in), [1, 1, 1, 0])
    assert m_rec.shape == (4, 4, 4)  # (presynaptic, postsynaptic, current)
    np.testing.assert_array_equal(np.asarray(m_rec)[0, 1], [1, 1, 0, 1])


def test_gru_masks_apply_to_user_weights(x64):
    """Even weights set by hand cannot leak across the masked paths."""
    p, n = 2, 3
    layer = Layer(
        GRU(),
        n,
        recurrent=True,
        w_in=jnp.ones((p, n, 4)),
        w_rec=jnp.ones((n, n, 4)),
        bias=jnp.zeros((n, 4)),
    )
    x = jnp.asarray([[1.0, 2.0]])
    z = jnp.asarray([[10.0, 20.0, 30.0]])
    cur = np.asarray(layer.currents(x, z))
    np.testing.assert_allclose(cur[0, :, 0], 63.0)  # both sources
    np.testing.assert_allclose(cur[0, :, 1], 63.0)
    np.testing.assert_allclose(cur[0, :, 2], 3.0)  # input only
    np.testing.assert_allclose(cur[0, :, 3], 60.0)  # recurrent only


def test_gru_layer_equals_equinox_gru_cell(x64):
    p, n, T, B = 2, 3, 6, 2
    cell = eqx.nn.GRUCell(p, n, key=jax.random.key(4), dtype=jnp.float64)
    wi, wh = np.asarray(cell.weight_ih), np.asarray(cell.weight_hh)
    bi, bn = np.asarray(cell.bias), np.asarray(cell.bias_n)
    w_in = np.zeros((p, n, 4))
    w_rec = np.zeros((n, n, 4))
    bias = np.zeros((n, 4))
    for g, (cur_in, cur_rec) in enumerate([(0, 0), (1, 1), (2, 3)]):
        w_in[:, :, cur_in] = wi[g * n : (g + 1) * n].T
        w_rec[:, :, cur_rec] = wh[g * n : (g + 1) * n].T
        bias[:, cur_in] = bi[g * n : (g + 1) * n]
    bias[:, 3] = bn
    model = Network(
        [
            Layer(
                GRU(),
                n,
                True,
                w_in=jnp.asarray(w_in),
                w_rec=jnp.asarray(w_rec),
                bias=jnp.asarray(bias),
            )
        ],
        LinearReadout(1),
        n_in=p,
        key=KEY,
    )
    x = jax.random.normal(jax.random.key(5), (T, B, p), jnp.float64)
    _, _, (h,) = model.run(x)
    hb = jnp.zeros((B, n))
    for t in range(T):
        hb = jax.vmap(cell)(x[t], hb)
        np.testing.assert_allclose(np.asarray(h[t]), np.asarray(hb), rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------
# jit


def test_jit_does_not_recompile():
    traces = []

    @eqx.filter_jit
    def f(model, x):
        traces.append(1)
        return model(x)

    m1 = Network([Layer(LIF(), 4, True)], LeakyReadout(2), n_in=3, key=KEY)
    m2 = Network([Layer(LIF(), 4, True)], LeakyReadout(2), n_in=3, key=jax.random.key(9))
    x = jax.random.normal(KEY, (5, 2, 3))
    y1 = f(m1, x)
    y2 = f(m2, 2.0 * x)
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(y1), np.asarray(m1(x)), rtol=1e-6, atol=1e-6)
    assert not np.allclose(np.asarray(y1), np.asarray(y2))


# ----------------------------------------------------------------------------
# validation


@pytest.fixture(scope="module")
def small():
    return Network([Layer(LIF(), 4, True)], LinearReadout(2), n_in=3, key=KEY)


@pytest.mark.parametrize("shape", [(5, 2, 4), (5, 2, 2), (5, 3), (3,), (5, 2, 3, 1)])
def test_bad_input_shape(small, shape):
    with pytest.raises(ValueError, match="expected") as err:
        small(jnp.zeros(shape))
    assert "3" in str(err.value)  # names the expected width


def test_empty_inputs(small):
    with pytest.raises(ValueError, match="expected"):
        small(jnp.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match="expected"):
        small(jnp.zeros((4, 0, 3)))


def test_non_array_inputs(small):
    with pytest.raises(ValueError, match="expected"):
        small([[[0.0, 0.0, 0.0]]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_name_the_step(small, bad):
    x = np.zeros((6, 2, 3), np.float32)
    x[4, 1, 2] = bad
    with pytest.raises(ValueError, match="expected") as err:
        small(x)
    assert "time 4" in str(err.value)
    with pytest.raises(ValueError, match="time 4"):
        small.run(jnp.asarray(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Layer(LIF(), 0),
        lambda: Layer(LIF(), -3),
        lambda: Layer(LIF(), 2.5),
        lambda: Layer(LIF(), True),
        lambda: Layer("LIF", 4),
        lambda: Layer(LIF, 4),
        lambda: LinearReadout(0),
        lambda: LinearReadout(-1),
        lambda: LeakyReadout(0),
        lambda: LeakyReadout(2.0),
        lambda: LeakyReadout(2, tau=0.0),
        lambda: LeakyReadout(2, tau=-5.0),
        lambda: LeakyReadout(2, tau="slow"),
        lambda: Network([Layer(LIF(), 4)], LinearReadout(2), n_in=-1, key=KEY),
        lambda: Network([Layer(LIF(), 4)], LinearReadout(2), n_in=0, key=KEY),
        lambda: Network([LIF()], LinearReadout(2), n_in=3, key=KEY),
        lambda: Network([Layer(LIF(), 4), "dense"], LinearReadout(2), n_in=3, key=KEY),
        lambda: Network([], LinearReadout(2), n_in=3, key=KEY),
        lambda: Network([Layer(LIF(), 4)], 2, n_in=3, key=KEY),
        lambda: Network([Layer(LIF(), 4)], Layer(LIF(), 2), n_in=3, key=KEY),
    ],
)
def test_bad_configuration(make):
    with pytest.raises(ValueError, match="expected"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Layer(TanhRNN(), 2, w_in=jnp.ones((5, 2, 1)), bias=jnp.zeros((2, 1))),
        lambda: Layer(TanhRNN(), 2, w_in=jnp.ones((3, 2, 1))),
        lambda: Layer(TanhRNN(), 2, True, w_in=jnp.ones((3, 2, 1)), bias=jnp.zeros((2, 1))),
        lambda: Layer(TanhRNN(), 2, w_in=jnp.ones((3, 2, 4)), bias=jnp.zeros((2, 4))),
    ],
    ids=["fan-in", "no-bias", "no-w_rec", "currents"],
)
def test_prebuilt_layer_weights_of_wrong_shape(make):
    with pytest.raises(ValueError, match="expected"):
        Network([make()], LinearReadout(2), n_in=3, key=KEY)(jnp.ones((2, 1, 3)))


def test_prebuilt_readout_of_wrong_shape():
    ro = LinearReadout(2, weight=jnp.ones((5, 2)), bias=jnp.zeros(2))
    with pytest.raises(ValueError, match="expected"):
        Network([Layer(TanhRNN(), 4)], ro, n_in=3, key=KEY)(jnp.ones((2, 1, 3)))


def test_bad_batch_size(small):
    with pytest.raises(ValueError, match="expected"):
        small.init_state(0)


def test_public_names():
    for name in ["Layer", "LeakyReadout", "LinearReadout", "Network", "NetworkState"]:
        assert hasattr(plastax, name)
