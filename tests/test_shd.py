"""Tests for plastax.tasks.shd: the loader of spike files in the SHD layout, on small
files written here in the exact layout of the Spiking Heidelberg Digits."""

from __future__ import annotations

import dataclasses
import json
import os

import h5py
import numpy as np
import pytest

from plastax.tasks import Split, Task
from plastax.tasks import shd as shd_module
from plastax.tasks.shd import (
    SHD,
    DataNotFoundError,
    SpikeDataWarning,
    bin_spikes,
    load_spike_file,
    md5sum,
    parse_split,
    read_spike_file,
)


def write_shd(path, times, units, labels, speakers=None):
    """A file in the exact layout of SHD: vlen float16 times (s), vlen uint16 units,
    uint16 labels, extra/{speaker, keys, meta_info/{gender, age, body_height}}."""
    n = len(labels)
    speakers = [0] * n if speakers is None else speakers
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes")
        t = g.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.float16))
        u = g.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t[i] = np.asarray(times[i], np.float16)
            u[i] = np.asarray(units[i], np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        e = f.create_group("extra")
        e.create_dataset("speaker", data=np.asarray(speakers, np.uint16))
        keys = [f"english-{d}" for d in range(10)] + [f"german-{d}" for d in range(10)]
        e.create_dataset("keys", data=np.array(keys, dtype="S"))
        m = e.create_group("meta_info")
        m.create_dataset("gender", data=np.array([b"female", b"male"]))
        m.create_dataset("age", data=np.array([30, 40], np.uint16))
        m.create_dataset("body_height", data=np.array([170, 180], np.uint16))
    return path


# Three samples; dt = 0.01 s, 10 steps.  Sample 0 holds a NaN time, an infinite time
# and a unit out of range (700), which must be dropped and counted.
TIMES = [
    [0.001, 0.0125, np.nan, 0.055, np.inf, 0.2],
    [0.0, 0.0, 0.099],
    [],
]
UNITS = [
    [0, 1, 2, 699, 3, 700],
    [10, 10, 11],
    [],
]
LABELS = [3, 17, 0]


@pytest.fixture
def small(tmp_path):
    return write_shd(tmp_path / "small.h5", TIMES, UNITS, LABELS, speakers=[1, 2, 1])


def test_read_exact_layout(small):
    raw = read_spike_file(small)
    assert raw["labels"].tolist() == LABELS
    assert raw["speaker"].tolist() == [1, 2, 1]
    assert raw["keys"][3] == "english-3" and raw["keys"][17] == "german-7"
    assert [len(t) for t in raw["times"]] == [6, 3, 0]


def test_binning_drops_invalid_spikes_with_a_counting_warning(small, tmp_path):
    with pytest.warns(SpikeDataWarning) as record:
        data = load_spike_file(small, n_steps=10, dt=0.01, cache_dir=tmp_path / "c")
    msg = str(record[0].message)
    assert "dropped 3 invalid spike(s)" in msg
    assert "2 with a non-finite time" in msg and "1 with a unit outside [0, 700)" in msg
    assert data.dropped == {"nonfinite_time": 2, "negative_time": 0, "unit_out_of_range": 1}
    assert data.x.shape == (3, 10, 700) and data.x.dtype == bool
    expected = np.zeros((3, 10, 700), bool)
    expected[0, 0, 0] = expected[0, 1, 1] = expected[0, 5, 699] = True
    expected[1, 0, 10] = expected[1, 9, 11] = True  # two spikes in one bin count once
    np.testing.assert_array_equal(data.x, expected)
    assert data.y.tolist() == LABELS and data.y.dtype == np.int32
    assert data.speaker.tolist() == [1, 2, 1]


def test_nonfinite_counts_every_kind(tmp_path):
    path = write_shd(
        tmp_path / "nf.h5", [[np.nan, np.inf, -np.inf, -0.5, 0.01]], [[0, 1, 2, 3, 4]], [0]
    )
    with pytest.warns(SpikeDataWarning, match="3 with a non-finite time, 1 with a negative"):
        data = load_spike_file(path, n_steps=5, dt=0.01, cache_dir=False)
    assert data.x.sum() == 1 and data.x[0, 1, 4]


def test_pooling(tmp_path):
    path = write_shd(tmp_path / "p.h5", [[0.0, 0.0, 0.0, 0.01]], [[0, 4, 5, 699]], [1])
    data = load_spike_file(path, n_steps=3, dt=0.01, pool=5, cache_dir=False)
    assert data.x.shape == (1, 3, 140)
    assert data.x[0, 0, 0] and data.x[0, 0, 1] and data.x[0, 1, 139]
    assert data.x.sum() == 3  # units 0 and 4 share pooled channel 0


def test_bin_spikes_direct():
    x, dropped = bin_spikes(
        [np.array([0.0, 0.03, 0.0299])],
        [np.array([2, 2, 1])],
        n_steps=3,
        dt=0.01,
        n_channels=4,
        pool=2,
    )
    assert x.shape == (1, 3, 2)
    assert x[0, 0, 1] and x[0, 2, 0] and x.sum() == 2  # t = 0.03 = T dt is cut off
    assert sum(dropped.values()) == 0


def test_second_load_reads_the_bit_packed_cache(small, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    with pytest.warns(SpikeDataWarning):
        first = load_spike_file(small, n_steps=10, dt=0.01, cache_dir=cache)
    files = list((cache / "binned").glob("*.npz"))
    assert len(files) == 1
    assert not list((cache / "binned").glob("*.README.md"))  # no licence in the file
    with np.load(files[0], allow_pickle=False) as z:  # no pickle anywhere
        assert z["packed"].dtype == np.uint8
        assert z["packed"].shape == (3, 10, 700 // 8 + 1)  # 8 channels per byte
        assert json.loads(str(z["dropped"]))["unit_out_of_range"] == 1

    def fail(*a, **k):
        raise AssertionError("the file was read again instead of the cache")

    monkeypatch.setattr(shd_module, "read_spike_file", fail)
    with pytest.warns(SpikeDataWarning, match="dropped 3"):  # the warning is kept
        second = load_spike_file(small, n_steps=10, dt=0.01, cache_dir=cache)
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert second.keys == first.keys and second.dropped == first.dropped
    # another binning is another cache entry
    monkeypatch.undo()
    with pytest.warns(SpikeDataWarning):
        load_spike_file(small, n_steps=5, dt=0.02, cache_dir=cache)
    assert len(list((cache / "binned").glob("*.npz"))) == 2


def test_changed_file_is_binned_again(tmp_path):
    path = write_shd(tmp_path / "f.h5", [[0.0]], [[1]], [0])
    a = load_spike_file(path, n_steps=2, dt=0.01, cache_dir=tmp_path / "c")
    write_shd(path, [[0.01, 0.0]], [[2, 3]], [1])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = load_spike_file(path, n_steps=2, dt=0.01, cache_dir=tmp_path / "c")
    assert a.y.tolist() == [0] and b.y.tolist() == [1]
    assert b.x[0, 1, 2] and b.x[0, 0, 3]


def test_unreadable_cache_is_rebuilt(small, tmp_path):
    cache = tmp_path / "c"
    with pytest.warns(SpikeDataWarning):
        load_spike_file(small, n_steps=10, dt=0.01, cache_dir=cache)
    (npz,) = (cache / "binned").glob("*.npz")
    npz.write_bytes(b"not a zip file")
    with pytest.warns(SpikeDataWarning):
        data = load_spike_file(small, n_steps=10, dt=0.01, cache_dir=cache)
    assert data.x.sum() == 5


def test_truncated_file_gives_a_clear_error(small, tmp_path):
    blob = small.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_spike_file(truncated, n_steps=10, dt=0.01, cache_dir=False)


def test_corrupted_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="cannot be read.*truncated or corrupted"):
        load_spike_file(bad, n_steps=10, dt=0.01, cache_dir=False)


def test_wrong_layout_gives_a_clear_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(ValueError, match="expected the SHD layout.*labels"):
        read_spike_file(path)
    path2 = write_shd(tmp_path / "mismatch.h5", [[0.0, 0.1]], [[1]], [0])
    with pytest.raises(ValueError, match="as many spike times as units"):
        read_spike_file(path2)


def test_official_names_are_checked_against_published_md5(tmp_path):
    path = write_shd(tmp_path / "shd_train.h5", [[0.0]], [[0]], [0])
    with pytest.raises(
        ValueError,
        match=r"expected MD5 8e9877c85f29a28dd353ea6a54402667.*"
        r"zenkelab\.org/datasets",
    ):
        load_spike_file(path, n_steps=2, dt=0.01, cache_dir=False)
    # an explicit sum, or verify=False, for files known to differ
    load_spike_file(path, n_steps=2, dt=0.01, cache_dir=False, md5=md5sum(path))
    load_spike_file(path, n_steps=2, dt=0.01, cache_dir=False, verify=False)


def test_missing_file_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_spike_file(tmp_path / "nope.h5", n_steps=2, dt=0.01)
    with pytest.raises(DataNotFoundError, match=r"needs data_dir.*zenkelab\.org/datasets"):
        SHD().load(0)
    with pytest.raises(FileNotFoundError, match=r"shd_train\.h5.*gunzip.*--data-dir"):
        SHD(data_dir=str(tmp_path)).load(0)
    (tmp_path / "shd_test.h5.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"shd_test\.h5\.gz found: gunzip it first"):
        SHD(data_dir=str(tmp_path)).load(0)


@pytest.fixture
def shd_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)

    def sample():
        n = int(rng.integers(5, 40))
        return np.sort(rng.uniform(0, 1.2, n)), rng.integers(0, 700, n)

    for name, n, speakers in (("shd_train.h5", 40, [0, 1, 2, 3]), ("shd_test.h5", 10, [4, 5])):
        samples = [sample() for _ in range(n)]
        write_shd(
            tmp_path / name,
            [t for t, _ in samples],
            [u for _, u in samples],
            rng.integers(0, 20, n),
            rng.choice(speakers, n),
        )
    sums = {name: md5sum(tmp_path / name) for name in ("shd_train.h5", "shd_test.h5")}
    monkeypatch.setattr(shd_module, "SHD_MD5", sums)  # these stand in for the real files
    return tmp_path


def test_shd_task(shd_dir, tmp_path):
    task = SHD(data_dir=str(shd_dir), cache_dir=str(tmp_path / "cache"))
    assert isinstance(task, Task)
    assert (task.n_in, task.n_out, task.n_steps) == (140, 20, 100)
    train, test = task.load(seed=0)
    assert isinstance(train, Split) and (len(train), len(test)) == (40, 10)
    assert train.x.shape == (40, 100, 140) and train.x.dtype == np.float32
    assert set(np.unique(train.x)) <= {0.0, 1.0}
    assert train.y.dtype == np.int32 and train.y.max() < 20
    mask = task.loss_mask()
    assert mask.shape == (100,) and mask.dtype == np.float32 and mask.sum() == 100
    assert task.describe()["name"] == "shd"
    json.dumps(task.describe())


def test_shd_leave_one_speaker_out(shd_dir, tmp_path):
    task = SHD(
        data_dir=str(shd_dir),
        split="speaker:4",
        cache_dir=str(tmp_path / "c"),
        n_steps=20,
        dt=0.05,
        pool=7,
    )
    train, test = task.load(seed=0)
    assert len(train) + len(test) == 50 and 0 < len(test) < 10
    assert train.x.shape[1:] == (20, 100)
    with pytest.raises(ValueError, match="speaker id present"):
        SHD(data_dir=str(shd_dir), split="speaker:11", cache_dir=str(tmp_path / "c")).load(0)


def test_shd_validation():
    for kwargs in (
        {"split": "random"},
        {"split": "speaker:"},
        {"split": "speaker:theo"},
        {"n_steps": 0},
        {"dt": 0.0},
        {"pool": 0},
        {"loss_start": 100},
        {"verify": "yes"},
        {"data_dir": 3},
    ):
        with pytest.raises(ValueError, match="expected"):
            SHD(**kwargs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SHD().dt = 1.0  # type: ignore[misc]
    assert parse_split("speaker:theo") == ("speaker", "theo")
