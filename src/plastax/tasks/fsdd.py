"""Spiking FSDD: the Free Spoken Digit Dataset turned into SHD-like spike trains.

The Free Spoken Digit Dataset (FSDD; Zohar Jackson et al., DOI 10.5281/zenodo.1342401,
https://github.com/Jakobovski/free-spoken-digit-dataset) holds 3,000 recordings of the
digits 0-9 spoken in English by 6 speakers (50 of each digit per speaker), mono, 8 kHz,
16-bit, named ``{digit}_{speaker}_{index}.wav``.  Licence: Creative Commons
Attribution-ShareAlike 4.0 International (CC BY-SA 4.0).  The spike data derived from
it here carry the same licence and attribution: the encoded ``.h5`` file stores them,
and the data set's own README, in its root attributes (``licence``, ``attribution``,
``source_readme``), and every cached file (encoded or binned) has them beside it in a
``.README.md`` file.

:class:`FSDD` encodes the recordings with the cochlea-like
:class:`~plastax.tasks.audio.CochleaEncoder`, writes them in the SHD file layout to a
cache folder, and loads them through the same loader as SHD
(:func:`~plastax.tasks.shd.load_spike_file`), binned and cached.  Nothing is
downloaded and nothing is written outside the cache folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import ClassVar, final

import numpy as np

from .audio import (
    FSDD_PATTERN,
    SCALES,
    CochleaEncoder,
    encode_folder,
    list_wavs,
    notice_path,
    write_notice,
)
from .base import Split, Task, _check_float, _check_int, _check_seed, _set
from .shd import (
    DataNotFoundError,
    SpikeDataset,
    _check_optional_dir,
    _check_split,
    _mask,
    default_cache_dir,
    load_spike_file,
    parse_split,
    read_spike_file,
)

__all__ = ["FSDD", "FSDD_ATTRIBUTION", "FSDD_LICENCE", "default_fsdd_dir"]

FSDD_LICENCE = "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)"
FSDD_ATTRIBUTION = (
    "Derived from the Free Spoken Digit Dataset (FSDD), Zohar Jackson et al., "
    "https://github.com/Jakobovski/free-spoken-digit-dataset, DOI 10.5281/zenodo.1342401, "
    "licensed CC BY-SA 4.0; converted to spike trains by plastax (cochlea-like encoder)."
)

# Bump when the encoder's output changes for the same parameters.
_ENCODING_VERSION = 1


def default_fsdd_dir() -> Path:
    """``<repository>/../shared/data/fsdd``, where the checkout expects FSDD."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fsdd"


