"""Audio to spikes: a cochlea-like encoder and the SHD file layout.

:class:`CochleaEncoder` turns a waveform into spike trains, one spike generator per
frequency channel, with the processing stages of a simple peripheral auditory model:

1. **Level normalisation.** The waveform is scaled so that its peak is at full scale,
   with at most ``max_gain_db`` of gain (a recording that is silent or nearly so
   stays silent instead of having its noise amplified to full scale).
2. **Filterbank.** ``n_channels`` fourth-order gammatone filters
   (``scipy.signal.gammatone``; Patterson et al. 1992, bandwidth ``1.019 ERB(f)``,
   Glasberg & Moore 1990) with centre frequencies spaced evenly on the ERB-rate scale
   (``scale="erb"``) or on the mel scale (``scale="mel"``) between ``f_min`` and
   ``f_max``: the basilar membrane.  Channel 0 is the lowest frequency.
3. **Half-wave rectification** ``max(y, 0)``: the inner hair cell.
4. **Envelope.** The rectified signal is averaged over each step ``dt`` of the spike
   generators (a boxcar low-pass and decimation to ``1 / dt``, 1 kHz by default) and
   scaled by ``pi``, so that a full-scale sine at a channel's centre frequency gives an
   envelope of 1.
5. **Compression.**  ``"log"`` (default): the envelope's level in dB re full scale,
   mapped linearly from ``-dynamic_range_db`` (and below) to 0 dB onto ``[0, 1]``:
   the drive ``d_k``.  ``"power"``: ``d_k = envelope ** exponent`` (Stevens' power
   law; 0.3 is a common choice).
6. **Spike generation** by leaky integrate-and-fire units, ``len(gains)`` per channel
   (a population of fibres with different thresholds, like the auditory nerve's
   fibres of high and low spontaneous rate):

       v_k = alpha v_{k-1} + (1 - alpha) g d_k,   alpha = exp(-dt / tau)
       spike at time k dt when v_k >= 1, then v_k = 0,

   A unit of gain ``g`` fires only while ``g d_k > 1``, i.e. while the channel's level
   is above ``-dynamic_range_db (1 - 1 / g)`` dB re full scale (-40 dB for ``g = 3``,
   -50 dB for ``g = 6`` with the default 60 dB range), at a rate that grows with the
   drive.  Unit ``l * n_channels + c`` is the unit of gain ``gains[l]`` in channel
   ``c``: the units form ``len(gains)`` blocks of ``n_channels``, each ordered from low
   to high frequency.

The spike trains of a collection of recordings are written in the file layout of the
Spiking Heidelberg Digits (Cramer et al. 2020) by :func:`write_spike_file`, so that
any spoken-digit collection goes through the same loader
(:func:`plastax.tasks.shd.load_spike_file`) as SHD itself.

WAV files are read with ``scipy.io.wavfile`` by :func:`read_wav`, which accepts only
mono integer PCM of the encoder's sample rate and bit depth and says so clearly
otherwise (nothing is resampled behind the user's back).

Example::

    enc = CochleaEncoder(n_channels=32, gains=(3.0, 6.0))   # 64 units
    times, units = enc.encode(waveform)           # spike times (s) and unit indices
    dataset = encode_folder("recordings/", "out.h5", enc)
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import struct
import warnings
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, final

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text
from .base import _check_float, _check_int, _set

__all__ = [
    "FSDD_PATTERN",
    "CochleaEncoder",
    "centre_frequencies",
    "encode_folder",
    "list_wavs",
    "notice_path",
    "read_wav",
    "write_notice",
    "write_spike_file",
]

FSDD_PATTERN = r"^(?P<label>\d+)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)\.wav$"
"""File names of the Free Spoken Digit Dataset: ``{digit}_{speaker}_{index}.wav``."""

SCALES = ("erb", "mel")
COMPRESSIONS = ("log", "power")

# Recordings are processed in groups of similar length, so that the spike generator
# runs once per group on a padded (files, channels, steps) array.
_GROUP = 64


# --------------------------------------------------------------------------------------
# Frequency scales


def _hz_to_erb_rate(f):
    """ERB-rate (number of ERBs below ``f``), Glasberg & Moore (1990)."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=np.float64))


def _erb_rate_to_hz(e):
    return (10.0 ** (np.asarray(e, dtype=np.float64) / 21.4) - 1.0) / 0.00437


