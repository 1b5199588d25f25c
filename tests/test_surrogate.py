"""Tests for plastax.surrogate: Heaviside forward, documented pseudo-derivatives backward."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastax.surrogate import Arctan, FastSigmoid, Sigmoid, Triangle, heaviside

# ----------------------------------------------------------------------------
# independent references (numpy, float64)


def _np_sigmoid(u):
    # Numerically stable logistic, written without jax.
    return np.where(
        u >= 0, 1.0 / (1.0 + np.exp(-np.abs(u))), np.exp(-np.abs(u)) / (1.0 + np.exp(-np.abs(u)))
    )


def _ref_fast_sigmoid(x, s):
    return 1.0 / (1.0 + s * np.abs(x)) ** 2


def _ref_arctan(x, s):
    return s / (1.0 + (math.pi * s * x) ** 2)


def _ref_triangle(x, s):
    return s * np.maximum(0.0, 1.0 - s * np.abs(x))


def _ref_sigmoid(x, s):
    # s * sig(s x) * (1 - sig(s x)) = s * sig(s x) * sig(-s x), evaluated stably.
    e = np.exp(-np.abs(s * x))
    return s * e / (1.0 + e) ** 2


FORMULAS = {
    FastSigmoid: _ref_fast_sigmoid,
    Arctan: _ref_arctan,
    Triangle: _ref_triangle,
    Sigmoid: _ref_sigmoid,
}
CLASSES = list(FORMULAS)
# derivative at x = 0, read off each formula by hand
AT_ZERO = {
    FastSigmoid: lambda s: 1.0,
    Arctan: lambda s: s,
    Triangle: lambda s: s,
    Sigmoid: lambda s: s / 4.0,
}
# integral of the pseudo-derivative over [-L, L], by hand
INTEGRAL = {
    FastSigmoid: lambda s, L: 2.0 / s * (1.0 - 1.0 / (1.0 + s * L)),
    Arctan: lambda s, L: 2.0 / math.pi * math.atan(math.pi * s * L),
    Triangle: lambda s, L: 1.0 if L >= 1.0 / s else 2.0 * (s * L - 0.5 * (s * L) ** 2),
    Sigmoid: lambda s, L: 2.0 * float(_np_sigmoid(np.asarray(s * L))) - 1.0,
}


def _grid(slope):
    """Points on both sides of 0, inside and outside the triangle's support; avoid the
    kinks |x| = 1/slope and x = 0 where the formulas are not differentiable."""
    u = np.concatenate([np.linspace(-3.0, 3.0, 121), [-1e-9, 1e-9, 0.37, -2.71]])
    u = u[(np.abs(np.abs(u) - 1.0) > 1e-6)]
    return u / slope


# ----------------------------------------------------------------------------
# forward


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_forward_is_heaviside_in_input_dtype(cls, dtype):
    spike = cls(slope=3.0)
    x = jnp.asarray([-2.0, -1e-3, -0.0, 0.0, 1e-3, 0.5, 7.0], dtype)
    z = spike(x)
    assert z.dtype == dtype
    np.testing.assert_array_equal(np.asarray(z, np.float32), [0, 0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("cls", CLASSES)
def test_forward_is_heaviside_float64(x64, cls):
    spike = cls(slope=2.0)
    # (no subnormals: XLA on CPU flushes them to zero)
    x = jnp.asarray([-1e300, -1e-300, -0.0, 0.0, 1e-300, 1.0, 1e300], jnp.float64)
    z = spike(x)
    assert z.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(z), [0, 0, 0, 0, 1, 1, 1])
    # the forward does not depend on the slope
    np.testing.assert_array_equal(np.asarray(cls(slope=50.0)(x)), np.asarray(z))


def test_heaviside_helper():
    x = jnp.asarray([-1.0, 0.0, 2.0], jnp.float32)
    assert heaviside(x).dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(heaviside(x)), [0.0, 0.0, 1.0])


# ----------------------------------------------------------------------------
# pseudo-derivatives, reverse and forward mode


@pytest.mark.parametrize("cls", CLASSES)
def test_python_scalar_input(cls):
    spike = cls(slope=2.0)
    assert float(spike(0.3)) == 1.0
    assert float(spike(-0.3)) == 0.0
    assert float(jax.grad(spike)(0.0)) == AT_ZERO[cls](2.0)


@pytest.mark.parametrize("slope", [0.5, 1.0, 10.0])
@pytest.mark.parametrize("cls", CLASSES)
def test_grad_equals_formula(x64, cls, slope):
    spike = cls(slope=slope)
    x = _grid(slope)
    got = jax.vmap(jax.grad(spike))(jnp.asarray(x, jnp.float64))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(got), FORMULAS[cls](x, slope), rtol=1e-12, atol=0)


@pytest.mark.parametrize("slope", [0.5, 10.0])
@pytest.mark.parametrize("cls", CLASSES)
def test_jvp_and_jacfwd_equal_formula(x64, cls, slope):
    spike = cls(slope=slope)
    x = _grid(slope)
    xj = jnp.asarray(x, jnp.float64)
    dx = np.random.default_rng(0).normal(size=x.shape)
    primal, tangent = jax.jvp(spike, (xj,), (jnp.asarray(dx),))
    np.testing.assert_array_equal(np.asarray(primal), (x > 0).astype(np.float64))
    np.testing.assert_allclose(np.asarray(tangent), FORMULAS[cls](x, slope) * dx, rtol=1e-12)
    # jacfwd, scalar by scalar under vmap, and as a (diagonal) matrix
    d = jax.vmap(jax.jacfwd(spike))(xj)
    np.testing.assert_allclose(np.asarray(d), FORMULAS[cls](x, slope), rtol=1e-12, atol=0)
    jac = jax.jacfwd(spike)(xj[:20])
    np.testing.assert_allclose(
        np.asarray(jac), np.diag(FORMULAS[cls](x[:20], slope)), rtol=1e-12, atol=0
    )
    # reverse mode sees the same derivative as forward mode
    jrev = jax.jacrev(spike)(xj[:20])
    np.testing.assert_allclose(np.asarray(jrev), np.asarray(jac), rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", CLASSES)
def test_derivative_at_zero_and_slope_dependence(x64, cls):
    for slope in (0.25, 1.0, 4.0, 25.0):
        g0 = float(jax.grad(cls(slope=slope))(jnp.asarray(0.0)))
        assert g0 == pytest.approx(AT_ZERO[cls](slope), rel=1e-12)
    # the slope rescales the derivative exactly as the formula says
    x = jnp.asarray([0.05, -0.1, 0.3], jnp.float64)
    g_lo = np.asarray(jax.vmap(jax.grad(cls(slope=1.0)))(x))
    g_hi = np.asarray(jax.vmap(jax.grad(cls(slope=3.0)))(x))
    np.testing.assert_allclose(g_lo, FORMULAS[cls](np.asarray(x), 1.0), rtol=1e-12)
    np.testing.assert_allclose(g_hi, FORMULAS[cls](np.asarray(x), 3.0), rtol=1e-12)
    assert not np.allclose(g_lo, g_hi)


def test_triangle_support(x64):
    spike = Triangle(slope=2.0)
    x = jnp.asarray([-0.5, 0.5, -0.75, 0.9, 10.0], jnp.float64)  # |x| >= 1/slope
    np.testing.assert_array_equal(np.asarray(jax.vmap(jax.grad(spike))(x)), 0.0)


@pytest.mark.parametrize("slope", [0.5, 1.0, 7.0])
@pytest.mark.parametrize("cls", CLASSES)
def test_integral_of_pseudo_derivative(x64, cls, slope):
    """Arctan, Triangle and Sigmoid integrate to 1 over the real line (FastSigmoid to
    2/slope); the quadrature on [-L, L] must match the antiderivative by hand."""
    L = 2000.0 / slope
    pos = np.concatenate(
        [np.linspace(0.0, 5.0 / slope, 20_001), np.geomspace(5.0 / slope, L, 20_001)[1:]]
    )
    x = np.concatenate([-pos[::-1], pos[1:]])
    y = np.asarray(jax.vmap(jax.grad(cls(slope=slope)))(jnp.asarray(x)))
    integral = np.trapezoid(y, x)
    assert integral == pytest.approx(INTEGRAL[cls](slope, L), rel=1e-6)
    if cls is FastSigmoid:
        assert integral == pytest.approx(2.0 / slope, rel=2e-3)
    else:
        assert integral == pytest.approx(1.0, abs=5e-4)


def test_sigmoid_pseudo_derivative_accurate_and_even_in_float32():
    slope = 5.0
    x = np.linspace(0.5, 4.0, 8)  # s x in [2.5, 20]; true values >= 1e-8, representable
    g = jax.vmap(jax.grad(Sigmoid(slope=slope)))
    pos = np.asarray(g(jnp.asarray(x, jnp.float32)), np.float64)
    neg = np.asarray(g(jnp.asarray(-x, jnp.float32)), np.float64)
    ref = _ref_sigmoid(x, slope)
    np.testing.assert_allclose(neg, ref, rtol=1e-4)
    np.testing.assert_allclose(pos, ref, rtol=1e-4)


@pytest.mark.parametrize("cls", CLASSES)
def test_pseudo_derivatives_are_even(x64, cls):
    slope = 2.0
    x = np.linspace(0.01, 2.0, 50) / slope  # |s x| <= 2: no cancellation issue anywhere
    g = jax.vmap(jax.grad(cls(slope=slope)))
    np.testing.assert_allclose(
        np.asarray(g(jnp.asarray(x))), np.asarray(g(jnp.asarray(-x))), rtol=1e-13
    )


# ----------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("bad", [0, 0.0, -1.0, -3, float("nan"), "10"])
def test_invalid_slope_raises(cls, bad):
    with pytest.raises(ValueError, match="expected"):
        cls(slope=bad)


@pytest.mark.parametrize("cls", CLASSES)
def test_default_and_integer_slopes_are_accepted(cls):
    assert cls().slope > 0
    assert float(jax.grad(cls(slope=2))(jnp.asarray(0.0))) == AT_ZERO[cls](2.0)


# ----------------------------------------------------------------------------
# transformations


@pytest.mark.parametrize("cls", CLASSES)
def test_jit_and_vmap(cls):
    spike = cls(slope=4.0)
    x = jnp.linspace(-1.0, 1.0, 33, dtype=jnp.float32)
    eager_z = spike(x)
    eager_g = jnp.stack([jax.grad(spike)(xi) for xi in x[:5]])
    np.testing.assert_array_equal(np.asarray(jax.jit(spike)(x)), np.asarray(eager_z))
    np.testing.assert_array_equal(np.asarray(jax.vmap(spike)(x)), np.asarray(eager_z))
    g_jit_vmap = jax.jit(jax.vmap(jax.grad(spike)))(x)
    np.testing.assert_allclose(np.asarray(g_jit_vmap[:5]), np.asarray(eager_g), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(g_jit_vmap), FORMULAS[cls](np.asarray(x, np.float64), 4.0), rtol=1e-5, atol=1e-7
    )
    # the module itself passes through equinox's filtered transformations
    z = eqx.filter_jit(lambda s, v: s(v))(spike, x)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(eager_z))
    g = eqx.filter_jit(lambda s, v: jax.vmap(jax.grad(s))(v))(spike, x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_jit_vmap), rtol=1e-6)
    # batched 2-D input under vmap of jacfwd
    x2 = x.reshape(3, 11)
    d = jax.vmap(jax.vmap(jax.jacfwd(spike)))(x2)
    np.testing.assert_allclose(np.asarray(d).ravel(), np.asarray(g_jit_vmap), rtol=1e-6)


def test_surrogate_as_jax_jit_argument():
    spike = FastSigmoid(slope=10.0)
    g = jax.jit(lambda s, v: jax.grad(s)(v))(spike, jnp.asarray(0.3, jnp.float32))
    assert float(g) == pytest.approx(1.0 / 16.0)
