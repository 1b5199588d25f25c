"""Losses over time with a mask.

A *per-step* loss ``l(y_t, target_t) -> (B,)`` splits over time, so every learner can
use it; the sequence loss is

    E = sum_t mask_t * mean_b l(y_t[b], target_t[b]) / sum_t mask_t.

A *sequence* loss (for example cross-entropy on the maximum of the readout over time,
Zenke & Vogels 2021) does not split over time; only the BPTT learners accept it.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "AbstractLoss",
    "PerStepLoss",
    "SequenceLoss",
    "cross_entropy",
    "mse",
    "max_over_time_cross_entropy",
    "check_mask",
    "sequence_loss",
    "mask_norm",
]


class AbstractLoss(eqx.Module):
    name: eqx.AbstractVar[str]

    @property
    @abc.abstractmethod
    def splits_over_time(self) -> bool:
        """Whether the loss is a sum of per-step terms (online learners need that)."""


class PerStepLoss(AbstractLoss):
    """A loss that is a masked mean over time of per-step, per-example terms."""

    name: str
    fn: callable = eqx.field(static=True)
    classification: bool = eqx.field(static=True, default=True)

    @property
    def splits_over_time(self) -> bool:
        return True

    def __call__(self, y: Float[Array, "batch n_out"], target) -> Float[Array, " batch"]:
        return self.fn(y, target)


class SequenceLoss(AbstractLoss):
    """A loss of the whole output sequence ``(T, B, n_out)``; BPTT only."""

    name: str
    fn: callable = eqx.field(static=True)
    classification: bool = eqx.field(static=True, default=True)

    @property
    def splits_over_time(self) -> bool:
        return False

    def __call__(self, ys, targets, mask):
        return self.fn(ys, targets, mask)


def _cross_entropy(y, target):
    logp = jax.nn.log_softmax(y, axis=-1)
    return -jnp.take_along_axis(logp, target[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _mse(y, target):
    return jnp.mean((y - target) ** 2, axis=-1)


def _max_over_time_ce(ys, targets, mask):
    masked = jnp.where(mask[:, None, None] > 0, ys, -jnp.inf)
    return jnp.mean(_cross_entropy(jnp.max(masked, axis=0), targets[-1]))


cross_entropy = PerStepLoss("cross_entropy", _cross_entropy, classification=True)
"""Softmax cross-entropy of the readout at each masked step; targets are class indices."""

mse = PerStepLoss("mse", _mse, classification=False)
"""Mean squared error per step; targets have the readout's shape."""

max_over_time_cross_entropy = SequenceLoss(
    "max_over_time_cross_entropy", _max_over_time_ce, classification=True
)
"""Cross-entropy of the per-class maximum of the readout over the masked steps."""


def check_mask(mask, n_steps: int, dtype):
    """A ``(T,)`` mask of ones by default; shape errors say what to pass."""
    if mask is None:
        return jnp.ones((n_steps,), dtype)
    raw = mask if isinstance(mask, jax.Array) else np.asarray(mask)
    if raw.dtype.kind not in "biuf":
        raise ValueError(
            f"mask: expected numbers (one weight per time step), received dtype {raw.dtype}"
        )
    if not isinstance(raw, jax.core.Tracer):
        values = np.asarray(raw, np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(
                "mask: expected finite weights >= 0, received NaN, Inf or a negative "
                "weight; use 0 to leave a step out of the loss"
            )
    mask = jnp.asarray(raw)
    if mask.shape != (n_steps,):
        raise ValueError(
            f"mask: expected shape ({n_steps},), one weight per time step of the inputs, "
            f"received shape {mask.shape}; pass mask=None to use every step"
        )
    return mask.astype(dtype)


def mask_norm(mask):
    """``sum_t mask_t``, or 1 for an all-zero mask (whose loss is then 0)."""
    total = jnp.sum(mask)
    return jnp.where(total > 0, total, jnp.ones_like(total))


def sequence_loss(loss: AbstractLoss, ys, targets, mask):
    """The scalar loss of an output sequence ``ys`` (T, B, n_out)."""
    if not loss.splits_over_time:
        return loss(ys, targets, mask)
    per_step = jax.vmap(loss)(ys, targets)  # (T, B)
    return jnp.sum(mask * jnp.mean(per_step, axis=1)) / mask_norm(mask)
