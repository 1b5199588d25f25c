"""Tests for plastax.learners.BPTT and TBPTT in float64.

Rate models are checked against central finite differences; every model (spiking ones
included, where finite differences cannot see through the Heaviside forward) is checked
against ``jax.grad`` of an independent, hand-written Python-loop forward pass with its own
surrogate spike function.  TBPTT is checked against the same reference with
``stop_gradient`` at the window boundaries.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from plastax import Layer, LeakyReadout, LinearReadout, Network
from plastax.learners import BPTT, TBPTT
from plastax.losses import cross_entropy, max_over_time_cross_entropy, mse
from plastax.neurons import ALIF, GRU, LIF, LSTM, CuBaLIF, TanhRNN
from plastax.surrogate import AbstractSurrogate

T, B, N_IN, N_HID, N_OUT = 6, 2, 3, 4, 3
TAU_OUT = 5.0
SLOPE = 10.0  # FastSigmoid default of the spiking models

# hyperparameters shared by the library models and the reference
HP = {
    "LIF": dict(tau_mem=5.0, threshold=1.0),
    "ALIF": dict(tau_mem=5.0, tau_adapt=10.0, beta=0.7, threshold=1.0),
    "CuBaLIF": dict(tau_syn=3.0, tau_mem=5.0, threshold=1.0),
    "TanhRNN": dict(),
    "LSTM": dict(),
    "GRU": dict(),
}
CLASSES = {
    "LIF": LIF,
    "ALIF": ALIF,
    "CuBaLIF": CuBaLIF,
    "TanhRNN": TanhRNN,
    "LSTM": LSTM,
    "GRU": GRU,
}
RATE = ["TanhRNN", "LSTM", "GRU"]
SPIKING = ["LIF", "ALIF", "CuBaLIF"]


class SmoothSpike(AbstractSurrogate):
    """A plain logistic in place of the spike, so finite differences see the reset path."""

    slope: float = 2.0

    def __call__(self, x):
        return jax.nn.sigmoid(self.slope * x)


# ----------------------------------------------------------------------------
# independent reference: hand-written forward pass, Python loop over time


@jax.custom_jvp
def ref_spike(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(x.dtype)


@ref_spike.defjvp
def _ref_spike_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return ref_spike(x), dx / (1.0 + SLOPE * jnp.abs(x)) ** 2


def _sig(u):
    return 1.0 / (1.0 + jnp.exp(-u))


def ref_init(kind):
    d = {"LIF": 1, "ALIF": 2, "CuBaLIF": 2, "TanhRNN": 1, "LSTM": 2, "GRU": 1}[kind]
    return tuple(jnp.zeros((B, N_HID)) for _ in range(d))


def ref_cell(kind, state, cur, hp, spike, tau=None):
    """One step on (B, n) arrays; returns (new state, output)."""
    I = [cur[..., k] for k in range(cur.shape[-1])]
    if kind == "TanhRNN":
        h = jnp.tanh(I[0])
        return (h,), h
    if kind == "LSTM":
        c, _ = state
        c = _sig(I[1]) * c + _sig(I[0]) * jnp.tanh(I[2])
        h = _sig(I[3]) * jnp.tanh(c)
        return (c, h), h
    if kind == "GRU":
        (h,) = state
        r, u = _sig(I[0]), _sig(I[1])
        nn = jnp.tanh(I[2] + r * I[3])
        h = (1 - u) * nn + u * h
        return (h,), h
    thr = hp["threshold"]
    alpha = jnp.exp(-1.0 / (hp["tau_mem"] if tau is None else tau))
    if kind == "LIF":
        (v,) = state
        z = spike((v - thr) / thr)
        v = alpha * v + I[0] - z * thr
        return (v,), spike((v - thr) / thr)
    if kind == "ALIF":
        v, a = state
        rho = math.exp(-1.0 / hp["tau_adapt"])
        z = spike((v - thr - hp["beta"] * a) / thr)
        v = alpha * v + I[0] - z * thr
        a = rho * a + (1 - rho) * z
        return (v, a), spike((v - thr - hp["beta"] * a) / thr)
    if kind == "CuBaLIF":
        i, v = state
        z = spike((v - thr) / thr)
        i = math.exp(-1.0 / hp["tau_syn"]) * i + I[0]
        v = alpha * v + i - z * thr
        return (i, v), spike((v - thr) / thr)
    raise AssertionError(kind)


def ref_currents(kind, x, z_prev, p):
    """x W_in + z_prev W_rec + b, honouring the GRU's input-only / recurrent-only currents
    and the absence of self-connections in spiking layers (the diagonal of W_rec is
    masked, so it never receives a gradient)."""
    m = p["w_in"].shape[-1]
    w_rec = p["w_rec"]
    if kind in ("LIF", "ALIF", "CuBaLIF") and w_rec is not None:
        w_rec = w_rec * (1.0 - jnp.eye(w_rec.shape[0]))[:, :, None]
    uses_in = [True, True, True, False] if kind == "GRU" else [True] * m
    uses_rec = [True, True, False, True] if kind == "GRU" else [True] * m
    cols = []
    for k in range(m):
        c = p["bias"][:, k]
        if uses_in[k]:
            c = c + x @ p["w_in"][:, :, k]
        if uses_rec[k]:
            c = c + z_prev @ w_rec[:, :, k]
        cols.append(c)
    return jnp.stack(cols, axis=-1)


def ref_outputs(kind, p, x, *, window=None, spike=ref_spike, hp=None):
    hp = HP[kind] if hp is None else hp
    kappa = math.exp(-1.0 / TAU_OUT)
    state, z, y = ref_init(kind), jnp.zeros((B, N_HID)), jnp.zeros((B, N_OUT))
    ys, zs = [], []
    for t in range(x.shape[0]):
        if window is not None and t > 0 and t % window == 0:
            state, z, y = jax.lax.stop_gradient((state, z, y))
        state, z = ref_cell(kind, state, ref_currents(kind, x[t], z, p), hp, spike, p.get("tau"))
        y = kappa * y + (1 - kappa) * (z @ p["w_out"] + p["b_out"])
        ys.append(y)
        zs.append(z)
    return jnp.stack(ys), jnp.stack(zs)


def ref_ce_loss(kind, p, x, targets, mask, **kw):
    ys, _ = ref_outputs(kind, p, x, **kw)
    logp = jax.nn.log_softmax(ys, axis=-1)
    per = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # (T, B)
    return jnp.sum(mask * per.mean(axis=1)) / jnp.maximum(mask.sum(), 1.0)


def params_of(model):
    layer, ro = model.layers[0], model.readout
    p = dict(w_in=layer.w_in, w_rec=layer.w_rec, bias=layer.bias, w_out=ro.weight, b_out=ro.bias)
    if eqx.is_inexact_array(getattr(layer.neuron, "tau_mem", None)):
        p["tau"] = layer.neuron.tau_mem
    return p


def grads_of(grads):
    layer, ro = grads.layers[0], grads.readout
    g = dict(w_in=layer.w_in, w_rec=layer.w_rec, bias=layer.bias, w_out=ro.weight, b_out=ro.bias)
    if eqx.is_inexact_array(getattr(layer.neuron, "tau_mem", None)):
        g["tau"] = layer.neuron.tau_mem
    return g


# ----------------------------------------------------------------------------
# fixtures


def make_model(kind, neuron=None, seed=0, readout=None):
    neuron = CLASSES[kind](**HP[kind]) if neuron is None else neuron
    readout = LeakyReadout(N_OUT, tau=TAU_OUT) if readout is None else readout
    return Network(
        [Layer(neuron, N_HID, recurrent=True)], readout, n_in=N_IN, key=jax.random.key(seed)
    )


def make_data(seed=1, spiking=False):
    k1, k2 = jax.random.split(jax.random.key(seed))
    if spiking:  # positive drive: enough spikes to exercise reset and recurrence
        x = jax.random.uniform(k1, (T, B, N_IN), jnp.float64, 0.0, 1.5)
    else:
        x = jax.random.normal(k1, (T, B, N_IN), jnp.float64)
    targets = jax.random.randint(k2, (T, B), 0, N_OUT)
    return x, targets


def fd_grad(model, x, loss_of_outputs, eps=1e-6):
    """Central differences of ``loss_of_outputs(model(x))`` w.r.t. every inexact-array
    leaf of ``model``, flattened like ``ravel_pytree``.  The loss is evaluated in numpy
    from the compiled forward pass (no library loss code, no new compilation)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    theta, unravel = ravel_pytree(params)
    theta = np.asarray(theta)

    def at(v):
        return loss_of_outputs(
            np.asarray(forward(eqx.combine(unravel(jnp.asarray(v)), static), x)[1])
        )

    out = np.empty(theta.size)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = eps
        out[k] = (at(theta + e) - at(theta - e)) / (2 * eps)
    return out


