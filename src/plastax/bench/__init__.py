"""Benchmarks and comparisons of the learners (outside the core: may time and print)."""

from .compare import compare_grads

__all__ = ["compare_grads"]
