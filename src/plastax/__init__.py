"""plastax: online, memory-efficient gradient rules for recurrent and spiking networks."""

from . import bench, learners, losses, neurons, surrogate, tasks
from .network import Layer, LeakyReadout, LinearReadout, Network, NetworkState
from .train import TrainConfig, build_model, evaluate, run, train

__version__ = "0.1.0"

__all__ = [
    "TrainConfig",
    "build_model",
    "evaluate",
    "run",
    "train",
    "Layer",
    "LeakyReadout",
    "LinearReadout",
    "Network",
    "NetworkState",
    "bench",
    "learners",
    "losses",
    "neurons",
    "surrogate",
    "tasks",
]
