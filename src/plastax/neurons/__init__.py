"""Neuron models, each written for one neuron (see :class:`AbstractNeuron`)."""

from .base import AbstractNeuron, LocalBlocks
from .rate import GRU, LSTM, TanhRNN
from .spiking import ALIF, LIF, CuBaLIF, decay_factor

__all__ = [
    "AbstractNeuron",
    "LocalBlocks",
    "LIF",
    "ALIF",
    "CuBaLIF",
    "TanhRNN",
    "LSTM",
    "GRU",
    "decay_factor",
]
