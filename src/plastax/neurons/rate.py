"""Non-spiking cells written per neuron: tanh rate unit, LSTM and GRU.

Each neuron's currents are rows of ``[x_t, h_{t-1}] @ W + b``; the gates are computed
per neuron from its own currents, so the models fit the one-neuron form of
DESIGN.md section 2 and get exact neuron-local traces from ``jax.jacfwd``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import AbstractNeuron
from .spiking import _check_non_negative, decay_factor

__all__ = ["TanhRNN", "LSTM", "GRU"]


class TanhRNN(AbstractNeuron):
    """Rate unit ``h_t = alpha h_{t-1} + (1 - alpha) tanh(I_t)``, ``alpha = exp(-1/tau)``.

    With the default ``tau = 0`` it is the vanilla RNN cell ``h_t = tanh(W x + U h + b)``
    and keeps no memory of its own (all memory is in the recurrent weights)."""

    state_names = ("h",)
    n_currents = 1
    tau: float = 0.0

    def __check_init__(self):
        _check_non_negative("TanhRNN", tau=self.tau)

    def init_state(self):
        return (0.0,)

    def step(self, state, currents):
        (h,) = state
        alpha = decay_factor(self.tau)
        return (alpha * h + (1.0 - alpha) * jnp.tanh(currents[0]),)

    def output(self, state):
        return state[0]


class LSTM(AbstractNeuron):
    """LSTM unit (Hochreiter & Schmidhuber 1997) per neuron; currents (i, f, g, o).

    c_t = sig(I_f) c_{t-1} + sig(I_i) tanh(I_g),   h_t = sig(I_o) tanh(c_t)
    """

    state_names = ("c", "h")
    n_currents = 4

    def init_state(self):
        return (0.0, 0.0)

    def step(self, state, currents):
        c, _ = state
        i, f, g, o = (currents[k] for k in range(4))
        c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return (c_new, jax.nn.sigmoid(o) * jnp.tanh(c_new))

    def output(self, state):
        return state[1]


class GRU(AbstractNeuron):
    """GRU unit (Cho et al. 2014) per neuron, in the convention of PyTorch / equinox.

    Currents (r, u, n_x, n_h): the candidate's input part ``n_x`` sees only the layer's
    input and its recurrent part ``n_h`` only the recurrent input, so the reset gate can
    scale the recurrent part alone:

        r = sig(I_r),  u = sig(I_u),  n = tanh(I_nx + r I_nh),  h_t = (1 - u) n + u h_{t-1}
    """

    state_names = ("h",)
    n_currents = 4

    @property
    def current_sources(self):
        return ("both", "both", "input", "recurrent")

    def init_state(self):
        return (0.0,)

    def step(self, state, currents):
        (h,) = state
        r = jax.nn.sigmoid(currents[0])
        u = jax.nn.sigmoid(currents[1])
        n = jnp.tanh(currents[2] + r * currents[3])
        return ((1.0 - u) * n + u * h,)

    def output(self, state):
        return state[0]
