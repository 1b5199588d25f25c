"""The learner base class: one public contract for every gradient rule.

    loss, grads = learner.value_and_grad(model, inputs, targets, mask=None, *,
                                         loss=plastax.losses.cross_entropy, key=None)

``inputs`` are (T, B, n_in), ``targets`` (T, B) class indices or (T, B, n_out) values,
``mask`` (T,) weights of each step in the loss.  ``grads`` has the pytree structure
of ``model`` (``None`` where a leaf is not trainable), like ``eqx.filter_grad``.
"""

import abc
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from ..losses import AbstractLoss, check_mask, cross_entropy, mask_norm
from ..network import Network, NetworkState, check_inputs
from ..neurons.base import (
    LocalBlocks,
    layer_blocks,
    layer_output,
    layer_step,
    output_jacobian,
    output_param_jacobian,
    per_neuron_params,
)

__all__ = [
    "AbstractLearner",
    "AbstractOnlineLearner",
    "OnlineState",
    "StepContext",
    "LayerGrads",
    "prepare",
]


class AbstractLearner(eqx.Module):
    """A gradient rule.  Concrete learners are final classes passed as arguments,
    like diffrax's ``adjoint=``: ``train(model, task, learner=EProp())``."""

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def value_and_grad(
        self,
        model: Network,
        inputs,
        targets,
        mask=None,
        *,
        loss: AbstractLoss = cross_entropy,
        key=None,
    ):
        """(scalar loss, gradient estimate with the pytree structure of ``model``)."""


def prepare(model: Network, inputs, targets, mask, loss: AbstractLoss):
    """Validate and convert the arguments every learner receives."""
    if not isinstance(model, Network):
        raise ValueError(f"expected a plastax.Network as model, received {type(model).__name__}")
    if not isinstance(loss, AbstractLoss):
        raise ValueError(
            "loss: expected a plastax loss (plastax.losses.cross_entropy, mse, ...), "
            f"received {type(loss).__name__}"
        )
    check_inputs(inputs, model.n_in)
    inputs = jnp.asarray(inputs, model.dtype)
    T, B = inputs.shape[:2]
    targets = targets if isinstance(targets, jax.Array) else np.asarray(targets)
    if targets.dtype.kind not in "biuf":
        raise ValueError(
            f"targets: expected numbers, received dtype {targets.dtype}; pass integer class "
            "labels (classification) or real values (regression)"
        )
    targets = jnp.asarray(targets)
    classification = getattr(loss, "classification", True)
    expected = (T, B) if classification else (T, B, model.n_out)
    if targets.shape != expected:
        raise ValueError(
            f"targets: expected shape {expected} for loss {loss.name}, received "
            f"{targets.shape}; broadcast per-sequence labels over time with "
            "jnp.broadcast_to(labels, (T, B))"
        )
    _check_targets(targets, classification, model.n_out)
    if not classification:
        targets = targets.astype(model.dtype)
    return inputs, targets, check_mask(mask, T, model.dtype)


def _check_targets(targets, classification: bool, n_out: int) -> None:
    """Dtype always; values (labels in range, finite regression targets) when concrete."""
    kind = targets.dtype.kind
    if classification and kind not in "iu":
        raise ValueError(
            f"targets: expected integer class labels in [0, {n_out}), received dtype "
            f"{targets.dtype}; convert labels with .astype(int)"
        )
    if not classification and kind not in "fiu":
        raise ValueError(f"targets: expected real numbers, received dtype {targets.dtype}")
    if isinstance(targets, jax.core.Tracer):
        return
    values = np.asarray(targets)
    if classification and values.size and (values.min() < 0 or values.max() >= n_out):
        raise ValueError(
            f"targets: expected class labels in [0, {n_out}), received labels from "
            f"{values.min()} to {values.max()}; the readout has n_out={n_out} classes"
        )
    if not classification and not np.all(np.isfinite(values)):
        raise ValueError("targets: expected finite values, received NaN or Inf")


