"""Gradient rules: BPTT (reference), TBPTT and the online learners."""

from .base import AbstractLearner, AbstractOnlineLearner, OnlineState
from .bptt import BPTT
from .eprop import EProp
from .rtrl import RTRL
from .sltt import SLTT
from .tbptt import TBPTT

__all__ = ["AbstractLearner", "AbstractOnlineLearner", "OnlineState", "BPTT", "TBPTT", "EProp",
           "SLTT", "RTRL"]
