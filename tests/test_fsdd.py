"""Tests for plastax.tasks.fsdd on a small subset of the real Free Spoken Digit
Dataset, which the checkout expects beside it at ``<repository>/../shared/data/fsdd``.

The subset (40 recordings) is copied into a temporary folder, never into the
repository; nothing is downloaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import jax
import numpy as np
import optax
import pytest

import plastax
from plastax.learners import BPTT, EProp
from plastax.tasks import Split
from plastax.tasks import fsdd as fsdd_module
from plastax.tasks.fsdd import FSDD, default_fsdd_dir
from plastax.tasks.shd import DataNotFoundError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"
needs_fsdd = pytest.mark.skipif(
    not (SHARED / "recordings").is_dir(),
    reason=f"FSDD not found at {SHARED} (expected beside the checkout as ../shared/data/fsdd)",
)

DIGITS = range(10)
SPEAKERS = ("george", "theo")
INDICES = (0, 5)  # index 0: test set of the standard split; 5: training set

SMALL = dict(n_channels=16, n_steps=30, dt=0.02)


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsdd")
    (root / "recordings").mkdir()
    for d in DIGITS:
        for s in SPEAKERS:
            for i in INDICES:
                name = f"{d}_{s}_{i}.wav"
                shutil.copyfile(SHARED / "recordings" / name, root / "recordings" / name)
    shutil.copyfile(SHARED / "README.md", root / "README.md")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_default_data_dir_is_beside_the_checkout():
    assert default_fsdd_dir() == SHARED.resolve() or default_fsdd_dir() == SHARED


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="--data-dir"):
        FSDD(data_dir=str(tmp_path / "nowhere")).load(0)
    with pytest.raises(DataNotFoundError, match=r"no \.wav files"):
        FSDD(data_dir=str(tmp_path)).load(0)


def test_validation():
    for kwargs in (
        {"split": "speakers"},
        {"n_steps": 0},
        {"dt": -1.0},
        {"pool": 0},
        {"n_channels": 0},
        {"levels": 0},
        {"gain": 0.0},
        {"scale": "bark"},
        {"f_max": 4000.0},
        {"loss_start": 60},
        {"cache_dir": 1},
    ):
        with pytest.raises(ValueError, match="expected"):
            FSDD(**kwargs)


@needs_fsdd
def test_encoded_file_carries_licence_and_attribution(subset, cache):
    task = FSDD(data_dir=str(subset), cache_dir=str(cache), **SMALL)
    path = task.encode(progress=False)
    assert path.parent == cache / "fsdd" and path.suffix == ".h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["licence"].startswith("CC BY-SA 4.0")
        assert "Free Spoken Digit Dataset" in f.attrs["attribution"]
        assert "10.5281/zenodo.1342401" in f.attrs["attribution"]
        assert "CC BY-SA 4.0" in f.attrs["source_readme"]  # the data set's own notice
        assert len(f["labels"]) == 40
    assert "CC BY-SA 4.0" in FSDD.__doc__


@needs_fsdd
def test_cache_is_reused_and_keyed_on_settings_and_files(subset, cache, monkeypatch, tmp_path):
    task = FSDD(data_dir=str(subset), cache_dir=str(cache), **SMALL)
    first = task.encode(progress=False)

    def fail(*a, **k):
        raise AssertionError("encoded again although the cache holds the data")

    monkeypatch.setattr(fsdd_module, "encode_folder", fail)
    assert task.encode() == first
    task.load(0)
    monkeypatch.undo()
    # another encoder setting, or another file list, is another cache entry
    other = FSDD(data_dir=str(subset), cache_dir=str(cache), **{**SMALL, "n_channels": 8})
    assert other.encoded_path() != first
    copy = tmp_path / "copy"
    shutil.copytree(subset, copy)
    (copy / "recordings" / "9_theo_5.wav").unlink()
    fewer = FSDD(data_dir=str(copy), cache_dir=str(cache), **SMALL)
    assert fewer.encoded_path() != first


@needs_fsdd
def test_standard_and_leave_one_speaker_out_splits(subset, cache):
    task = FSDD(data_dir=str(subset), cache_dir=str(cache), **SMALL)
    assert (task.n_in, task.n_out, task.n_steps) == (32, 10, 30)  # 16 channels x 2 levels
    train, test = task.load(seed=0)
    assert isinstance(train, Split) and (len(train), len(test)) == (20, 20)
    assert train.x.shape == (20, 30, 32) and train.x.dtype == np.float32
    assert set(np.unique(train.x)) <= {0.0, 1.0} and train.x.mean() > 0.01
    assert sorted(test.y.tolist()) == sorted(list(DIGITS) * 2)
    data = task.load_binned()
    test_files = [f for f, t in zip(data.filenames, task.test_mask(data), strict=True) if t]
    assert all(f.endswith("_0.wav") for f in test_files)

    loso = FSDD(data_dir=str(subset), cache_dir=str(cache), split="speaker:theo", **SMALL)
    train, test = loso.load(seed=0)
    data = loso.load_binned()
    test_files = [f for f, t in zip(data.filenames, loso.test_mask(data), strict=True) if t]
    assert len(test) == 20 and all("_theo_" in f for f in test_files)
    with pytest.raises(ValueError, match="george, theo"):
        FSDD(data_dir=str(subset), cache_dir=str(cache), split="speaker:ann", **SMALL).load(0)
    pooled = FSDD(data_dir=str(subset), cache_dir=str(cache), pool=4, **SMALL)
    assert pooled.n_in == 8 and pooled.load(0)[0].x.shape == (20, 30, 8)


@needs_fsdd
@pytest.mark.parametrize("learner", [BPTT(), EProp()], ids=["bptt", "eprop"])
def test_end_to_end_training_on_a_subset(subset, cache, learner):
    task = FSDD(data_dir=str(subset), cache_dir=str(cache), **SMALL)
    config = plastax.TrainConfig(neuron="alif", hidden=16, lr=5e-3)
    model = plastax.build_model(config, task.n_in, task.n_out, jax.random.key(0))
    model, history = plastax.train(
        model, task, learner, optax.adam(5e-3), epochs=2, batch_size=10, seed=0, progress=False
    )
    assert len(history) == 2
    for h in history:
        assert np.isfinite(h["train_loss"]) and np.isfinite(h["test_loss"])
        assert 0.0 <= h["test_accuracy"] <= 1.0
    assert history[-1]["train_loss"] < np.log(10) + 0.5


def test_train_config_data_options_need_a_task_that_takes_them():
    with pytest.raises(ValueError, match="expected a task that takes data_dir.*fsdd, shd"):
        plastax.TrainConfig(task="randman", data_dir="somewhere")
    with pytest.raises(ValueError, match="expected a task that takes split"):
        plastax.TrainConfig(task="evidence", split="standard")
    with pytest.raises(ValueError, match="TrainConfig.data_dir: expected a folder path"):
        plastax.TrainConfig(task="fsdd", data_dir="")
    config = plastax.TrainConfig(task="shd", data_dir=Path("x"), split="speaker:3")
    assert config.task_options() == {"data_dir": "x", "split": "speaker:3"}
    assert plastax.TrainConfig(task="fsdd").task_options() == {}


@needs_fsdd
def test_run_with_data_dir_and_leave_one_speaker_out(subset, tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTAX_CACHE", str(tmp_path / "cache"))  # never the user's cache
    config = plastax.TrainConfig(
        task="fsdd",
        data_dir=str(subset),
        split="speaker:theo",
        neuron="alif",
        hidden=16,
        epochs=1,
        batch_size=10,
        lr=5e-3,
    )
    summary = plastax.run(config, progress=False)
    assert summary["task_params"]["split"] == "speaker:theo"
    assert summary["task_params"]["data_dir"] == str(subset)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert list((tmp_path / "cache" / "fsdd").glob("*.h5"))  # encoded into that cache
