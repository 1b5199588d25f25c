"""Tests for plastax.neurons: each model against hand recursions and closed forms, the
exact (or detached) reset gradient, and the layer vectorisation against finite
differences."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastax import Layer
from plastax.neurons import ALIF, GRU, LIF, LSTM, CuBaLIF, TanhRNN, decay_factor
from plastax.neurons.base import (
    layer_blocks,
    layer_init_state,
    layer_output,
    layer_step,
    output_jacobian,
    output_param_jacobian,
)
from plastax.surrogate import AbstractSurrogate, FastSigmoid, Triangle

# ----------------------------------------------------------------------------
# helpers


class SmoothSpike(AbstractSurrogate):
    """A differentiable stand-in for a spike (a plain logistic, no custom rule), so that
    finite differences see every path the surrogate gradient sees, resets included."""

    slope: float = 2.0

    def __call__(self, x):
        return jax.nn.sigmoid(self.slope * x)


def fast_sigmoid_prime(x, slope=10.0):
    return 1.0 / (1.0 + slope * abs(x)) ** 2


def run(neuron, currents):
    """Plain Python loop: the states after each step (list of tuples of floats)."""
    # arrays, not the Python floats of init_state(): see test_step_on_python_scalars
    state = tuple(jnp.asarray(v, jnp.float64) for v in neuron.init_state())
    out = []
    for c in currents:
        state = neuron.step(state, jnp.atleast_1d(jnp.asarray(c, jnp.float64)))
        out.append(tuple(float(s) for s in state))
    return out


def sig(u):
    return 1.0 / (1.0 + math.exp(-u))


ALL_MODELS = {
    "LIF": (LIF, ("v",), 1),
    "ALIF": (ALIF, ("v", "a"), 1),
    "CuBaLIF": (CuBaLIF, ("i", "v"), 1),
    "TanhRNN": (TanhRNN, ("h",), 1),
    "LSTM": (LSTM, ("c", "h"), 4),
    "GRU": (GRU, ("h",), 4),
}


# ----------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("name", list(ALL_MODELS))
def test_state_names_and_currents(name):
    cls, names, m = ALL_MODELS[name]
    nrn = cls()
    assert nrn.state_names == names
    assert len(nrn.init_state()) == len(nrn.state_names) == nrn.n_states
    assert nrn.n_currents == m
    assert len(nrn.current_sources) == m
    assert all(s in ("both", "input", "recurrent") for s in nrn.current_sources)
    assert all(float(v) == 0.0 for v in nrn.init_state())
    s0 = tuple(jnp.asarray(v, jnp.float32) for v in nrn.init_state())
    new = nrn.step(s0, jnp.zeros(m, jnp.float32))
    assert len(new) == len(names)


@pytest.mark.parametrize("name", ["LIF", "ALIF", "CuBaLIF"])
def test_step_on_python_scalars(name):
    cls, names, m = ALL_MODELS[name]
    nrn = cls()
    new = nrn.step(nrn.init_state(), jnp.ones(m))
    assert len(new) == len(names)
    assert float(nrn.output((0.5,) * len(names))) == 0.0


def test_gru_current_sources():
    assert GRU().current_sources == ("both", "both", "input", "recurrent")
    assert LSTM().current_sources == ("both",) * 4


def test_decay_factor():
    assert decay_factor(20.0) == pytest.approx(math.exp(-1 / 20))
    assert decay_factor(0) == 0.0
    arr = decay_factor(jnp.asarray([1.0, 4.0]))
    np.testing.assert_allclose(np.asarray(arr), np.exp(-1 / np.asarray([1.0, 4.0])), rtol=1e-6)


# ----------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "make",
    [
        lambda: LIF(tau_mem=-1.0),
        lambda: LIF(tau_mem=float("nan")),
        lambda: LIF(threshold=0.0),
        lambda: LIF(threshold=-1.0),
        lambda: LIF(reset="soft"),
        lambda: ALIF(tau_mem=-5.0),
        lambda: ALIF(tau_adapt=-1.0),
        lambda: ALIF(beta=-0.1),
        lambda: ALIF(threshold=0),
        lambda: CuBaLIF(tau_syn=-1.0),
        lambda: CuBaLIF(tau_mem=-2.0),
        lambda: CuBaLIF(threshold=0.0),
        lambda: CuBaLIF(reset="hard"),
        lambda: TanhRNN(tau=-1.0),
        lambda: LIF(surrogate=FastSigmoid(slope=0.0)),
    ],
)
def test_invalid_hyperparameters(make):
    with pytest.raises(ValueError, match="expected"):
        make()


# ----------------------------------------------------------------------------
# LIF


def test_lif_no_spike_closed_form(x64):
    tau = 7.0
    alpha = math.exp(-1 / tau)
    I = [0.1, 0.3, -0.2, 0.05, 0.25, 0.0]
    states = run(LIF(tau_mem=tau), I)
    for t, (v,) in enumerate(states):
        expect = sum(alpha ** (t - k) * I[k] for k in range(t + 1))
        assert v == pytest.approx(expect, rel=1e-14, abs=1e-15)
        assert v < 1.0  # no spike, so no reset happened


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("thr", [1.0, 2.0])
def test_lif_spike_resets_on_next_step(x64, reset, thr):
    tau = 10.0
    alpha = math.exp(-1 / tau)
    nrn = LIF(tau_mem=tau, threshold=thr, reset=reset)
    I = [1.5 * thr, 0.2, 0.0, 0.3 * thr, 0.9 * thr, 0.1]
    states = run(nrn, I)
    # independent recursion: spike of the OLD state resets the NEW one
    v, ref = 0.0, []
    for c in I:
        z = 1.0 if v > thr else 0.0
        v = alpha * v + c
        v = {"subtract": v - z * thr, "zero": v * (1 - z), "none": v}[reset]
        ref.append(v)
    np.testing.assert_allclose([s[0] for s in states], ref, rtol=1e-14, atol=1e-15)
    # hand numbers for the first two steps
    assert states[0][0] == pytest.approx(1.5 * thr)
    v1 = {"subtract": alpha * 1.5 * thr + 0.2 - thr, "zero": 0.0, "none": alpha * 1.5 * thr + 0.2}[
        reset
    ]
    assert states[1][0] == pytest.approx(v1, rel=1e-14, abs=1e-15)
    # output: spike exactly where v > thr
    zs = [float(nrn.output((jnp.asarray(s[0]),))) for s in states]
    assert zs == [1.0 if s[0] > thr else 0.0 for s in states]
    assert zs[0] == 1.0


def test_lif_output_at_threshold_is_zero(x64):
    nrn = LIF(threshold=1.5)
    assert float(nrn.output((jnp.asarray(1.5),))) == 0.0
    assert float(nrn.output((jnp.asarray(1.5 + 1e-12),))) == 1.0


@pytest.mark.parametrize("thr", [1.0, 2.0])
@pytest.mark.parametrize("v_prev", [1.2, 0.7, 1.0 + 1e-3])
def test_lif_reset_is_differentiated(x64, thr, v_prev):
    tau = 20.0
    alpha = math.exp(-1 / tau)
    v_prev = v_prev * thr
    cur = jnp.asarray([0.3])
    x = (v_prev - thr) / thr
    fp = fast_sigmoid_prime(x)

    def dv(nrn):
        f = lambda v: nrn.step((v,), cur)[0]
        g_rev = float(jax.grad(f)(jnp.asarray(v_prev)))
        g_fwd = float(jax.jacfwd(f)(jnp.asarray(v_prev)))
        assert g_rev == pytest.approx(g_fwd, rel=1e-14)
        return g_rev

    # v_t = alpha v + I - thr H((v - thr)/thr)  =>  dv_t/dv = alpha - thr * H'(x) / thr
    assert dv(LIF(tau_mem=tau, threshold=thr)) == pytest.approx(alpha - fp, rel=1e-13)
    assert dv(LIF(tau_mem=tau, threshold=thr, detach_reset=True)) == pytest.approx(alpha, rel=1e-14)
    assert dv(LIF(tau_mem=tau, threshold=thr, reset="none")) == pytest.approx(alpha, rel=1e-14)
    # v_t = (alpha v + I)(1 - z)  =>  alpha (1 - z) - (alpha v + I) H'(x) / thr
    z = 1.0 if x > 0 else 0.0
    expect = alpha * (1 - z) - (alpha * v_prev + 0.3) * fp / thr
    assert dv(LIF(tau_mem=tau, threshold=thr, reset="zero")) == pytest.approx(expect, rel=1e-13)
    # the gradient w.r.t. the current is 1 regardless of the reset
    nrn = LIF(tau_mem=tau, threshold=thr)
    g_i = jax.grad(lambda c: nrn.step((jnp.asarray(v_prev),), c)[0])(cur)
    np.testing.assert_allclose(np.asarray(g_i), [1.0], rtol=1e-15)


def test_lif_surrogate_slope_enters_reset_gradient(x64):
    v_prev = 1.2
    g = {}
    for s in (1.0, 10.0):
        nrn = LIF(tau_mem=20.0, surrogate=Triangle(slope=s))
        g[s] = float(
            jax.grad(lambda v, n=nrn: n.step((v,), jnp.asarray([0.0]))[0])(jnp.asarray(v_prev))
        )
    alpha = math.exp(-1 / 20)
    # Triangle: H'(x) = s max(0, 1 - s |x|), x = 0.2
    assert g[1.0] == pytest.approx(alpha - 1.0 * 0.8, rel=1e-13)
    assert g[10.0] == pytest.approx(alpha, rel=1e-13)  # |x| = 0.2 > 1/10: outside support


# ----------------------------------------------------------------------------
# ALIF


def test_alif_recursion(x64):
    tau_m, tau_a, beta, thr = 10.0, 5.0, 1.8, 1.0
    alpha, rho = math.exp(-1 / tau_m), math.exp(-1 / tau_a)
    nrn = ALIF(tau_mem=tau_m, tau_adapt=tau_a, beta=beta, threshold=thr)
    I = [1.5, 0.0, 1.2, 0.3, 1.4, 0.0, 0.5, 2.5, 0.0]
    states = run(nrn, I)
    v, a, ref, spikes = 0.0, 0.0, [], []
    for c in I:
        A = thr + beta * a
        z = 1.0 if v > A else 0.0
        spikes.append(z)
        v, a = alpha * v + c - z * thr, rho * a + (1 - rho) * z
        ref.append((v, a))
    np.testing.assert_allclose(np.asarray(states), np.asarray(ref), rtol=1e-14, atol=1e-15)
    assert sum(spikes) >= 2  # the sequence exercises spikes and adaptation
    # adaptation matters: some state exceeds thr but not thr + beta a, so a LIF would
    # spike there and the ALIF does not
    adapted = [(v, a) for v, a in states if thr < v < thr + beta * a]
    assert adapted
    v2, a2 = adapted[0]
    assert float(nrn.output((jnp.asarray(v2), jnp.asarray(a2)))) == 0.0
    assert float(LIF(tau_mem=tau_m).output((jnp.asarray(v2),))) == 1.0
    # a is the low-pass of the PREVIOUS step's spike
    assert states[1][1] == pytest.approx((1 - rho) * 1.0, rel=1e-14)


@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("state", [(1.5, 0.1), (0.9, 0.0), (2.0, 0.4)])
def test_alif_jacobian_closed_form(x64, detach, state):
    tau_m, tau_a, beta, thr = 20.0, 50.0, 1.8, 1.3
    alpha, rho = math.exp(-1 / tau_m), math.exp(-1 / tau_a)
    nrn = ALIF(tau_mem=tau_m, tau_adapt=tau_a, beta=beta, threshold=thr, detach_reset=detach)
    v, a = state
    v *= thr
    x = (v - thr - beta * a) / thr
    fp = fast_sigmoid_prime(x)
    f = lambda s: jnp.stack(nrn.step((s[0], s[1]), jnp.asarray([0.4])))
    J = np.asarray(jax.jacfwd(f)(jnp.asarray([v, a])))
    Jr = np.asarray(jax.jacrev(f)(jnp.asarray([v, a])))
    # z_v = H'/thr, z_a = -beta H'/thr; v_t gets -thr z; a_t gets (1 - rho) z
    expect = np.array(
        [
            [alpha - (0.0 if detach else fp), 0.0 if detach else beta * fp],
            [(1 - rho) * fp / thr, rho - (1 - rho) * beta * fp / thr],
        ]
    )
    np.testing.assert_allclose(J, expect, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(Jr, J, rtol=1e-14, atol=1e-16)


# ----------------------------------------------------------------------------
# CuBaLIF


def test_cubalif_double_exponential(x64):
    ts, tm = 3.0, 8.0
    a_s, a_m = math.exp(-1 / ts), math.exp(-1 / tm)
    I = [0.2, 0.0, 0.1, -0.05, 0.0, 0.0, 0.15]
    states = run(CuBaLIF(tau_syn=ts, tau_mem=tm), I)
    for t, (i, v) in enumerate(states):
        i_ref = sum(a_s ** (t - k) * I[k] for k in range(t + 1))
        v_ref = sum(
            I[k] * (a_m ** (t - k + 1) - a_s ** (t - k + 1)) / (a_m - a_s) for k in range(t + 1)
        )
        assert i == pytest.approx(i_ref, rel=1e-13, abs=1e-15)
        assert v == pytest.approx(v_ref, rel=1e-12, abs=1e-15)
        assert v < 1.0


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_cubalif_spike_recursion(x64, reset):
    ts, tm, thr = 4.0, 6.0, 1.0
    a_s, a_m = math.exp(-1 / ts), math.exp(-1 / tm)
    I = [1.2, 0.4, 0.0, 0.0, 0.9, 0.0]
    states = run(CuBaLIF(tau_syn=ts, tau_mem=tm, threshold=thr, reset=reset), I)
    i, v, ref, n_spk = 0.0, 0.0, [], 0
    for c in I:
        z = 1.0 if v > thr else 0.0
        n_spk += z
        i = a_s * i + c
        v = a_m * v + i
        v = {"subtract": v - z * thr, "zero": v * (1 - z), "none": v}[reset]
        ref.append((i, v))
    np.testing.assert_allclose(np.asarray(states), np.asarray(ref), rtol=1e-14, atol=1e-15)
    assert n_spk >= 1


@pytest.mark.parametrize("detach", [False, True])
def test_cubalif_jacobian_closed_form(x64, detach):
    ts, tm, thr = 4.0, 6.0, 1.0
    a_s, a_m = math.exp(-1 / ts), math.exp(-1 / tm)
    nrn = CuBaLIF(tau_syn=ts, tau_mem=tm, threshold=thr, detach_reset=detach)
    i, v = 0.3, 1.25
    fp = fast_sigmoid_prime((v - thr) / thr)
    f = lambda s, c: jnp.stack(nrn.step((s[0], s[1]), c))
    J, D = jax.jacfwd(f, argnums=(0, 1))(jnp.asarray([i, v]), jnp.asarray([0.1]))
    expect = np.array([[a_s, 0.0], [a_s, a_m - (0.0 if detach else fp)]])
    np.testing.assert_allclose(np.asarray(J), expect, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(np.asarray(D), [[1.0], [1.0]], rtol=1e-15)


# ----------------------------------------------------------------------------
# rate models


@pytest.mark.parametrize("tau", [0.0, 3.0])
def test_tanh_rnn(x64, tau):
    alpha = math.exp(-1 / tau) if tau > 0 else 0.0
    I = [0.5, -1.0, 2.0, 0.1]
    states = run(TanhRNN(tau=tau), I)
    h = 0.0
    for c, (got,) in zip(I, states, strict=True):
        h = alpha * h + (1 - alpha) * math.tanh(c)
        assert got == pytest.approx(h, rel=1e-14)
    if tau == 0.0:
        assert states[1][0] == pytest.approx(math.tanh(-1.0), rel=1e-15)
    nrn = TanhRNN(tau=tau)
    assert float(nrn.output(states[-1])) == states[-1][0]


def test_lstm_textbook(x64):
    rng = np.random.default_rng(1)
    I = rng.normal(size=(6, 4))
    states = run(LSTM(), list(I))
    c = h = 0.0
    for cur, got in zip(I, states, strict=True):
        i, f, g, o = cur
        c = sig(f) * c + sig(i) * math.tanh(g)
        h = sig(o) * math.tanh(c)
        np.testing.assert_allclose(got, (c, h), rtol=1e-14)
    assert float(LSTM().output(states[-1])) == states[-1][1]


def test_gru_textbook(x64):
    rng = np.random.default_rng(2)
    I = rng.normal(size=(6, 4))
    states = run(GRU(), list(I))
    h = 0.0
    for cur, (got,) in zip(I, states, strict=True):
        r, u = sig(cur[0]), sig(cur[1])
        n = math.tanh(cur[2] + r * cur[3])
        h = (1 - u) * n + u * h
        assert got == pytest.approx(h, rel=1e-14)


# ----------------------------------------------------------------------------
# layer vectorisation


def _layer_models():
    """(name, neuron, names of per-neuron parameters) for the (B=2, n=3) layer tests;
    spiking models use SmoothSpike so finite differences see the reset path too."""
    n3 = lambda *v: jnp.asarray(v, jnp.float64)
    return [
        ("LIF", LIF(tau_mem=8.0, surrogate=SmoothSpike()), ()),
        ("LIF-zero", LIF(tau_mem=8.0, reset="zero", surrogate=SmoothSpike()), ()),
        (
            "LIF-params",
            LIF(tau_mem=n3(4.0, 9.0, 20.0), threshold=n3(0.8, 1.0, 1.5), surrogate=SmoothSpike()),
            ("tau_mem", "threshold"),
        ),
        ("ALIF", ALIF(tau_mem=6.0, tau_adapt=12.0, surrogate=SmoothSpike()), ()),
        ("ALIF-beta", ALIF(beta=n3(0.5, 1.0, 2.0), surrogate=SmoothSpike()), ("beta",)),
        ("CuBaLIF", CuBaLIF(surrogate=SmoothSpike()), ()),
        ("CuBaLIF-tau", CuBaLIF(tau_syn=n3(2.0, 3.0, 4.0), surrogate=SmoothSpike()), ("tau_syn",)),
        ("TanhRNN", TanhRNN(), ()),
        ("TanhRNN-tau", TanhRNN(tau=n3(1.0, 2.0, 5.0)), ("tau",)),
        ("LSTM", LSTM(), ()),
        ("GRU", GRU(), ()),
    ]


# Built inside the x64 tests (float64 parameters).  The plain LIF / ALIF / CuBaLIF /
# TanhRNN paths are covered by their variants with per-neuron parameters.
LAYER_IDS = ["LIF-zero", "LIF-params", "ALIF-beta", "CuBaLIF-tau", "TanhRNN-tau", "LSTM", "GRU"]


def _model(name):
    return {k: (nrn, p) for k, nrn, p in _layer_models()}[name]


def _layer_data(nrn, B=2, n=3, seed=0):
    rng = np.random.default_rng(seed)
    d, m = nrn.n_states, nrn.n_currents
    s = jnp.asarray(rng.uniform(-0.5, 2.0, size=(B, n, d)))
    c = jnp.asarray(rng.normal(size=(B, n, m)))
    return s, c


def _fd(f, x, eps=1e-6):
    """Central differences of f (array -> array) w.r.t. every element of x, all
    perturbations evaluated in one vmapped, jitted call."""
    x = jnp.asarray(x, jnp.float64)
    basis = eps * jnp.eye(x.size, dtype=jnp.float64).reshape((x.size,) + x.shape)
    fv = jax.jit(jax.vmap(f))
    diff = (fv(x + basis) - fv(x - basis)) / (2 * eps)  # (x.size,) + f.shape
    return np.moveaxis(np.asarray(diff), 0, -1)  # f.shape + (x.size,)


@pytest.mark.parametrize("name", LAYER_IDS)
def test_layer_step_and_output_match_single_neuron(x64, name):
    nrn, params = _model(name)
    s, c = _layer_data(nrn)
    B, n, d = s.shape
    new = layer_step(nrn, s, c)
    z = layer_output(nrn, s)
    assert new.shape == (B, n, d) and z.shape == (B, n)
    assert new.dtype == jnp.float64 and z.dtype == jnp.float64
    for i in range(n):
        # neuron i sees its own value of every per-neuron parameter
        one = jax.tree.map(lambda x, i=i: x[i] if isinstance(x, jax.Array) else x, nrn)
        for b in range(B):
            st = tuple(s[b, i, k] for k in range(d))
            np.testing.assert_allclose(
                np.asarray(jnp.stack(one.step(st, c[b, i]))),
                np.asarray(new[b, i]),
                rtol=1e-15,
                atol=1e-15,
            )
            assert float(one.output(st)) == pytest.approx(float(z[b, i]), rel=1e-15)
    s0 = layer_init_state(nrn, B, n, jnp.float64)
    assert s0.shape == (B, n, d)
    np.testing.assert_array_equal(np.asarray(s0), 0.0)


@pytest.mark.parametrize("name", LAYER_IDS)
def test_layer_blocks_against_finite_differences(x64, name):
    nrn, params = _model(name)
    s, c = _layer_data(nrn)
    B, n, d = s.shape
    m = c.shape[-1]
    blocks = eqx.filter_jit(layer_blocks)(nrn, s, c)  # jit only to keep the suite fast
    np.testing.assert_allclose(
        np.asarray(blocks.s_new), np.asarray(layer_step(nrn, s, c)), rtol=1e-13, atol=1e-15
    )
    assert blocks.J.shape == (B, n, d, d)
    assert blocks.D.shape == (B, n, d, m)
    assert blocks.P.shape == (B, n, d, len(params))

    # Full finite-difference Jacobians of the whole layer; they must be block-diagonal
    # over (batch, neuron) with J and D as the blocks.
    fd_s = _fd(lambda x: layer_step(nrn, x, c), s).reshape(B, n, d, B, n, d)
    fd_c = _fd(lambda x: layer_step(nrn, s, x), c).reshape(B, n, d, B, n, m)
    J_full = np.zeros_like(fd_s)
    D_full = np.zeros_like(fd_c)
    for b in range(B):
        for i in range(n):
            J_full[b, i, :, b, i, :] = blocks.J[b, i]
            D_full[b, i, :, b, i, :] = blocks.D[b, i]
    np.testing.assert_allclose(J_full, fd_s, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(D_full, fd_c, rtol=1e-7, atol=1e-8)
    if name != "TanhRNN":  # tau = 0: the vanilla cell keeps no memory of its own, J = 0
        assert np.any(np.abs(np.asarray(blocks.J)) > 1e-3)

    # P: one column per per-neuron parameter (field order); neuron i depends only on phi_i
    for k, pname in enumerate(params):
        value = getattr(nrn, pname)

        def with_param(v, pname=pname):
            return layer_step(_replace(nrn, pname, v), s, c)

        fd_p = _fd(with_param, value).reshape(B, n, d, n)
        P_full = np.zeros_like(fd_p)
        for i in range(n):
            P_full[:, i, :, i] = blocks.P[:, i, :, k]
        np.testing.assert_allclose(P_full, fd_p, rtol=1e-7, atol=1e-8)
        assert np.any(np.abs(np.asarray(blocks.P[..., k])) > 1e-6)


def _replace(module, field, value):
    return eqx.tree_at(lambda mdl: getattr(mdl, field), module, value)


@pytest.mark.parametrize("name", ["ALIF", "CuBaLIF", "LIF-params", "LSTM"])
def test_output_jacobians_against_finite_differences(x64, name):
    nrn, params = _model(name)
    s, _ = _layer_data(nrn, seed=3)
    B, n, d = s.shape
    z, psi = eqx.filter_jit(output_jacobian)(nrn, s)
    np.testing.assert_allclose(
        np.asarray(z), np.asarray(layer_output(nrn, s)), rtol=1e-13, atol=1e-15
    )
    fd = _fd(lambda x: layer_output(nrn, x), s).reshape(B, n, B, n, d)
    full = np.zeros_like(fd)
    for b in range(B):
        for i in range(n):
            full[b, i, b, i, :] = psi[b, i]
    np.testing.assert_allclose(full, fd, rtol=1e-7, atol=1e-8)
    dz = eqx.filter_jit(output_param_jacobian)(nrn, s)
    assert dz.shape == (B, n, len(params))
    if "threshold" in params:  # a trainable threshold enters the output directly
        k = params.index("threshold")
        fd = _fd(lambda v: layer_output(_replace(nrn, "threshold", v), s), nrn.threshold).reshape(
            B, n, n
        )
        np.testing.assert_allclose(
            np.asarray(dz[..., k]), np.einsum("bii->bi", fd), rtol=1e-7, atol=1e-8
        )


def test_lif_layer_blocks_with_spike_surrogate(x64):
    """With the real surrogate (Heaviside forward) the blocks are the hand formulas."""
    tau = jnp.asarray([5.0, 10.0, 20.0])
    thr = 1.0
    nrn = LIF(tau_mem=tau, threshold=thr)
    v = jnp.asarray([[0.5, 1.2, 1.05], [2.0, -0.3, 0.99]])  # (B, n)
    I = jnp.asarray([[0.1, 0.2, 0.3], [0.0, -0.1, 0.4]])
    blocks = layer_blocks(nrn, v[..., None], I[..., None])
    alpha = np.exp(-1 / np.asarray(tau))
    vn = np.asarray(v)
    z = (vn > thr).astype(float)
    fp = fast_sigmoid_prime((vn - thr) / thr)
    np.testing.assert_allclose(
        np.asarray(blocks.s_new[..., 0]), alpha * vn + np.asarray(I) - z * thr, rtol=1e-14
    )
    np.testing.assert_allclose(np.asarray(blocks.J[..., 0, 0]), alpha - fp, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(blocks.D[..., 0, 0]), 1.0, rtol=1e-15)
    # d alpha / d tau = exp(-1/tau) / tau^2
    np.testing.assert_allclose(
        np.asarray(blocks.P[..., 0, 0]), vn * alpha / np.asarray(tau) ** 2, rtol=1e-13
    )
    detached = layer_blocks(LIF(tau_mem=tau, detach_reset=True), v[..., None], I[..., None])
    np.testing.assert_allclose(
        np.asarray(detached.J[..., 0, 0]), np.broadcast_to(alpha, (2, 3)), rtol=1e-15
    )


def test_per_neuron_parameter_gives_each_neuron_its_own_value(x64):
    taus = jnp.asarray([3.0, 10.0, 40.0])
    nrn = LIF(tau_mem=taus)
    T, B = 8, 2
    I = 0.3 * jnp.ones((B, 3, 1))
    s = layer_init_state(nrn, B, 3, jnp.float64)
    traj = []
    for _ in range(T):
        s = layer_step(nrn, s, I)
        traj.append(s[..., 0])
    traj = np.asarray(jnp.stack(traj))  # (T, B, n)
    # every neuron follows its own scalar LIF
    for i, tau in enumerate([3.0, 10.0, 40.0]):
        ref = [v for (v,) in run(LIF(tau_mem=tau), [0.3] * T)]
        np.testing.assert_allclose(traj[:, 0, i], ref, rtol=1e-14)
        np.testing.assert_allclose(traj[:, 1, i], ref, rtol=1e-14)
    assert not np.allclose(traj[:, 0, 0], traj[:, 0, 1])
    assert not np.allclose(traj[:, 0, 1], traj[:, 0, 2])

    # equal values: identical trajectories, still a non-zero parameter block
    same = LIF(tau_mem=jnp.full(3, 20.0))
    blocks = layer_blocks(same, jnp.full((B, 3, 1), 0.5), I)
    assert blocks.P.shape == (B, 3, 1, 1)
    np.testing.assert_allclose(
        np.asarray(blocks.P[..., 0, 0]), 0.5 * math.exp(-1 / 20) / 400.0, rtol=1e-13
    )


def test_layer_rejects_per_neuron_parameter_of_wrong_shape():
    with pytest.raises(ValueError, match="expected"):
        Layer(LIF(tau_mem=jnp.full(4, 20.0)), 3)
    Layer(LIF(tau_mem=jnp.full(3, 20.0)), 3)  # the right shape is accepted
    Layer(LIF(tau_mem=jnp.asarray(20.0)), 3)  # a scalar array is broadcast


def test_layer_functions_under_jit(x64):
    nrn = ALIF(beta=jnp.asarray([0.5, 1.0, 2.0]))
    s, c = _layer_data(nrn)
    eager = layer_blocks(nrn, s, c)
    jitted = eqx.filter_jit(layer_blocks)(nrn, s, c)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-14, atol=1e-15)
