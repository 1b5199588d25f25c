"""The abstract neuron, written for ONE neuron, and its vectorisation over a layer.

A neuron model is a pure function of scalars: ``step(state, currents) -> new state``
and ``output(state) -> spike or activation``.  plastax vectorises it over neurons and
batch with ``jax.vmap`` and derives the neuron-local Jacobian blocks

    J = ds_t/ds_{t-1}   (d x d per neuron)
    D = ds_t/dI_t       (d x m per neuron)
    P = ds_t/dphi       (d x k per neuron, for trainable per-neuron parameters phi)

with ``jax.jacfwd``.  No eligibility trace is ever written by hand.

Hyperparameters (time constants, thresholds, surrogate) are plain Python numbers or
modules and are static.  A field given as a floating-point array of shape ``(n,)`` is a
*trainable per-neuron parameter*: inside ``step`` it is a scalar (the neuron's own
value), and it gets gradients and neuron-local traces like any weight.
"""

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

__all__ = ["AbstractNeuron", "LocalBlocks", "CURRENT_SOURCES"]

CURRENT_SOURCES = ("both", "input", "recurrent")


class AbstractNeuron(eqx.Module):
    """One neuron: ``d`` state variables, ``m`` synaptic currents, one output.

    Subclasses define the class variables ``state_names`` (length ``d``) and
    ``n_currents`` (``m``) and the three methods below, on scalars.  Optionally
    ``current_sources`` (length ``m``) says which presynaptic population feeds each
    current: ``"both"`` (input and recurrent, the default), ``"input"`` only or
    ``"recurrent"`` only (a GRU's candidate current, for instance).

    Example (a leaky integrator with a soft output, written for one neuron):

        >>> import jax.numpy as jnp
        >>> class Leaky(AbstractNeuron):
        ...     state_names = ("v",)
        ...     n_currents = 1
        ...     decay: float = 0.9
        ...     def init_state(self):
        ...         return (0.0,)
        ...     def step(self, state, currents):
        ...         (v,) = state
        ...         return (self.decay * v + currents[0],)
        ...     def output(self, state):
        ...         return jnp.tanh(state[0])
        >>> Leaky().step((1.0,), jnp.array([0.5]))
        (1.4,)
    """

    state_names: eqx.AbstractClassVar[tuple[str, ...]]
    n_currents: eqx.AbstractClassVar[int]

    @abc.abstractmethod
    def init_state(self) -> tuple:
        """Initial state: a tuple of ``d`` scalars."""

    @abc.abstractmethod
    def step(self, state: tuple, currents: Float[Array, " m"]) -> tuple:
        """New state (``d`` scalars) from the old state and this step's ``m`` currents.

        A spiking model resets with ``self.output(state)`` here, so the reset is part
        of the neuron-local Jacobian and is differentiated exactly."""

    @abc.abstractmethod
    def output(self, state: tuple):
        """The neuron's output: a spike (with surrogate gradient) or an activation."""

    @property
    def current_sources(self) -> tuple[str, ...]:
        return ("both",) * self.n_currents

    @property
    def n_states(self) -> int:
        return len(self.state_names)


# --------------------------------------------------------------------------------------
# Vectorisation over a layer.  A "layer state" is an array (B, n, d).


def split_neuron(neuron: AbstractNeuron):
    """(trainable per-neuron arrays, static rest) of a neuron module."""
    return eqx.partition(neuron, eqx.is_inexact_array)


def per_neuron_params(neuron: AbstractNeuron):
    """The trainable per-neuron parameters: a pytree of ``(n,)`` arrays (maybe empty)."""
    return split_neuron(neuron)[0]


def _one(params, static):
    return eqx.combine(params, static)


def _step_one(params, static, s: Array, currents: Array) -> Array:
    nrn = _one(params, static)
    new = nrn.step(tuple(s[i] for i in range(s.shape[0])), currents)
    if len(new) != s.shape[0]:
        raise ValueError(
            f"{type(nrn).__name__}.step: expected {s.shape[0]} state variables "
            f"{nrn.state_names}, received {len(new)}; return one value per state name"
        )
    return jnp.stack([jnp.asarray(v, s.dtype) for v in new])


