"""Real-time recurrent learning: exact forward-mode gradients."""

import abc
import math
import os
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..neurons.base import output_jacobian, output_param_jacobian
from .base import AbstractOnlineLearner, LayerGrads, StepContext, n_phi

__all__ = ["AbstractRTRL", "RTRL", "RTRLTrace", "influence_shapes", "available_memory_bytes"]

_GROUPS = ("in", "rec", "b", "phi")


class RTRLTrace(NamedTuple):
    """Influence ``M = ds_t/dtheta`` of one layer's state on all its parameters.

    ``M[g]`` has shape (B, n, d) + shape of parameter group g: (p, n, m) for W_in,
    (n, n, m) for W_rec, (n, m) for the bias, (n, k) for per-neuron parameters."""

    m: dict  # group name -> (B, n, d, *param_shape)
    f: dict | None  # group name -> (B, n, *param_shape), kappa-filtered dz/dtheta
    paths: Array | None  # (n, k) recurrent paths kept per neuron (sparse RTRL), or None


def influence_shapes(layer, n_in: int) -> dict:
    n, m = layer.n, layer.n_currents
    shapes = {"in": (n_in, n, m), "b": (n, m)}
    if layer.recurrent:
        shapes["rec"] = (n, n, m)
    if n_phi(layer):
        shapes["phi"] = (n, n_phi(layer))
    return shapes


