"""Evidence accumulation with a delayed recall (a task that needs memory).

After Bellec, G., Scherr, F., Subramoney, A., Hajek, E., Salaj, D., Legenstein,
R. & Maass, W. (2020). *A solution to the learning dilemma for recurrent
networks of spiking neurons.* Nature Communications 11, 3625 (the "evidence
accumulation" task of e-prop), itself modelled on the virtual T-maze of
Morcos, A. S. & Harvey, C. D. (2016). *History-dependent variability in
population dynamics during evidence accumulation in cortex.* Nature
Neuroscience 19, 1672-1681.

Input channels form four populations of ``channels_per_group`` channels each,
laid out contiguously in this order (see :attr:`EvidenceAccumulation.channel_groups`):

``left``    fires at ``cue_rate`` during a left cue, silent otherwise;
``right``   fires at ``cue_rate`` during a right cue, silent otherwise;
``recall``  fires at ``recall_rate`` during the recall window, silent otherwise;
``noise``   fires at ``noise_rate`` on every step (background Poisson noise).

Rates are Bernoulli spike probabilities per step and channel. Time line of a
sample (``n_steps = n_cues * (cue_steps + gap_steps) + delay_steps + recall_steps``)::

    [cue 0][gap] [cue 1][gap] ... [cue n-1][gap] [delay ...] [recall ...]

For each sample a favoured side is drawn uniformly (left or right); each cue
independently lands on the favoured side with probability ``cue_bias`` (e.g.
0.9) and on the other side otherwise, i.e. ``P(left) = p`` with ``p`` drawn per
sample from ``{cue_bias, 1 - cue_bias}``. The label is the side of the
*majority* of the cues actually shown: ``0`` = more left cues, ``1`` = more
right cues (``n_cues`` is odd, so there is never a tie). The answer must be
given during the recall window, which is all that :meth:`loss_mask` selects;
nothing in the input during that window carries the label, so the network has
to remember the cue count across ``delay_steps``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, final

import numpy as np

from .base import (
    Split,
    Task,
    _check_int,
    _check_probability,
    _check_seed,
    _set,
)

__all__ = ["EvidenceAccumulation"]

LEFT, RIGHT = 0, 1


@final
@dataclasses.dataclass(frozen=True)
class EvidenceAccumulation(Task):
    """Evidence accumulation with delayed recall (Bellec et al. 2020; Morcos & Harvey 2016).

    Parameters:
        n_cues: number of cues per sample; odd, >= 1.
        cue_steps: duration of each cue in steps, >= 1.
        gap_steps: silent steps after each cue, >= 0.
        delay_steps: steps between the last gap and the recall cue, >= 0.
        recall_steps: duration of the recall window, >= 1.
        channels_per_group: channels in each of the 4 populations, >= 1;
            ``n_in = 4 * channels_per_group``.
        cue_rate: spike probability per step/channel of the cued population, in [0, 1].
        recall_rate: spike probability per step/channel of the recall population, in [0, 1].
        noise_rate: spike probability per step/channel of the background population, in [0, 1].
        cue_bias: probability that a cue lands on the sample's favoured side, in [0, 1].
        n_train: number of training samples (total, not per class), >= 1.
        n_test: number of test samples (total), >= 1.
    """

    name: ClassVar[str] = "evidence"

    n_cues: int = 7
    cue_steps: int = 10
    gap_steps: int = 5
    delay_steps: int = 50
    recall_steps: int = 20
    channels_per_group: int = 10
    cue_rate: float = 0.4
    recall_rate: float = 0.4
    noise_rate: float = 0.01
    cue_bias: float = 0.9
    n_train: int = 1000
    n_test: int = 200

    def __post_init__(self) -> None:
        _set(self, "n_cues", _check_int("n_cues", self.n_cues, 1))
        if self.n_cues % 2 == 0:
            raise ValueError(
                f"expected an odd number of cues so that one side always has the majority, "
                f"received n_cues={self.n_cues}; pass n_cues={self.n_cues + 1} or {self.n_cues - 1}"
            )
        _set(self, "cue_steps", _check_int("cue_steps", self.cue_steps, 1))
        _set(self, "gap_steps", _check_int("gap_steps", self.gap_steps, 0))
        _set(self, "delay_steps", _check_int("delay_steps", self.delay_steps, 0))
        _set(self, "recall_steps", _check_int("recall_steps", self.recall_steps, 1))
        _set(
            self,
            "channels_per_group",
            _check_int("channels_per_group", self.channels_per_group, 1),
        )
        for field in ("cue_rate", "recall_rate", "noise_rate", "cue_bias"):
            _set(self, field, _check_probability(field, getattr(self, field)))
        _set(self, "n_train", _check_int("n_train", self.n_train, 1))
        _set(self, "n_test", _check_int("n_test", self.n_test, 1))

    # -- Task interface -------------------------------------------------------

    @property
    def n_in(self) -> int:
        return 4 * self.channels_per_group

    @property
    def n_out(self) -> int:
        return 2

    @property
    def n_steps(self) -> int:
        return self.recall_start + self.recall_steps

    def loss_mask(self) -> np.ndarray:
        """Ones on the recall window (the last ``recall_steps`` steps), zeros elsewhere."""
        mask = np.zeros(self.n_steps, dtype=np.float32)
        mask[self.recall_start :] = 1.0
        return mask

    def load(self, seed: int) -> tuple[Split, Split]:
        """Generate ``(train, test)`` with ``n_train`` / ``n_test`` samples.

        Train and test use independent random streams spawned from ``seed``.
        """
        seed = _check_seed(seed)
        ss_train, ss_test = np.random.SeedSequence(seed).spawn(2)
        train = self._sample(np.random.default_rng(ss_train), self.n_train)
        test = self._sample(np.random.default_rng(ss_test), self.n_test)
        return train, test

    # -- layout helpers -------------------------------------------------------

    @property
    def cue_starts(self) -> tuple[int, ...]:
        """First step of each cue."""
        period = self.cue_steps + self.gap_steps
        return tuple(i * period for i in range(self.n_cues))

    @property
    def recall_start(self) -> int:
        """First step of the recall window."""
        return self.n_cues * (self.cue_steps + self.gap_steps) + self.delay_steps

    @property
    def channel_groups(self) -> dict[str, slice]:
        """Channel slices of the ``left``, ``right``, ``recall`` and ``noise`` populations."""
        c = self.channels_per_group
        return {
            "left": slice(0, c),
            "right": slice(c, 2 * c),
            "recall": slice(2 * c, 3 * c),
            "noise": slice(3 * c, 4 * c),
        }

    # -- internals ------------------------------------------------------------

    def _sample(self, rng: np.random.Generator, n: int) -> Split:
        t_total, c = self.n_steps, self.channels_per_group
        favoured = rng.integers(0, 2, size=n)  # LEFT or RIGHT
        on_favoured = rng.random((n, self.n_cues)) < self.cue_bias
        sides = np.where(on_favoured, favoured[:, None], 1 - favoured[:, None])
        labels = (np.sum(sides == RIGHT, axis=1) > self.n_cues // 2).astype(np.int32)

        # Per-step firing probability of each population: (n, T, 4).
        rates = np.zeros((n, t_total, 4), dtype=np.float32)
        for i, start in enumerate(self.cue_starts):
            window = slice(start, start + self.cue_steps)
            rates[:, window, LEFT] = np.where(sides[:, i] == LEFT, self.cue_rate, 0.0)[:, None]
            rates[:, window, RIGHT] = np.where(sides[:, i] == RIGHT, self.cue_rate, 0.0)[:, None]
        rates[:, self.recall_start :, 2] = self.recall_rate
        rates[:, :, 3] = self.noise_rate

        u = rng.random((n, t_total, 4 * c), dtype=np.float32)
        x = (u < np.repeat(rates, c, axis=2)).astype(np.float32)
        return Split(x=x, y=labels)