# ======================================================================================
# The online engine: one recursion for every forward-mode learner (DESIGN.md section 1)
#
#     M_t = J_t M_{t-1} + F_t          (influence of the state on the parameters)
#     g  += lambda_t . dz_t/dtheta     (learning signal of step t times the influence)
#
# lambda_t = dE_t/dz_t^l comes from jax.vjp through the spatial graph of step t alone
# (layers above, readout, loss).  A leaky readout y_t = kappa y_{t-1} + (1-kappa) W z_t
# is handled exactly by filtering dz/dtheta with kappa (Bellec et al. 2020, F_kappa),
# so for one layer the only approximation a learner makes is its choice of J_t.


class StepContext(NamedTuple):
    """What a learner needs of one layer at step t (every array of this step)."""

    s_prev: Array  # (B, n, d)       state at t-1
    x: Array  # (B, p)               presynaptic input at t (network input or layer below)
    z_prev: Array | None  # (B, n)   own output at t-1 (recurrent layers)
    blocks: LocalBlocks  # s_new, J (B,n,d,d), D (B,n,d,m), P (B,n,d,k)
    psi: Array  # (B, n, d)          dz_t/ds_t
    dz_dphi: Array | None  # (B, n, k) direct dz_t/dphi at fixed state (k > 0 only)
    key: Array  # PRNG key of this layer and step (for learners that sample)


class LayerGrads(NamedTuple):
    """One step's gradient contribution of a layer (shapes of the parameters)."""

    w_in: Array  # (p, n, m)
    w_rec: Array | None  # (n, n, m)
    bias: Array  # (n, m)
    phi: Array  # (n, k)


class OnlineState(NamedTuple):
    """State of an online learner.  Its size does not depend on the sequence length."""

    net: NetworkState  # network state: per layer (B, n, d), readout (B, n_out)
    traces: tuple  # per layer, the learner's influence representation
    readout_trace: Array  # (B, n_L)  kappa-filtered top-layer output, for dE/dW_out
    bias_trace: Array  # ()           kappa-filtered constant 1, for dE/db_out
    grads: Any  # model-shaped accumulated gradient (None where not trainable)
    loss: Array  # ()                 accumulated loss
    t: Array  # ()                    steps taken
    key: Array  # PRNG key (sampling learners)
    schedule: Array | None  # (T,) 0/1 steps that contribute (SLTT(k)); None: every step


class _Forward(NamedTuple):
    """What :meth:`AbstractOnlineLearner._forward` returns for one step."""

    net: NetworkState  # network state after the step
    ctxs: tuple  # per layer, its StepContext
    lams: tuple  # per layer, (B, n) learning signal dE_t/dz_t (schedule applied)
    lam_y: Array  # (B, n_out) dE_t/dy_t (schedule applied)
    z_top: Array  # (B, n_L) output of the top layer
    e_t: Array  # () loss of the step
    key: Array  # the learner's key for the next step


def n_phi(layer) -> int:
    """Number of trainable per-neuron parameters of a layer's neuron model."""
    return sum(1 for _ in jax.tree.leaves(per_neuron_params(layer.neuron)))


def phi_to_tree(layer, g_phi: Array):
    """(n, k) gradient of the flattened per-neuron parameters -> the neuron's pytree."""
    params = per_neuron_params(layer.neuron)
    _, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], params))
    return jax.vmap(unravel)(g_phi)


