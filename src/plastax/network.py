"""Layers, readouts and the network (DESIGN.md section 3).

    currents_t^l = x_t^l @ W_in^l + z_{t-1}^l @ W_rec^l + b^l     (B, n, m)
    s_t^l        = neuron.step(s_{t-1}^l, currents_t^l)           vmapped, neuron-local
    z_t^l        = neuron.output(s_t^l)
    y_t          = kappa y_{t-1} + (1 - kappa) (z_t^L @ W_out + b_out)

``x_t^1`` is the network input and ``x_t^l = z_t^{l-1}``.  ``kappa = 0`` for the linear
readout, ``exp(-1/tau)`` for the leaky-integrator readout.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .neurons.base import (
    AbstractNeuron,
    layer_init_state,
    layer_output,
    layer_step,
    per_neuron_params,
)
from .neurons.spiking import decay_factor

__all__ = [
    "Layer",
    "AbstractReadout",
    "LinearReadout",
    "LeakyReadout",
    "Network",
    "NetworkState",
    "check_inputs",
]


def _check_size(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{owner}: expected {name} to be a positive integer, received {value!r}")
    return int(value)


def _check_shape(name: str, value, shape: tuple) -> None:
    got = getattr(value, "shape", None)
    if got != shape:
        raise ValueError(
            f"{name}: expected an array of shape {shape}, received "
            f"{got if got is not None else type(value).__name__}; leave the weights unset "
            "to initialise them, or pass arrays of the expected shapes"
        )


class Layer(eqx.Module):
    """A layer of ``n`` identical neurons, recurrent or feed-forward.

    Built without weights as a specification (``Layer(LIF(), 128, recurrent=True)``);
    :class:`Network` creates the weights.  Weights: ``w_in`` (p, n, m), ``w_rec``
    (n, n, m) or ``None``, ``bias`` (n, m).

    Initialisation: normal with standard deviation ``gain / sqrt(fan_in)`` for
    ``w_in`` and ``w_rec`` (``fan_in`` = presynaptic units), zero bias, and for spiking
    models no self-connections (``self_connections=None``: none for spiking models,
    present for rate units; the mask holds during training too).
    ``input_gain`` / ``recurrent_gain`` default to the
    neuron's needs (1.0 for rate units, larger for spiking units whose threshold must be
    reached).
    """

    neuron: AbstractNeuron
    n: int = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    input_gain: float | None = eqx.field(static=True)
    recurrent_gain: float | None = eqx.field(static=True)
    self_connections: bool | None = eqx.field(static=True)
    w_in: Array | None
    w_rec: Array | None
    bias: Array | None

    def __init__(
        self,
        neuron: AbstractNeuron,
        n: int,
        recurrent: bool = False,
        *,
        input_gain: float | None = None,
        recurrent_gain: float | None = None,
        self_connections: bool | None = None,
        w_in=None,
        w_rec=None,
        bias=None,
    ):
        if not isinstance(neuron, AbstractNeuron):
            raise ValueError(
                f"Layer: expected a plastax neuron (e.g. plastax.neurons.LIF()), "
                f"received {type(neuron).__name__}"
            )
        self.neuron = neuron
        self.n = _check_size("Layer", "the number of neurons n", n)
        if not isinstance(recurrent, bool | np.bool_):
            raise ValueError(f"Layer: expected recurrent=True or False, received {recurrent!r}")
        for gname, gain in (("input_gain", input_gain), ("recurrent_gain", recurrent_gain)):
            if gain is not None and (
                isinstance(gain, bool)
                or not isinstance(gain, int | float | np.floating)
                or not math.isfinite(gain)
                or gain <= 0
            ):
                raise ValueError(
                    f"Layer: expected {gname} to be None or a finite number > 0, received {gain!r}"
                )
        self.recurrent = bool(recurrent)
        self.input_gain = input_gain
        self.recurrent_gain = recurrent_gain
        self.self_connections = self_connections
        self.w_in, self.w_rec, self.bias = w_in, w_rec, bias
        for name, leaf in per_neuron_params_items(neuron):
            if leaf.shape not in ((), (self.n,)):
                raise ValueError(
                    f"Layer: per-neuron parameter {name} expected shape ({self.n},), "
                    f"received {leaf.shape}"
                )

    @property
    def n_currents(self) -> int:
        return self.neuron.n_currents

    @property
    def n_states(self) -> int:
        return self.neuron.n_states

    @property
    def is_built(self) -> bool:
        return self.w_in is not None

    @property
    def has_self_connections(self) -> bool:
        if self.self_connections is not None:
            return bool(self.self_connections)
        return not _is_spiking(self.neuron)

    def masks(self, dtype) -> tuple[Array, Array | None]:
        """0/1 masks of the weights that exist: ``(m,)`` for ``w_in`` (the currents the
        input may drive) and ``(n, n, m)`` for ``w_rec`` (currents the recurrent input
        may drive, and no self-connections unless the layer has them).  Applied in the
        forward pass and to every learner's gradient, so a masked weight stays zero."""
        src = self.neuron.current_sources
        m_in = jnp.asarray([s in ("both", "input") for s in src], dtype)
        if not self.recurrent:
            return m_in, None
        m_rec = jnp.asarray([s in ("both", "recurrent") for s in src], dtype)
        m_rec = jnp.broadcast_to(m_rec, (self.n, self.n, len(src)))
        if not self.has_self_connections:
            m_rec = m_rec * (1.0 - jnp.eye(self.n, dtype=dtype))[:, :, None]
        return m_in, m_rec

    def build(self, n_in: int, key: PRNGKeyArray, dtype=None) -> Layer:
        dtype = dtype or jnp.result_type(float)
        spiking = _is_spiking(self.neuron)
        gin = self.input_gain if self.input_gain is not None else (3.0 if spiking else 1.0)
        grec = self.recurrent_gain if self.recurrent_gain is not None else (1.0 if spiking else 1.0)
        m = self.n_currents
        k_in, k_rec = jax.random.split(key)
        m_in, m_rec = self.masks(dtype)
        w_in = gin / math.sqrt(n_in) * jax.random.normal(k_in, (n_in, self.n, m), dtype)
        w_in = w_in * m_in
        w_rec = None
        if self.recurrent:
            w_rec = grec / math.sqrt(self.n) * jax.random.normal(k_rec, (self.n, self.n, m), dtype)
            w_rec = w_rec * m_rec
        bias = jnp.zeros((self.n, m), dtype)
        neuron = jax.tree.map(
            lambda x: (
                jnp.broadcast_to(jnp.asarray(x, dtype), (self.n,)) if eqx.is_inexact_array(x) else x
            ),
            self.neuron,
        )
        return Layer(
            neuron,
            self.n,
            self.recurrent,
            input_gain=self.input_gain,
            recurrent_gain=self.recurrent_gain,
            self_connections=self.self_connections,
            w_in=w_in,
            w_rec=w_rec,
            bias=bias,
        )

    def check_weights(self, n_in: int, index: int = 0) -> None:
        """Shapes of weights given by hand; a clear error instead of one from einsum."""
        m, where = self.n_currents, f"layer {index}"
        _check_shape(f"{where} w_in", self.w_in, (n_in, self.n, m))
        _check_shape(f"{where} bias", self.bias, (self.n, m))
        if self.recurrent:
            _check_shape(f"{where} w_rec", self.w_rec, (self.n, self.n, m))
        elif self.w_rec is not None:
            raise ValueError(
                f"{where}: expected no w_rec for a feed-forward layer, received "
                "one; pass recurrent=True to use it"
            )

    def currents(self, x: Array, z_prev: Array) -> Array:
        """(B, p), (B, n) -> (B, n, m)."""
        m_in, m_rec = self.masks(self.w_in.dtype)
        out = jnp.einsum("bp,pnm->bnm", x, self.w_in * m_in) + self.bias
        if self.recurrent:
            out = out + jnp.einsum("bq,qnm->bnm", z_prev, self.w_rec * m_rec)
        return out

    def init_state(self, batch: int, dtype) -> Array:
        return layer_init_state(self.neuron, batch, self.n, dtype)

    def step(self, s_prev: Array, x: Array) -> tuple[Array, Array]:
        """One step: (state (B, n, d), input (B, p)) -> (new state, output (B, n))."""
        z_prev = layer_output(self.neuron, s_prev) if self.recurrent else None
        s = layer_step(self.neuron, s_prev, self.currents(x, z_prev))
        return s, layer_output(self.neuron, s)


