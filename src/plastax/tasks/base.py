"""Common interface of the synthetic tasks: :class:`Split` and :class:`Task`.

A task is a small, frozen, fully parameterised description of a data set.
Calling :meth:`Task.load` with an integer seed procedurally generates a
``(train, test)`` pair of :class:`Split` objects with numpy's
``np.random.default_rng``; the same seed always gives bit-identical arrays and
nothing is read from or written to disk.

Conventions shared by every task:

* inputs ``x`` have shape ``(N, T, n_in)`` and dtype ``float32`` (spikes are
  ``0.0`` / ``1.0``), time is the second axis;
* labels ``y`` have shape ``(N,)`` and dtype ``int32``, with values in
  ``[0, n_out)``;
* :meth:`Task.loss_mask` is a ``(T,)`` ``float32`` vector of zeros and ones
  that marks the time steps whose readout enters the loss and the prediction.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from typing import Any, ClassVar

import numpy as np

__all__ = ["Split", "Task"]


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split (train or test) of a task.

    Attributes:
        x: inputs, shape ``(N, T, n_in)``, dtype ``float32``; for spiking tasks
            the entries are ``0.0`` or ``1.0``.
        y: class labels, shape ``(N,)``, dtype ``int32``.

    ``eq=False``: splits compare and hash by identity (element-wise array
    comparison has no single truth value); compare arrays explicitly with
    ``np.array_equal``.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.x, np.ndarray):
            raise ValueError(
                f"expected Split.x to be a numpy array, received {type(self.x).__name__}; "
                "convert it with np.asarray(x, dtype=np.float32)"
            )
        if not isinstance(self.y, np.ndarray):
            raise ValueError(
                f"expected Split.y to be a numpy array, received {type(self.y).__name__}; "
                "convert it with np.asarray(y, dtype=np.int32)"
            )
        if self.x.ndim != 3:
            raise ValueError(
                f"expected Split.x of shape (N, T, n_in), received shape {self.x.shape}; "
                "add the missing axes (e.g. x[..., None] for a single input channel)"
            )
        if self.x.dtype != np.float32:
            raise ValueError(
                f"expected Split.x of dtype float32, received {self.x.dtype}; "
                "cast it with x.astype(np.float32)"
            )
        if self.y.ndim != 1:
            raise ValueError(
                f"expected Split.y of shape (N,), received shape {self.y.shape}; "
                "pass one integer class label per sample"
            )
        if self.y.dtype != np.int32:
            raise ValueError(
                f"expected Split.y of dtype int32, received {self.y.dtype}; "
                "cast it with y.astype(np.int32)"
            )
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"expected as many labels as samples, received x with {self.x.shape[0]} "
                f"samples and y with {self.y.shape[0]} labels; pass matching arrays"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])


class Task(abc.ABC):
    """Abstract synthetic classification task.

    Concrete tasks are final, frozen dataclasses whose fields are the task's
    parameters (all with defaults) and which validate them in
    ``__post_init__``, raising ``ValueError`` on bad values.
    """

    name: ClassVar[str]

    @property
    @abc.abstractmethod
    def n_in(self) -> int:
        """Number of input channels."""

    @property
    @abc.abstractmethod
    def n_out(self) -> int:
        """Number of classes (size of the readout)."""

    @property
    @abc.abstractmethod
    def n_steps(self) -> int:
        """Number of time steps ``T`` per sample."""

    @abc.abstractmethod
    def load(self, seed: int) -> tuple[Split, Split]:
        """Generate ``(train, test)`` deterministically from ``seed``."""

    @abc.abstractmethod
    def loss_mask(self) -> np.ndarray:
        """``(T,)`` float32 vector in {0, 1}: steps whose readout is scored."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description: the task name and all its parameters."""
        if not dataclasses.is_dataclass(self):  # pragma: no cover - defensive
            raise TypeError(f"expected a dataclass task, received {type(self).__name__}")
        return {"name": self.name, **dataclasses.asdict(self)}


# ----------------------------------------------------------------------------
# Validation helpers shared by the concrete tasks (private to plastax.tasks).
# They return the value converted to a plain Python int / float so that
# ``describe()`` stays JSON-serialisable even when numpy scalars are passed.


def _check_int(name: str, value: Any, minimum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"expected {name} to be an integer >= {minimum}, received {value!r} "
            f"({type(value).__name__}); pass a Python int{hint}"
        )
    if value < minimum:
        raise ValueError(
            f"expected {name} to be an integer >= {minimum}, received {value}; "
            f"pass {name}={minimum} or larger{hint}"
        )
    return int(value)


def _check_float(
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    lo_br = "[" if low_inclusive else "("
    hi_br = "]" if high_inclusive else ")"
    interval = f"{lo_br}{low}, {high}{hi_br}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"expected {name} to be a real number in {interval}, received {value!r} "
            f"({type(value).__name__}); pass a Python float"
        )
    v = float(value)
    ok = math.isfinite(v)
    ok = ok and (v >= low if low_inclusive else v > low)
    ok = ok and (v <= high if high_inclusive else v < high)
    if not ok:
        raise ValueError(
            f"expected {name} to be a finite real number in {interval}, received {value!r}; "
            f"pass a value inside that range"
        )
    return v


def _check_probability(name: str, value: Any) -> float:
    return _check_float(name, value, 0.0, 1.0)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"expected seed to be a non-negative integer, received {seed!r}; pass e.g. load(seed=0)"
        )
    return int(seed)


def _set(obj: object, name: str, value: Any) -> None:
    """Assign a (normalised) field on a frozen dataclass inside __post_init__."""
    object.__setattr__(obj, name, value)
