"""Spatial learning through time (SLTT, SLTT-K)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .base import AbstractOnlineLearner
from .eprop import check_chunk, local_traces_chunk, local_traces_init, local_traces_update

__all__ = ["SLTT"]


class SLTT(AbstractOnlineLearner):
    """Spatial learning through time (Meng et al. 2023, ICCV).

    Drops every temporal route of the neurons (``J_t = 0``): the gradient of step t is
    back-propagated only spatially, through the layers and readout of that step,

        g += sum_t lambda_t . psi_t D_t u_t,

    so nothing is carried across steps but the readout's leak filter.  Memory is
    constant in time.  With ``k``, SLTT-K: only ``k`` time steps per sequence, sampled
    uniformly without replacement among the steps with a nonzero mask (with the ``key``
    given to ``value_and_grad``), contribute to the gradient; the others still run the
    forward pass.  Equal to BPTT when the neuron keeps no memory across steps.

    :meth:`value_and_grad` processes ``chunk`` steps at a time, as :class:`EProp`
    does: the gradient's outer products of a chunk become one matrix product.
    """

    k: int | None = eqx.field(static=True, default=None)
    chunk: int = eqx.field(static=True, default=8)
    name: ClassVar[str] = "sltt"

    def chunk_size(self, model=None) -> int:
        return self.chunk

    def update_chunk(self, layer, trace, ctxs, lams, kappa):
        return local_traces_chunk(layer, trace, ctxs, lams, kappa, "none", None)

    def __check_init__(self):
        if self.k is not None and (
            isinstance(self.k, bool) or not isinstance(self.k, int) or self.k <= 0
        ):
            raise ValueError(
                f"SLTT: expected k to be None or a positive integer (steps per sequence), "
                f"received {self.k!r}"
            )
        check_chunk("SLTT", self.chunk)

    def sample_schedule(self, key, mask):
        if self.k is None:
            return None
        scores = jax.random.uniform(key, mask.shape) + jnp.where(mask > 0, 1.0, 0.0)
        k = min(self.k, mask.shape[0])
        idx = jax.lax.top_k(scores, k)[1]
        return jnp.zeros(mask.shape, mask.dtype).at[idx].set(1.0)

    def init_trace(self, layer, batch, n_in, kappa, dtype, key=None):
        return local_traces_init(layer, batch, n_in, kappa, dtype, "none")

    def update_trace(self, layer, trace, ctx, lam, kappa):
        return local_traces_update(layer, trace, ctx, lam, kappa, "none")