def _ce_by_hand(ys, targets, mask):
    """sum_t mask_t mean_b CE(y_t[b], target_t[b]) / sum_t mask_t (losses.py docstring)."""
    ys, targets, mask = np.asarray(ys), np.asarray(targets), np.asarray(mask, float)
    logp = ys - np.log(np.sum(np.exp(ys), axis=-1, keepdims=True))
    per = -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return float(np.sum(mask * per.mean(axis=1)) / np.sum(mask))


def _mse_by_hand(ys, y_target, mask):
    per = np.mean((np.asarray(ys) - np.asarray(y_target)) ** 2, axis=-1).mean(axis=1)
    return float(np.sum(np.asarray(mask) * per) / np.sum(np.asarray(mask)))


def _max_ce_by_hand(ys, targets, mask):
    """CE of the per-class maximum of the readout over the masked steps, labels at T-1."""
    ymax = np.asarray(ys)[np.asarray(mask) > 0].max(axis=0)  # (B, n_out)
    logp = ymax - np.log(np.exp(ymax).sum(-1, keepdims=True))
    return float(-np.mean(logp[np.arange(ymax.shape[0]), np.asarray(targets)[-1]]))


@eqx.filter_jit
def _compiled_value_and_grad(learner, model, x, targets, mask, loss):
    return learner.value_and_grad(model, x, targets, mask, loss=loss)