def _output_one(params, static, s: Array) -> Array:
    nrn = _one(params, static)
    return jnp.asarray(nrn.output(tuple(s[i] for i in range(s.shape[0]))), s.dtype)


def _init_one(params, static, dtype) -> Array:
    nrn = _one(params, static)
    return jnp.stack([jnp.asarray(v, dtype) for v in nrn.init_state()])


def _over_layer(fn, n_data_args: int):
    """vmap ``fn(params, static, *data)`` over neurons (params axis 0) then batch."""

    def wrapped(params, static, *data):
        f = lambda p, *a: fn(p, static, *a)
        over_neurons = jax.vmap(f, in_axes=(0,) + (0,) * n_data_args)
        over_batch = jax.vmap(over_neurons, in_axes=(None,) + (0,) * n_data_args)
        return over_batch(params, *data)

    return wrapped


def layer_init_state(neuron: AbstractNeuron, batch: int, n: int, dtype) -> Array:
    """Initial layer state, shape (B, n, d)."""
    params, static = split_neuron(neuron)
    s0 = jax.vmap(lambda p: _init_one(p, static, dtype), axis_size=n)(
        _broadcast_params(params, n)
    )  # (n, d)
    return jnp.broadcast_to(s0, (batch,) + s0.shape)


def _broadcast_params(params, n: int):
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,)), params)


def layer_step(neuron: AbstractNeuron, s: Array, currents: Array) -> Array:
    """(B, n, d), (B, n, m) -> (B, n, d)."""
    params, static = split_neuron(neuron)
    return _over_layer(_step_one, 2)(_broadcast_params(params, s.shape[1]), static, s, currents)


def layer_output(neuron: AbstractNeuron, s: Array) -> Array:
    """(B, n, d) -> (B, n)."""
    params, static = split_neuron(neuron)
    return _over_layer(_output_one, 1)(_broadcast_params(params, s.shape[1]), static, s)


class LocalBlocks(NamedTuple):
    """Neuron-local quantities of one step, derived with ``jax.jacfwd``."""

    s_new: Array  # (B, n, d)      new state
    J: Array  # (B, n, d, d)       ds_t/ds_{t-1}, neuron-local block
    D: Array  # (B, n, d, m)       ds_t/dI_t
    P: Array  # (B, n, d, k)       ds_t/dphi (per-neuron parameters, flattened; k may be 0)


def layer_blocks(neuron: AbstractNeuron, s: Array, currents: Array) -> LocalBlocks:
    """New state and neuron-local Jacobian blocks of every neuron (forward mode)."""
    params, static = split_neuron(neuron)
    n = s.shape[1]

    def one(p, st, s1, i1):
        flat, unravel = ravel_pytree(p)

        def f(s_, i_, flat_):
            out = _step_one(unravel(flat_), st, s_, i_)
            return out, out

        (J, D, P), s_new = jax.jacfwd(f, argnums=(0, 1, 2), has_aux=True)(s1, i1, flat)
        return LocalBlocks(s_new, J, D, P.reshape(s1.shape[0], -1))

    return _over_layer(one, 2)(_broadcast_params(params, n), static, s, currents)


def output_jacobian(neuron: AbstractNeuron, s: Array) -> tuple[Array, Array]:
    """z = output(s) and psi = dz/ds, shapes (B, n) and (B, n, d)."""
    params, static = split_neuron(neuron)

    def one(p, st, s1):
        f = lambda s_: (_output_one(p, st, s_),) * 2
        psi, z = jax.jacfwd(f, has_aux=True)(s1)
        return z, psi

    return _over_layer(one, 1)(_broadcast_params(params, s.shape[1]), static, s)


def output_param_jacobian(neuron: AbstractNeuron, s: Array) -> Array:
    """dz/dphi at fixed state, shape (B, n, k): a per-neuron parameter may enter the
    output directly (a trainable threshold, say)."""
    params, static = split_neuron(neuron)

    def one(p, st, s1):
        flat, unravel = ravel_pytree(p)
        return jax.jacfwd(lambda f_: _output_one(unravel(f_), st, s1))(flat)

    return _over_layer(one, 1)(_broadcast_params(params, s.shape[1]), static, s)
