"""Shared pytest fixtures.

The library runs in JAX's default float32; gradient identities are checked in float64
by tests that request the ``x64`` fixture, which switches 64-bit mode on for that test
alone and restores the previous setting afterwards.
"""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Enable ``jax_enable_x64`` for one test; restore the previous value afterwards."""
    previous = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
