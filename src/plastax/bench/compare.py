"""Comparing gradient estimates with a reference (usually BPTT)."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

__all__ = ["compare_grads"]


def _leaves(tree):
    arrays = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    return [np.asarray(x, np.float64).ravel() for x in arrays]


def compare_grads(grads, reference) -> dict:
    """Agreement of a gradient estimate with a reference gradient.

    Returns (all floats):
      cosine:         cosine similarity of the two flattened gradients;
      max_rel_error:  max over parameter arrays of ``max|g - ref| / max|ref|``, so one
                      wrong array cannot hide behind the others;
      median_abs_dev: median over all entries of ``|g - ref|`` divided by the median
                      of ``|ref|``;
      norm_ratio:     ``|g| / |ref|``.
    Raises ``ValueError`` when the two have different structures.
    """
    a, b = _leaves(grads), _leaves(reference)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=False)):
        raise ValueError(
            "compare_grads: expected two gradients with the same pytree structure, "
            f"received {len(a)} and {len(b)} arrays"
        )
    va, vb = np.concatenate(a), np.concatenate(b)
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    cosine = float(va @ vb / (na * nb)) if na > 0 and nb > 0 else float("nan")
    rel = [
        np.max(np.abs(x - y)) / np.max(np.abs(y))
        for x, y in zip(a, b, strict=True)
        if np.max(np.abs(y)) > 0
    ]
    med_ref = np.median(np.abs(vb))
    return {
        "cosine": cosine,
        "max_rel_error": float(max(rel)) if rel else 0.0,
        "median_abs_dev": float(np.median(np.abs(va - vb)) / med_ref)
        if med_ref > 0
        else float(np.median(np.abs(va - vb))),
        "norm_ratio": float(na / nb) if nb > 0 else float("nan"),
    }
