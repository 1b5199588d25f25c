"""Gradient rules: BPTT (reference), TBPTT and the online learners."""

from .base import AbstractLearner
from .bptt import BPTT
from .tbptt import TBPTT

__all__ = ["AbstractLearner", "BPTT", "TBPTT"]
