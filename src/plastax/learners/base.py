"""The learner base class: one public contract for every gradient rule.

    loss, grads = learner.value_and_grad(model, inputs, targets, mask=None, *,
                                         loss=plastax.losses.cross_entropy, key=None)

``inputs`` are (T, B, n_in), ``targets`` (T, B) class indices or (T, B, n_out) values,
``mask`` (T,) weights of each step in the loss.  ``grads`` has the pytree structure
of ``model`` (``None`` where a leaf is not trainable), like ``eqx.filter_grad``.
"""

import abc

import equinox as eqx
import jax.numpy as jnp

from ..losses import AbstractLoss, check_mask, cross_entropy
from ..network import Network, check_inputs

__all__ = ["AbstractLearner", "prepare"]


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
    targets = jnp.asarray(targets)
    classification = getattr(loss, "classification", True)
    expected = (T, B) if classification else (T, B, model.n_out)
    if targets.shape != expected:
        raise ValueError(
            f"targets: expected shape {expected} for loss {loss.name}, received "
            f"{targets.shape}; broadcast per-sequence labels over time with "
            "jnp.broadcast_to(labels, (T, B))"
        )
    if not classification:
        targets = targets.astype(model.dtype)
    return inputs, targets, check_mask(mask, T, model.dtype)
