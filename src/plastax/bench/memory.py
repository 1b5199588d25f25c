"""Compiled memory of each learner against sequence length.

Memory is read from XLA's compiled memory analysis of the jitted ``value_and_grad``
(``jax.jit(f).lower(...).compile().memory_analysis()``): deterministic, no run needed.
``temp_bytes`` is the scratch memory XLA allocates for the computation (activations
stored for the backward pass, traces, temporaries); the inputs themselves are arguments
and reported apart.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from ..learners import make_learner
from ..network import Layer, LeakyReadout, Network
from ..neurons import ALIF, GRU, LIF, LSTM, CuBaLIF, TanhRNN

__all__ = ["MemoryConfig", "compiled_memory", "memory_table", "NEURONS"]

NEURONS = {"lif": LIF, "alif": ALIF, "cubalif": CuBaLIF, "tanh": TanhRNN, "lstm": LSTM, "gru": GRU}


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """What ``plastax bench memory`` measures."""

    learners: tuple[str, ...] = ("bptt", "eprop", "sltt", "rtrl")
    steps: tuple[int, ...] = (100, 500, 1000, 2000)
    batch: int = 8
    hidden: int = 128
    n_in: int = 100
    n_out: int = 10
    neuron: str = "lif"
    recurrent: bool = True
    rtrl_hidden: int | None = None  # RTRL and EPropDense are O(n^3): measure them smaller

    def __post_init__(self):
        for name in ("batch", "hidden", "n_in", "n_out"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(
                    f"bench memory: expected {name} to be a positive integer, received {v!r}"
                )
        if not self.steps or any(not isinstance(t, int) or t <= 0 for t in self.steps):
            raise ValueError(
                f"bench memory: expected positive sequence lengths, received {self.steps!r}"
            )
        if self.neuron not in NEURONS:
            raise ValueError(
                f"bench memory: unknown neuron {self.neuron!r}; expected one of: "
                f"{', '.join(sorted(NEURONS))}"
            )
        for name in self.learners:
            make_learner(name)  # raises a clear error for unknown names


def compiled_memory(learner, model: Network, n_steps: int, batch: int) -> dict:
    """Bytes XLA allocates for ``learner.value_and_grad`` at this size (no execution)."""
    x = jax.ShapeDtypeStruct((n_steps, batch, model.n_in), model.dtype)
    t = jax.ShapeDtypeStruct((n_steps, batch), jnp.int32)
    m = jax.ShapeDtypeStruct((n_steps,), model.dtype)

    params, static = eqx.partition(model, eqx.is_array)

    def f(p, x, t, m):
        return learner.value_and_grad(eqx.combine(p, static), x, t, m)

    compiled = jax.jit(f).lower(params, x, t, m).compile()
    stats = compiled.memory_analysis()
    return {
        "temp_bytes": int(stats.temp_size_in_bytes),
        "argument_bytes": int(stats.argument_size_in_bytes),
        "output_bytes": int(stats.output_size_in_bytes),
    }


def memory_table(config: MemoryConfig, progress=None) -> list[dict]:
    """One row per (learner, T): compiled memory and its ratio to the shortest T."""
    rows = []
    for name in config.learners:
        learner = make_learner(name)
        hidden = config.hidden
        if name in ("rtrl", "eprop_dense") and config.rtrl_hidden is not None:
            hidden = min(hidden, config.rtrl_hidden)
        model = Network(
            [Layer(NEURONS[config.neuron](), hidden, recurrent=config.recurrent)],
            LeakyReadout(config.n_out),
            n_in=config.n_in,
            key=jax.random.key(0),
        )
        base = None
        for T in sorted(config.steps):
            mem = compiled_memory(learner, model, T, config.batch)
            base = base or mem["temp_bytes"]
            rows.append(
                {
                    "learner": name,
                    "hidden": hidden,
                    "batch": config.batch,
                    "n_in": config.n_in,
                    "T": T,
                    **mem,
                    "ratio_to_shortest": mem["temp_bytes"] / base,
                }
            )
            if progress is not None:
                progress(rows[-1])
    return rows