def value_and_grad(learner, model, x, targets, mask=None, loss=cross_entropy):
    """``learner.value_and_grad`` under ``eqx.filter_jit``: one compilation per model
    structure, shared by the tests (the eager public call is exercised separately).  A
    list mask is passed as an array (filter_jit would make a list static)."""
    mask = None if mask is None else jnp.asarray(mask, jnp.float64)
    return _compiled_value_and_grad(learner, model, x, targets, mask, loss)


@eqx.filter_jit
def forward(model, x):
    """``model(x)`` compiled once per model structure (an eager call re-traces the scan)."""
    return model.run(x)


def flat(grads):
    return ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))[0]


def assert_grads_close(got: dict, ref: dict, rtol, atol):
    assert set(got) == set(ref)
    for name in ref:
        np.testing.assert_allclose(
            np.asarray(got[name]), np.asarray(ref[name]), rtol=rtol, atol=atol, err_msg=name
        )


# ----------------------------------------------------------------------------
# BPTT against finite differences (rate models; spiking models with a smooth spike)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "ALIF"])
def test_bptt_against_finite_differences(x64, kind):
    """TanhRNN is covered by the two-layer and max-over-time finite-difference tests."""
    if kind in SPIKING:
        model = make_model(kind, CLASSES[kind](**HP[kind], surrogate=SmoothSpike()))
    else:
        model = make_model(kind)
    x, targets = make_data()
    mask = jnp.asarray([0.0, 1.0, 1.0, 0.0, 2.0, 1.0])
    loss, grads = value_and_grad(BPTT(), model, x, targets, mask)
    fd = fd_grad(model, x, lambda ys: _ce_by_hand(ys, targets, mask))
    g = flat(grads)
    assert g.shape == fd.shape
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)
    # every leaf gets a gradient, and it is not trivially zero
    for name, leaf in grads_of(grads).items():
        assert leaf is not None and float(jnp.max(jnp.abs(leaf))) > 1e-6, name
    assert np.isfinite(float(loss))


