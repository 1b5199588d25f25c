"""Tests for plastax.tasks: Randman, EvidenceAccumulation, the registry.

The real-data tasks (SHD, FSDD) have their own files: tests/test_shd.py and
tests/test_fsdd.py."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastax.tasks import (
    FSDD,
    SHD,
    TASKS,
    EvidenceAccumulation,
    Randman,
    Split,
    Task,
    make_task,
)

# ----------------------------------------------------------------------------
# helpers


def softmax_regression_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    n_classes: int,
    steps: int = 300,
    lr: float = 0.5,
    l2: float = 1e-3,
) -> float:
    """Full-batch gradient descent on a multinomial logistic regression; test accuracy."""
    a = train_x.reshape(len(train_x), -1).astype(np.float64)
    b = test_x.reshape(len(test_x), -1).astype(np.float64)
    mu, sd = a.mean(0), a.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    a, b = (a - mu) / sd, (b - mu) / sd
    w = np.zeros((a.shape[1], n_classes))
    bias = np.zeros(n_classes)
    onehot = np.eye(n_classes)[train_y]
    for _ in range(steps):
        logits = a @ w + bias
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(a)
        w -= lr * (a.T @ g + l2 * w)
        bias -= lr * g.sum(0)
    return float(np.mean(np.argmax(b @ w + bias, 1) == test_y))


@pytest.fixture(scope="module")
def randman_data() -> tuple[Randman, Split, Split]:
    task = Randman()
    train, test = task.load(seed=0)
    return task, train, test


@pytest.fixture(scope="module")
def evidence_data() -> tuple[EvidenceAccumulation, Split, Split]:
    task = EvidenceAccumulation()
    train, test = task.load(seed=0)
    return task, train, test


SMALL = {
    "randman": {"n_train": 20, "n_test": 5},
    "evidence": {"n_train": 50, "n_test": 20},
}
SYNTHETIC = sorted(SMALL)  # the procedural tasks; shd and fsdd read files

# ----------------------------------------------------------------------------
# common interface


def test_registry() -> None:
    assert TASKS == {
        "randman": Randman,
        "evidence": EvidenceAccumulation,
        "shd": SHD,
        "fsdd": FSDD,
    }
    for name, cls in TASKS.items():
        assert cls.name == name
        assert issubclass(cls, Task)
        task = make_task(name)
        assert isinstance(task, cls)
        assert task == cls()


def test_task_is_abstract() -> None:
    with pytest.raises(TypeError):
        Task()  # type: ignore[abstract]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_determinism(name: str) -> None:
    task = make_task(name, **SMALL[name])
    a_train, a_test = task.load(seed=3)
    b_train, b_test = task.load(seed=3)
    c_train, c_test = task.load(seed=4)
    for a, b in ((a_train, b_train), (a_test, b_test)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a_train.x, c_train.x)
    assert not np.array_equal(a_test.x, c_test.x)
    n = min(len(a_train), len(a_test))
    assert not np.array_equal(a_train.x[:n], a_test.x[:n])


@pytest.mark.parametrize("name", SYNTHETIC)
def test_shapes_dtypes_labels(name: str) -> None:
    task = make_task(name)
    train, test = task.load(seed=1)
    n_train = task.n_train * (task.n_out if name == "randman" else 1)
    n_test = task.n_test * (task.n_out if name == "randman" else 1)
    for split, n in ((train, n_train), (test, n_test)):
        assert split.x.shape == (n, task.n_steps, task.n_in)
        assert split.y.shape == (n,)
        assert len(split) == n
        assert split.x.dtype == np.float32
        assert split.y.dtype == np.int32
        assert set(np.unique(split.x)) <= {0.0, 1.0}
        assert split.y.min() >= 0 and split.y.max() < task.n_out
        assert set(np.unique(split.y)) == set(range(task.n_out))
    mask = task.loss_mask()
    assert mask.shape == (task.n_steps,)
    assert mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, 1.0}


@pytest.mark.parametrize("name", SYNTHETIC)
def test_describe_is_json(name: str) -> None:
    task = make_task(name)
    d = task.describe()
    assert d["name"] == name
    assert {k: v for k, v in d.items() if k != "name"} == dataclasses.asdict(task)
    assert json.loads(json.dumps(d)) == d
    # numpy scalars are normalised to plain Python numbers
    field = "n_in" if name == "randman" else "channels_per_group"
    json.dumps(make_task(name, **{field: np.int64(12)}).describe())


@pytest.mark.parametrize("name", SYNTHETIC)
def test_frozen(name: str) -> None:
    task = make_task(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.n_train = 3  # type: ignore[misc]


def test_split_validation() -> None:
    x = np.zeros((4, 5, 3), np.float32)
    y = np.zeros(4, np.int32)
    Split(x, y)
    bad = [
        (x.astype(np.float64), y),
        (x, y.astype(np.int64)),
        (x[0], y),
        (x, y[:, None]),
        (x, y[:3]),
        (x.tolist(), y),
    ]
    for bx, by in bad:
        with pytest.raises(ValueError, match="expected"):
            Split(bx, by)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------
# Randman


def test_randman_defaults() -> None:
    task = Randman()
    assert (task.n_classes, task.n_in, task.n_steps, task.dim_manifold) == (10, 40, 50, 1)
    assert (task.alpha, task.jitter, task.time_fraction) == (2.0, 0.5, 0.8)
    assert (task.n_train, task.n_test) == (200, 50)
    assert task.n_out == 10
    mask = task.loss_mask()
    assert mask[: task.n_steps // 2].sum() == 0
    assert np.all(mask[task.n_steps // 2 :] == 1)


def test_randman_load_is_fast() -> None:
    task = Randman()
    task.load(seed=0)  # warm-up
    start = time.perf_counter()
    task.load(seed=1)
    assert time.perf_counter() - start < 1.0


def test_randman_one_spike_per_unit(randman_data) -> None:
    task, train, test = randman_data
    for split in (train, test):
        counts = split.x.sum(axis=1)
        assert np.all(counts == 1.0)
        # spikes only in the input window [0, t_max]
        assert split.x[:, task.t_max + 1 :].sum() == 0
    # spike times use the whole input window
    times = train.x.argmax(axis=1)
    assert times.min() == 0 and times.max() == task.t_max


def test_randman_counts_identical_across_classes(randman_data) -> None:
    task, train, _ = randman_data
    counts = train.x.sum(axis=1)  # (N, n_in)
    per_class = np.stack([counts[train.y == c].mean(0) for c in range(task.n_classes)])
    np.testing.assert_array_equal(per_class, np.ones_like(per_class))


def test_randman_information_is_in_timing(randman_data) -> None:
    task, train, test = randman_data
    chance = 1.0 / task.n_classes
    acc_counts = softmax_regression_accuracy(
        train.x.sum(1), train.y, test.x.sum(1), test.y, task.n_classes
    )
    assert acc_counts <= chance + 0.1
    acc_raster = softmax_regression_accuracy(train.x, train.y, test.x, test.y, task.n_classes)
    assert acc_raster > 0.5


def test_randman_same_manifold_for_train_and_test() -> None:
    # Without jitter, a sample's spike times are a function of the manifold point; a
    # nearest-neighbour classifier on spike times generalises from train to test only
    # if both splits come from the same manifolds.
    task = Randman(jitter=0.0, n_train=100, n_test=20)
    train, test = task.load(seed=5)
    t_tr = train.x.argmax(1).astype(np.float64)
    t_te = test.x.argmax(1).astype(np.float64)
    d = ((t_te[:, None, :] - t_tr[None, :, :]) ** 2).sum(-1)
    acc = np.mean(train.y[d.argmin(1)] == test.y)
    assert acc > 0.9
    # changing the number of samples does not change the manifolds or the test set
    _, test2 = Randman(jitter=0.0, n_train=30, n_test=20).load(seed=5)
    np.testing.assert_array_equal(test.x, test2.x)


def test_randman_zero_jitter_is_smooth() -> None:
    # Two very close manifold points give close spike times when jitter is 0.
    task = Randman(jitter=0.0, n_classes=2, n_train=2000, n_test=1, dim_manifold=1)
    train, _ = task.load(seed=0)
    t = train.x.argmax(1).astype(np.float64)
    cls0 = t[train.y == 0]
    # every point has a nearest neighbour whose spike times all differ by <= 2 steps,
    # while random pairs of points on the same manifold are far apart
    d = np.abs(cls0[:200, None, :] - cls0[None, :, :]).max(-1)
    np.fill_diagonal(d[:, :200], np.inf)
    assert d.min(1).max() <= 2
    assert np.median(np.abs(cls0[:200] - cls0[200:400]).max(-1)) > 10


@settings(max_examples=25, deadline=None)
@given(
    n_classes=st.integers(2, 4),
    n_in=st.integers(1, 6),
    n_steps=st.integers(3, 30),
    dim_manifold=st.integers(1, 3),
    alpha=st.floats(0.0, 4.0),
    jitter=st.floats(0.0, 3.0),
    time_fraction=st.floats(0.5, 1.0),
    seed=st.integers(0, 2**32),
)
def test_randman_property(
    n_classes, n_in, n_steps, dim_manifold, alpha, jitter, time_fraction, seed
) -> None:
    task = Randman(
        n_classes=n_classes,
        n_in=n_in,
        n_steps=n_steps,
        dim_manifold=dim_manifold,
        alpha=alpha,
        jitter=jitter,
        time_fraction=time_fraction,
        n_train=3,
        n_test=2,
    )
    train, test = task.load(seed)
    assert train.x.shape == (3 * n_classes, n_steps, n_in)
    assert test.x.shape == (2 * n_classes, n_steps, n_in)
    assert np.all(train.x.sum(1) == 1) and np.all(test.x.sum(1) == 1)
    assert np.bincount(train.y, minlength=n_classes).tolist() == [3] * n_classes


# ----------------------------------------------------------------------------
# Evidence accumulation


def test_evidence_layout() -> None:
    task = EvidenceAccumulation()
    assert task.n_in == 40 and task.n_out == 2
    assert task.n_steps == 7 * (10 + 5) + 50 + 20
    assert task.recall_start == task.n_steps - 20
    assert task.cue_starts == tuple(range(0, 105, 15))
    mask = task.loss_mask()
    assert mask[task.recall_start :].sum() == task.recall_steps
    assert mask[: task.recall_start].sum() == 0


def _cue_sides(task: EvidenceAccumulation, split: Split) -> np.ndarray:
    g = task.channel_groups
    sides = []
    for start in task.cue_starts:
        window = split.x[:, start : start + task.cue_steps]
        left = window[..., g["left"]].sum((1, 2))
        right = window[..., g["right"]].sum((1, 2))
        assert np.all((left > 0) != (right > 0)), "exactly one cue population fires per cue"
        sides.append((right > 0).astype(int))
    return np.stack(sides, 1)


def test_evidence_label_is_majority(evidence_data) -> None:
    task, train, test = evidence_data
    for split in (train, test):
        sides = _cue_sides(task, split)
        majority = (sides.sum(1) > task.n_cues // 2).astype(np.int32)
        np.testing.assert_array_equal(majority, split.y)
    # per-sample bias: many samples are unanimous, some are not
    n_right = _cue_sides(task, train).sum(1)
    assert 0.2 < np.mean((n_right == 0) | (n_right == task.n_cues)) < 0.9
    assert 0.4 < train.y.mean() < 0.6


def test_evidence_populations_fire_only_in_their_windows(evidence_data) -> None:
    task, train, _ = evidence_data
    g = task.channel_groups
    mask = task.loss_mask().astype(bool)
    recall_activity = train.x[..., g["recall"]].sum((0, 2))
    assert np.array_equal(recall_activity > 0, mask)
    cue_activity = train.x[..., g["left"]].sum((0, 2)) + train.x[..., g["right"]].sum((0, 2))
    in_cue = np.zeros(task.n_steps, bool)
    for start in task.cue_starts:
        in_cue[start : start + task.cue_steps] = True
    assert np.array_equal(cue_activity > 0, in_cue)
    # background noise everywhere, at a low rate
    noise = train.x[..., g["noise"]]
    assert np.all(noise.sum((0, 2)) > 0)
    assert abs(noise.mean() - task.noise_rate) < 0.002


def test_evidence_needs_memory(evidence_data) -> None:
    task, train, test = evidence_data
    recall = slice(task.recall_start, None)
    acc_recall = softmax_regression_accuracy(
        train.x[:, recall].sum(1), train.y, test.x[:, recall].sum(1), test.y, 2
    )
    assert acc_recall <= 0.5 + 0.1
    # control: the same readout of the whole trial solves the task
    acc_full = softmax_regression_accuracy(train.x.sum(1), train.y, test.x.sum(1), test.y, 2)
    assert acc_full > 0.9


# ----------------------------------------------------------------------------
# bad input


BAD = [
    ("randman", {"n_classes": 1}),
    ("randman", {"n_classes": 0}),
    ("randman", {"n_in": 0}),
    ("randman", {"n_in": -3}),
    ("randman", {"n_in": 2.5}),
    ("randman", {"n_in": True}),
    ("randman", {"n_steps": 1}),
    ("randman", {"n_steps": 0}),
    ("randman", {"dim_manifold": 0}),
    ("randman", {"alpha": -1.0}),
    ("randman", {"alpha": float("nan")}),
    ("randman", {"jitter": -0.1}),
    ("randman", {"jitter": float("inf")}),
    ("randman", {"n_train": 0}),
    ("randman", {"n_test": -1}),
    ("randman", {"time_fraction": 0.0}),
    ("randman", {"time_fraction": 1.5}),
    ("randman", {"n_components": 0}),
    ("randman", {"n_steps": 2, "time_fraction": 0.2}),
    ("evidence", {"n_cues": 0}),
    ("evidence", {"n_cues": 4}),
    ("evidence", {"cue_steps": 0}),
    ("evidence", {"gap_steps": -1}),
    ("evidence", {"delay_steps": -5}),
    ("evidence", {"recall_steps": 0}),
    ("evidence", {"channels_per_group": 0}),
    ("evidence", {"cue_rate": 1.2}),
    ("evidence", {"recall_rate": -0.1}),
    ("evidence", {"noise_rate": 2.0}),
    ("evidence", {"cue_bias": -0.5}),
    ("evidence", {"cue_rate": "high"}),
    ("evidence", {"n_train": 0}),
    ("evidence", {"n_test": 0}),
]


@pytest.mark.parametrize(("name", "overrides"), BAD)
def test_bad_parameters(name: str, overrides: dict) -> None:
    with pytest.raises(ValueError, match="expected"):
        make_task(name, **overrides)
    with pytest.raises(ValueError, match="expected"):
        TASKS[name](**overrides)


def test_unknown_task_name() -> None:
    with pytest.raises(ValueError, match="expected") as info:
        make_task("foo")
    assert "unknown task 'foo'; expected one of: evidence, fsdd, randman, shd" in str(info.value)


def test_unknown_override() -> None:
    with pytest.raises(ValueError, match="expected") as info:
        make_task("randman", n_inputs=3)
    msg = str(info.value)
    assert "n_inputs" in msg and "n_in" in msg and "alpha" in msg


@pytest.mark.parametrize("name", SYNTHETIC)
@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(name: str, seed) -> None:
    with pytest.raises(ValueError, match="expected"):
        make_task(name, **SMALL[name]).load(seed)
