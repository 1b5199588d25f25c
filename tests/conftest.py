"""Shared pytest fixtures.

The library runs in JAX's default float32; gradient identities are checked in float64
by tests that request the ``x64`` fixture, which switches 64-bit mode on for that test
alone and restores the previous setting afterwards.
"""

from __future__ import annotations

import gc

import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.  Every program XLA CPU
    compiles keeps memory mappings of its machine code; over the whole suite in one
    process they grew past Linux's default limit of 65530 mappings per process
    (``vm.max_map_count``), and the next compilation crashed with a segmentation
    fault.  Programs are rarely shared between modules, so little is recompiled."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def x64():
    """Enable ``jax_enable_x64`` for one test; restore the previous value afterwards."""
    previous = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