def test_bptt_two_layers_against_finite_differences(x64):
    model = Network(
        [Layer(TanhRNN(tau=2.0), 3, recurrent=True), Layer(GRU(), 2)],
        LinearReadout(N_OUT),
        n_in=N_IN,
        key=jax.random.key(7),
    )
    x, targets = make_data(seed=2)
    _, grads = value_and_grad(BPTT(), model, x, targets)
    fd = fd_grad(model, x, lambda ys: _ce_by_hand(ys, targets, np.ones(T)))
    np.testing.assert_allclose(np.asarray(flat(grads)), fd, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------
# BPTT against the independent reference (every model, real surrogate spikes)


@pytest.mark.parametrize("kind", RATE + SPIKING)
def test_bptt_against_reference_implementation(x64, kind):
    model = make_model(kind)
    x, targets = make_data(spiking=kind in SPIKING)
    mask = jnp.asarray([1.0, 0.0, 1.0, 1.0, 1.0, 3.0])
    loss, grads = value_and_grad(BPTT(), model, x, targets, mask)
    p = params_of(model)
    ref_loss, ref_g = jax.value_and_grad(lambda q: ref_ce_loss(kind, q, x, targets, mask))(p)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-12)
    assert_grads_close(grads_of(grads), ref_g, rtol=1e-9, atol=1e-12)
    # the forward pass matches too, spikes included
    ys_ref, zs_ref = ref_outputs(kind, p, x)
    _, ys, (zs,) = forward(model, x)
    np.testing.assert_allclose(np.asarray(ys), np.asarray(ys_ref), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(zs), np.asarray(zs_ref), rtol=1e-12, atol=1e-14)
    if kind in SPIKING:
        n_spikes = float(jnp.sum(zs))
        assert 0 < n_spikes < zs.size, n_spikes
        # the recurrent weights and the reset matter: a gradient flows into w_rec
        assert float(jnp.max(jnp.abs(grads.layers[0].w_rec))) > 1e-6


@pytest.mark.parametrize("detach", [False, True])
def test_bptt_lif_reset_gradient_matches_reference(x64, detach):
    """With detach_reset the reference must stop the reset's gradient as well; the two
    settings give different gradients on the same forward pass."""
    model = make_model("LIF", LIF(**HP["LIF"], detach_reset=detach))
    x, targets = make_data(spiking=True)
    _, grads = value_and_grad(BPTT(), model, x, targets, jnp.ones(T))

    def cell_loss(q):  # threshold 1, written out separately from ref_cell
        hp = HP["LIF"]
        kappa = math.exp(-1.0 / TAU_OUT)
        alpha = math.exp(-1.0 / hp["tau_mem"])
        v, z, y = jnp.zeros((B, N_HID)), jnp.zeros((B, N_HID)), jnp.zeros((B, N_OUT))
        total = 0.0
        for t in range(T):
            w_rec = q["w_rec"][..., 0] * (1.0 - jnp.eye(N_HID))  # no self-connections
            cur = x[t] @ q["w_in"][..., 0] + z @ w_rec + q["bias"][:, 0]
            z_old = ref_spike(v - 1.0)
            z_reset = jax.lax.stop_gradient(z_old) if detach else z_old
            v = alpha * v + cur - z_reset
            z = ref_spike(v - 1.0)
            y = kappa * y + (1 - kappa) * (z @ q["w_out"] + q["b_out"])
            total = total + jnp.mean(
                -jnp.take_along_axis(jax.nn.log_softmax(y, -1), targets[t][:, None], -1)[:, 0]
            )
        return total / T

    ref_g = jax.grad(cell_loss)(params_of(model))
    assert_grads_close(grads_of(grads), ref_g, rtol=1e-9, atol=1e-12)
    _, other = value_and_grad(
        BPTT(),
        make_model("LIF", LIF(**HP["LIF"], detach_reset=not detach)),
        x,
        targets,
        jnp.ones(T),
    )
    assert not np.allclose(np.asarray(other.layers[0].w_in), np.asarray(grads.layers[0].w_in))


