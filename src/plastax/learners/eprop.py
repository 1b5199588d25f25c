"""e-prop with automatically derived, compressed eligibility traces."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.extend import core as jex_core
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from ..neurons.base import _step_one, split_neuron
from .base import AbstractOnlineLearner, LayerGrads, StepContext, n_phi

__all__ = ["EProp", "EPropTrace", "constant_blocks"]


class EPropTrace(NamedTuple):
    """Eligibility traces of one layer.  ``q`` is the presynaptic width of a group
    (p inputs, n recurrent units, 1 for the bias).  Factorised traces drop the neuron
    axis ``n``: every neuron shares them."""

    e_in: Array | None  # (B, n, d, m, p)   or (B, d, m, p) factorised; None for SLTT
    e_rec: Array | None  # (B, n, d, m, n)  or (B, d, m, n); None if feed-forward / SLTT
    e_b: Array | None  # (B, n, d, m, 1)    or (B, d, m, 1); None for SLTT
    e_phi: Array | None  # (B, n, d, k)     per-neuron parameters; None for SLTT
    f_in: Array | None  # (B, n, m, p)      kappa-filtered dz/dW_in (leaky readout only)
    f_rec: Array | None  # (B, n, m, n)
    f_b: Array | None  # (B, n, m, 1)
    f_phi: Array | None  # (B, n, k)


# --------------------------------------------------------------------------------------
# Detecting state-independent Jacobian blocks (factorisable traces)


def _depends(jaxpr, flags):
    """For each output of ``jaxpr``: does it depend on an input whose flag is set?"""
    dep = {}
    for v, f in zip(jaxpr.invars, flags, strict=True):
        dep[v] = f
    for eqn in jaxpr.eqns:
        ins = [isinstance(v, jex_core.Var) and dep.get(v, False) for v in eqn.invars]
        sub = eqn.params.get("jaxpr", None) or eqn.params.get("call_jaxpr", None)
        if sub is not None and len(getattr(sub, "jaxpr", sub).invars) == len(ins):
            outs = _depends(getattr(sub, "jaxpr", sub), ins)
        else:
            outs = [any(ins)] * len(eqn.outvars)
        for v, f in zip(eqn.outvars, outs, strict=True):
            dep[v] = f
    return [isinstance(v, jex_core.Var) and dep.get(v, False) for v in jaxpr.outvars]


def constant_blocks(neuron, dtype):
    """``(J, D)`` of shapes (d, d) and (d, m) if the neuron-local Jacobian blocks depend
    on neither the state, the currents nor any per-neuron parameter, else ``None``.

    Found by dependency analysis of the jaxpr of ``jax.jacfwd(step)``: when it holds,
    every neuron's trace obeys the same linear filter of its presynaptic input, so the
    trace can be kept once per presynaptic unit instead of once per synapse."""
    params, static = split_neuron(neuron)
    one = jax.tree.map(lambda x: jnp.zeros((), dtype), params)
    flat, unravel = ravel_pytree(one)
    d, m = neuron.n_states, neuron.n_currents

    def blocks(s, i, p):
        step = lambda s_, i_: _step_one(unravel(p), static, s_, i_)
        return jax.jacfwd(step, argnums=(0, 1))(s, i)

    args = (jnp.zeros(d, dtype), jnp.zeros(m, dtype), flat)
    closed = jax.make_jaxpr(blocks)(*args)
    if any(_depends(closed.jaxpr, [True] * len(closed.jaxpr.invars))):
        return None
    with jax.ensure_compile_time_eval():
        J, D = jex_core.jaxpr_as_fun(closed)(*args)
    return J, D


# --------------------------------------------------------------------------------------
# One group of weights sharing a presynaptic signal u (B, q): W_in (u = x), W_rec
# (u = z_{t-1}), bias (u = 1).


def _local_matmul(J, e):
    """Per-neuron ``J[b, n] @ e[b, n]`` over the state axis (axis 2 of both), unrolled
    over the small ``d``: element-wise products that XLA fuses into one pass, where an
    einsum would lower to ``B n`` tiny matrix products."""
    d = J.shape[-1]
    extra = (None,) * (e.ndim - 3)
    return sum(J[:, :, :, i][(...,) + extra] * e[:, :, None, i] for i in range(d))


def _project(psi, e):
    """``sum_d psi[b, n, d] e[b, n, d, ...]``, unrolled over ``d`` (no reduction op)."""
    extra = (None,) * (e.ndim - 3)
    return sum(psi[:, :, i][(...,) + extra] * e[:, :, i] for i in range(psi.shape[-1]))


def group_step(mode, e, J, D, u, psi, lam, f, kappa):
    """Advance the trace ``e`` of one weight group and return ``(e, f, grad (q, n, m))``.

    mode "full":       e_t = J e_{t-1} + D u          e (B, n, d, m, q)
    mode "factorised": e_t = J0 e_{t-1} + D0 u        e (B, d, m, q), J0 (d, d), D0 (d, m)
    mode "none":       e_t = D u (no temporal route)  nothing carried

    The gradient contraction over the batch is one matrix product per step; the
    per-neuron d x d products are unrolled element-wise operations.
    """
    if mode == "full":
        e = _local_matmul(J, e) + D[..., None] * u[:, None, None, None, :]
        if f is None:  # sum_{b,d} (lam psi)[b, n, d] e[b, n, d, m, q]
            return e, f, jnp.einsum("bnd,bndmq->qnm", lam[..., None] * psi, e)
        dz = _project(psi, e)  # (B, n, m, q)
    elif mode == "factorised":
        e = jnp.einsum("de,bemq->bdmq", J, e) + D[None, :, :, None] * u[:, None, None, :]
        if f is None:  # one (n, B d) x (B d, m q) product
            return e, f, jnp.einsum("bnd,bdmq->qnm", lam[..., None] * psi, e)
        dz = jnp.einsum("bnd,bdmq->bnmq", psi, e)
    else:
        e = None
        a = _project(psi, D)  # (B, n, m): dz/dI
        if f is None:
            return e, f, jnp.einsum("bnm,bq->qnm", lam[..., None] * a, u)
        dz = a[..., None] * u[:, None, None, :]
    f = kappa * f + dz
    return e, f, jnp.einsum("bn,bnmq->qnm", lam, f)


def phi_step(e_phi, J, P, psi, dz_direct, lam, f, kappa, temporal=True):
    """Trace of the per-neuron parameters: ``e_t = J e_{t-1} + P`` (or ``P``)."""
    e_phi = _local_matmul(J, e_phi) + P if temporal else P
    dz = _project(psi, e_phi) + dz_direct
    if f is not None:
        f = kappa * f + dz
        dz = f
    return (e_phi if temporal else None), f, jnp.einsum("bn,bnk->nk", lam, dz)


def local_traces_init(layer, batch, n_in, kappa, dtype, mode):
    """Zero traces (and filters when ``kappa > 0``) of one layer."""
    n, d, m, k = layer.n, layer.n_states, layer.n_currents, n_phi(layer)
    B = batch
    groups = {"in": n_in, "rec": n if layer.recurrent else None, "b": 1}
    e, f = {}, {}
    for name, q in groups.items():
        if q is None or mode == "none":
            e[name] = None
        elif mode == "factorised":
            e[name] = jnp.zeros((B, d, m, q), dtype)
        else:
            e[name] = jnp.zeros((B, n, d, m, q), dtype)
        f[name] = jnp.zeros((B, n, m, q), dtype) if (q is not None and kappa) else None
    e_phi = jnp.zeros((B, n, d, k), dtype) if mode != "none" else None
    f_phi = jnp.zeros((B, n, k), dtype) if kappa else None
    return EPropTrace(e["in"], e["rec"], e["b"], e_phi, f["in"], f["rec"], f["b"], f_phi)


def local_traces_update(
    layer, trace: EPropTrace, ctx: StepContext, lam, kappa, mode, constants=None
):
    """One step of the neuron-local recursion for every weight group of a layer."""
    blocks = ctx.blocks
    if mode == "factorised":
        J, D = constants
    else:
        J, D = blocks.J, blocks.D
    B = ctx.x.shape[0]
    ones = jnp.ones((B, 1), ctx.x.dtype)
    e_in, f_in, g_in = group_step(mode, trace.e_in, J, D, ctx.x, ctx.psi, lam, trace.f_in, kappa)
    e_b, f_b, g_b = group_step(mode, trace.e_b, J, D, ones, ctx.psi, lam, trace.f_b, kappa)
    e_rec, f_rec, g_rec = trace.e_rec, trace.f_rec, None
    if layer.recurrent:
        e_rec, f_rec, g_rec = group_step(
            mode, trace.e_rec, J, D, ctx.z_prev, ctx.psi, lam, trace.f_rec, kappa
        )
    k = blocks.P.shape[-1]
    e_phi, f_phi, g_phi = trace.e_phi, trace.f_phi, jnp.zeros((layer.n, k), ctx.x.dtype)
    if k:
        e_phi, f_phi, g_phi = phi_step(
            trace.e_phi,
            blocks.J,
            blocks.P,
            ctx.psi,
            ctx.dz_dphi,
            lam,
            trace.f_phi,
            kappa,
            temporal=mode != "none",
        )
    return (
        EPropTrace(e_in, e_rec, e_b, e_phi, f_in, f_rec, f_b, f_phi),
        LayerGrads(g_in, g_rec, g_b[0], g_phi),
    )


class EProp(AbstractOnlineLearner):
    """e-prop (Bellec et al. 2020) with traces derived automatically from the neuron
    model, kept compressed (Lohoff, Kaya, Assmuth & Neftci 2025).

    Keeps only the neuron-local blocks of ``J_t``: for neuron ``j`` and a weight
    ``W[i, j, c]`` with presynaptic signal ``u_i``,

        e_t[j, :, c, i] = J_t[j] e_{t-1}[j, :, c, i] + D_t[j, :, c] u_t[i]
        g[i, j, c]     += sum_t lambda_t[j] (F_kappa psi_t[j] . e_t[j, :, c, i])

    with ``J_t = ds_t/ds_{t-1}`` (d x d), ``D_t = ds_t/dI_t`` (d x m) and
    ``psi_t = dz_t/ds_t`` from ``jax.jacfwd`` of the neuron's ``step`` and ``output``,
    and ``F_kappa`` the filter of a leaky readout.  Traces: (B, n, d, m, p) per layer,
    updated element-wise per neuron; no (n x n) Jacobian is formed.

    Factorised traces: when the blocks depend neither on the state nor on the inputs
    (e.g. ``LIF(detach_reset=True)``), detected automatically by dependency analysis
    of their jaxpr, every neuron shares one trace per presynaptic unit, (B, d, m, p).

    Exact (equal to BPTT) for a single feed-forward layer with a linear or leaky
    readout, spikes and reset included.  Across layers the learning signal is spatial
    (through the layers above at the same step) and cross-layer temporal routes are
    dropped, so deeper networks are approximate.

    Args:
        factorise: ``None`` (default) factorises when the model allows it, ``False``
            never, ``True`` requires it (``ValueError`` otherwise).
    """

    factorise: bool | None = eqx.field(static=True, default=None)
    name: ClassVar[str] = "eprop"

    def _mode(self, layer, dtype):
        if self.factorise is False:
            return "full", None
        constants = constant_blocks(layer.neuron, dtype)
        if constants is None:
            if self.factorise:
                raise ValueError(
                    f"EProp(factorise=True): the Jacobian blocks of "
                    f"{type(layer.neuron).__name__} depend on its state or inputs, so its "
                    "traces cannot be factorised; use EProp() (automatic) or a model whose "
                    "blocks are constant, e.g. LIF(detach_reset=True)"
                )
            return "full", None
        return "factorised", constants

    def is_factorised(self, layer, dtype=jnp.float32) -> bool:
        """Whether this learner keeps factorised traces for ``layer``."""
        return self._mode(layer, dtype)[0] == "factorised"

    def init_trace(self, layer, batch, n_in, kappa, dtype, key=None):
        return local_traces_init(layer, batch, n_in, kappa, dtype, self._mode(layer, dtype)[0])

    def update_trace(self, layer, trace, ctx, lam, kappa):
        mode, constants = self._mode(layer, ctx.x.dtype)
        if constants is not None:
            constants = tuple(jnp.asarray(c, ctx.x.dtype) for c in constants)
        return local_traces_update(layer, trace, ctx, lam, kappa, mode, constants)
