"""Tests for plastax.tasks.audio (the cochlea-like encoder, WAV reading, the SHD
layout writer) and the ``plastax data`` command line."""

from __future__ import annotations

import argparse
import json
import wave

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from plastax.data_cli import add_data, cmd_data
from plastax.tasks.audio import (
    CochleaEncoder,
    centre_frequencies,
    encode_folder,
    list_wavs,
    read_wav,
)
from plastax.tasks.shd import load_spike_file, read_spike_file

RATE = 8000


def tone(freq: float, seconds: float = 0.4, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def write_wav(path, x, rate=RATE, dtype=np.int16):
    if np.dtype(dtype).kind == "f":
        data = np.asarray(x, dtype)
    else:
        data = np.round(np.asarray(x) * 32767).astype(dtype)
    wavfile.write(path, rate, data)
    return path


@pytest.fixture(scope="module")
def encoder() -> CochleaEncoder:
    return CochleaEncoder(n_channels=32)


# --------------------------------------------------------------------------------------
# The encoder on synthetic tones


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_pure_tone_excites_the_channels_around_its_frequency(encoder, freq):
    times, units = encoder.encode(tone(freq))
    assert times.dtype == np.float32 and units.dtype == np.uint16
    assert np.all(np.diff(times) >= 0)
    assert units.max() < encoder.n_units == 2 * encoder.n_channels
    counts = np.bincount(units % encoder.n_channels, minlength=encoder.n_channels)
    fc = encoder.frequencies
    best = int(np.argmax(counts))
    # the most active channel is tuned to the tone, within about one ERB
    assert abs(fc[best] - freq) / freq < 0.15, (fc[best], freq)
    # channels more than an octave away are silent or much quieter
    far = (fc < freq / 2) | (fc > freq * 2)
    assert counts[far].max() < 0.2 * counts[best]
    # activity is concentrated: the 5 channels nearest the tone hold most spikes
    near = np.argsort(np.abs(np.log(fc / freq)))[:5]
    assert counts[near].sum() > 0.5 * counts.sum()


def test_silence_gives_almost_no_spikes(encoder):
    times, _ = encoder.encode(np.zeros(RATE // 2))
    assert times.size == 0
    # very quiet noise (-100 dB re full scale) stays below the dynamic range even
    # after the largest normalisation gain (40 dB)
    quiet = 1e-5 * np.random.default_rng(0).standard_normal(RATE // 2)
    times, _ = encoder.encode(quiet)
    assert times.size <= 2
    loud, _ = encoder.encode(tone(1000.0, 0.5))
    assert loud.size > 100


def test_louder_and_quieter_recordings_are_normalised(encoder):
    a = encoder.encode(tone(800.0, amplitude=0.5))
    b = encoder.encode(tone(800.0, amplitude=0.05))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])


def test_spike_times_follow_the_sound(encoder):
    x = np.concatenate([np.zeros(RATE // 4), tone(1000.0, 0.25)])
    times, _ = encoder.encode(x)
    assert times.min() >= 0.25 - 0.01 and times.max() < 0.5


def test_power_compression_and_mel_scale():
    enc = CochleaEncoder(n_channels=16, scale="mel", compression="power", gains=1.5)
    assert enc.gains == (1.5,) and enc.n_units == 16
    times, units = enc.encode(tone(1000.0))
    counts = np.bincount(units, minlength=16)
    assert abs(enc.frequencies[np.argmax(counts)] - 1000) / 1000 < 0.2
    assert enc.encode(np.zeros(4000))[0].size == 0


def test_centre_frequencies():
    for scale in ("erb", "mel"):
        f = centre_frequencies(20, 100.0, 3500.0, scale)
        assert f.shape == (20,) and np.all(np.diff(f) > 0)
        np.testing.assert_allclose([f[0], f[-1]], [100.0, 3500.0])
    erb, mel = centre_frequencies(9, 100, 3500, "erb"), centre_frequencies(9, 100, 3500, "mel")
    assert not np.allclose(erb, mel)


def test_encoder_validation():
    for kwargs in (
        {"n_channels": 0},
        {"f_max": 4000.0},  # Nyquist at 8 kHz
        {"f_min": 5000.0},
        {"scale": "bark"},
        {"compression": "cube"},
        {"dt": 1.5e-4},  # not a whole number of samples at 8 kHz
        {"tau": 0.0},
        {"gains": (3.0, -1.0)},
        {"gains": ()},
        {"gains": "3"},
        {"bit_depth": 24},
    ):
        with pytest.raises(ValueError, match="expected"):
            CochleaEncoder(**kwargs)


def test_encode_many_matches_encode(encoder):
    waves = [tone(500.0, 0.1), tone(2000.0, 0.3), np.zeros(100), tone(900.0, 0.05)]
    many = encoder.encode_many(waves)
    for w, (t, u) in zip(waves, many, strict=True):
        t1, u1 = encoder.encode(w)
        np.testing.assert_array_equal(t, t1)
        np.testing.assert_array_equal(u, u1)


# --------------------------------------------------------------------------------------
# WAV files


def test_read_wav(tmp_path):
    x = tone(440.0, 0.1)
    path = write_wav(tmp_path / "a.wav", x)
    y = read_wav(path)
    assert y.dtype == np.float64 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_wrong_sample_rate_is_a_clear_error(tmp_path):
    path = write_wav(tmp_path / "0_ann_0.wav", tone(440.0), rate=44100)
    with pytest.raises(ValueError, match=r"expected a sample rate of 8000 Hz, received 44100"):
        read_wav(path)
    with pytest.raises(ValueError, match="sox"):
        encode_folder(tmp_path, tmp_path / "out.h5", CochleaEncoder(n_channels=4))


@pytest.mark.parametrize(
    "dtype, found",
    [
        (np.float32, "32-bit floating point"),
        (np.int32, "32-bit integer"),
        (np.uint8, "8-bit integer"),
        ("int24", "24-bit integer"),  # scipy reads it as int32: the header must decide
    ],
)
def test_wrong_bit_depth_is_a_clear_error(tmp_path, dtype, found):
    x = tone(440.0, 0.05)
    if dtype == "int24":
        pcm = np.round(x * 2**22).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        with wave.open(str(tmp_path / "a.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(3)
            w.setframerate(RATE)
            w.writeframes(pcm.tobytes())
        with pytest.raises(ValueError, match="expected 32-bit integer PCM, received 24-bit"):
            read_wav(tmp_path / "a.wav", bit_depth=32)
    elif dtype is np.uint8:
        data = np.round(x * 127 + 128).astype(np.uint8)
        wavfile.write(tmp_path / "a.wav", RATE, data)
    elif dtype is np.int32:
        wavfile.write(tmp_path / "a.wav", RATE, np.round(x * 2**30).astype(np.int32))
    else:
        write_wav(tmp_path / "a.wav", x, dtype=dtype)
    with pytest.raises(ValueError, match=f"expected 16-bit integer PCM, received {found}"):
        read_wav(tmp_path / "a.wav")


def test_stereo_truncated_and_corrupted_wavs_are_clear_errors(tmp_path):
    stereo = np.stack([tone(440.0, 0.05)] * 2, axis=1)
    write_wav(tmp_path / "s.wav", stereo)
    with pytest.raises(ValueError, match="expected a mono recording, received 2 channels"):
        read_wav(tmp_path / "s.wav")
    blob = write_wav(tmp_path / "t.wav", tone(440.0)).read_bytes()
    (tmp_path / "t.wav").write_bytes(blob[:30])
    with pytest.raises(ValueError, match="truncated, corrupted or not a WAV file"):
        read_wav(tmp_path / "t.wav")
    (tmp_path / "g.wav").write_bytes(b"definitely not RIFF data" * 10)
    with pytest.raises(ValueError, match="truncated, corrupted or not a WAV file"):
        read_wav(tmp_path / "g.wav")


# --------------------------------------------------------------------------------------
# Folders -> SHD layout, and the command line


@pytest.fixture
def digits(tmp_path):
    """A tiny spoken-digit collection: digit d is a tone at 300 * (d + 1) Hz."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    for d in range(3):
        for speaker in ("ann", "bob"):
            for i in range(2):
                write_wav(folder / f"{d}_{speaker}_{i}.wav", tone(300.0 * (d + 1), 0.2))
    (folder / "notes.txt").write_text("ignored")
    (folder / "README.md").write_text("Tiny digits. Licence: CC0.")
    return folder


def test_list_wavs(digits):
    files = list_wavs(digits)
    assert len(files) == 12
    assert files[0][1] == {"label": "0", "speaker": "ann", "index": "0"}
    with pytest.raises(ValueError, match="named group 'label'"):
        list_wavs(digits, r"^(\d+)_.*\.wav$")
    with pytest.raises(ValueError, match="none matching"):
        list_wavs(digits, r"^(?P<label>x)\.wav$")
    with pytest.raises(ValueError, match="does not exist"):
        list_wavs(digits / "nope")


def test_encode_folder_writes_the_shd_layout(digits, tmp_path):
    out = tmp_path / "digits.h5"
    enc = CochleaEncoder(n_channels=16, gains=(3.0, 6.0))
    summary = encode_folder(digits, out, enc, attrs={"licence": "CC0"})
    assert summary["n_channels"] == 32  # units: 16 channels x 2 gains
    assert summary["n_samples"] == 12 and summary["keys"] == ["0", "1", "2"]
    assert summary["speakers"] == ["ann", "bob"]
    with h5py.File(out, "r") as f:
        assert f["spikes/times"].dtype.metadata["vlen"] == np.float32
        assert f["spikes/units"].dtype.metadata["vlen"] == np.uint16
        assert f["labels"].dtype == np.uint16 and f["extra/speaker"].dtype == np.uint16
        assert f.attrs["licence"] == "CC0" and f.attrs["n_channels"] == 32
        assert "Tiny digits" in f.attrs["source_readme"]
        assert json.loads(f.attrs["encoder"])["n_channels"] == 16
    raw = read_spike_file(out)
    assert raw["labels"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert raw["filenames"][0] == "0_ann_0.wav"
    # the licence and the source's README stay beside the derived file and its cache
    assert summary["notice"] == str(tmp_path / "digits.README.md")
    notice = (tmp_path / "digits.README.md").read_text()
    assert "Licence: CC0" in notice and "Tiny digits" in notice
    data = load_spike_file(out, n_steps=20, dt=0.01, cache_dir=tmp_path / "c")
    assert data.x.shape == (12, 20, 32) and data.x.any()
    (binned,) = (tmp_path / "c" / "binned").glob("*.npz")
    assert "Tiny digits" in binned.with_name(binned.stem + ".README.md").read_text()
    # higher digits are higher tones: the mean active channel rises with the label
    mean_ch = [(np.nonzero(data.x[data.y == d])[2] % 16).mean() for d in range(3)]
    assert mean_ch[0] < mean_ch[1] < mean_ch[2]


def _cli(argv):
    parser = argparse.ArgumentParser(prog="plastax")
    sub = parser.add_subparsers(dest="command")
    add_data(sub).set_defaults(run=cmd_data)
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_encode_and_info(digits, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    rc = _cli(
        [
            "data",
            "encode",
            "--source",
            str(digits),
            "--out",
            str(out),
            "--channels",
            "8",
            "--gains",
            "2.5",
            "--scale",
            "mel",
            "--no-progress",
            "--licence",
            "CC0",
            "--attribution",
            "tests",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_samples"] == 12 and summary["n_channels"] == 8
    assert _cli(["data", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["n_samples"] == 12 and info["n_channels"] == 8
    assert info["samples_per_label"] == {"0": 4, "1": 4, "2": 4}
    assert info["attrs"]["licence"] == "CC0" and info["attrs"]["attribution"] == "tests"
    with pytest.raises(ValueError, match="expected an action"):
        _cli(["data"])