def _hz_to_mel(f):
    """Mel scale of O'Shaughnessy (1987): ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def centre_frequencies(n_channels: int, f_min: float, f_max: float, scale: str) -> np.ndarray:
    """``(n_channels,)`` centre frequencies in Hz, ascending, evenly spaced on ``scale``
    (``"erb"`` or ``"mel"``) from ``f_min`` to ``f_max`` inclusive."""
    if scale not in SCALES:
        raise ValueError(f"expected scale to be one of {SCALES}, received {scale!r}")
    fwd, inv = (_hz_to_erb_rate, _erb_rate_to_hz) if scale == "erb" else (_hz_to_mel, _mel_to_hz)
    if n_channels == 1:
        return np.array([math.sqrt(f_min * f_max)])
    return inv(np.linspace(fwd(f_min), fwd(f_max), n_channels))


# --------------------------------------------------------------------------------------
# WAV files


def read_wav(
    path: str | os.PathLike, *, sample_rate: int = 8000, bit_depth: int = 16
) -> np.ndarray:
    """Read a mono integer-PCM WAV file as float64 in ``[-1, 1)``.

    Raises:
        ValueError: the file is not a readable WAV file, is not mono, or its sample
            rate or bit depth differ from ``sample_rate`` / ``bit_depth``.  The message
            names the file, what was expected and what was found, and how to fix it.
    """
    from scipy.io import wavfile

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # unknown chunks (LIST, ...) are harmless; scipy warns about them
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, IndexError, KeyError, struct.error) as e:
        raise ValueError(
            f"{path}: expected a readable PCM WAV file, but it could not be read ({e}); "
            "the file is truncated, corrupted or not a WAV file: replace it or remove it "
            "from the folder"
        ) from None
    fix = (
        f"convert it, e.g. `sox {path.name} -r {sample_rate} -b {bit_depth} -c 1 out.wav`, "
        f"or encode with a matching sample_rate / bit_depth"
    )
    if rate != sample_rate:
        raise ValueError(
            f"{path}: expected a sample rate of {sample_rate} Hz, received {rate} Hz; {fix}"
        )
    bits = _pcm_bits(path, data.dtype)
    expected_dtype = {8: np.uint8, 16: np.int16, 32: np.int32}.get(bit_depth)
    if data.dtype != expected_dtype or bits != bit_depth:
        found = (
            f"{data.dtype.itemsize * 8}-bit floating point"
            if data.dtype.kind == "f"
            else f"{bits}-bit integer PCM"
        )
        raise ValueError(
            f"{path}: expected {bit_depth}-bit integer PCM, received {found} "
            f"(read as numpy dtype {data.dtype}); {fix}"
        )
    if data.ndim != 1:
        raise ValueError(
            f"{path}: expected a mono recording, received {data.shape[1]} channels; {fix}"
        )
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned with an offset of 128
        return (data.astype(np.float64) - 128.0) / 128.0
    return data.astype(np.float64) / float(2 ** (bit_depth - 1))


def _pcm_bits(path: Path, dtype: np.dtype) -> int:
    """Bits per sample of an integer-PCM WAV file as its header says: scipy reads
    24-bit samples into int32, so the dtype alone cannot tell 24 from 32 bits."""
    if dtype.kind == "f":
        return dtype.itemsize * 8
    try:
        with wave.open(os.fspath(path), "rb") as w:
            return w.getsampwidth() * 8
    except (wave.Error, EOFError, OSError):  # a header wave cannot parse: trust scipy
        return dtype.itemsize * 8


def list_wavs(
    source: str | os.PathLike, pattern: str = FSDD_PATTERN
) -> list[tuple[Path, dict[str, str]]]:
    """The ``.wav`` files directly inside ``source`` whose names match ``pattern``,
    sorted by name, each with the regex's named groups (``label`` is required,
    ``speaker`` is optional).

    Raises:
        ValueError: ``source`` is not a folder, the pattern has no ``label`` group, or
            no file matches.
    """
    source = Path(source)
    if not source.is_dir():
        raise ValueError(
            f"expected a folder of WAV files, received {str(source)!r}, which "
            f"{'is not a folder' if source.exists() else 'does not exist'}; pass the folder "
            "that holds the .wav files"
        )
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f"expected a valid regular expression, received {pattern!r} ({e})"
        ) from None
    if "label" not in regex.groupindex:
        raise ValueError(
            f"expected a file-name pattern with a named group 'label', received {pattern!r}; "
            r"e.g. '^(?P<label>\d+)_(?P<speaker>[a-z]+)_\d+\.wav$'"
        )
    wavs = sorted(p for p in source.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    out = []
    for p in wavs:
        m = regex.match(p.name)
        if m is not None:
            out.append((p, {k: v for k, v in m.groupdict().items() if v is not None}))
    if not out:
        raise ValueError(
            f"expected WAV files whose names match {pattern!r} in {str(source)!r}, found "
            f"{len(wavs)} .wav file(s) and none matching; check the folder or pass a "
            "different label pattern"
        )
    return out


# --------------------------------------------------------------------------------------
# The encoder


@final
@dataclasses.dataclass(frozen=True)
class CochleaEncoder:
    """Cochlea-like audio-to-spike encoder (see the module docstring for the stages).

    Parameters:
        n_channels: frequency channels (filters), >= 1.
        f_min, f_max: lowest and highest centre frequency in Hz,
            ``0 < f_min < f_max < sample_rate / 2``.
        scale: spacing of the centre frequencies, ``"erb"`` or ``"mel"``.
        sample_rate: the sample rate in Hz that input files must have.
        bit_depth: the integer PCM bit depth that input files must have (8, 16, 32).
        max_gain_db: largest gain of the peak normalisation, in dB, >= 0.
        compression: ``"log"`` or ``"power"``.
        dynamic_range_db: ``"log"`` only: levels this far below full scale and lower
            give zero drive, > 0.
        exponent: ``"power"`` only: the power-law exponent, in (0, 1].
        dt: step of the spike generators in seconds (the spike-time resolution); a
            whole number of audio samples (``dt * sample_rate`` an integer).
        tau: membrane time constant of the spike generators in seconds, > 0.
        gains: one spike generator per channel and gain; the gain is the drive at full
            scale in units of the threshold (a unit fires while ``gain * drive > 1``),
            each > 0.  ``n_units = n_channels * len(gains)``.
    """

    n_channels: int = 32
    f_min: float = 100.0
    f_max: float = 3500.0
    scale: str = "erb"
    sample_rate: int = 8000
    bit_depth: int = 16
    max_gain_db: float = 40.0
    compression: str = "log"
    dynamic_range_db: float = 60.0
    exponent: float = 0.3
    dt: float = 1e-3
    tau: float = 1e-2
    gains: tuple[float, ...] = (3.0, 6.0)

    def __post_init__(self) -> None:
        _set(self, "n_channels", _check_int("n_channels", self.n_channels, 1))
        _set(self, "sample_rate", _check_int("sample_rate", self.sample_rate, 1))
        if self.bit_depth not in (8, 16, 32) or isinstance(self.bit_depth, bool):
            raise ValueError(
                f"expected bit_depth to be 8, 16 or 32 (integer PCM), received {self.bit_depth!r}"
            )
        _set(self, "bit_depth", int(self.bit_depth))
        nyquist = self.sample_rate / 2
        _set(self, "f_min", _check_float("f_min", self.f_min, 0.0, low_inclusive=False))
        _set(
            self,
            "f_max",
            _check_float(
                "f_max", self.f_max, self.f_min, nyquist, low_inclusive=False, high_inclusive=False
            ),
        )
        for name, choices in (("scale", SCALES), ("compression", COMPRESSIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"expected {name} to be one of {', '.join(choices)}, received "
                    f"{getattr(self, name)!r}"
                )
        _set(self, "max_gain_db", _check_float("max_gain_db", self.max_gain_db, 0.0))
        _set(
            self,
            "dynamic_range_db",
            _check_float("dynamic_range_db", self.dynamic_range_db, 0.0, low_inclusive=False),
        )
        _set(
            self, "exponent", _check_float("exponent", self.exponent, 0.0, 1.0, low_inclusive=False)
        )
        _set(self, "dt", _check_float("dt", self.dt, 0.0, low_inclusive=False))
        _set(self, "tau", _check_float("tau", self.tau, 0.0, low_inclusive=False))
        gains = self.gains
        if isinstance(gains, int | float) and not isinstance(gains, bool):
            gains = (gains,)
        if not isinstance(gains, tuple | list) or not gains:
            raise ValueError(
                f"expected gains to be a non-empty tuple of numbers > 0, received {gains!r}; "
                "pass e.g. gains=(3.0, 6.0)"
            )
        _set(
            self,
            "gains",
            tuple(
                _check_float(f"gains[{i}]", g, 0.0, low_inclusive=False)
                for i, g in enumerate(gains)
            ),
        )
        samples = self.dt * self.sample_rate
        if samples < 0.5 or abs(samples - round(samples)) > 1e-6 * max(samples, 1.0):
            raise ValueError(
                f"expected dt to be a whole number of audio samples (k / sample_rate = "
                f"k / {self.sample_rate} s), received dt={self.dt:g} s = {samples:g} "
                f"samples; pass e.g. dt={max(round(samples), 1) / self.sample_rate:g}"
            )

    # -- derived quantities ----------------------------------------------------------

    @property
    def frequencies(self) -> np.ndarray:
        """``(n_channels,)`` centre frequencies in Hz (channel 0 is the lowest)."""
        return centre_frequencies(self.n_channels, self.f_min, self.f_max, self.scale)

    @property
    def n_units(self) -> int:
        """Spike generators (units): ``n_channels * len(gains)``."""
        return self.n_channels * len(self.gains)

    @property
    def hop(self) -> int:
        """Audio samples per spike-generator step: ``dt * sample_rate``."""
        return int(round(self.dt * self.sample_rate))

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable parameters."""
        return dataclasses.asdict(self)

    def _filters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(b, a)`` of each channel's gammatone filter (unit gain at its centre)."""
        from scipy.signal import gammatone

        return [gammatone(float(f), "iir", fs=self.sample_rate) for f in self.frequencies]

    # -- stages ----------------------------------------------------------------------

    def drive(self, waveform: np.ndarray, filters: Sequence[tuple] | None = None):
        """``(n_channels, K)`` float32 drive in ``[0, 1]`` of the spike generators, one
        value per step ``dt`` (stages 1-5); ``K = ceil(len(waveform) / (dt * rate))``.

        ``filters``: the result of ``self._filters()``, to reuse across calls."""
        from scipy.signal import lfilter

        x = np.asarray(waveform, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D waveform, received shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("expected a finite waveform, received NaN or infinite samples")
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        max_gain = 10.0 ** (self.max_gain_db / 20.0)
        x = x * (min(1.0 / peak, max_gain) if peak > 0 else 1.0)
        hop = self.hop
        K = -(-x.size // hop)
        x = np.concatenate([x, np.zeros(K * hop - x.size)])
        filters = self._filters() if filters is None else filters
        y = np.stack([lfilter(b, a, x) for b, a in filters])  # (C, n): basilar membrane
        # half-wave rectification, then the mean over each step: the envelope.  The
        # factor pi puts a full-scale sine at 1 (its rectified mean is 1 / pi).
        env = np.pi * np.maximum(y, 0.0).reshape(self.n_channels, K, hop).mean(-1)
        if self.compression == "log":
            floor = 10.0 ** (-self.dynamic_range_db / 20.0)
            d = 1.0 + 20.0 * np.log10(np.maximum(env, floor)) / self.dynamic_range_db
        else:
            d = env**self.exponent
        return np.clip(d, 0.0, None).astype(np.float32)

    def spikes(self, drives: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run the spike generators (stage 6) on several ``(n_channels, K_i)`` drives at
        once; returns ``(times in seconds, float32; units, uint16)`` per drive, sorted
        by time, then unit."""
        if not drives:
            return []
        alpha = math.exp(-self.dt / self.tau)
        lengths = np.array([d.shape[1] for d in drives])
        C, L = self.n_channels, len(self.gains)
        padded = np.zeros((len(drives), C, int(lengths.max())), np.float32)
        for i, d in enumerate(drives):
            if d.shape[0] != C:
                raise ValueError(f"expected drives with {C} channels, received {d.shape[0]}")
            padded[i, :, : d.shape[1]] = d
        gains = np.asarray(self.gains, np.float32)[None, :, None, None]
        inp = ((1.0 - alpha) * gains * padded[:, None]).reshape(len(drives), L * C, -1)
        v = np.zeros(inp.shape[:2], np.float32)
        fired = np.zeros(inp.shape, bool)
        for k in range(inp.shape[2]):
            v = alpha * v + inp[:, :, k]
            s = v >= 1.0
            fired[:, :, k] = s
            v[s] = 0.0
        out = []
        for i in range(len(drives)):
            units, steps = np.nonzero(fired[i, :, : lengths[i]])
            order = np.lexsort((units, steps))
            out.append(
                (
                    (steps[order] * self.dt).astype(np.float32),
                    units[order].astype(np.uint16),
                )
            )
        return out

    def encode(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike times (seconds, float32) and units (uint16) of one waveform."""
        return self.spikes([self.drive(waveform)])[0]

    def encode_many(
        self,
        waveforms: Sequence[np.ndarray] | Callable[[int], np.ndarray],
        n: int | None = None,
        *,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Encode ``n`` waveforms (a sequence, or a function ``i -> waveform`` to read
        them lazily); ``progress(k)`` is called after every ``k`` files."""
        if callable(waveforms):
            if n is None:
                raise ValueError("encode_many: expected n with a waveform function")
            get = waveforms
        else:
            n = len(waveforms)
            get = waveforms.__getitem__
        filters = self._filters()
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
        for start in range(0, n, _GROUP):
            idx = range(start, min(n, start + _GROUP))
            drives = [self.drive(get(i), filters) for i in idx]
            for i, res in zip(idx, self.spikes(drives), strict=True):
                out[i] = res
            if progress is not None:
                progress(len(idx))
        return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# SHD file layout


def write_spike_file(
    path: str | os.PathLike,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int],
    *,
    keys: Sequence[str],
    speakers: Sequence[int] | None = None,
    speaker_names: Sequence[str] | None = None,
    filenames: Sequence[str] | None = None,
    n_channels: int | None = None,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write spike trains in the layout of the Spiking Heidelberg Digits, atomically.

    Layout (Cramer et al. 2020; extra datasets marked +)::

        spikes/times    (N,) variable-length float32, seconds
        spikes/units    (N,) variable-length uint16, channel index
        labels          (N,) uint16
        extra/keys      (n_classes,) strings, the name of each label
        extra/speaker   (N,) uint16
        extra/speaker_names (n_speakers,) strings      +
        extra/filenames (N,) strings                    +

    ``n_channels`` (the number of units, which the loader uses to detect units out
    of range) and ``attrs`` go to the root group's attributes (non-string values as
    JSON).  The file is built in memory and written atomically
    (:func:`plastax._io.atomic_write_bytes`): a crash never leaves a truncated file.
    """
    import h5py

    n = len(labels)
    if not (len(times) == len(units) == n):
        raise ValueError(
            f"expected as many spike-time arrays, unit arrays and labels, received "
            f"{len(times)}, {len(units)} and {n}"
        )
    path = Path(path)
    str_dt = h5py.string_dtype()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        g = f.create_group("spikes")
        t_ds = g.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.float32))
        u_ds = g.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t_ds[i] = np.asarray(times[i], np.float32)
            u_ds[i] = np.asarray(units[i], np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        e = f.create_group("extra")
        e.create_dataset("keys", data=np.array(list(keys), dtype=object), dtype=str_dt)
        if speakers is not None:
            e.create_dataset("speaker", data=np.asarray(speakers, np.uint16))
        if speaker_names is not None:
            e.create_dataset(
                "speaker_names", data=np.array(list(speaker_names), dtype=object), dtype=str_dt
            )
        if filenames is not None:
            e.create_dataset(
                "filenames", data=np.array(list(filenames), dtype=object), dtype=str_dt
            )
        if n_channels is not None:
            f.attrs["n_channels"] = int(n_channels)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v if isinstance(v, str) else json.dumps(v)
    atomic_write_bytes(path, buffer.getvalue())
    _chmod_default(path)  # the temporary file was private; the result is an ordinary file


def _chmod_default(path: str | os.PathLike) -> None:
    """Give ``path`` the mode of a newly created file (``0o666`` minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def encode_folder(
    source: str | os.PathLike,
    out: str | os.PathLike,
    encoder: CochleaEncoder | None = None,
    *,
    pattern: str = FSDD_PATTERN,
    attrs: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Encode every WAV file in ``source`` whose name matches ``pattern`` and write the
    spike trains to ``out`` in the SHD layout (:func:`write_spike_file`).

    Labels come from the pattern's ``label`` group: if every label is an integer, the
    label *is* that integer and ``extra/keys`` holds ``str(0) .. str(max)``; otherwise
    the sorted distinct labels are numbered ``0, 1, ...``.  Speakers come from the
    optional ``speaker`` group (numbered in sorted order), else all are speaker 0.  A
    ``README*`` file in ``source`` or its parent (the data set's notice, e.g. its
    licence) is stored in the root attribute ``source_readme`` and, with the
    ``licence`` and ``attribution`` of ``attrs``, written next to ``out`` as
    ``FILE.README.md`` (:func:`write_notice`), so derived data keep their notice.

    Returns:
        a JSON-able summary: ``path``, ``notice`` (the README written next to it, or
        ``None``), ``n_samples``, ``n_channels`` (units of the
        file: ``encoder.n_units``), ``n_spikes``,
        ``keys``, ``speakers``, ``duration_max`` (s) and the ``encoder`` parameters.
    """
    encoder = CochleaEncoder() if encoder is None else encoder
    if not isinstance(encoder, CochleaEncoder):
        raise ValueError(f"expected a CochleaEncoder, received {type(encoder).__name__}")
    files = list_wavs(source, pattern)
    raw = [g["label"] for _, g in files]
    if all(s.isdigit() for s in raw):
        ids = [int(s) for s in raw]
        keys = [str(k) for k in range(max(ids) + 1)]
    else:
        keys = sorted(set(raw))
        ids = [keys.index(s) for s in raw]
    names = [g.get("speaker", "") for _, g in files]
    speaker_names = sorted(set(names))
    speakers = [speaker_names.index(s) for s in names]

    durations = np.zeros(len(files))

    def get(i: int) -> np.ndarray:
        x = read_wav(files[i][0], sample_rate=encoder.sample_rate, bit_depth=encoder.bit_depth)
        durations[i] = len(x) / encoder.sample_rate
        return x

    from tqdm.auto import tqdm

    with tqdm(total=len(files), desc="encode", unit="file", disable=not progress) as bar:
        trains = encoder.encode_many(get, len(files), progress=bar.update)

    readme = _find_readme(Path(source))
    meta = {
        "created_by": "plastax.tasks.audio.encode_folder",
        "encoder": encoder.describe(),
        "source_folder": Path(source).name,
        "label_pattern": pattern,
    }
    if readme is not None:
        meta["source_readme"] = readme
    meta.update(attrs or {})
    write_spike_file(
        out,
        [t for t, _ in trains],
        [u for _, u in trains],
        ids,
        keys=keys,
        speakers=speakers,
        speaker_names=speaker_names,
        filenames=[p.name for p, _ in files],
        n_channels=encoder.n_units,
        attrs=meta,
    )
    notice = write_notice(out, meta)
    return {
        "path": os.fspath(out),
        "notice": None if notice is None else os.fspath(notice),
        "n_samples": len(files),
        "n_channels": encoder.n_units,
        "n_spikes": int(sum(len(t) for t, _ in trains)),
        "keys": keys,
        "speakers": speaker_names,
        "duration_max": float(durations.max()),
        "encoder": encoder.describe(),
    }


def notice_path(out: str | os.PathLike) -> Path:
    """Where :func:`encode_folder` puts the notice of ``out``: ``FILE.h5`` ->
    ``FILE.README.md``, in the same folder."""
    out = Path(out)
    return out.with_name(out.stem + ".README.md")


def write_notice(out: str | os.PathLike, meta: dict[str, Any]) -> Path | None:
    """Write the licence, the attribution and the source's README (from ``meta``, the
    root attributes of ``out``) next to ``out`` as :func:`notice_path`, so that the
    notice stays with the derived data outside HDF5 too.  Nothing is written (and
    ``None`` returned) when ``meta`` has none of them."""
    keys = ("licence", "attribution", "source_readme")
    if not any(meta.get(k) for k in keys):
        return None
    path = notice_path(out)
    lines = [
        f"# {Path(out).name}",
        "",
        f"Spike trains encoded by plastax's cochlea-like encoder from the recordings in "
        f"`{meta.get('source_folder', '?')}`.  The same notice is stored in the file's root "
        "attributes (`licence`, `attribution`, `source_readme`).",
        "",
    ]
    if meta.get("licence"):
        lines += [f"Licence: {meta['licence']}", ""]
    if meta.get("attribution"):
        lines += [f"Attribution: {meta['attribution']}", ""]
    if meta.get("source_readme"):
        lines += ["## README of the source recordings", "", meta["source_readme"].rstrip(), ""]
    atomic_write_text(path, "\n".join(lines))
    _chmod_default(path)
    return path


def _find_readme(source: Path) -> str | None:
    for folder in (source, source.parent):
        for p in sorted(folder.glob("README*")):
            if p.is_file():
                try:
                    return p.read_text(encoding="utf-8", errors="replace")
                except OSError:  # pragma: no cover
                    return None
    return None
