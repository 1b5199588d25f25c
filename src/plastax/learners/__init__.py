"""Gradient rules: BPTT (the exact reference), TBPTT and the online learners.

Every learner has the same contract (``value_and_grad``); online learners also have
``init`` / ``step`` / ``grads``.  ``make_learner(name, **options)`` builds one by the
name the command line uses.
"""

from .base import AbstractLearner, AbstractOnlineLearner, OnlineState
from .bptt import BPTT
from .eprop import EProp
from .eprop_dense import EPropDense
from .rtrl import RTRL
from .sltt import SLTT
from .sparse_rtrl import SparseRTRL
from .tbptt import TBPTT

__all__ = [
    "AbstractLearner",
    "AbstractOnlineLearner",
    "OnlineState",
    "BPTT",
    "TBPTT",
    "EProp",
    "EPropDense",
    "RTRL",
    "SLTT",
    "SparseRTRL",
    "LEARNERS",
    "make_learner",
]

LEARNERS = {
    "bptt": BPTT,
    "tbptt": TBPTT,
    "eprop": EProp,
    "eprop_dense": EPropDense,
    "rtrl": RTRL,
    "sltt": SLTT,
    "sparse_rtrl": SparseRTRL,
}


def make_learner(name: str, **options) -> AbstractLearner:
    """Build a learner by name with the options it takes (others are ignored).

    ``window`` for ``tbptt``; ``k`` for ``sltt`` and ``sparse_rtrl`` (with
    ``selection``); ``factorise`` for ``eprop``; ``max_bytes`` for ``rtrl``.
    Options set to ``None`` are left at their defaults.

        >>> make_learner("tbptt", window=10)
        TBPTT(window=10)
    """
    import dataclasses

    key = str(name).lower().replace("-", "_")
    if key not in LEARNERS:
        raise ValueError(
            f"unknown learner {name!r}; expected one of: {', '.join(sorted(LEARNERS))}"
        )
    cls = LEARNERS[key]
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in options.items() if k in fields and v is not None}
    try:
        return cls(**given)
    except TypeError as e:
        raise ValueError(
            f"learner {key!r}: expected its required options, received {sorted(given)} ({e}); "
            f"e.g. make_learner('sparse_rtrl', k=4)"
        ) from None
