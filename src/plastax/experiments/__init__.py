"""Experiments: protocols that reproduce a paper's claims with plastax, and report what
they measure (``plastax experiment <name>``).

* :mod:`~plastax.experiments.redundancy`: sparse RTRL and continual adaptation, "Massive
  Redundancy in Gradient Transport Enables Sparse Online Learning".
"""

from . import redundancy
from .redundancy import RedundancyConfig, run_redundancy

__all__ = ["EXPERIMENTS", "RedundancyConfig", "redundancy", "run_redundancy"]

EXPERIMENTS = {"redundancy": run_redundancy}
"""Experiment name -> function ``(config, progress=True) -> result dict``."""
