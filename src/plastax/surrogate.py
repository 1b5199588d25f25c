"""Surrogate-gradient spike functions.

Each spike function is the Heaviside step ``H(x) = 1[x > 0]`` on the forward pass and
a smooth pseudo-derivative on the backward pass.  They are ``jax.custom_jvp``
functions, so forward mode (``jax.jacfwd``, used by the online learners to derive
eligibility traces) and reverse mode (``jax.grad``, used by BPTT) see the same
derivative.  The slope is a static, non-differentiable parameter.

| class         | pseudo-derivative ``dH/dx``                  | reference                  |
|---------------|----------------------------------------------|----------------------------|
| FastSigmoid   | ``1 / (1 + slope |x|)^2``                    | Zenke & Ganguli 2018       |
| Arctan        | ``slope / (1 + (pi slope x)^2)``             | Fang et al. 2021           |
| Triangle      | ``slope * max(0, 1 - slope |x|)``            | Bellec et al. 2018, 2020   |
| Sigmoid       | ``slope * sig(slope x) (1 - sig(slope x))``  | Neftci et al. 2019         |

Example:
    >>> import jax, jax.numpy as jnp
    >>> from plastax.surrogate import FastSigmoid
    >>> spike = FastSigmoid(slope=10.0)
    >>> float(spike(jnp.asarray(0.3)))
    1.0
    >>> float(jax.grad(spike)(jnp.asarray(0.3)))  # 1 / (1 + 10 * 0.3)^2
    0.0625
"""

from __future__ import annotations

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["AbstractSurrogate", "FastSigmoid", "Arctan", "Triangle", "Sigmoid", "heaviside"]


def heaviside(x):
    """The spike non-linearity ``1[x > 0]`` in the (floating) dtype of ``x``."""
    x = jnp.asarray(x)
    return (x > 0).astype(jnp.result_type(x, float))


def _make_spike_fn(pseudo_derivative):
    @functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
    def spike(x, slope):
        return heaviside(x)

    @spike.defjvp
    def _jvp(slope, primals, tangents):
        (x,), (dx,) = primals, tangents
        return spike(x, slope), pseudo_derivative(x, slope) * dx

    return spike


_fast_sigmoid = _make_spike_fn(lambda x, s: 1.0 / (1.0 + s * jnp.abs(x)) ** 2)
_arctan = _make_spike_fn(lambda x, s: s / (1.0 + (math.pi * s * x) ** 2))
_triangle = _make_spike_fn(lambda x, s: s * jnp.maximum(0.0, 1.0 - s * jnp.abs(x)))


def _sigmoid_derivative(x, s):
    # sig(sx) sig(-sx) == sig(sx)(1 - sig(sx)) without the cancellation for large sx
    return s * jax.nn.sigmoid(s * x) * jax.nn.sigmoid(-s * x)


_sigmoid = _make_spike_fn(_sigmoid_derivative)


class AbstractSurrogate(eqx.Module):
    """A spike function: Heaviside forward, smooth pseudo-derivative backward."""

    slope: eqx.AbstractVar[float]

    @abc.abstractmethod
    def __call__(self, x):
        """Spike (0 or 1) where ``x > 0``; differentiable through the surrogate."""

    def __check_init__(self):
        if not (isinstance(self.slope, int | float) and self.slope > 0):
            raise ValueError(
                f"surrogate slope: expected a positive number, received {self.slope!r}; "
                "pass e.g. slope=10.0"
            )


class FastSigmoid(AbstractSurrogate):
    """SuperSpike surrogate: ``dH/dx = 1 / (1 + slope |x|)^2``."""

    slope: float = eqx.field(static=True, default=10.0)

    def __call__(self, x):
        return _fast_sigmoid(x, float(self.slope))


class Arctan(AbstractSurrogate):
    """Arctan surrogate: ``dH/dx = slope / (1 + (pi slope x)^2)`` (integrates to 1)."""

    slope: float = eqx.field(static=True, default=1.0)

    def __call__(self, x):
        return _arctan(x, float(self.slope))


class Triangle(AbstractSurrogate):
    """Piecewise-linear surrogate: ``dH/dx = slope max(0, 1 - slope |x|)`` (integrates to 1)."""

    slope: float = eqx.field(static=True, default=1.0)

    def __call__(self, x):
        return _triangle(x, float(self.slope))


class Sigmoid(AbstractSurrogate):
    """Logistic surrogate: ``dH/dx = slope sig(slope x)(1 - sig(slope x))`` (integrates to 1)."""

    slope: float = eqx.field(static=True, default=5.0)

    def __call__(self, x):
        return _sigmoid(x, float(self.slope))
