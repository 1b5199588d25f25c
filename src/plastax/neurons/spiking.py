"""Spiking neuron models, each written for one neuron (DESIGN.md section 2).

All use discrete time with step ``dt = 1`` and time constants in steps.  The reset is
computed inside ``step`` from ``self.output(state)``, the spike of the previous state,
so it is part of the neuron-local Jacobian and differentiated exactly (unless
``detach_reset=True``, which stops its gradient, as in Zenke & Vogels 2021; then the
Jacobian blocks of LIF no longer depend on the state and e-prop factorises its traces).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..surrogate import AbstractSurrogate, FastSigmoid
from .base import AbstractNeuron

__all__ = ["LIF", "ALIF", "CuBaLIF", "decay_factor"]

_RESETS = ("subtract", "zero", "none")


def decay_factor(tau):
    """``exp(-1/tau)``, the per-step decay of a time constant ``tau`` (in steps).

    ``tau = 0`` means no memory (factor 0).  Works on floats and on arrays (trainable
    per-neuron time constants)."""
    if isinstance(tau, int | float):
        return math.exp(-1.0 / tau) if tau > 0 else 0.0
    return jnp.exp(-1.0 / tau)


def _check_positive(owner, **values):
    for name, value in values.items():
        if isinstance(value, int | float) and not value > 0:
            raise ValueError(
                f"{owner}.{name}: expected a positive number, received {value!r}; "
                f"pass e.g. {name}=20.0"
            )


def _check_non_negative(owner, **values):
    for name, value in values.items():
        if isinstance(value, int | float) and not value >= 0:
            raise ValueError(f"{owner}.{name}: expected a number >= 0, received {value!r}")


def _check_reset(owner, reset):
    if reset not in _RESETS:
        raise ValueError(f"{owner}.reset: expected one of {_RESETS}, received {reset!r}")


def _apply_reset(v, z, threshold, reset, detach):
    if detach:
        z = jax.lax.stop_gradient(z)
    if reset == "subtract":
        return v - z * threshold
    if reset == "zero":
        return v * (1.0 - z)
    return v


class LIF(AbstractNeuron):
    """Leaky integrate-and-fire neuron.

        z_{t-1} = H((v_{t-1} - thr) / thr)
        v_t     = alpha v_{t-1} + I_t - z_{t-1} thr        (reset by subtraction)

    with ``alpha = exp(-1/tau_mem)``.  ``reset="zero"`` uses ``v (1 - z)`` instead,
    ``reset="none"`` no reset.  Output: ``z_t = H((v_t - thr)/thr)``.
    """

    state_names = ("v",)
    n_currents = 1
    tau_mem: float = 20.0
    threshold: float = 1.0
    surrogate: AbstractSurrogate = FastSigmoid(10.0)
    reset: str = "subtract"
    detach_reset: bool = False

    def __check_init__(self):
        _check_non_negative("LIF", tau_mem=self.tau_mem)
        _check_positive("LIF", threshold=self.threshold)
        _check_reset("LIF", self.reset)

    def init_state(self):
        return (0.0,)

    def step(self, state, currents):
        (v,) = state
        z = self.output(state)
        v = decay_factor(self.tau_mem) * v + currents[0]
        return (_apply_reset(v, z, self.threshold, self.reset, self.detach_reset),)

    def output(self, state):
        (v,) = state
        return self.surrogate((v - self.threshold) / self.threshold)


class ALIF(AbstractNeuron):
    """Adaptive LIF (LSNN neuron, Bellec et al. 2018, 2020): threshold rises with spikes.

        A_{t-1} = thr + beta a_{t-1}
        z_{t-1} = H((v_{t-1} - A_{t-1}) / thr)
        v_t     = alpha v_{t-1} + I_t - z_{t-1} thr
        a_t     = rho a_{t-1} + (1 - rho) z_{t-1}

    with ``alpha = exp(-1/tau_mem)``, ``rho = exp(-1/tau_adapt)``.
    """

    state_names = ("v", "a")
    n_currents = 1
    tau_mem: float = 20.0
    tau_adapt: float = 200.0
    beta: float = 1.8
    threshold: float = 1.0
    surrogate: AbstractSurrogate = FastSigmoid(10.0)
    detach_reset: bool = False

    def __check_init__(self):
        _check_non_negative("ALIF", tau_mem=self.tau_mem, tau_adapt=self.tau_adapt, beta=self.beta)
        _check_positive("ALIF", threshold=self.threshold)

    def init_state(self):
        return (0.0, 0.0)

    def step(self, state, currents):
        v, a = state
        z = self.output(state)
        rho = decay_factor(self.tau_adapt)
        z_reset = jax.lax.stop_gradient(z) if self.detach_reset else z
        v_new = decay_factor(self.tau_mem) * v + currents[0] - z_reset * self.threshold
        a_new = rho * a + (1.0 - rho) * z
        return (v_new, a_new)

    def output(self, state):
        v, a = state
        return self.surrogate((v - self.threshold - self.beta * a) / self.threshold)


class CuBaLIF(AbstractNeuron):
    """Current-based LIF: a synaptic current filters the input before the membrane.

        i_t = alpha_syn i_{t-1} + I_t
        v_t = alpha_mem v_{t-1} + i_t - z_{t-1} thr

    with ``alpha_syn = exp(-1/tau_syn)``, ``alpha_mem = exp(-1/tau_mem)``.
    """

    state_names = ("i", "v")
    n_currents = 1
    tau_syn: float = 5.0
    tau_mem: float = 10.0
    threshold: float = 1.0
    surrogate: AbstractSurrogate = FastSigmoid(10.0)
    reset: str = "subtract"
    detach_reset: bool = False

    def __check_init__(self):
        _check_non_negative("CuBaLIF", tau_syn=self.tau_syn, tau_mem=self.tau_mem)
        _check_positive("CuBaLIF", threshold=self.threshold)
        _check_reset("CuBaLIF", self.reset)

    def init_state(self):
        return (0.0, 0.0)

    def step(self, state, currents):
        i, v = state
        z = self.output(state)
        i_new = decay_factor(self.tau_syn) * i + currents[0]
        v_new = decay_factor(self.tau_mem) * v + i_new
        return (i_new, _apply_reset(v_new, z, self.threshold, self.reset, self.detach_reset))

    def output(self, state):
        _, v = state
        return self.surrogate((v - self.threshold) / self.threshold)
