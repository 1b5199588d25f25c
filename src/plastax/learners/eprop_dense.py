"""Naive e-prop with dense Jacobians: a baseline for benchmarks only."""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp

from .base import AbstractOnlineLearner, LayerGrads
from .rtrl import RTRL, RTRLTrace, immediate, influence_shapes, output_influence

__all__ = ["EPropDense"]


class EPropDense(AbstractOnlineLearner):
    """e-prop computed the naive way: the neuron-local Jacobian is materialised as a
    dense block-diagonal (n d x n d) matrix per example and the influence as a dense
    (n d x |theta|) matrix, as a generic forward-mode implementation would do.

        M_t = blockdiag(J_t) @ M_{t-1} + F_t        O(n^2 |theta|) = O(n^4) per step

    Same gradient as :class:`EProp` (tested), at RTRL's cost.  It exists to measure
    what the compressed traces of :class:`EProp` save; do not train with it.
    """

    name: ClassVar[str] = "eprop_dense"

    def check(self, model, batch):
        RTRL().check(model, batch)

    def init_trace(self, layer, batch, n_in, kappa, dtype, key=None):
        return RTRL().init_trace(layer, batch, n_in, kappa, dtype)

    def update_trace(self, layer, trace, ctx, lam, kappa):
        n, d = layer.n, layer.n_states
        B = ctx.x.shape[0]
        eye = jnp.eye(n, dtype=ctx.x.dtype)
        dense_J = jnp.einsum("bjde,jk->bjdke", ctx.blocks.J, eye).reshape(B, n * d, n * d)
        new_m, new_f, grads = {}, {}, {}
        for g, M in trace.m.items():
            shape = M.shape[3:]
            flat = M.reshape(B, n * d, math.prod(shape))
            M_new = (dense_J @ flat).reshape(M.shape) + immediate(g, ctx, n)
            dz = output_influence(g, M_new, ctx.psi, ctx.dz_dphi, n)
            if trace.f is not None:
                dz = kappa * trace.f[g] + dz
                new_f[g] = dz
            new_m[g] = M_new
            grads[g] = jnp.einsum("bj,bj...->...", lam, dz)
        return (
            RTRLTrace(new_m, new_f if trace.f is not None else None, None),
            LayerGrads(
                grads["in"],
                grads.get("rec"),
                grads["b"],
                grads.get(
                    "phi", jnp.zeros(influence_shapes(layer, 1).get("phi", (n, 0)), ctx.x.dtype)
                ),
            ),
        )