class AbstractOnlineLearner(AbstractLearner):
    """Base of the forward-mode learners: ``init`` / ``step`` / ``grads``, and
    ``value_and_grad`` as a ``lax.scan`` of ``step``.  Subclasses choose ``J_t`` by
    implementing the two methods below; the training loop, learning signals and
    readout are shared."""

    @abc.abstractmethod
    def init_trace(self, layer, batch: int, n_in: int, kappa: float, dtype, key):
        """Initial influence representation of one layer (``key``: for learners that
        sample, e.g. the paths of sparse RTRL)."""

    @abc.abstractmethod
    def update_trace(self, layer, trace, ctx: StepContext, lam: Array, kappa: float):
        """Advance one layer's influence by one step and return
        ``(new_trace, LayerGrads)``: the step's gradient ``sum_b lam . dz/dtheta``."""

    def check(self, model: Network, batch: int) -> None:
        """Refuse configurations that cannot work, before anything is compiled."""

    def sample_schedule(self, key, mask: Array) -> Array | None:
        """Which steps contribute to the gradient (None: all of them)."""
        return None

    # ---------------------------------------------------------------- public contract
    def init(self, model: Network, batch_size: int, *, key=None, mask=None) -> OnlineState:
        """Fresh learner state for ``batch_size`` parallel sequences."""
        if not isinstance(model, Network):
            raise ValueError(
                f"expected a plastax.Network as model, received {type(model).__name__}"
            )
        self.check(model, batch_size)
        dt = model.dtype
        kappa = model.readout.kappa
        key = jax.random.key(0) if key is None else key
        key, sub, layer_key = jax.random.split(key, 3)
        traces, p = [], model.n_in
        for layer, k in zip(
            model.layers, jax.random.split(layer_key, len(model.layers)), strict=True
        ):
            traces.append(self.init_trace(layer, batch_size, p, kappa, dt, k))
            p = layer.n
        schedule = None if mask is None else self.sample_schedule(sub, mask)
        grads = jax.tree.map(jnp.zeros_like, eqx.filter(model, eqx.is_inexact_array))
        return OnlineState(
            net=model.init_state(batch_size),
            traces=tuple(traces),
            readout_trace=jnp.zeros((batch_size, model.layers[-1].n), dt),
            bias_trace=jnp.zeros((), dt),
            grads=grads,
            loss=jnp.zeros((), dt),
            t=jnp.zeros((), jnp.int32),
            key=key,
            schedule=schedule,
        )

    def step(
        self,
        model: Network,
        state: OnlineState,
        x_t,
        target_t,
        weight=1.0,
        *,
        loss: AbstractLoss = cross_entropy,
    ):
        """One time step: advance the network and the influences, add
        ``weight * mean_b loss(y_t, target_t)`` to the loss and its gradient estimate to
        the accumulated gradient.  Returns ``(state, loss_t)``."""
        self._require_per_step(loss)
        kappa = model.readout.kappa
        n_layers = len(model.layers)
        fw = self._forward(
            model, state.net, state.t, state.key, state.schedule, x_t, target_t, weight, loss
        )
        traces, layer_grads = [], []
        for l in range(n_layers):
            tr, g = self.update_trace(
                model.layers[l], state.traces[l], fw.ctxs[l], fw.lams[l], kappa
            )
            traces.append(tr)
            layer_grads.append(g)

        # Readout: exact forward mode through its leak.
        zbar = kappa * state.readout_trace + (1.0 - kappa) * fw.z_top
        bbar = kappa * state.bias_trace + (1.0 - kappa)
        lam_y = fw.lam_y
        step_grads = self._assemble(model, layer_grads, zbar.T @ lam_y, bbar * lam_y.sum(0))
        return OnlineState(
            net=fw.net,
            traces=tuple(traces),
            readout_trace=zbar,
            bias_trace=bbar,
            grads=jax.tree.map(jnp.add, state.grads, step_grads),
            loss=state.loss + fw.e_t,
            t=state.t + 1,
            key=fw.key,
            schedule=state.schedule,
        ), fw.e_t

    def _forward(self, model, net, t, key, schedule, x_t, target_t, weight, loss) -> _Forward:
        """The part of a step that does not depend on the traces: the network's step,
        the Jacobian blocks and the learning signals (scaled by the step's weight in
        the schedule)."""
        dt = model.dtype
        x_t = jnp.asarray(x_t, dt)
        n_layers = len(model.layers)

        next_key, step_key = jax.random.split(key)
        layer_keys = jax.random.split(step_key, n_layers)

        def spatial(deltas, dy):
            """Step t as a function of perturbations of each layer's output and of y."""
            h, ctxs = x_t, []
            for l, layer in enumerate(model.layers):
                s_prev = net.layers[l]
                z_prev = layer_output(layer.neuron, s_prev) if layer.recurrent else None
                blocks = layer_blocks(layer.neuron, s_prev, layer.currents(h, z_prev))
                z, psi = output_jacobian(layer.neuron, blocks.s_new)
                dz_dphi = (
                    output_param_jacobian(layer.neuron, blocks.s_new) if n_phi(layer) else None
                )
                ctxs.append(StepContext(s_prev, h, z_prev, blocks, psi, dz_dphi, layer_keys[l]))
                h = z + deltas[l]
            y = model.readout.step(net.readout, h) + dy
            e_t = weight * jnp.mean(loss(y, target_t))
            return e_t, (tuple(ctxs), y, h)

        deltas = tuple(jnp.zeros((x_t.shape[0], layer.n), dt) for layer in model.layers)
        dy = jnp.zeros_like(net.readout)
        e_t, vjp_fn, (ctxs, y, z_top) = jax.vjp(spatial, deltas, dy, has_aux=True)
        ctxs = jax.lax.stop_gradient(ctxs)
        lams, lam_y = vjp_fn(jnp.ones_like(e_t))

        if schedule is None:
            contributes = jnp.ones((), dt)
        else:
            contributes = schedule[jnp.minimum(t, schedule.shape[0] - 1)]
        return _Forward(
            net=NetworkState(tuple(c.blocks.s_new for c in ctxs), y),
            ctxs=ctxs,
            lams=tuple(lam * contributes for lam in lams),
            lam_y=lam_y * contributes,
            z_top=z_top,
            e_t=e_t,
            key=next_key,
        )

    def grads(self, state: OnlineState):
        """The gradient accumulated so far, with the pytree structure of the model."""
        return state.grads

    def reset_grads(self, state: OnlineState) -> OnlineState:
        """Zero the accumulated gradient and loss; keep network state and traces
        (used after each online optimizer update)."""
        return state._replace(
            grads=jax.tree.map(jnp.zeros_like, state.grads), loss=jnp.zeros_like(state.loss)
        )

    def value_and_grad(
        self, model, inputs, targets, mask=None, *, loss: AbstractLoss = cross_entropy, key=None
    ):
        inputs, targets, mask = prepare(model, inputs, targets, mask, loss)
        self._require_per_step(loss)
        weights = mask / mask_norm(mask)
        state = self.init(model, inputs.shape[1], key=key, mask=mask)
        # The steps after the last one are padding of weight 0 (the state is not used
        # afterwards), so the whole sequence goes in chunks.
        state = self.advance(model, state, inputs, targets, weights, loss=loss, pad=True)
        return state.loss, self.grads(state)

    def advance(
        self,
        model: Network,
        state: OnlineState,
        inputs,
        targets,
        weights,
        *,
        loss: AbstractLoss = cross_entropy,
        pad: bool = False,
    ) -> OnlineState:
        """``len(inputs)`` calls of :meth:`step` (``inputs`` (T, B, n_in), ``targets``
        and ``weights`` (T,) stacked likewise), :meth:`chunk_size` steps at a time where
        the learner has a cheaper chunk update: the same state, loss and accumulated
        gradient up to rounding.  Use it for a block of steps between two optimizer
        updates.

        ``pad=False``: the steps that do not fill a last chunk go one at a time, so the
        network state carried out is exactly that after T steps.  ``pad=True``: the last
        chunk is filled with steps of weight 0 instead (no loss, no gradient, but the
        network runs on): for the end of a sequence whose state is not used again."""
        self._require_per_step(loss)
        T = inputs.shape[0]
        K = min(self.chunk_size(model), T)
        xs = (inputs, targets, jnp.asarray(weights, model.dtype))

        def one(st, xs_):
            st, _ = self.step(model, st, *xs_, loss=loss)
            return st, None

        if K <= 1:
            return jax.lax.scan(one, state, xs)[0]
        # K steps at a time: the forward passes and learning signals of a chunk first
        # (they do not depend on the traces), then the traces advance K steps at once.
        # One compiled chunk of fixed size, so memory does not depend on T.  Each chunk
        # is a slice of the inputs (the last one, if T is no multiple of K, is gathered
        # with padding filled in), so nothing of size T is copied.
        n_chunks = -(-T // K) if pad else T // K

        def take(a, i):  # steps i K ... i K + K - 1, zeros past the end
            full = jax.lax.dynamic_slice_in_dim(a, i * K, K)
            if n_chunks * K <= T:  # no chunk reaches past the end (T % K == 0, or pad=False)
                return full
            padded = lambda: a.at[i * K + jnp.arange(K)].get(mode="fill", fill_value=0)
            return jax.lax.cond(i * K + K <= T, lambda: full, padded)

        def body(st, i):
            return self._chunk(model, st, tuple(take(a, i) for a in xs), loss), None

        state, _ = jax.lax.scan(body, state, jnp.arange(n_chunks))
        if n_chunks * K < T:  # the rest, step by step
            state, _ = jax.lax.scan(one, state, tuple(a[n_chunks * K :] for a in xs))
        return state

    # ---------------------------------------------------------------- chunks of steps
    def constant_blocks(self, layer, dtype):
        """``(J, D)`` (numpy, (d, d) and (d, m)) when ``layer``'s neuron-local Jacobian
        blocks are constants and they are all this learner needs of the layer's steps
        besides the new states (no per-neuron parameters, no state before the step):
        then a chunk keeps only the new states of its steps.  ``None`` (default):
        the blocks are derived from the states and currents of every step."""
        return None

    def chunk_size(self, model: Network | None = None) -> int:
        """Steps that :meth:`value_and_grad` processes together for ``model`` (1: one
        at a time).

        Learners that override :meth:`update_chunk` with something cheaper than K
        single steps return more; the result is the same up to rounding."""
        return 1

    def update_chunk(self, layer, trace, ctxs: StepContext, lams: Array, kappa: float):
        """Advance one layer's influence by K steps: ``ctxs`` and ``lams`` hold the K
        steps' contexts and learning signals stacked on a leading axis.  Returns
        ``(new_trace, LayerGrads)`` with the gradient summed over the K steps.  The
        default runs :meth:`update_trace` K times."""

        def body(tr, xs):
            return self.update_trace(layer, tr, *xs, kappa)

        trace, grads = jax.lax.scan(body, trace, (ctxs, lams))
        return trace, jax.tree.map(lambda g: g.sum(0), grads)

    def _chunk(self, model, state: OnlineState, xs, loss) -> OnlineState:
        """K steps of :meth:`step` (``xs``: inputs, targets and weights of the K steps,
        stacked), with the traces advanced by :meth:`update_chunk`."""
        kappa = model.readout.kappa
        net, t, key, ctxs, lams, lam_y, z_top, e = self._chunk_forward(model, state, xs, loss)
        traces, layer_grads = [], []
        for l, layer in enumerate(model.layers):
            tr, g = self.update_chunk(layer, state.traces[l], ctxs[l], lams[l], kappa)
            traces.append(tr)
            layer_grads.append(g)

        # Readout: its leak filter step by step (small), then one product over K * B.
        if kappa:

            def leak(carry, z):
                zbar, bbar = carry
                zbar = kappa * zbar + (1.0 - kappa) * z
                bbar = kappa * bbar + (1.0 - kappa)
                return (zbar, bbar), (zbar, bbar)

            (zbar, bbar), (zbars, bbars) = jax.lax.scan(
                leak, (state.readout_trace, state.bias_trace), z_top
            )
        else:  # no leak: the filtered output is the output
            zbars, bbars = z_top, jnp.ones(z_top.shape[:1], z_top.dtype)
            zbar, bbar = z_top[-1], jnp.ones_like(state.bias_trace)
        # (n_out, K B) x (K B, n), then the small result transposed: the other order
        # would transpose the larger zbars first
        g_wout = jnp.einsum("kbo,kbn->on", lam_y, zbars).T
        g_bout = jnp.einsum("k,kbo->o", bbars, lam_y)
        step_grads = self._assemble(model, layer_grads, g_wout, g_bout)
        return OnlineState(
            net=net,
            traces=tuple(traces),
            readout_trace=zbar,
            bias_trace=bbar,
            grads=jax.tree.map(jnp.add, state.grads, step_grads),
            loss=state.loss + e.sum(),
            t=t,
            key=key,
            schedule=state.schedule,
        )

    def _chunk_forward(self, model, state: OnlineState, xs, loss):
        """The trace-independent part of K steps (what :meth:`_forward` does for one),
        layer by layer instead of step by step.

        Each layer runs the K steps at once: its input currents are one matrix product
        over the K B rows, and only the recurrent currents and the neuron's step go
        step by step (a scan).  The Jacobian blocks, the readout and the loss are then
        computed for all K steps together, and the learning signals are propagated
        down through the layers of each step (spatially, as :meth:`_forward`'s
        ``jax.vjp`` does): ``dE/dI^l = (lambda^l psi^l) . D^l``,
        ``lambda^{l-1} = dE/dI^l W_in^l``.  Same result as K calls of :meth:`_forward`
        up to rounding; cheaper, because the products over K B rows are large."""
        x, targets, weights = xs
        dt = model.dtype
        x = jnp.asarray(x, dt)
        K, B = x.shape[:2]
        n_layers = len(model.layers)

        def keys(key, _):
            next_key, step_key = jax.random.split(key)
            return next_key, jax.random.split(step_key, n_layers)

        next_key, layer_keys = jax.lax.scan(keys, state.key, None, length=K)  # (K, L)
        if state.schedule is None:
            contributes = jnp.ones((K,), dt)
        else:
            idx = jnp.minimum(state.t + jnp.arange(K), state.schedule.shape[0] - 1)
            contributes = state.schedule[idx]

        def flat(a):  # (K, B, ...) -> (K B, ...)
            return a.reshape((K * B,) + a.shape[2:])

        def unflat(a):
            return a.reshape((K, B) + a.shape[1:])

        h, new_layers, ctxs = x, [], []
        for l, layer in enumerate(model.layers):
            m_in, m_rec = layer.masks(dt)
            I_in = jnp.einsum("kbp,pnm->kbnm", h, layer.w_in * m_in) + layer.bias
            w_rec = layer.w_rec * m_rec if layer.recurrent else None
            const = self.constant_blocks(layer, dt)

            def body(s, I_t, layer=layer, w_rec=w_rec, const=const):
                if layer.recurrent:
                    z_prev = layer_output(layer.neuron, s)
                    I_t = I_t + jnp.einsum("bq,qnm->bnm", z_prev, w_rec)
                s_new = layer_step(layer.neuron, s, I_t)
                # constant blocks: the new states are all a chunk needs (one stacked
                # output instead of two, and no step recomputed afterwards)
                return s_new, (s_new if const is not None else (s, I_t))

            s_last, out = jax.lax.scan(body, state.net.layers[l], I_in)
            if const is None:
                s_prev, I = out
                blocks = layer_blocks(layer.neuron, flat(s_prev), flat(I))
            else:
                s_prev = jnp.concatenate([state.net.layers[l][None], out[:-1]])
                n = layer.n
                J0, D0 = (jnp.asarray(c, dt) for c in const)
                blocks = LocalBlocks(
                    flat(out),
                    jnp.broadcast_to(J0, (K * B, n) + J0.shape),
                    jnp.broadcast_to(D0, (K * B, n) + D0.shape),
                    jnp.zeros((K * B, n, J0.shape[0], 0), dt),
                )
            z, psi = output_jacobian(layer.neuron, blocks.s_new)
            dz_dphi = output_param_jacobian(layer.neuron, blocks.s_new) if n_phi(layer) else None
            z_prev = layer_output(layer.neuron, flat(s_prev)) if layer.recurrent else None
            ctx = StepContext(
                s_prev,
                h,
                None if z_prev is None else unflat(z_prev),
                jax.tree.map(unflat, blocks),
                unflat(psi),
                None if dz_dphi is None else unflat(dz_dphi),
                layer_keys[:, l],
            )
            ctxs.append(ctx)
            new_layers.append(s_last)
            h = unflat(z)

        # Readout and loss of the K steps; its state y_{t-1} step by step (small).
        readout = model.readout
        if readout.kappa:
            drive = readout.drive(h)

            def leak(y, d):
                return readout.kappa * y + (1.0 - readout.kappa) * d, y

            y_last, y_prev = jax.lax.scan(leak, state.net.readout, drive)
        else:
            y_prev = jnp.broadcast_to(state.net.readout, (K,) + state.net.readout.shape)

        def top(z_top, dy):
            y = jax.vmap(readout.step)(y_prev, z_top) + dy
            e = weights * jax.vmap(lambda y_t, t_t: jnp.mean(loss(y_t, t_t)))(y, targets)
            return e.sum(), (e, y)

        _, vjp_fn, (e, y) = jax.vjp(top, h, jnp.zeros_like(y_prev), has_aux=True)
        lam_top, lam_y = vjp_fn(jnp.ones((), dt))
        if not readout.kappa:
            y_last = y[-1]

        # Learning signals down through the layers of each step.
        lams = [None] * n_layers
        lam = lam_top
        for l in range(n_layers - 1, -1, -1):
            lams[l] = lam
            if l == 0:
                break
            c = ctxs[l]
            w = lam[..., None] * c.psi  # (K, B, n, d); unrolled over the small d
            dI = sum(w[..., i, None] * c.blocks.D[..., i, :] for i in range(w.shape[-1]))
            m_in, _ = model.layers[l].masks(dt)
            lam = jnp.einsum("kbnm,pnm->kbp", dI, model.layers[l].w_in * m_in)
        scale = contributes[:, None, None]
        return (
            NetworkState(tuple(new_layers), y_last),
            state.t + K,
            next_key,
            tuple(jax.lax.stop_gradient(c) for c in ctxs),
            tuple(lam * scale for lam in lams),
            lam_y * scale,
            h,
            e,
        )

    # ---------------------------------------------------------------- helpers
    def _require_per_step(self, loss: AbstractLoss) -> None:
        if not loss.splits_over_time:
            raise ValueError(
                f"{type(self).__name__}: the loss {loss.name!r} does not split over time, "
                "so an online learner cannot compute it step by step; use learner BPTT() "
                "or a per-step loss such as plastax.losses.cross_entropy or mse"
            )

    @staticmethod
    def _assemble(model, layer_grads, g_wout, g_bout):
        """Model-shaped gradient of one step (current masks applied)."""
        tree = eqx.filter(model, eqx.is_inexact_array)
        for l, (layer, g) in enumerate(zip(model.layers, layer_grads, strict=True)):
            m_in, m_rec = layer.masks(g.w_in.dtype)
            tree = eqx.tree_at(lambda t, l=l: t.layers[l].w_in, tree, g.w_in * m_in)
            tree = eqx.tree_at(lambda t, l=l: t.layers[l].bias, tree, g.bias)
            if layer.recurrent:
                tree = eqx.tree_at(lambda t, l=l: t.layers[l].w_rec, tree, g.w_rec * m_rec)
            if n_phi(layer):
                phi = jax.tree.leaves(phi_to_tree(layer, g.phi))
                tree = eqx.tree_at(lambda t, l=l: jax.tree.leaves(t.layers[l].neuron), tree, phi)
        tree = eqx.tree_at(lambda t: t.readout.weight, tree, g_wout)
        tree = eqx.tree_at(lambda t: t.readout.bias, tree, g_bout)
        return tree