def per_neuron_params_items(neuron):
    leaves = jax.tree_util.tree_leaves_with_path(per_neuron_params(neuron))
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in leaves]


def _is_spiking(neuron: AbstractNeuron) -> bool:
    return hasattr(neuron, "surrogate")


class AbstractReadout(eqx.Module):
    """``y_t = kappa y_{t-1} + (1 - kappa) (z_t @ weight + bias)``."""

    n_out: eqx.AbstractVar[int]
    weight: eqx.AbstractVar[Array | None]
    bias: eqx.AbstractVar[Array | None]

    @property
    @abc.abstractmethod
    def kappa(self) -> float:
        """Per-step decay of the readout (0 for a linear readout)."""

    @abc.abstractmethod
    def build(self, n: int, key: PRNGKeyArray, dtype=None) -> AbstractReadout: ...

    def _init(self, n, key, dtype):
        dtype = dtype or jnp.result_type(float)
        w = jax.random.normal(key, (n, self.n_out), dtype) / math.sqrt(n)
        return dict(weight=w, bias=jnp.zeros((self.n_out,), dtype))

    def drive(self, z: Array) -> Array:
        return z @ self.weight + self.bias

    def step(self, y_prev: Array, z: Array) -> Array:
        k = self.kappa
        if k == 0.0:
            return self.drive(z)
        return k * y_prev + (1.0 - k) * self.drive(z)