@final
@dataclasses.dataclass(frozen=True)
class FSDD(Task):
    """Spiking Free Spoken Digits: 10 classes, 6 speakers, 3,000 recordings.

    Derived data: CC BY-SA 4.0, attribution "Free Spoken Digit Dataset (FSDD), Zohar
    Jackson et al., DOI 10.5281/zenodo.1342401"; the encoded file carries both.

    Parameters:
        data_dir: the FSDD folder (the one holding ``recordings/``, or the folder of
            WAV files itself).  ``None``: ``<repository>/../shared/data/fsdd``.
        split: ``"standard"``: recordings with index 0-4 are the test set (300), the
            rest the training set (2,700), as in the data set's documentation;
            ``"speaker:<name>"``: leave one speaker out (george, jackson, lucas,
            nicolas, theo, yweweler) for testing (500 test, 2,500 training).
        n_steps: time steps ``T``; dt: step in seconds (window ``T dt``; 95% of the
            recordings last less than 0.67 s).
        pool: adjacent units OR-ed together (choose a divisor of ``n_channels`` so that
            no group mixes two levels).
        loss_start: first step scored by the loss and the prediction.
        n_channels, scale, f_min, f_max: of the
            :class:`~plastax.tasks.audio.CochleaEncoder`; its ``gains`` are
            ``gain * 2 ** l`` for ``l < levels`` (``levels`` spike generators per
            channel with thresholds 40, 50, ... dB below the peak by default); its other
            parameters keep their defaults.  ``n_in = ceil(n_channels * levels / pool)``.
        cache_dir: folder of the encoded and binned caches (``None``:
            ``$PLASTAX_CACHE`` or ``~/.cache/plastax``).

    The encoded file's cache key holds the encoder's parameters and the names, sizes
    and modification times of the WAV files, so a changed data set or setting is
    encoded again.  ``load(seed)`` ignores the seed beyond validating it: the data are
    fixed.
    """

    name: ClassVar[str] = "fsdd"

    data_dir: str | None = None
    split: str = "standard"
    n_steps: int = 60
    dt: float = 0.01
    pool: int = 1
    loss_start: int = 0
    n_channels: int = 32
    levels: int = 2
    scale: str = "erb"
    f_min: float = 100.0
    f_max: float = 3500.0
    gain: float = 3.0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _set(self, "data_dir", _check_optional_dir("data_dir", self.data_dir))
        _set(self, "cache_dir", _check_optional_dir("cache_dir", self.cache_dir))
        _set(self, "split", _check_split(self.split))
        _set(self, "n_steps", _check_int("n_steps", self.n_steps, 1))
        _set(self, "dt", _check_float("dt", self.dt, 0.0, low_inclusive=False))
        _set(self, "pool", _check_int("pool", self.pool, 1))
        _set(self, "loss_start", _check_int("loss_start", self.loss_start, 0))
        _set(self, "levels", _check_int("levels", self.levels, 1))
        _set(self, "gain", _check_float("gain", self.gain, 0.0, low_inclusive=False))
        if self.loss_start >= self.n_steps:
            raise ValueError(
                f"expected loss_start < n_steps = {self.n_steps}, received "
                f"{self.loss_start}; score at least one step"
            )
        if self.scale not in SCALES:
            raise ValueError(f"expected scale to be one of {SCALES}, received {self.scale!r}")
        encoder = self.encoder  # validates the encoder's parameters
        for name in ("n_channels", "f_min", "f_max"):  # plain Python numbers
            _set(self, name, getattr(encoder, name))

    # -- Task interface -------------------------------------------------------------

    @property
    def n_in(self) -> int:
        return -(-self.n_channels * self.levels // self.pool)

    @property
    def n_out(self) -> int:
        return 10

    def loss_mask(self) -> np.ndarray:
        """Ones from ``loss_start`` on; shape ``(n_steps,)``."""
        return _mask(self.n_steps, self.loss_start)

    def load(self, seed: int) -> tuple[Split, Split]:
        _check_seed(seed)
        data = self.load_binned()
        test = self.test_mask(data)
        idx = np.arange(len(data))
        return data.split(idx[~test]), data.split(idx[test])

    # -- data -----------------------------------------------------------------------

    @property
    def encoder(self) -> CochleaEncoder:
        """The encoder described by this task's parameters."""
        return CochleaEncoder(
            n_channels=self.n_channels,
            scale=self.scale,
            f_min=self.f_min,
            f_max=self.f_max,
            gains=tuple(self.gain * 2.0**level for level in range(self.levels)),
        )

    def recordings_dir(self) -> Path:
        """The folder of WAV files; a :class:`DataNotFoundError` if there is none."""
        root = Path(self.data_dir).expanduser() if self.data_dir else default_fsdd_dir()
        how = (
            "pass the FSDD folder (the one holding recordings/) as data_dir "
            "(plastax train --task fsdd --data-dir FOLDER); FSDD is published at "
            "https://github.com/Jakobovski/free-spoken-digit-dataset (CC BY-SA 4.0) and "
            "plastax never downloads it"
        )
        if not root.is_dir():
            where = "given" if self.data_dir else "default (<repository>/../shared/data/fsdd)"
            raise DataNotFoundError(f"FSDD folder not found: {root} ({where}); {how}")
        rec = root / "recordings"
        folder = rec if rec.is_dir() else root
        if not any(p.suffix.lower() == ".wav" for p in folder.iterdir()):
            raise DataNotFoundError(f"no .wav files in {folder}; {how}")
        return folder

    def encoded_path(self) -> Path:
        """Path of the cached encoded file for the current data set and encoder."""
        folder = self.recordings_dir()
        files = list_wavs(folder, FSDD_PATTERN)
        listing = []
        for p, _ in files:
            st = p.stat()
            listing.append([p.name, st.st_size, st.st_mtime_ns])
        ident = {
            "version": _ENCODING_VERSION,
            "encoder": self.encoder.describe(),
            "pattern": FSDD_PATTERN,
            "files": listing,
        }
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
        root = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        return root / "fsdd" / f"fsdd-{key}.h5"

    def encode(self, progress: bool | None = None) -> Path:
        """Encode the recordings unless the cache has them; the encoded file's path.

        ``progress``: show a progress bar on stderr (``None``: if stderr is a terminal).
        """
        out = self.encoded_path()
        if not out.is_file():
            if progress is None:
                progress = sys.stderr.isatty()
            encode_folder(
                self.recordings_dir(),
                out,
                self.encoder,
                pattern=FSDD_PATTERN,
                attrs={"licence": FSDD_LICENCE, "attribution": FSDD_ATTRIBUTION},
                progress=progress,
            )
        elif not notice_path(out).is_file():  # e.g. deleted: the licence stays with the data
            write_notice(out, read_spike_file(out)["attrs"])
        return out

    def load_binned(self) -> SpikeDataset:
        """All recordings, encoded and binned (:class:`~plastax.tasks.shd.SpikeDataset`)."""
        return load_spike_file(
            self.encode(),
            n_steps=self.n_steps,
            dt=self.dt,
            n_channels=self.encoder.n_units,
            pool=self.pool,
            cache_dir=self.cache_dir,
            verify=False,
        )

    def test_mask(self, data: SpikeDataset) -> np.ndarray:
        """``(N,)`` bool: which samples of ``data`` form the test set of ``split``."""
        regex = re.compile(FSDD_PATTERN)
        groups = [regex.match(f) for f in data.filenames]
        if not data.filenames or any(g is None for g in groups):
            raise ValueError(
                "expected an encoded FSDD file with file names {digit}_{speaker}_{index}.wav "
                "in extra/filenames; delete the cache folder and encode again"
            )
        kind, who = parse_split(self.split)
        if kind == "standard":
            return np.array([int(g["index"]) < 5 for g in groups])
        speakers = sorted({g["speaker"] for g in groups})
        if who not in speakers:
            raise ValueError(
                f"expected one of the FSDD speakers {', '.join(speakers)} in "
                f"split='speaker:<name>', received {who!r}; pass e.g. split='speaker:theo'"
            )
        return np.array([g["speaker"] == who for g in groups])
