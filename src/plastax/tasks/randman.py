"""Random-manifold spike-timing classification ("Randman").

After Zenke, F. & Vogels, T. P. (2021). *The remarkable robustness of
surrogate gradient learning for instilling complex function in spiking neural
networks.* Neural Computation 33(4), 899-925. Re-implemented from the idea
described in the paper (no code copied).

Each class ``c`` is a random smooth manifold of dimension ``dim_manifold``
embedded in ``n_in`` dimensions. For input unit ``i`` and manifold coordinates
``u in [0, 1)^D`` the embedding is a random Fourier series

    f_ci(u) = sum_d sum_{k=1..K} a_cidk * k^-alpha * sin(2 pi k u_d + phi_cidk)

with ``a ~ U(0, 1)``, ``phi ~ U(0, 2 pi)`` and ``K = n_components``; a larger
``alpha`` damps the high frequencies more and gives a smoother manifold. Each
``f_ci`` is affinely rescaled so that it spans exactly ``[0, 1]`` over the
manifold (the series is additive over coordinates, so its extrema are the
sums of the per-coordinate extrema, found on a fine grid).

A sample of class ``c`` is a uniformly random point ``u`` on the class's
manifold. Every input unit emits exactly one spike, at step

    t_i = round(f_ci(u) * t_max + jitter * N(0, 1)),   t_max = round((n_steps - 1) * time_fraction)

clipped into ``[0, t_max]``. Spike *counts* are therefore identical (one per
unit) for every sample and class: only spike *timing* carries the label.
Steps after ``t_max`` are silent and leave the network time to answer.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, final

import numpy as np

from .base import (
    Split,
    Task,
    _check_float,
    _check_int,
    _check_seed,
    _set,
)

__all__ = ["Randman"]

# Grid resolution (per Fourier component) used to find each 1-D term's extrema.
_GRID_PER_COMPONENT = 64


@final
@dataclasses.dataclass(frozen=True)
class Randman(Task):
    """Random-manifold spike-timing task (Zenke & Vogels 2021).

    Parameters:
        n_classes: number of classes (= number of random manifolds), >= 2.
        n_in: number of input units (embedding dimension), >= 1.
        n_steps: time steps per sample ``T``, >= 2.
        dim_manifold: intrinsic dimension ``D`` of each manifold, >= 1.
        alpha: smoothness; Fourier amplitudes decay as ``k^-alpha``, >= 0.
        jitter: standard deviation of Gaussian spike-time jitter, in steps, >= 0.
        n_train: training samples *per class*, >= 1.
        n_test: test samples *per class*, >= 1.
        time_fraction: fraction of the window ``(0, 1]`` in which input spikes
            occur (spikes lie in steps ``0 .. round((n_steps - 1) * time_fraction)``).
        n_components: number of Fourier components ``K`` per coordinate, >= 1.

    The manifolds depend only on the seed given to :meth:`load`; train and test
    samples are different random points on the same manifolds. Samples are
    shuffled across classes. :meth:`loss_mask` is one on every step
    ``t >= n_steps // 2`` and zero before.
    """

    name: ClassVar[str] = "randman"

    n_classes: int = 10
    n_in: int = 40
    n_steps: int = 50
    dim_manifold: int = 1
    alpha: float = 2.0
    jitter: float = 0.5
    n_train: int = 200
    n_test: int = 50
    time_fraction: float = 0.8
    n_components: int = 5

    def __post_init__(self) -> None:
        _set(self, "n_classes", _check_int("n_classes", self.n_classes, 2))
        _set(self, "n_in", _check_int("n_in", self.n_in, 1))
        _set(self, "n_steps", _check_int("n_steps", self.n_steps, 2))
        _set(self, "dim_manifold", _check_int("dim_manifold", self.dim_manifold, 1))
        _set(self, "alpha", _check_float("alpha", self.alpha, 0.0))
        _set(self, "jitter", _check_float("jitter", self.jitter, 0.0))
        _set(self, "n_train", _check_int("n_train", self.n_train, 1))
        _set(self, "n_test", _check_int("n_test", self.n_test, 1))
        _set(
            self,
            "time_fraction",
            _check_float("time_fraction", self.time_fraction, 0.0, 1.0, low_inclusive=False),
        )
        _set(self, "n_components", _check_int("n_components", self.n_components, 1))
        if self.t_max < 1:
            raise ValueError(
                "expected round((n_steps - 1) * time_fraction) >= 1 so that spike times can "
                f"differ, received n_steps={self.n_steps}, time_fraction={self.time_fraction} "
                f"(-> {self.t_max}); increase n_steps or time_fraction"
            )

    # -- Task interface -------------------------------------------------------

    @property
    def n_out(self) -> int:
        return self.n_classes

    @property
    def t_max(self) -> int:
        """Last step at which an input spike can occur."""
        return int(round((self.n_steps - 1) * self.time_fraction))

    def loss_mask(self) -> np.ndarray:
        """Ones on steps ``t >= n_steps // 2``, zeros before; shape ``(n_steps,)``."""
        mask = np.zeros(self.n_steps, dtype=np.float32)
        mask[self.n_steps // 2 :] = 1.0
        return mask

    def load(self, seed: int) -> tuple[Split, Split]:
        """Generate ``(train, test)``: ``n_classes * n_train`` / ``n_classes * n_test`` samples.

        Independent random streams (spawned from ``seed``) are used for the
        manifolds, the training points and the test points, so changing
        ``n_train`` does not change the manifolds or the test set.
        """
        seed = _check_seed(seed)
        ss_manifold, ss_train, ss_test = np.random.SeedSequence(seed).spawn(3)
        amp, phase, offset, scale = self._manifolds(np.random.default_rng(ss_manifold))
        train = self._sample(
            np.random.default_rng(ss_train), self.n_train, amp, phase, offset, scale
        )
        test = self._sample(np.random.default_rng(ss_test), self.n_test, amp, phase, offset, scale)
        return train, test

    # -- internals ------------------------------------------------------------

    def _manifolds(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Random Fourier coefficients and the affine maps rescaling them to [0, 1].

        Returns amp and phase of shape ``(C, n_in, D, K)``, and offset and scale of
        shape ``(C, n_in)`` such that ``(f - offset) * scale`` spans ``[0, 1]``.
        """
        c, n, d, k = self.n_classes, self.n_in, self.dim_manifold, self.n_components
        freqs = np.arange(1, k + 1, dtype=np.float64)
        amp = rng.uniform(0.0, 1.0, size=(c, n, d, k)) * freqs**-self.alpha
        phase = rng.uniform(0.0, 2.0 * np.pi, size=(c, n, d, k))
        # Extrema of each 1-D term g_cid(u_d) on a fine grid; f = sum_d g_cid.
        grid = np.arange(_GRID_PER_COMPONENT * k, dtype=np.float64) / (_GRID_PER_COMPONENT * k)
        g = np.einsum(
            "cndk,cndkg->cndg",
            amp,
            np.sin(2.0 * np.pi * freqs[:, None] * grid[None, :] + phase[..., None]),
        )
        lo = g.min(axis=-1).sum(axis=-1)
        hi = g.max(axis=-1).sum(axis=-1)
        scale = 1.0 / np.maximum(hi - lo, 1e-12)
        return amp, phase, lo, scale

    def _sample(
        self,
        rng: np.random.Generator,
        per_class: int,
        amp: np.ndarray,
        phase: np.ndarray,
        offset: np.ndarray,
        scale: np.ndarray,
    ) -> Split:
        c, n, d, k = self.n_classes, self.n_in, self.dim_manifold, self.n_components
        total = c * per_class
        labels = np.repeat(np.arange(c), per_class)
        u = rng.uniform(0.0, 1.0, size=(total, d))
        jitter = rng.standard_normal(size=(total, n))
        order = rng.permutation(total)

        freqs = np.arange(1, k + 1, dtype=np.float64)
        values = np.empty((total, n), dtype=np.float64)
        for cls in range(c):  # loop over classes keeps memory at (per_class, n, d, k)
            rows = slice(cls * per_class, (cls + 1) * per_class)
            arg = 2.0 * np.pi * u[rows, None, :, None] * freqs + phase[cls][None]
            f = np.sum(amp[cls][None] * np.sin(arg), axis=(2, 3))
            values[rows] = (f - offset[cls]) * scale[cls]
        values = np.clip(values, 0.0, 1.0)

        t_max = self.t_max
        times = np.rint(values * t_max + self.jitter * jitter).astype(np.int64)
        times = np.clip(times, 0, t_max)

        x = np.zeros((total, self.n_steps, n), dtype=np.float32)
        x[np.arange(total)[:, None], times, np.arange(n)[None, :]] = 1.0
        return Split(x=x[order], y=labels[order].astype(np.int32))