class LinearReadout(AbstractReadout):
    """Linear readout ``y_t = z_t @ W + b``."""

    n_out: int = eqx.field(static=True)
    weight: Array | None
    bias: Array | None

    def __init__(self, n_out: int, *, weight=None, bias=None):
        self.n_out = _check_size("LinearReadout", "n_out", n_out)
        self.weight, self.bias = weight, bias

    @property
    def kappa(self) -> float:
        return 0.0

    def build(self, n, key, dtype=None):
        return LinearReadout(self.n_out, **self._init(n, key, dtype))


class LeakyReadout(AbstractReadout):
    """Leaky-integrator readout ``y_t = kappa y_{t-1} + (1 - kappa)(z_t @ W + b)``,
    ``kappa = exp(-1/tau)`` (Bellec et al. 2020)."""

    n_out: int = eqx.field(static=True)
    tau: float = eqx.field(static=True)
    weight: Array | None
    bias: Array | None

    def __init__(self, n_out: int, tau: float = 20.0, *, weight=None, bias=None):
        self.n_out = _check_size("LeakyReadout", "n_out", n_out)
        if isinstance(tau, bool) or not (isinstance(tau, int | float) and tau > 0):
            raise ValueError(
                f"LeakyReadout: expected tau > 0 (time steps), received {tau!r}; "
                "use LinearReadout for no leak"
            )
        self.tau = float(tau)
        self.weight, self.bias = weight, bias

    @property
    def kappa(self) -> float:
        return decay_factor(self.tau)

    def build(self, n, key, dtype=None):
        return LeakyReadout(self.n_out, self.tau, **self._init(n, key, dtype))


class NetworkState(NamedTuple):
    layers: tuple  # per layer: (B, n_l, d_l)
    readout: Array  # (B, n_out)


def check_inputs(inputs, n_in: int, name: str = "inputs") -> None:
    """Shape check always; finiteness check when the values are concrete."""
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) != 3 or shape[-1] != n_in:
        raise ValueError(
            f"{name}: expected an array of shape (time, batch, {n_in}), received "
            f"{shape if shape is not None else type(inputs).__name__}; inputs are time-major "
            "and their last axis must equal the network's n_in"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(
            f"{name}: expected at least one time step and one example, received shape {shape}"
        )
    if not isinstance(inputs, jax.core.Tracer):
        arr = np.asarray(inputs)
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"{name}: expected real numbers, received dtype {arr.dtype}; convert the "
                "inputs to float32"
            )
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(
                f"{name}: expected finite values, received NaN or Inf (first at time "
                f"{bad[0]}, example {bad[1]}, channel {bad[2]}); clean or mask the data"
            )