def available_memory_bytes() -> int:
    """Memory of the default device: GPU/TPU limit, or the host's available RAM."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def immediate(name: str, ctx: StepContext, n: int):
    """F_t = ds_t/dtheta at fixed previous state: nonzero only on each neuron's own
    parameters (the diagonal j = j')."""
    D, eye = ctx.blocks.D, jnp.eye(n, dtype=ctx.x.dtype)
    if name == "in":
        return jnp.einsum("bjdc,bi,jk->bjdikc", D, ctx.x, eye)
    if name == "rec":
        return jnp.einsum("bjdc,bq,jk->bjdqkc", D, ctx.z_prev, eye)
    if name == "b":
        return jnp.einsum("bjdc,jk->bjdkc", D, eye)
    return jnp.einsum("bjdk,jl->bjdlk", ctx.blocks.P, eye)


def per_neuron(a, M):
    """``out[b, j, d] = sum_e a[b, j, d, e] M[b, j, e]`` for a (B, n, d, e) and M
    (B, n, e, ...), unrolled over the small ``e``: element-wise products that XLA fuses
    into one pass.  As an einsum it lowers to ``B n`` tiny matrix products, which on CPU
    cost several times more, most of all inside a loop whose weights change (online
    updates)."""
    extra = (None,) * (M.ndim - 3)
    return sum(a[:, :, :, i][(...,) + extra] * M[:, :, None, i] for i in range(a.shape[-1]))


def output_influence(name, M, psi, dz_dphi, n):
    """dz/dtheta = psi . M (+ the direct dependence of the output on phi)."""
    dz = per_neuron(psi[:, :, None], M)[:, :, 0]
    if name == "phi":
        dz = dz + jnp.einsum("bjk,jl->bjlk", dz_dphi, jnp.eye(n, dtype=dz.dtype))
    return dz


class AbstractRTRL(AbstractOnlineLearner):
    """Forward-mode recursion through the recurrent weights:

        M_t = J^loc_t M_{t-1} + D_t (W_rec^T dz_{t-1}/dtheta) + F_t.

    Subclasses choose which recurrent paths ``W_rec[q, j]`` carry influence
    (:meth:`propagate`).  The self-connection ``W_rec[j, j]`` always does.
    """

    max_bytes: eqx.AbstractVar[int | None]

    @abc.abstractmethod
    def propagate(self, layer, dz_prev: Array, paths, ctx: StepContext) -> Array:
        """Recurrent term of dI_t/dtheta, ``sum_q W_rec[q, j, c] dz_{t-1}[q]`` over the
        kept paths; shape (B, n, m, *param_shape)."""

    def init_paths(self, layer, key):
        """Paths fixed for the whole run (carried in the trace), or None."""
        return None

    def estimate_bytes(self, model, batch: int) -> int:
        """Estimated peak bytes of the influence tensors and their update temporaries."""
        itemsize = jnp.dtype(model.dtype).itemsize
        total, p = 0, model.n_in
        for layer in model.layers:
            size = sum(math.prod(s) for s in influence_shapes(layer, p).values())
            d = layer.n_states
            # M, its update and the immediate term (3 x B n d P), filter (B n P)
            total += batch * layer.n * size * (3 * d + 1)
            p = layer.n
        return total * itemsize

    def check(self, model, batch):
        need = self.estimate_bytes(model, batch)
        limit = self.max_bytes if self.max_bytes is not None else available_memory_bytes() // 2
        if need > limit:
            raise ValueError(
                f"{type(self).__name__}: the influence tensors need about "
                f"{need / 2**30:.2f} GiB (batch {batch}, layers "
                f"{[layer.n for layer in model.layers]}), more than the "
                f"{limit / 2**30:.2f} GiB allowed; RTRL memory grows as n^3: use "
                "EProp() (O(n^2), exact for one feed-forward layer), SLTT(), a smaller "
                f"hidden layer or batch, or raise {type(self).__name__}(max_bytes=...)"
            )

    def init_trace(self, layer, batch, n_in, kappa, dtype, key=None):
        shapes = influence_shapes(layer, n_in)
        d = layer.n_states
        M = {g: jnp.zeros((batch, layer.n, d) + s, dtype) for g, s in shapes.items()}
        F = (
            {g: jnp.zeros((batch, layer.n) + s, dtype) for g, s in shapes.items()}
            if kappa
            else None
        )
        paths = self.init_paths(layer, key) if layer.recurrent else None
        return RTRLTrace(M, F, paths)

    def update_trace(self, layer, trace, ctx, lam, kappa):
        n = layer.n
        J, D = ctx.blocks.J, ctx.blocks.D
        psi = ctx.psi
        if layer.recurrent:
            _, psi_prev = output_jacobian(layer.neuron, ctx.s_prev)
            dphi_prev = (
                output_param_jacobian(layer.neuron, ctx.s_prev) if "phi" in trace.m else None
            )
        new_m, new_f, grads = {}, {}, {}
        for g, M in trace.m.items():
            M_new = per_neuron(J, M) + immediate(g, ctx, n)
            if layer.recurrent:
                dz_prev = output_influence(g, M, psi_prev, dphi_prev, n)
                rec = self.propagate(layer, dz_prev, trace.paths, ctx)
                M_new = M_new + per_neuron(D, rec)
            dz = output_influence(g, M_new, psi, ctx.dz_dphi, n)
            if trace.f is not None:
                dz = kappa * trace.f[g] + dz
                new_f[g] = dz
            new_m[g] = M_new
            grads[g] = jnp.einsum("bj,bj...->...", lam, dz)
        k = n_phi(layer)
        return (
            RTRLTrace(new_m, new_f if trace.f is not None else None, trace.paths),
            LayerGrads(
                grads["in"],
                grads.get("rec"),
                grads["b"],
                grads.get("phi", jnp.zeros((n, k), ctx.x.dtype)),
            ),
        )


class RTRL(AbstractRTRL):
    """Real-time recurrent learning (Williams & Zipser 1989): the full recursion

        M_t = J^loc_t M_{t-1} + D_t (W_rec^T dz_{t-1}/dtheta) + F_t,

    neuron-local blocks plus every recurrent path through ``W_rec``.  Exact: equal to
    BPTT for a recurrent layer.  Memory B n d |theta| = O(n^3) per layer, compute
    O(n^4) per step, both independent of T.  With several layers each layer's influence
    is exact within the layer; the temporal routes between layers are dropped.

    Args:
        max_bytes: refuse (``ValueError``, before compiling) when the estimated memory
            of the influence tensors exceeds this; default: half the available memory
            of the default device.
    """

    max_bytes: int | None = eqx.field(static=True, default=None)
    name: ClassVar[str] = "rtrl"

    def propagate(self, layer, dz_prev, paths, ctx):
        _, m_rec = layer.masks(dz_prev.dtype)
        return jnp.einsum("qjc,bq...->bjc...", layer.w_rec * m_rec, dz_prev)
