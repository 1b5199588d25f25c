"""Truncated backpropagation through time."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..losses import AbstractLoss, cross_entropy, mask_norm
from .base import AbstractLearner, prepare

__all__ = ["TBPTT"]


class TBPTT(AbstractLearner):
    """BPTT inside windows of ``window`` steps; the state is carried across windows but
    its gradient is stopped at each window boundary (Williams & Peng 1990).

    Memory O(B window n d), independent of T.  Exact when ``window >= T``.  The loss
    must split over time.  A final partial window is padded with masked steps.
    """

    window: int = eqx.field(static=True)
    name: ClassVar[str] = "tbptt"

    def __check_init__(self):
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window <= 0:
            raise ValueError(
                f"TBPTT: expected window to be a positive integer (time steps), received "
                f"{self.window!r}"
            )

    def value_and_grad(
        self, model, inputs, targets, mask=None, *, loss: AbstractLoss = cross_entropy, key=None
    ):
        inputs, targets, mask = prepare(model, inputs, targets, mask, loss)
        if not loss.splits_over_time:
            raise ValueError(
                f"TBPTT: the loss {loss.name!r} does not split over time, so truncated "
                "windows cannot be trained on it; use learner BPTT() or a per-step loss "
                "such as plastax.losses.cross_entropy"
            )
        T, B = inputs.shape[:2]
        w = min(self.window, T)
        n_win = -(-T // w)
        pad = n_win * w - T
        norm = mask_norm(mask)

        def padded(a):
            a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
            return a.reshape((n_win, w) + a.shape[1:])

        xs, ts, ms = padded(inputs), padded(targets), padded(mask)
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def window_loss(p, state, x, t, m):
            net = eqx.combine(p, static)
            state, ys, _ = net.run(x, state)
            per_step = jax.vmap(loss)(ys, t)
            return jnp.sum(m * jnp.mean(per_step, axis=1)) / norm, state

        grad_fn = jax.value_and_grad(window_loss, has_aux=True)

        def body(carry, xs_):
            total, g, state = carry
            (lw, state), gw = grad_fn(params, state, *xs_)
            state = jax.lax.stop_gradient(state)
            return (total + lw, jax.tree.map(jnp.add, g, gw), state), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        init = (jnp.zeros((), model.dtype), zeros, model.init_state(B))
        (total, grads, _), _ = jax.lax.scan(body, init, (xs, ts, ms))
        return total, grads