class Network(eqx.Module):
    """A stack of layers and a readout.

    Example:
        >>> import jax, plastax
        >>> model = plastax.Network(
        ...     layers=[plastax.Layer(plastax.neurons.LIF(), 32, recurrent=True)],
        ...     readout=plastax.LeakyReadout(5), n_in=10, key=jax.random.key(0))
        >>> model(jax.numpy.zeros((7, 3, 10))).shape   # (T, B, n_out)
        (7, 3, 5)
    """

    layers: tuple[Layer, ...]
    readout: AbstractReadout
    n_in: int = eqx.field(static=True)

    def __init__(
        self, layers, readout: AbstractReadout, n_in: int, *, key: PRNGKeyArray, dtype=None
    ):
        layers = tuple(layers)
        if not layers:
            raise ValueError("Network: expected at least one Layer, received none")
        if not isinstance(readout, AbstractReadout):
            raise ValueError(
                "Network: expected readout=plastax.LinearReadout(n_out) or "
                f"plastax.LeakyReadout(n_out), received {type(readout).__name__}"
            )
        self.n_in = _check_size("Network", "n_in", n_in)
        typed = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        legacy = isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,)
        if not (typed or legacy):
            raise ValueError(f"Network: expected key=jax.random.key(seed), received {key!r}")
        keys = jax.random.split(key, len(layers) + 1)
        built, p = [], self.n_in
        for layer, k in zip(layers, keys[:-1], strict=True):
            if not isinstance(layer, Layer):
                raise ValueError(
                    f"Network: expected plastax.Layer objects, received {type(layer).__name__}"
                )
            if layer.is_built:
                layer.check_weights(p, len(built))
                built.append(layer)
            else:
                built.append(layer.build(p, k, dtype))
            p = layer.n
        self.layers = tuple(built)
        if readout.weight is not None:
            _check_shape("readout weight", readout.weight, (p, readout.n_out))
            _check_shape("readout bias", readout.bias, (readout.n_out,))
            self.readout = readout
        else:
            self.readout = readout.build(p, keys[-1], dtype)

    @property
    def n_out(self) -> int:
        return self.readout.n_out

    @property
    def dtype(self):
        return self.readout.weight.dtype

    def init_state(self, batch_size: int) -> NetworkState:
        _check_size("Network.init_state", "batch_size", batch_size)
        dt = self.dtype
        return NetworkState(
            tuple(layer.init_state(batch_size, dt) for layer in self.layers),
            jnp.zeros((batch_size, self.n_out), dt),
        )

    def step(self, state: NetworkState, x: Float[Array, "batch n_in"]):
        """One time step: returns (new state, readout y_t (B, n_out), spikes per layer)."""
        new, h = [], x
        zs = []
        for layer, s in zip(self.layers, state.layers, strict=True):
            s, h = layer.step(s, h)
            new.append(s)
            zs.append(h)
        y = self.readout.step(state.readout, h)
        return NetworkState(tuple(new), y), y, tuple(zs)

    def run(self, inputs: Float[Array, "time batch n_in"], state: NetworkState | None = None):
        """Run over time: (final state, readout (T, B, n_out), outputs per layer (T, B, n))."""
        check_inputs(inputs, self.n_in)
        inputs = jnp.asarray(inputs, self.dtype)
        if state is None:
            state = self.init_state(inputs.shape[1])

        def body(st, x):
            st, y, zs = self.step(st, x)
            return st, (y, zs)

        state, (ys, zs) = jax.lax.scan(body, state, inputs)
        return state, ys, zs

    def __call__(self, inputs: Float[Array, "time batch n_in"]) -> Float[Array, "time batch n_out"]:
        return self.run(inputs)[1]
