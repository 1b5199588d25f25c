"""plastax: online, memory-efficient gradient rules for recurrent and spiking networks."""

from . import bench, checkpoint, learners, losses, neurons, surrogate, tasks
from .network import Layer, LeakyReadout, LinearReadout, Network, NetworkState
from .streaming import StreamConfig, run_stream, train_stream
from .train import (
    NonFiniteError,
    TrainConfig,
    TrainingInterrupted,
    build_model,
    evaluate,
    make_optimizer,
    run,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "NonFiniteError",
    "TrainingInterrupted",
    "make_optimizer",
    "checkpoint",
    "TrainConfig",
    "StreamConfig",
    "run_stream",
    "train_stream",
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