def test_bptt_per_neuron_time_constant(x64):
    taus = jnp.full(N_HID, 5.0)
    model = make_model("LIF", LIF(tau_mem=taus, threshold=1.0))
    x, targets = make_data(spiking=True)
    _, grads = value_and_grad(BPTT(), model, x, targets)
    g_tau = grads.layers[0].neuron.tau_mem
    assert g_tau.shape == (N_HID,)
    assert float(jnp.max(jnp.abs(g_tau))) > 1e-6
    ref_g = jax.grad(lambda q: ref_ce_loss("LIF", q, x, targets, jnp.ones(T)))(params_of(model))
    assert_grads_close(grads_of(grads), ref_g, rtol=1e-9, atol=1e-12)


def test_gru_masked_weights_get_zero_gradient(x64):
    model = make_model("GRU")
    x, targets = make_data()
    _, grads = value_and_grad(BPTT(), model, x, targets, jnp.ones(T))
    np.testing.assert_array_equal(np.asarray(grads.layers[0].w_in[..., 3]), 0.0)
    np.testing.assert_array_equal(np.asarray(grads.layers[0].w_rec[..., 2]), 0.0)


@pytest.mark.parametrize("kind", SPIKING)
def test_spiking_self_connections_get_no_gradient(x64, kind):
    model = make_model(kind)
    x, targets = make_data(spiking=True)
    _, grads = value_and_grad(BPTT(), model, x, targets, jnp.ones(T))
    g = np.asarray(grads.layers[0].w_rec[..., 0])
    assert np.any(g != 0.0)
    np.testing.assert_array_equal(np.diag(g), 0.0)


# ----------------------------------------------------------------------------
# loss values by hand


