"""Classification tasks: procedurally generated synthetic tasks (numpy only,
deterministic per seed) and real spike data read from disk.

Registry:

* ``"randman"``  -> :class:`Randman`, random-manifold spike-timing
  classification (Zenke & Vogels 2021);
* ``"evidence"`` -> :class:`EvidenceAccumulation`, evidence accumulation with
  delayed recall (Bellec et al. 2020; Morcos & Harvey 2016);
* ``"shd"``      -> :class:`SHD`, the Spiking Heidelberg Digits (Cramer et al.
  2020), from the official files given by ``data_dir`` (never downloaded);
* ``"fsdd"``     -> :class:`FSDD`, the Free Spoken Digit Dataset turned into spikes
  by a cochlea-like encoder (:mod:`plastax.tasks.audio`).

Example::

    task = make_task("randman", n_classes=5)
    train, test = task.load(seed=0)     # Split(x=(N, T, n_in) float32, y=(N,) int32)
    mask = task.loss_mask()             # (T,) float32 in {0, 1}
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import Split, Task
from .evidence import EvidenceAccumulation
from .fsdd import FSDD
from .randman import Randman
from .shd import SHD

__all__ = [
    "FSDD",
    "SHD",
    "TASKS",
    "EvidenceAccumulation",
    "Randman",
    "Split",
    "Task",
    "make_task",
]

TASKS: dict[str, type[Task]] = {
    Randman.name: Randman,
    EvidenceAccumulation.name: EvidenceAccumulation,
    SHD.name: SHD,
    FSDD.name: FSDD,
}


def make_task(name: str, **overrides: Any) -> Task:
    """Build the registered task ``name`` with its defaults, replaced by ``overrides``.

    Raises:
        ValueError: unknown task name, unknown parameter name, or an invalid
            parameter value (from the task's own validation).
    """
    known = ", ".join(sorted(TASKS))
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of: {known}")
    cls = TASKS[name]
    fields = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for task {name!r}; "
            f"expected some of: {', '.join(fields)}"
        )
    return cls(**overrides)
