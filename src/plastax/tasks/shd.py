"""The Spiking Heidelberg Digits (SHD) and any spike data set in its file layout.

Cramer, B., Stradmann, Y., Schemmel, J. & Zenke, F. (2020). *The Heidelberg spiking
data sets for the systematic evaluation of spiking neural networks.* IEEE Transactions
on Neural Networks and Learning Systems 33(7), 2744-2757.  SHD: spoken digits 0-9 in
English and German (20 classes), 8,156 training and 2,264 test recordings turned into
spikes by a model of the inner ear with 700 channels.  Published at
https://zenkelab.org/datasets/ under CC BY 4.0.  plastax never downloads it: download
``shd_train.h5.gz`` and ``shd_test.h5.gz`` yourself, ``gunzip`` both into one folder
and pass that folder as ``data_dir`` (``plastax train --task shd --data-dir DIR``).

The file layout (HDF5), shared by the files that :mod:`plastax.tasks.audio` writes::

    spikes/times   (N,) variable-length float, spike times in seconds
    spikes/units   (N,) variable-length integer, channel of each spike
    labels         (N,) integer class labels
    extra/speaker  (N,) integer speaker ids            (optional here)
    extra/keys     class names                          (optional here)

:func:`load_spike_file` bins such a file into a ``(N, T, C)`` binary tensor: a spike
at time ``t`` of channel ``u`` sets step ``floor(t / dt)`` of channel
``u // pool``; spikes at or after ``T dt`` are cut off, and several spikes in one bin
count once.  Spikes with a non-finite or negative time or a unit outside
``[0, n_channels)`` are dropped with a :class:`SpikeDataWarning` that counts them.
The result is cached on disk (``np.packbits``, ``.npz``, no pickle, written
atomically), so the second load of the same file with the same binning reads the
cache; a file whose attributes carry a licence (the ones that
:mod:`plastax.tasks.audio` writes) gets it beside its cache as ``.README.md``.  The
two official SHD files are checked against their published MD5 sums when the cache
is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np

from .._io import atomic_write_bytes
from .base import Split, Task, _check_float, _check_int, _check_seed, _set

__all__ = [
    "SHD",
    "SHD_CHANNELS",
    "SHD_MD5",
    "SHD_URL",
    "DataNotFoundError",
    "SpikeDataWarning",
    "SpikeDataset",
    "bin_spikes",
    "default_cache_dir",
    "load_spike_file",
    "md5sum",
    "parse_split",
    "read_spike_file",
]

SHD_URL = "https://zenkelab.org/datasets/"
"""Where the Spiking Heidelberg Digits are published."""

SHD_MD5 = {
    "shd_train.h5": "8e9877c85f29a28dd353ea6a54402667",
    "shd_test.h5": "207ad1295a0ab611e22d1734989c254e",
}
"""Published MD5 sums of the official (decompressed) SHD files."""

SHD_CHANNELS = 700
"""Input channels of SHD (and the default channel count of files that do not say)."""

# Bump when the binning or the cache format changes: old cache files are then ignored.
_CACHE_VERSION = 1

# Spikes binned at once (bounds the temporary memory of bin_spikes).
_CHUNK = 1 << 20


class SpikeDataWarning(UserWarning):
    """Spikes were dropped from a spike file (non-finite or negative time, or a unit
    outside the channel range)."""


class DataNotFoundError(ValueError, FileNotFoundError):
    """A data file or folder is missing.  Both a ``ValueError`` (bad input, reported
    cleanly by the command line) and a ``FileNotFoundError``."""


def default_cache_dir() -> Path:
    """``$PLASTAX_CACHE`` if set, else ``$XDG_CACHE_HOME/plastax``, else
    ``~/.cache/plastax``."""
    if os.environ.get("PLASTAX_CACHE"):
        return Path(os.environ["PLASTAX_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "plastax"


def md5sum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def parse_split(split: Any) -> tuple[str, str | None]:
    """``"standard"`` -> ``("standard", None)``; ``"speaker:<name>"`` ->
    ``("speaker", name)`` (leave that speaker out for testing)."""
    if isinstance(split, str):
        if split == "standard":
            return "standard", None
        if split.startswith("speaker:") and split[len("speaker:") :]:
            return "speaker", split[len("speaker:") :]
    raise ValueError(
        f"expected split to be 'standard' or 'speaker:<name>' (leave one speaker out), "
        f"received {split!r}; pass e.g. split='standard' or split='speaker:theo'"
    )


# --------------------------------------------------------------------------------------
# Reading and binning


@dataclasses.dataclass(frozen=True, eq=False)
class SpikeDataset:
    """A binned spike file.

    Attributes:
        x: ``(N, T, C)`` bool, spikes binned to ``T`` steps and ``C`` (pooled) channels.
        y: ``(N,)`` int32 labels.
        speaker: ``(N,)`` int32 speaker ids, ``-1`` where the file has none.
        keys: class names, ``keys[y]`` (empty if the file has none).
        speaker_names: names of the speaker ids (empty if the file has none).
        filenames: source file of each sample (empty if the file has none).
        attrs: root attributes of the file (licence, attribution, encoder, ...).
        dropped: number of spikes dropped per reason (``nonfinite_time``,
            ``negative_time``, ``unit_out_of_range``).
    """

    x: np.ndarray
    y: np.ndarray
    speaker: np.ndarray
    keys: tuple[str, ...] = ()
    speaker_names: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def split(self, idx: np.ndarray) -> Split:
        """The samples ``idx`` as a float32 :class:`~plastax.tasks.Split`."""
        return Split(x=self.x[idx].astype(np.float32), y=self.y[idx].astype(np.int32))


def _corrupt(path: Path, e: BaseException, hint: str = "") -> ValueError:
    return ValueError(
        f"{path}: expected an HDF5 file in the SHD layout (spikes/times, spikes/units, "
        f"labels), but it cannot be read ({type(e).__name__}: {e}); the file is truncated "
        f"or corrupted{hint}"
    )


def _decode(values) -> tuple[str, ...]:
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def read_spike_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file in the SHD layout without binning.

    Returns:
        a dict with ``times`` and ``units`` (lists of 1-D arrays, floating point and
        integer, in the file's own dtypes),
        ``labels`` (int64), ``speaker`` (int64 or ``None``), ``keys``,
        ``speaker_names``, ``filenames`` (tuples of str, possibly empty) and ``attrs``
        (dict of str).

    Raises:
        DataNotFoundError: no such file.
        ValueError: the file is not HDF5, is truncated or corrupted, or lacks the
            datasets of the layout, or their lengths disagree.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    hint = "; produce it again (download it, or encode it with plastax data encode)"
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _corrupt(path, e, hint) from None
    try:
        with f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
            if missing:
                raise ValueError(
                    f"{path}: expected the SHD layout with datasets spikes/times, "
                    f"spikes/units and labels, received a file without "
                    f"{', '.join(missing)} (it has: {', '.join(sorted(f.keys())) or 'nothing'}); "
                    "pass a file in the SHD layout"
                )
            times = list(f["spikes/times"][:])
            units = list(f["spikes/units"][:])
            labels = np.asarray(f["labels"][:], dtype=np.int64)
            speaker = (
                np.asarray(f["extra/speaker"][:], dtype=np.int64) if "extra/speaker" in f else None
            )
            keys = _decode(f["extra/keys"][:]) if "extra/keys" in f else ()
            names = _decode(f["extra/speaker_names"][:]) if "extra/speaker_names" in f else ()
            files = _decode(f["extra/filenames"][:]) if "extra/filenames" in f else ()
            attrs = {
                k: (v.decode("utf-8") if isinstance(v, bytes) else str(v))
                for k, v in f.attrs.items()
            }
    except ValueError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError) as e:
        raise _corrupt(path, e, hint) from None
    n = len(labels)
    lengths = {"spikes/times": len(times), "spikes/units": len(units)}
    if speaker is not None:
        lengths["extra/speaker"] = len(speaker)
    if files:
        lengths["extra/filenames"] = len(files)
    bad = {k: v for k, v in lengths.items() if v != n}
    if bad:
        raise ValueError(
            f"{path}: expected one entry per sample ({n} labels) in every dataset, "
            f"received {bad}; the file is inconsistent: produce it again"
        )
    times = [np.asarray(t).reshape(-1) for t in times]
    units = [np.asarray(u).reshape(-1) for u in units]
    for name, arrays, kinds in (("spikes/times", times, "f"), ("spikes/units", units, "iu")):
        if arrays and arrays[0].dtype.kind not in kinds:
            raise ValueError(
                f"{path}: expected {name} to hold {'floats' if kinds == 'f' else 'integers'}, "
                f"received {arrays[0].dtype}; pass a file in the SHD layout"
            )
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        if t.shape != u.shape:
            raise ValueError(
                f"{path}: expected as many spike times as units in every sample, received "
                f"{t.size} times and {u.size} units in sample {i}; produce the file again"
            )
    return {
        "times": times,
        "units": units,
        "labels": labels,
        "speaker": speaker,
        "keys": keys,
        "speaker_names": names,
        "filenames": files,
        "attrs": attrs,
    }


def bin_spikes(
    times, units, *, n_steps: int, dt: float, n_channels: int, pool: int = 1
) -> tuple[np.ndarray, dict[str, int]]:
    """Bin spike trains into a ``(N, n_steps, ceil(n_channels / pool))`` bool tensor.

    A spike at time ``t`` (seconds) of unit ``u`` sets ``x[n, floor(t / dt), u // pool]``;
    spikes at or after ``n_steps * dt`` are cut off.  Spikes with a non-finite or
    negative time, or with ``u`` outside ``[0, n_channels)``, are dropped and counted.

    Returns:
        ``(x, dropped)`` with ``dropped = {"nonfinite_time": .., "negative_time": ..,
        "unit_out_of_range": ..}``.
    """
    n = len(times)
    if len(units) != n:
        raise ValueError(
            f"expected as many unit arrays as time arrays, received {len(units)} and {n}"
        )
    c = -(-n_channels // pool)
    x = np.zeros((n, n_steps, c), dtype=bool)
    flat_x = x.reshape(-1)
    dropped = {"nonfinite_time": 0, "negative_time": 0, "unit_out_of_range": 0}
    start = 0
    while start < n:  # chunks of about _CHUNK spikes keep the temporaries small
        stop, count = start, 0
        while stop < n and (count == 0 or count + len(times[stop]) <= _CHUNK):
            count += len(times[stop])
            stop += 1
        lengths = np.array([len(a) for a in times[start:stop]], dtype=np.int64)
        if count:
            t = np.concatenate([np.asarray(a).reshape(-1) for a in times[start:stop]])
            u = np.concatenate([np.asarray(a).reshape(-1) for a in units[start:stop]])
            t, u = t.astype(np.float64, copy=False), u.astype(np.int64, copy=False)
            sample = np.repeat(np.arange(start, stop, dtype=np.int64), lengths)
            finite = np.isfinite(t)
            negative = finite & (t < 0)
            unit_ok = (u >= 0) & (u < n_channels)
            dropped["nonfinite_time"] += int(np.count_nonzero(~finite))
            dropped["negative_time"] += int(np.count_nonzero(negative))
            dropped["unit_out_of_range"] += int(np.count_nonzero(finite & ~negative & ~unit_ok))
            keep = finite & ~negative & unit_ok
            step = np.floor(t[keep] / dt)
            inside = step < n_steps
            flat = (sample[keep][inside] * n_steps + step[inside].astype(np.int64)) * c
            flat_x[flat + u[keep][inside] // pool] = True
        start = stop
    return x, dropped


def _warn_dropped(path: Path, dropped: dict[str, int], n_channels: int) -> None:
    total = sum(dropped.values())
    if total:
        warnings.warn(
            f"{path.name}: dropped {total} invalid spike(s): "
            f"{dropped.get('nonfinite_time', 0)} with a non-finite time, "
            f"{dropped.get('negative_time', 0)} with a negative time, "
            f"{dropped.get('unit_out_of_range', 0)} with a unit outside [0, {n_channels})",
            SpikeDataWarning,
            stacklevel=3,
        )


def _verify_md5(path: Path, expected: str | None) -> None:
    expected = expected or SHD_MD5.get(path.name)
    if expected is None:
        return
    actual = md5sum(path)
    if actual != expected:
        raise ValueError(
            f"{path}: expected MD5 {expected} (published sum of {path.name}), received "
            f"{actual}; the file is truncated or corrupted: download it again from "
            f"{SHD_URL} ({path.name}.gz, then gunzip it)"
        )


def _cache_key(path: Path, params: dict[str, Any]) -> str:
    st = path.stat()
    ident = {
        "file": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "version": _CACHE_VERSION,
        **params,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _save_npz(path: Path, **arrays) -> None:
    """``np.savez_compressed`` written atomically (:func:`plastax._io.atomic_write_bytes`)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _str_array(values) -> np.ndarray:
    return np.array(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")


def _load_cache(cache: Path) -> SpikeDataset | None:
    try:
        with np.load(cache, allow_pickle=False) as z:
            shape = tuple(int(v) for v in z["shape"])
            x = np.unpackbits(z["packed"], axis=-1, count=shape[-1]).astype(bool)
            return SpikeDataset(
                x=x.reshape(shape),
                y=z["y"].astype(np.int32),
                speaker=z["speaker"].astype(np.int32),
                keys=tuple(str(v) for v in z["keys"]),
                speaker_names=tuple(str(v) for v in z["speaker_names"]),
                filenames=tuple(str(v) for v in z["filenames"]),
                attrs=json.loads(str(z["attrs"])),
                dropped=json.loads(str(z["dropped"])),
            )
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable cache (e.g. written by another version): rebuild it


def load_spike_file(
    path: str | os.PathLike,
    *,
    n_steps: int,
    dt: float,
    n_channels: int | None = None,
    pool: int = 1,
    cache_dir: str | os.PathLike | bool | None = None,
    verify: bool = True,
    md5: str | None = None,
) -> SpikeDataset:
    """Read and bin a spike file in the SHD layout, through an on-disk cache.

    Args:
        path: the ``.h5`` file.
        n_steps, dt: ``T`` steps of ``dt`` seconds (the window is ``T dt``).
        n_channels: units of the file; ``None``: its ``n_channels`` attribute if it has
            one, else 700 (SHD).
        pool: OR together ``pool`` adjacent channels (700 -> 140 with ``pool=5``).
        cache_dir: folder of the binned cache (``None``: :func:`default_cache_dir`;
            ``False``: no cache).  The cache key holds the file's path, size and
            modification time and the binning, so a changed file is binned again.
        verify: check the file against ``md5`` or, for the official file names
            ``shd_train.h5`` / ``shd_test.h5``, their published MD5 sums (done when the
            cache is built).
        md5: expected MD5 sum of this file, if known.

    Raises:
        DataNotFoundError: the file does not exist.
        ValueError: bad arguments, a corrupted or truncated file, or an MD5 mismatch.

    Warns:
        SpikeDataWarning: invalid spikes were dropped (counted per reason), on every
            load, cached or not.
    """
    path = Path(path)
    n_steps = _check_int("n_steps", n_steps, 1)
    dt = _check_float("dt", dt, 0.0, low_inclusive=False)
    pool = _check_int("pool", pool, 1)
    if not path.is_file():
        raise DataNotFoundError(
            f"{path}: expected a spike file in the SHD layout, but it does not exist"
        )
    if n_channels is None:
        n_channels = _channels_attr(path)
    n_channels = _check_int("n_channels", n_channels, 1)
    params = {"n_steps": n_steps, "dt": dt, "n_channels": n_channels, "pool": pool}
    cache = None
    if cache_dir is not False:
        root = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)
        cache = root / "binned" / f"{path.stem}-{_cache_key(path, params)}.npz"
        if cache.is_file():
            data = _load_cache(cache)
            if data is not None:
                _keep_notice(cache, data.attrs)
                _warn_dropped(path, data.dropped, n_channels)
                return data
    if verify:
        _verify_md5(path, md5)
    raw = read_spike_file(path)
    x, dropped = bin_spikes(
        raw["times"], raw["units"], n_steps=n_steps, dt=dt, n_channels=n_channels, pool=pool
    )
    n = len(raw["labels"])
    speaker = raw["speaker"] if raw["speaker"] is not None else np.full(n, -1)
    data = SpikeDataset(
        x=x,
        y=raw["labels"].astype(np.int32),
        speaker=speaker.astype(np.int32),
        keys=raw["keys"],
        speaker_names=raw["speaker_names"],
        filenames=raw["filenames"],
        attrs=raw["attrs"],
        dropped=dropped,
    )
    if cache is not None:
        _save_npz(
            cache,
            packed=np.packbits(x, axis=-1),
            shape=np.array(x.shape, np.int64),
            y=data.y,
            speaker=data.speaker,
            keys=_str_array(data.keys),
            speaker_names=_str_array(data.speaker_names),
            filenames=_str_array(data.filenames),
            attrs=np.array(json.dumps(data.attrs)),
            dropped=np.array(json.dumps(dropped)),
        )
        _keep_notice(cache, data.attrs)
    _warn_dropped(path, dropped, n_channels)
    return data


def _keep_notice(cache: Path, attrs: dict[str, str]) -> None:
    """Derived data keep their licence: a cache of a file whose attributes hold a
    licence, an attribution or the source's README gets them beside it as
    ``<cache>.README.md`` (:func:`plastax.tasks.audio.write_notice`)."""
    from .audio import notice_path, write_notice

    if not notice_path(cache).is_file():
        write_notice(cache, attrs)


def _channels_attr(path: Path) -> int:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("n_channels")
    except OSError as e:
        raise _corrupt(path, e, "; produce it again") from None
    if value is None:
        return SHD_CHANNELS
    return int(value)


# --------------------------------------------------------------------------------------
# The task


def _check_split(split: Any) -> str:
    parse_split(split)
    return split


def _check_optional_dir(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected {name} to be a folder path (str) or None, received {value!r}")
    return value


def _mask(n_steps: int, loss_start: int) -> np.ndarray:
    mask = np.zeros(n_steps, dtype=np.float32)
    mask[loss_start:] = 1.0
    return mask


@final
@dataclasses.dataclass(frozen=True)
class SHD(Task):
    """Spiking Heidelberg Digits (Cramer et al. 2020): 20 classes, 700 channels.

    The data are not shipped and never downloaded: get ``shd_train.h5.gz`` and
    ``shd_test.h5.gz`` from https://zenkelab.org/datasets/ (CC BY 4.0), ``gunzip``
    them into one folder and pass it as ``data_dir``.  Both files are checked against
    their published MD5 sums the first time they are binned; the binned tensors are
    cached (see :func:`load_spike_file`).

    Parameters:
        data_dir: the folder holding ``shd_train.h5`` and ``shd_test.h5``.
        split: ``"standard"``: the official training and test files;
            ``"speaker:<id>"``: both files pooled, the recordings of speaker ``<id>``
            (an integer, 0-11) form the test set.
        n_steps: time steps ``T``; dt: step in seconds.  The default window
            ``T dt = 1.4 s`` holds every recording (as in Zenke's SHD tutorials).
        pool: channels OR-ed together (``n_in = ceil(700 / pool)``).
        loss_start: first step scored by the loss and the prediction.
        verify: check the MD5 sums.
        cache_dir: folder of the binned cache (``None``: ``$PLASTAX_CACHE`` or
            ``~/.cache/plastax``).

    ``load(seed)`` ignores the seed beyond validating it: the data are fixed.
    """

    name: ClassVar[str] = "shd"
    files: ClassVar[tuple[str, str]] = ("shd_train.h5", "shd_test.h5")

    data_dir: str | None = None
    split: str = "standard"
    n_steps: int = 100
    dt: float = 0.014
    pool: int = 5
    loss_start: int = 0
    verify: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _set(self, "data_dir", _check_optional_dir("data_dir", self.data_dir))
        _set(self, "cache_dir", _check_optional_dir("cache_dir", self.cache_dir))
        _set(self, "split", _check_split(self.split))
        _set(self, "n_steps", _check_int("n_steps", self.n_steps, 1))
        _set(self, "dt", _check_float("dt", self.dt, 0.0, low_inclusive=False))
        _set(self, "pool", _check_int("pool", self.pool, 1))
        _set(self, "loss_start", _check_int("loss_start", self.loss_start, 0))
        if self.loss_start >= self.n_steps:
            raise ValueError(
                f"expected loss_start < n_steps = {self.n_steps}, received "
                f"{self.loss_start}; score at least one step"
            )
        if not isinstance(self.verify, bool):
            raise ValueError(f"expected verify to be True or False, received {self.verify!r}")
        kind, who = parse_split(self.split)
        if kind == "speaker" and not who.isdigit():
            raise ValueError(
                f"expected an integer SHD speaker id in split='speaker:<id>', received "
                f"{self.split!r}; pass e.g. split='speaker:4'"
            )

    @property
    def n_in(self) -> int:
        return -(-SHD_CHANNELS // self.pool)

    @property
    def n_out(self) -> int:
        return 20

    def loss_mask(self) -> np.ndarray:
        """Ones from ``loss_start`` on; shape ``(n_steps,)``."""
        return _mask(self.n_steps, self.loss_start)

    def paths(self) -> tuple[Path, Path]:
        """The training and test files; a :class:`DataNotFoundError` saying where SHD is
        published and where to put it if either is missing."""
        where = (
            f"download shd_train.h5.gz and shd_test.h5.gz from {SHD_URL} (Cramer et al. "
            "2020, CC BY 4.0), gunzip both into one folder and pass that folder as "
            "data_dir (plastax train --task shd --data-dir FOLDER); plastax never "
            "downloads data"
        )
        if self.data_dir is None:
            raise DataNotFoundError(f"the SHD task needs data_dir: {where}")
        folder = Path(self.data_dir).expanduser()
        paths = tuple(folder / name for name in self.files)
        missing = [p for p in paths if not p.is_file()]
        if missing:
            gz = [p.name for p in missing if p.with_name(p.name + ".gz").is_file()]
            hint = f" ({', '.join(gz)}.gz found: gunzip it first)" if gz else ""
            raise DataNotFoundError(
                f"SHD files not found: {', '.join(str(p) for p in missing)}{hint}; {where}"
            )
        return paths  # type: ignore[return-value]

    def load_binned(self) -> tuple[SpikeDataset, SpikeDataset]:
        """The binned training and test files (:class:`SpikeDataset`)."""
        return tuple(  # type: ignore[return-value]
            load_spike_file(
                p,
                n_steps=self.n_steps,
                dt=self.dt,
                n_channels=SHD_CHANNELS,
                pool=self.pool,
                cache_dir=self.cache_dir,
                verify=self.verify,
            )
            for p in self.paths()
        )

    def load(self, seed: int) -> tuple[Split, Split]:
        _check_seed(seed)
        train, test = self.load_binned()
        kind, who = parse_split(self.split)
        if kind == "standard":
            return train.split(np.arange(len(train))), test.split(np.arange(len(test)))
        x = np.concatenate([train.x, test.x])
        y = np.concatenate([train.y, test.y])
        speaker = np.concatenate([train.speaker, test.speaker])
        out = speaker == int(who)
        if not out.any():
            raise ValueError(
                f"expected a speaker id present in SHD for split={self.split!r}, received "
                f"{who}; speakers are: {', '.join(map(str, np.unique(speaker)))}"
            )
        return (
            Split(x=x[~out].astype(np.float32), y=y[~out]),
            Split(x=x[out].astype(np.float32), y=y[out]),
        )
