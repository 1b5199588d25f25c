"""plastax: online, memory-efficient gradient rules for recurrent and spiking networks."""

from . import learners, losses, neurons, surrogate
from .network import Layer, LeakyReadout, LinearReadout, Network, NetworkState

__version__ = "0.1.0"

__all__ = [
    "Layer",
    "LeakyReadout",
    "LinearReadout",
    "Network",
    "NetworkState",
    "learners",
    "losses",
    "neurons",
    "surrogate",
]
