"""Backpropagation through time: the exact reference."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx

from ..losses import AbstractLoss, cross_entropy, sequence_loss
from .base import AbstractLearner, prepare

__all__ = ["BPTT"]


def _loss_of(model, inputs, targets, mask, loss):
    return sequence_loss(loss, model(inputs), targets, mask)


class BPTT(AbstractLearner):
    """Exact gradient by reverse-mode AD through the whole sequence.

    Memory O(B T n d) for the stored activations: it grows linearly with T.
    Accepts every loss, including sequence losses that do not split over time.
    """

    name: ClassVar[str] = "bptt"

    def value_and_grad(
        self, model, inputs, targets, mask=None, *, loss: AbstractLoss = cross_entropy, key=None
    ):
        inputs, targets, mask = prepare(model, inputs, targets, mask, loss)
        return eqx.filter_value_and_grad(_loss_of)(model, inputs, targets, mask, loss)
