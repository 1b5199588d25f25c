"""e-prop with automatically derived, compressed eligibility traces."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from ..neurons.base import _step_one, split_neuron
from .base import AbstractOnlineLearner, LayerGrads, StepContext, n_phi

__all__ = ["EProp", "EPropTrace", "constant_blocks", "check_chunk"]

MAX_CHUNK = 256


class EPropTrace(NamedTuple):
    """Eligibility traces of one layer.  ``q`` is the presynaptic width of a group
    (p inputs, n recurrent units, 1 for the bias).  The neuron axis is last (see
    :func:`_contract_batch`).  Factorised traces drop the neuron axis ``n``: every
    neuron shares them."""

    e_in: Array | None  # (B, d, m, p, n)   or (B, d, m, p) factorised; None for SLTT
    e_rec: Array | None  # (B, d, m, n, n)  or (B, d, m, n); None if feed-forward / SLTT
    e_b: Array | None  # (B, d, m, 1, n)    or (B, d, m, 1); None for SLTT
    e_phi: Array | None  # (B, n, d, k)     per-neuron parameters; None for SLTT
    f_in: Array | None  # (B, m, p, n)      kappa-filtered dz/dW_in (leaky readout only)
    f_rec: Array | None  # (B, m, n, n)
    f_b: Array | None  # (B, m, 1, n)
    f_phi: Array | None  # (B, n, k)


def check_chunk(owner: str, chunk) -> None:
    """``chunk`` must be an integer in [1, MAX_CHUNK] (its steps are unrolled)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
        raise ValueError(
            f"{owner}: expected chunk to be an integer from 1 to {MAX_CHUNK} (steps whose "
            f"traces advance together; 1: step by step), received {chunk!r}"
        )


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
    einsum would lower to ``B n`` tiny matrix products.  (Per-neuron parameter traces,
    (B, n, d, k).)"""
    d = J.shape[-1]
    extra = (None,) * (e.ndim - 3)
    return sum(J[:, :, :, i][(...,) + extra] * e[:, :, None, i] for i in range(d))


def _project(psi, e):
    """``sum_d psi[b, n, d] e[b, n, d, ...]``, unrolled over ``d`` (no reduction op)."""
    extra = (None,) * (e.ndim - 3)
    return sum(psi[:, :, i][(...,) + extra] * e[:, :, i] for i in range(psi.shape[-1]))


# Weight traces keep the neuron axis n last ("neuron-minor"): e (B, d, m, q, n), filters
# f (B, m, q, n).  Every per-neuron coefficient (J, D, psi, lambda: (B, d, ..., n)) is
# then a contiguous vector along the fastest axis, and the gradient contraction over
# the batch produces (m, q, n), which is the parameter layout (q, n, m) for m = 1 and
# a cheap transpose otherwise.  With n first, XLA CPU fuses the transpose to (q, n, m)
# into the contraction and reads the trace with a stride (about 30 times slower).


def _nminor(x, axis=1):
    """Move the neuron axis (``axis``) of a per-neuron coefficient to the end."""
    return jnp.moveaxis(x, axis, -1)


def _lm(Jn, e):
    """``e'[b, d] = sum_i Jn[b, d, i] e[b, i]`` for e (B, d, m, q, n), Jn (B, d, d, n),
    unrolled over the small state axis: element-wise products fused into one pass."""
    return sum(Jn[:, :, i, None, None, :] * e[:, None, i] for i in range(Jn.shape[2]))


def _proj(pn, e):
    """``sum_d pn[b, d, n] e[b, d, m, q, n]`` -> (B, m, q, n), unrolled over d."""
    return sum(pn[:, i, None, None, :] * e[:, i] for i in range(pn.shape[1]))


def _contract_batch(w, e):
    """``sum_{b,d} w[b, d, n] e[b, d, m, q, n]`` -> (q, n, m), unrolled over the batch
    and state axes into element-wise products and sums (fused by XLA: one pass over
    ``e``), in groups of at most 64 terms.  XLA CPU lowers this contraction, written
    as an einsum, to a transpose and ``n`` tiny matrix-vector products, about 15 times
    slower."""
    B, d = w.shape[:2]
    terms = [(b, i) for b in range(B) for i in range(d)]
    parts = [
        sum(w[b, i, None, None, :] * e[b, i] for b, i in terms[j : j + 64])
        for j in range(0, len(terms), 64)
    ]
    return jnp.transpose(sum(parts), (1, 2, 0))  # (m, q, n) -> (q, n, m)


def group_step(mode, e, J, D, u, psi, lam, f, kappa):
    """Advance the trace ``e`` of one weight group and return ``(e, f, grad (q, n, m))``.

    mode "full":       e_t = J e_{t-1} + D u          e (B, d, m, q, n)
    mode "factorised": e_t = J0 e_{t-1} + D0 u        e (B, d, m, q), J0 (d, d), D0 (d, m)
    mode "none":       e_t = D u (no temporal route)  nothing carried

    ``J`` (B, n, d, d), ``D`` (B, n, d, m), ``psi`` (B, n, d), ``lam`` (B, n), ``u``
    (B, q); the filter of a leaky readout ``f`` (B, m, q, n).  The per-neuron d x d
    products are unrolled element-wise operations; the gradient's contraction over the
    batch is one pass over the trace (full) or one matrix product.
    """
    if mode == "full":
        Jn, Dn, pn = _nminor(J), _nminor(D), _nminor(psi)
        e = _lm(Jn, e) + Dn[:, :, :, None, :] * u[:, None, None, :, None]
        if f is None:  # sum_{b,d} (lam psi)[b, d, n] e[b, d, m, q, n]
            return e, f, _contract_batch(lam[:, None, :] * pn, e)
        dz = _proj(pn, e)  # (B, m, q, n)
    elif mode == "factorised":
        e = jnp.einsum("de,bemq->bdmq", J, e) + D[None, :, :, None] * u[:, None, None, :]
        if f is None:  # one (n, B d) x (B d, m q) product
            return e, f, jnp.einsum("bnd,bdmq->qnm", lam[..., None] * psi, e)
        dz = jnp.einsum("bnd,bdmq->bmqn", psi, e)
    else:
        e = None
        a = _project(psi, D)  # (B, n, m): dz/dI
        if f is None:
            return e, f, jnp.einsum("bnm,bq->qnm", lam[..., None] * a, u)
        dz = _nminor(a)[:, :, None, :] * u[:, None, :, None]
    f = kappa * f + dz
    return e, f, _contract_batch(lam[:, None, :], f[:, None])


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
            e[name] = jnp.zeros((B, d, m, q, n), dtype)
        f[name] = jnp.zeros((B, m, q, n), dtype) if (q is not None and kappa) else None
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


# --------------------------------------------------------------------------------------
# K steps at once (EProp.value_and_grad, chunk > 1)
#
# The traces obey a linear recursion whose coefficients (J_t, D_t, psi_t, lambda_t)
# are known for a whole chunk once its forward passes have run.  For steps k = 0..K-1
# of a chunk and the trace e before it (row vectors r over the state axis):
#
#     e_k   = Phi(k, -1) e + sum_{s <= k} Phi(k, s) D_s u_s,   Phi(k, s) = J_k ... J_{s+1}
#     sum_k w_k . e_k = a . e + sum_s c_s u_s,                  w_k = lambda_k psi_k
#         with r_s = w_s + r_{s+1} J_{s+1},  a = r_0 J_0,  c_s = r_s D_s
#     e_K   = Phi(K-1, -1) e + sum_s G_s u_s,                   G_s = Phi(K-1, s) D_s
#
# so a chunk reads and writes the (B, d, m, q, n) trace once, instead of once per step,
# and the gradient's outer products over K steps become one matrix product.  Only
# per-neuron (B, n, d, d) products run step by step.  A leaky readout's filter
# f_k = kappa f_{k-1} + psi_k . e_k is handled the same way: the learning signal is
# filtered backwards in time (l_s = lambda_s + kappa l_{s+1}, and
# sum_k lambda_k f_k = kappa l_0 f + sum_s l_s psi_s . e_s), and f_K is again a
# linear function of e and of the u_s.


def _vm(r, A):
    """Row vectors times per-neuron matrices, neuron axis last: ``sum_i r[..., i, n]
    A[..., i, j, n]`` -> (..., j, n), unrolled over i."""
    return sum(r[..., i, None, :] * A[..., i, :, :] for i in range(r.shape[-2]))


def _mm(A, B):
    """Per-neuron matrix products over axes (-3, -2), neuron axis last, unrolled."""
    return sum(A[..., :, i, None, :] * B[..., None, i, :, :] for i in range(A.shape[-2]))


def _outer_sum(coef, u):
    """``sum_s coef[s, b, ..., n] u[s, b, q]`` -> (B, ..., q, n), unrolled over s
    (element-wise, fused with whatever it is added to)."""
    extra = (None,) * (coef.ndim - 3)
    return sum(
        coef[s][..., None, :] * u[s][(slice(None),) + extra + (slice(None), None)]
        for s in range(coef.shape[0])
    )


def _outer_grad(c, u):
    """``sum_{s, b} c[s, b, m, n] u[s, b, q]`` -> (q, n, m): one matrix product."""
    K, B, m, n = c.shape
    q = u.shape[-1]
    g = u.reshape(K * B, q).T @ c.reshape(K * B, m * n)
    return jnp.transpose(g.reshape(q, m, n), (0, 2, 1))


def _chunk_coefficients(J, D, psi, lam, kappa, full, filtered):
    """The chunk's coefficients, by one reverse scan over its K steps (neuron axis
    last: J (K, B, d, d, n), D (K, B, d, m, n), psi (K, B, d, n), lam (K, B, n)).

    Returns stacked ``l`` (K, B, n) (learning signal filtered backwards by the readout's
    leak), ``c`` (K, B, m, n) and, with ``full``: ``G`` (K, B, d, m, n), ``v`` (K, B, m,
    n) (``filtered``), and the final ``a``, ``h`` (B, d, n) and ``Phi`` (B, d, d, n); see
    the comment above.  A scan, not a Python loop: its outputs are materialised, so
    XLA cannot fuse the K-long chains of small products into the big trace updates,
    which would recompute them for every element of the traces."""
    K = lam.shape[0]
    dt = lam.dtype
    B, d, n = psi.shape[1:]
    decay = jnp.asarray([kappa ** (K - 1 - s) for s in range(K)], dt)
    zeros = jnp.zeros((B, d, n), dt)
    eye = jnp.broadcast_to(jnp.eye(d, dtype=dt)[None, :, :, None], (B, d, d, n))
    carry0 = (jnp.zeros(lam.shape[1:], dt), zeros, zeros, eye)

    def body(carry, xs):
        ell, rJ, rhoJ, P = carry
        Js, Ds, ps, ls, dec = xs
        ell = ls + kappa * ell if filtered else ls
        r = ell[:, None, :] * ps + rJ  # r_s = w_s + r_{s+1} J_{s+1}
        out = {"l": ell, "c": _vm(r, Ds)}
        new = [ell, rJ, rhoJ, P]
        if full:
            new[1] = _vm(r, Js)
            out["G"] = _mm(P, Ds)  # Phi(K-1, s) D_s
            new[3] = _mm(P, Js)
            if filtered:
                rho = dec * ps + rhoJ
                out["v"] = _vm(rho, Ds)
                new[2] = _vm(rho, Js)
        return tuple(new), out

    # Unrolled by K / 2: two loop iterations, fewer and larger fusions than K (each
    # iteration's small fusions cost more to launch than to run).  Never K: a loop of
    # one iteration is inlined and the chains get fused into the trace updates again.
    (ell, a, h, P), outs = jax.lax.scan(
        body, carry0, (J, D, psi, lam, decay), reverse=True, unroll=max(1, K // 2)
    )
    return outs, a, h, P


def _factorised_maps(J0, D0, K: int):
    """The chunk's filter of factorised traces as matrices known when compiling (float64
    numpy): ``E_k = J0^(k+1) e + sum_{s <= k} J0^(k-s) D0 u_s`` for steps k < K.

    Returns ``A_u`` (K, m, K, d), ``A_e`` (d, K, d) and ``powers`` (J0^0 ... J0^K):
    with ``w_k`` (d,) the weight of step k's trace in the gradient (row vectors),
    ``sum_k w_k . E_k = sum_s w~_s u_s + w_e . e`` where
    ``w~_s[c] = sum_{k, i} A_u[s, c, k, i] w_k[i]`` and ``w_e[j] = sum_{k, i} A_e[j, k, i]
    w_k[i]``: the filter moved from the presynaptic signals onto the learning signal."""
    d, m = D0.shape
    powers = [np.eye(d)]
    for _ in range(K):
        powers.append(J0 @ powers[-1])
    A_u = np.zeros((K, m, K, d))
    for s_ in range(K):
        for k_ in range(s_, K):
            A_u[s_, :, k_, :] = (powers[k_ - s_] @ D0).T
    A_e = np.stack([powers[k_ + 1].T for k_ in range(K)], axis=1)  # (d, K, d)
    return A_u, A_e, powers


def _factorised_chunk(constants, lam, pn, U, e_prev, filtered):
    """K steps of factorised traces (shared by every neuron of a layer) at once.

    ``lam`` (K, B, n) learning signals, ``pn`` (K, B, d, n) ``psi``, ``U`` (K, B, Q) the
    presynaptic signals of all weight groups side by side, ``e_prev`` (B, d, m, Q) their
    traces before the chunk.  Returns the gradient (Q, n, m), the traces after the
    chunk (B, d, m, Q) and, with ``filtered``, the traces of every step (K, B, d, m, Q)
    that a leaky readout's filter needs (else ``None``).

    The filter acts on the learning signal (:func:`_factorised_maps`): with one current
    per neuron (m = 1) the gradient is ONE matrix product over the K B rows of ``U``
    and the B d rows of the trace carried in, stacked below them, and the weights of
    those rows come from one small product over the K steps.  The trace after the
    chunk is a weighted sum of the same rows (one fused pass); no trace of any other
    step is formed unless ``filtered``."""
    J0, D0 = (np.asarray(c, np.float64) for c in constants)
    K, _, Q = U.shape
    m = D0.shape[1]
    n, dt = lam.shape[-1], lam.dtype
    A_u, A_e, powers = _factorised_maps(J0, D0, K)
    w = lam[:, :, None, :] * pn  # (K, B, d, n): the weight of each step's trace
    if m == 1:  # rows of U, then rows of e_prev (b, j) as (j, b)
        A = jnp.asarray(np.concatenate([A_u[:, 0], A_e], axis=0), dt)  # (K + d, K, d)
        rows_w = jnp.einsum("xki,kbin->xbn", A, w)  # (K + d, B, n)
        rows_u = jnp.concatenate([U, jnp.swapaxes(e_prev[:, :, 0, :], 0, 1)], axis=0)
        g = (rows_u.reshape(-1, Q).T @ rows_w.reshape(-1, n))[:, :, None]
        # e_K = J0^K e + sum_s J0^(K-1-s) D0 u_s: a weighted sum of the same rows,
        # unrolled (one fused pass; as a product over the K axis, XLA CPU transposes
        # the rows first)
        coef = list(A_u[:, 0, K - 1, :]) + list(powers[K].T)
        e_last = sum(
            jnp.asarray(c, dt)[None, :, None] * rows_u[x][:, None, :] for x, c in enumerate(coef)
        )[:, :, None, :]
    else:
        w_u = jnp.einsum("sckd,kbdn->sbcn", jnp.asarray(A_u, dt), w)  # (K, B, m, n)
        w_e = jnp.einsum("jkd,kbdn->bjn", jnp.asarray(A_e, dt), w)  # (B, d, n)
        g = _outer_grad(w_u, U) + jnp.einsum("bjn,bjcq->qnc", w_e, e_prev)
        last = jnp.asarray(A_u[:, :, K - 1, :], dt)  # (K, m, d): J0^(K-1-s) D0, transposed
        e_last = jnp.einsum("ji,bicq->bjcq", jnp.asarray(powers[K], dt), e_prev) + sum(
            last[s].T[None, :, :, None] * U[s][:, None, None, :] for s in range(K)
        )
    E_all = None
    if filtered:
        Pw = jnp.asarray(np.stack(powers[1:]), dt)  # (K, d, d)
        Mm = jnp.asarray(np.transpose(A_u, (2, 0, 3, 1)), dt)  # [k, s]: J0^(k-s) D0, s <= k
        E_all = jnp.einsum("kde,bemq->kbdmq", Pw, e_prev) + jnp.einsum("ksdm,sbq->kbdmq", Mm, U)
        e_last = E_all[-1]  # formed anyway: the weighted sum above is then dropped as unused
    return g, e_last, E_all


def local_traces_chunk(layer, trace: EPropTrace, ctxs: StepContext, lams, kappa, mode, constants):
    """K steps of :func:`local_traces_update` at once (``ctxs``, ``lams`` stacked on a
    leading axis of length K); same result up to rounding."""
    psi, J, D = ctxs.psi, ctxs.blocks.J, ctxs.blocks.D  # (K, B, n, d), ...
    K, B = lams.shape[:2]
    dt = lams.dtype
    filtered = bool(kappa) and trace.f_b is not None
    ones = jnp.ones((K, B, 1), dt)
    groups = [("in", ctxs.x), ("b", ones)]
    if layer.recurrent:
        groups.insert(1, ("rec", ctxs.z_prev))
    pn, Dn = _nminor(psi, 2), _nminor(D, 2)  # (K, B, d, n), (K, B, d, m, n)
    full = mode == "full"
    if full or filtered:
        Jn = _nminor(J, 2) if full else jnp.zeros((K, B, 1, 1, 1), dt)
        co, a, h, phi_all = _chunk_coefficients(Jn, Dn, pn, lams, kappa, full, filtered)
    else:  # nothing to recurse over: the learning signals are the weights
        co = {"l": lams}
    beta = kappa * co["l"][0]  # (B, n): weight of the filter carried into the chunk
    decay = jnp.asarray([kappa ** (K - 1 - s) for s in range(K)], dt)

    # The gradient's products over the K B rows: one matrix product for all groups,
    # their presynaptic signals side by side (U: (K, B, p + n + 1)).
    sizes = [u.shape[-1] for _, u in groups]
    U = jnp.concatenate([u for _, u in groups], axis=-1)

    def split(a, axis):
        parts = jnp.split(a, np.cumsum(sizes)[:-1].tolist(), axis)
        return dict(zip([name for name, _ in groups], parts, strict=True))

    if mode == "full":
        gemm = split(_outer_grad(co["c"], U), 0)
    elif mode == "factorised":
        e_prev = jnp.concatenate([getattr(trace, "e_" + name) for name, _ in groups], axis=-1)
        g_all, e_last, E_all = _factorised_chunk(constants, co["l"], pn, U, e_prev, filtered)
        gemm, e_groups = split(g_all, 0), split(e_last, -1)
        E_groups = split(E_all, -1) if filtered else None
    else:
        A = _vm(pn, Dn)  # (K, B, m, n): dz_s/dI_s
        gemm = split(_outer_grad(co["l"][:, :, None, :] * A, U), 0)

    new, grads = {}, {}
    for name, u in groups:
        e, f = getattr(trace, "e_" + name), getattr(trace, "f_" + name)
        g = gemm[name]
        if mode == "full":
            g = g + _contract_batch(a, e)
            if filtered:
                f_new = kappa**K * f + _proj(h, e) + _outer_sum(co["v"], u)
            e_new = _lm(phi_all, e) + _outer_sum(co["G"], u)
        elif mode == "factorised":
            e_new = e_groups[name]
            if filtered:  # f_K = kappa^K f + sum_s kappa^(K-1-s) psi_s . E_s
                E = E_groups[name]
                coef = decay[:, None, None, None] * pn  # (K, B, d, n)
                f_new = kappa**K * f + sum(
                    coef[s, :, i, None, None, :] * E[s, :, i, :, :, None]
                    for s in range(K)
                    for i in range(psi.shape[-1])
                )
        else:
            if filtered:
                f_new = kappa**K * f + _outer_sum(decay[:, None, None, None] * A, u)
            e_new = None
        if filtered:
            g = g + _contract_batch(beta[:, None, :], f[:, None])
        else:
            f_new = f
        new[name] = (e_new, f_new)
        grads[name] = g

    e_phi, f_phi = trace.e_phi, trace.f_phi
    k = ctxs.blocks.P.shape[-1]
    g_phi = jnp.zeros((layer.n, k), dt)
    if k:

        def body(carry, xs):
            e_phi, f_phi, g_phi = carry
            Jt, Pt, pt, dzt, lt = xs
            e_phi, f_phi, g = phi_step(
                e_phi, Jt, Pt, pt, dzt, lt, f_phi, kappa, temporal=mode != "none"
            )
            return (e_phi, f_phi, g_phi + g), None

        (e_phi, f_phi, g_phi), _ = jax.lax.scan(
            body, (e_phi, f_phi, g_phi), (J, ctxs.blocks.P, psi, ctxs.dz_dphi, lams)
        )
    rec = new.get("rec", (trace.e_rec, trace.f_rec))
    return (
        EPropTrace(
            new["in"][0], rec[0], new["b"][0], e_phi, new["in"][1], rec[1], new["b"][1], f_phi
        ),
        LayerGrads(grads["in"], grads.get("rec"), grads["b"][0], g_phi),
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

    :meth:`value_and_grad` processes ``chunk`` steps at a time: it runs their forward
    passes and learning signals first (they do not depend on the traces), then
    advances the traces by the ``chunk`` steps at once (:func:`local_traces_chunk`):
    one read and write of the traces and one matrix product for the gradient per
    chunk, instead of per step.  The gradient is the same up to rounding; memory does
    not grow with the sequence length (the chunk's Jacobian blocks are kept, O(chunk B
    n d^2)).  :meth:`step` still advances one step.

    Args:
        factorise: ``None`` (default) factorises when the model allows it, ``False``
            never, ``True`` requires it (``ValueError`` otherwise).
        chunk: steps per chunk in :meth:`value_and_grad` (1: step by step).  ``None``
            (default): 32 when every layer's traces are factorised, else 16 (the
            fastest on CPU: factorised chunks carry no per-step Jacobian blocks, so
            longer chunks only spread their fixed costs further).
    """

    factorise: bool | None = eqx.field(static=True, default=None)
    chunk: int | None = eqx.field(static=True, default=None)
    name: ClassVar[str] = "eprop"

    def __check_init__(self):
        if self.chunk is not None:
            check_chunk(type(self).__name__, self.chunk)

    def chunk_size(self, model=None) -> int:
        if self.chunk is not None:
            return self.chunk
        if model is not None and all(self.is_factorised(l, model.dtype) for l in model.layers):
            return 32
        return 16

    def constant_blocks(self, layer, dtype):
        mode, constants = self._mode(layer, dtype)
        return constants if mode == "factorised" and not n_phi(layer) else None

    def update_chunk(self, layer, trace, ctxs, lams, kappa):
        mode, constants = self._mode(layer, lams.dtype)
        if constants is not None:
            constants = tuple(jnp.asarray(c, lams.dtype) for c in constants)
        return local_traces_chunk(layer, trace, ctxs, lams, kappa, mode, constants)

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