@pytest.mark.parametrize(
    "mask", [None, [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [0.5, 0, 2, 0, 1, 0.25]]
)
def test_loss_value_is_the_masked_mean(x64, mask):
    model = make_model("TanhRNN")
    x, targets = make_data()
    loss, _ = value_and_grad(BPTT(), model, x, targets, mask)
    m = np.ones(T) if mask is None else np.asarray(mask, float)
    assert float(loss) == pytest.approx(_ce_by_hand(forward(model, x)[1], targets, m), rel=1e-13)


def test_loss_with_mask_summing_below_one(x64):
    model = make_model("TanhRNN")
    x, targets = make_data()
    mask = [0.0, 0.0, 0.0, 0.0, 0.0, 0.5]
    loss, _ = value_and_grad(BPTT(), model, x, targets, mask)
    assert float(loss) == pytest.approx(_ce_by_hand(forward(model, x)[1], targets, mask), rel=1e-13)


def test_all_zero_mask_gives_zero_loss_and_gradient(x64):
    model = make_model("LSTM")
    x, targets = make_data()
    loss, grads = value_and_grad(BPTT(), model, x, targets, jnp.zeros(T))
    assert float(loss) == 0.0
    assert float(jnp.max(jnp.abs(flat(grads)))) == 0.0


def test_mse_loss(x64):
    model = make_model("GRU")
    x, _ = make_data()
    y_target = jax.random.normal(jax.random.key(11), (T, B, N_OUT), jnp.float64)
    mask = jnp.asarray([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    loss, grads = value_and_grad(BPTT(), model, x, y_target, mask, loss=mse)
    by_hand = _mse_by_hand(forward(model, x)[1], y_target, mask)
    assert float(loss) == pytest.approx(by_hand, rel=1e-13)
    fd = fd_grad(model, x, lambda ys: _mse_by_hand(ys, y_target, mask))
    np.testing.assert_allclose(np.asarray(flat(grads)), fd, rtol=1e-6, atol=1e-9)
    l_tb, g_tb = value_and_grad(TBPTT(window=T), model, x, y_target, mask, loss=mse)
    assert float(l_tb) == pytest.approx(float(loss), rel=1e-13)
    np.testing.assert_allclose(
        np.asarray(flat(g_tb)), np.asarray(flat(grads)), rtol=1e-12, atol=1e-15
    )


def test_bptt_max_over_time_cross_entropy(x64):
    model = make_model("TanhRNN")
    x, targets = make_data()
    mask = jnp.asarray([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    loss, grads = value_and_grad(BPTT(), model, x, targets, mask, loss=max_over_time_cross_entropy)
    by_hand = _max_ce_by_hand(forward(model, x)[1], targets, mask)
    assert float(loss) == pytest.approx(by_hand, rel=1e-13)
    # the hand formula: the maximum over steps 2..5 only, labels of the last step
    ys = np.asarray(forward(model, x)[1])
    assert by_hand != pytest.approx(_max_ce_by_hand(ys, targets, np.ones(T)), rel=1e-6)
    fd = fd_grad(model, x, lambda ys: _max_ce_by_hand(ys, targets, mask))
    np.testing.assert_allclose(np.asarray(flat(grads)), fd, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------
# TBPTT


@pytest.mark.parametrize("kind", ["TanhRNN", "ALIF"])
def test_tbptt_full_window_equals_bptt(x64, kind):
    model = make_model(kind)
    x, targets = make_data(spiking=kind in SPIKING)
    mask = jnp.asarray([1.0, 0.0, 1.0, 1.0, 2.0, 1.0])
    loss, grads = value_and_grad(BPTT(), model, x, targets, mask)
    window = T + 5 if kind == "TanhRNN" else T  # a window longer than T is clipped to T
    l_tb, g_tb = value_and_grad(TBPTT(window=window), model, x, targets, mask)
    assert float(l_tb) == pytest.approx(float(loss), rel=1e-14)
    np.testing.assert_allclose(
        np.asarray(flat(g_tb)), np.asarray(flat(grads)), rtol=1e-12, atol=1e-15
    )
    # same pytree structure as the model, like eqx.filter_grad
    assert jax.tree.structure(eqx.filter(g_tb, eqx.is_inexact_array)) == jax.tree.structure(
        eqx.filter(grads, eqx.is_inexact_array)
    )


TBPTT_CASES = [("TanhRNN", 1), ("LSTM", 2), ("GRU", 4), ("LIF", 2), ("ALIF", 4), ("CuBaLIF", 2)]


@pytest.mark.parametrize("kind,window", TBPTT_CASES)
def test_tbptt_equals_sum_of_window_gradients(x64, kind, window):
    """A window that does not divide T = 6 (4) also checks the padded final window."""
    model = make_model(kind)
    x, targets = make_data(spiking=kind in SPIKING)
    mask = jnp.asarray([1.0, 1.0, 0.0, 1.0, 2.0, 1.0])
    l_tb, g_tb = value_and_grad(TBPTT(window=window), model, x, targets, mask)
    p = params_of(model)
    ref_loss, ref_g = jax.value_and_grad(
        lambda q: ref_ce_loss(kind, q, x, targets, mask, window=window)
    )(p)
    assert float(l_tb) == pytest.approx(float(ref_loss), rel=1e-12)
    assert_grads_close(grads_of(g_tb), ref_g, rtol=1e-9, atol=1e-12)
    # truncation changes the recurrent-weight gradient relative to BPTT
    _, g_full = value_and_grad(BPTT(), model, x, targets, mask)
    assert not np.allclose(
        np.asarray(g_tb.layers[0].w_rec), np.asarray(g_full.layers[0].w_rec), rtol=1e-6, atol=1e-9
    )


# ----------------------------------------------------------------------------
# validation


@pytest.fixture
def setup64(x64):
    model = make_model("TanhRNN")
    x, targets = make_data()
    return model, x, targets


@pytest.mark.parametrize("learner", [BPTT(), TBPTT(window=2)], ids=["BPTT", "TBPTT"])
@pytest.mark.parametrize(
    "mask",
    [jnp.ones(T - 1), jnp.ones(T + 1), jnp.ones((T, 1)), jnp.ones((T, B))],
    ids=["short", "long", "col", "2d"],
)
def test_mask_of_wrong_shape(setup64, learner, mask):
    model, x, targets = setup64
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model, x, targets, mask)


@pytest.mark.parametrize("learner", [BPTT(), TBPTT(window=2)], ids=["BPTT", "TBPTT"])
@pytest.mark.parametrize("shape", [(T,), (T, B + 1), (T - 1, B), (T, B, N_OUT)])
def test_classification_targets_of_wrong_shape(setup64, learner, shape):
    model, x, _ = setup64
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model, x, jnp.zeros(shape, jnp.int32))


@pytest.mark.parametrize("shape", [(T, B), (T, B, N_OUT + 1), (T, B, N_OUT, 1)])
def test_mse_targets_of_wrong_shape(setup64, shape):
    model, x, _ = setup64
    with pytest.raises(ValueError, match="expected"):
        BPTT().value_and_grad(model, x, jnp.zeros(shape), loss=mse)


@pytest.mark.parametrize("learner", [BPTT(), TBPTT(window=2)], ids=["BPTT", "TBPTT"])
def test_bad_inputs_and_model(setup64, learner):
    model, x, targets = setup64
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model, x[..., :2], targets)
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model, x[0], targets)
    bad = np.asarray(x).copy()
    bad[3, 0, 1] = np.nan
    with pytest.raises(ValueError, match="time 3"):
        learner.value_and_grad(model, bad, targets)
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model.layers[0], x, targets)
    with pytest.raises(ValueError, match="expected"):
        learner.value_and_grad(model, x, targets, loss=lambda y, t: y)


def test_tbptt_rejects_sequence_loss(setup64):
    model, x, targets = setup64
    with pytest.raises(ValueError, match="BPTT") as err:
        TBPTT(window=2).value_and_grad(model, x, targets, loss=max_over_time_cross_entropy)
    assert "does not split over time" in str(err.value)


@pytest.mark.parametrize("window", [0, -1, 2.5, True, "2"])
def test_tbptt_bad_window(window):
    with pytest.raises(ValueError, match="expected"):
        TBPTT(window=window)


def test_public_eager_calls_match_compiled(x64):
    """The un-jitted public call (the one users make) agrees with its compiled form."""
    model = make_model("LSTM")
    x, targets = make_data()
    mask = jnp.asarray([1.0, 1.0, 0.0, 1.0, 2.0, 1.0])
    # TBPTT's eager argument checks are exercised by the validation tests below; its
    # eager gradient is not repeated here (one more compilation, same code path).
    loss, grads = BPTT().value_and_grad(model, x, targets, mask)
    l_jit, g_jit = value_and_grad(BPTT(), model, x, targets, mask)
    assert float(l_jit) == pytest.approx(float(loss), rel=1e-13)
    np.testing.assert_allclose(
        np.asarray(flat(g_jit)), np.asarray(flat(grads)), rtol=1e-12, atol=1e-15
    )
