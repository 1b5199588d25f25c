"""Tests for plastax.train: the loop, exact evaluation, metrics and configuration."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastax
from plastax import losses
from plastax.learners import BPTT, TBPTT, AbstractLearner
from plastax.tasks import Randman, Split
from plastax.train import (
    NEURONS,
    SPIKING_GAINS,
    TrainConfig,
    build_model,
    evaluate,
    run,
    train,
)

TINY_TASK = Randman(n_classes=3, n_in=12, n_steps=20, n_train=20, n_test=10)  # 60 / 30 samples


def tiny_model(task=TINY_TASK, hidden=16, neuron="lif", recurrent=True, seed=0):
    config = TrainConfig(hidden=hidden, neuron=neuron, recurrent=recurrent)
    return build_model(config, task.n_in, task.n_out, jax.random.key(seed))


class CountingBPTT(AbstractLearner):
    """BPTT that counts how often its ``value_and_grad`` is traced."""

    name: ClassVar[str] = "counting_bptt"
    traces: ClassVar[list] = []

    def value_and_grad(
        self, model, inputs, targets, mask=None, *, loss=losses.cross_entropy, key=None
    ):
        CountingBPTT.traces.append(inputs.shape)  # Python side effect: runs when traced
        return BPTT().value_and_grad(model, inputs, targets, mask, loss=loss, key=key)


# --------------------------------------------------------------------------------------
# training


def test_tiny_run_improves_loss():
    model = tiny_model()
    train_split, _ = TINY_TASK.load(0)
    mask = TINY_TASK.loss_mask()
    before = evaluate(model, train_split, mask, 16)
    trained, history = train(
        model,
        TINY_TASK,
        BPTT(),
        optax.adam(1e-2),
        epochs=15,
        batch_size=10,
        seed=0,
        progress=False,
    )
    after = evaluate(trained, train_split, mask, 16)
    assert len(history) == 15
    assert after["loss"] < 0.7 * before["loss"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_loss"] == pytest.approx(after["loss"], rel=1e-5)
    assert history[-1]["train_accuracy"] == after["accuracy"]
    assert after["accuracy"] > 0.6
    # the parameters changed, the structure did not
    assert jax.tree.structure(trained) == jax.tree.structure(model)
    assert not np.allclose(trained.layers[0].w_in, model.layers[0].w_in)


def test_train_step_is_compiled_once():
    CountingBPTT.traces.clear()
    # 60 training samples, batch 7: 8 steps per epoch (the last 4 samples dropped)
    train(
        tiny_model(),
        TINY_TASK,
        CountingBPTT(),
        optax.adam(1e-3),
        epochs=3,
        batch_size=7,
        seed=1,
        progress=False,
    )
    assert CountingBPTT.traces == [(TINY_TASK.n_steps, 7, TINY_TASK.n_in)]


def test_jitted_step_does_not_recompile_on_second_call():
    from plastax.train import _train_step

    CountingBPTT.traces.clear()
    model = tiny_model()
    split, _ = TINY_TASK.load(0)
    x, y = jnp.asarray(split.x), jnp.asarray(split.y)
    mask = jnp.asarray(TINY_TASK.loss_mask())
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    learner, key = CountingBPTT(), jax.random.key(0)
    for step, start in enumerate((0, 5, 11)):
        idx = np.arange(start, start + 5, dtype=np.int32)
        model, state, value, finite = _train_step(
            model, state, x, y, idx, mask, key, np.int32(step), learner, opt, losses.cross_entropy
        )
        assert np.isfinite(float(value)) and bool(np.all(finite))
    assert len(CountingBPTT.traces) == 1
    assert _train_step._cached._cache_size() >= 1


def test_tbptt_trains():
    _, history = train(
        tiny_model(),
        TINY_TASK,
        TBPTT(5),
        optax.adam(1e-2),
        epochs=3,
        batch_size=20,
        seed=0,
        progress=False,
    )
    assert np.isfinite(history[-1]["train_loss"])


def test_history_and_metrics_jsonl(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": "run"}\n')  # kept: metrics are appended
    _, history = train(
        tiny_model(hidden=8),
        TINY_TASK,
        BPTT(),
        optax.adam(1e-3),
        epochs=3,
        batch_size=20,
        seed=0,
        metrics_path=path,
        progress=False,
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0]) == {"earlier": "run"}
    records = [json.loads(line) for line in lines[1:]]
    assert records == history
    keys = {"epoch", "train_loss", "train_accuracy", "step_loss", "test_loss", "test_accuracy"}
    for i, r in enumerate(records, 1):
        assert set(r) == keys  # no wall-clock time: the same seed gives the same file
        assert r["epoch"] == i
        assert 0 <= r["train_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1


def test_metrics_directory_is_created(tmp_path):
    path = tmp_path / "new" / "dir" / "m.jsonl"
    train(
        tiny_model(hidden=4),
        TINY_TASK,
        BPTT(),
        optax.sgd(0.1),
        epochs=1,
        batch_size=60,
        seed=0,
        metrics_path=str(path),
        progress=False,
    )
    assert len(path.read_text().splitlines()) == 1


def test_progress_bar_goes_to_stderr(capsys):
    train(
        tiny_model(hidden=4),
        TINY_TASK,
        BPTT(),
        optax.adam(1e-3),
        epochs=2,
        batch_size=30,
        seed=0,
        progress=True,
    )
    out, err = capsys.readouterr()
    assert out == ""
    assert "2/2" in err and "test_acc" in err


def test_batch_larger_than_training_set():
    with pytest.raises(ValueError, match="expected batch_size <= .*60.*received batch_size=61"):
        train(
            tiny_model(),
            TINY_TASK,
            BPTT(),
            optax.adam(1e-3),
            epochs=1,
            batch_size=61,
            seed=0,
            progress=False,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"task": "randman"},
        {"model": "not a model"},
        {"learner": "bptt"},
        {"optimizer": "adam"},
    ],
)
def test_train_rejects_bad_arguments(kwargs):
    args = dict(
        model=tiny_model(),
        task=TINY_TASK,
        learner=BPTT(),
        optimizer=optax.adam(1e-3),
        epochs=1,
        batch_size=10,
        seed=0,
        progress=False,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match="expected"):
        train(
            args.pop("model"), args.pop("task"), args.pop("learner"), args.pop("optimizer"), **args
        )


def test_model_task_size_mismatch():
    other = Randman(n_classes=4, n_in=12, n_steps=20, n_train=5, n_test=5)
    with pytest.raises(ValueError, match="n_out=4"):
        train(
            tiny_model(),
            other,
            BPTT(),
            optax.adam(1e-3),
            epochs=1,
            batch_size=4,
            seed=0,
            progress=False,
        )


# --------------------------------------------------------------------------------------
# evaluation


@pytest.fixture(scope="module")
def trained():
    return train(
        tiny_model(),
        TINY_TASK,
        BPTT(),
        optax.adam(1e-2),
        epochs=3,
        batch_size=20,
        seed=0,
        progress=False,
    )


def _numpy_reference(model, split, mask):
    ys = np.asarray(model(jnp.asarray(split.x.transpose(1, 0, 2))), np.float64)  # (T, N, C)
    pred = np.argmax(np.einsum("tnc,t->nc", ys, mask), axis=-1)
    accuracy = np.mean(pred == split.y)
    shifted = ys - ys.max(-1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), -1, keepdims=True))
    nll = -np.take_along_axis(logp, split.y[None, :, None], axis=-1)[..., 0]  # (T, N)
    loss = np.sum(mask[:, None] * nll) / mask.sum() / len(split)
    return accuracy, loss


@pytest.mark.parametrize("batch_size", [1, 7, 30, 64])
def test_evaluate_is_exact(trained, batch_size):
    model, history = trained
    _, test = TINY_TASK.load(0)  # 30 samples: batch 7 leaves a padded batch of 2
    mask = TINY_TASK.loss_mask()
    result = evaluate(model, test, mask, batch_size)
    accuracy, loss = _numpy_reference(model, test, mask)
    assert result["accuracy"] == accuracy
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert history[-1]["test_accuracy"] == accuracy
    assert history[-1]["test_loss"] == pytest.approx(loss, rel=1e-5)


def test_evaluate_ignores_padding():
    # weights zero, readout bias favours class 0: every sample is predicted as class 0
    model = tiny_model()
    model = jax.tree.map(lambda a: jnp.zeros_like(a) if eqx.is_inexact_array(a) else a, model)
    model = eqx.tree_at(lambda m: m.readout.bias, model, jnp.asarray([1.0, 0.0, 0.0]))
    x = np.zeros((5, 20, 12), np.float32)
    y = np.asarray([0, 1, 1, 1, 1], np.int32)  # padding repeats sample 0, which is correct
    for batch_size in (1, 2, 4, 5, 8):
        assert evaluate(model, Split(x, y), None, batch_size)["accuracy"] == pytest.approx(0.2)


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="expected"):
        evaluate(tiny_model(), (np.zeros((2, 3, 4)), np.zeros(2)), None, 4)
    _, test = TINY_TASK.load(0)
    with pytest.raises(ValueError, match="expected"):
        evaluate(tiny_model(), test, None, 0)
    with pytest.raises(ValueError, match="expected"):
        evaluate(tiny_model(), test, np.ones(3), 4)


# --------------------------------------------------------------------------------------
# configuration and model building


def test_config_is_json_and_frozen():
    config = TrainConfig(hidden=np.int64(8), lr=np.float32(0.5))
    d = dataclasses.asdict(config)
    assert json.loads(json.dumps(d)) == d
    assert type(d["hidden"]) is int and type(d["lr"]) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden = 3  # type: ignore[misc]


BAD_CONFIGS = [
    {"hidden": 0},
    {"hidden": -4},
    {"hidden": 2.5},
    {"hidden": True},
    {"epochs": 0},
    {"epochs": -1},
    {"batch_size": 0},
    {"batch_size": -32},
    {"lr": 0.0},
    {"lr": -1e-3},
    {"lr": float("nan")},
    {"lr": float("inf")},
    {"layers": 0},
    {"window": 0},
    {"readout_tau": 0.0},
    {"seed": -1},
    {"seed": 1.5},
    {"recurrent": "yes"},
    {"neuron": "hodgkin_huxley"},
    {"learner": "sgd"},
    {"learner": 3},
    {"task": "mnist"},
    {"readout": "max"},
]


@pytest.mark.parametrize("kwargs", BAD_CONFIGS)
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="expected") as info:
        TrainConfig(**kwargs)
    msg = str(info.value)
    name = next(iter(kwargs))
    assert name in msg and "received" in msg


def test_config_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="lif, alif, cubalif, tanh, lstm, gru"):
        TrainConfig(neuron="izhikevich")
    with pytest.raises(ValueError, match="bptt") as info:
        TrainConfig(learner="sgd")
    assert "tbptt" in str(info.value)
    with pytest.raises(ValueError, match="randman"):
        TrainConfig(task="mnist")


@pytest.mark.parametrize("neuron", sorted(NEURONS))
def test_build_model(neuron):
    config = TrainConfig(neuron=neuron, hidden=6, layers=2, readout="linear")
    model = build_model(config, 5, 3, jax.random.key(0))
    assert isinstance(model, plastax.Network)
    assert [layer.n for layer in model.layers] == [6, 6]
    assert all(layer.recurrent for layer in model.layers)
    assert isinstance(model.layers[0].neuron, NEURONS[neuron])
    assert isinstance(model.readout, plastax.LinearReadout)
    assert model(jnp.zeros((4, 2, 5))).shape == (4, 2, 3)
    spiking = hasattr(model.layers[0].neuron, "surrogate")
    expected = SPIKING_GAINS["input_gain"] if spiking else None
    assert model.layers[0].input_gain == expected


def test_build_model_leaky_feedforward():
    config = TrainConfig(hidden=4, recurrent=False, readout_tau=7.0)
    model = build_model(config, 3, 2, jax.random.key(0))
    assert not model.layers[0].recurrent and model.layers[0].w_rec is None
    assert isinstance(model.readout, plastax.LeakyReadout) and model.readout.tau == 7.0
    with pytest.raises(ValueError, match="expected"):
        build_model({"hidden": 4}, 3, 2, jax.random.key(0))


def test_run_summary(monkeypatch, tmp_path):
    # run() builds the registered task with its defaults; shrink it for the test
    small = Randman(n_classes=3, n_in=8, n_steps=12, n_train=10, n_test=4)
    monkeypatch.setattr(plastax.tasks, "make_task", lambda name: small)
    config = TrainConfig(hidden=8, epochs=2, batch_size=10, lr=1e-2, seed=2)
    summary = run(config, metrics_path=tmp_path / "m.jsonl", progress=False)
    for key in (
        "task",
        "learner",
        "neuron",
        "hidden",
        "epochs",
        "seed",
        "test_accuracy",
        "train_accuracy",
        "test_loss",
        "train_seconds",
        "compile_seconds",
        "config",
    ):
        assert key in summary
    assert summary["config"] == dataclasses.asdict(config)
    assert summary["seed"] == 2 and summary["epochs"] == 2
    assert summary["train_seconds"] > 0 and summary["compile_seconds"] > 0  # timing lives here
    assert summary["devices"] == 1 and summary["checkpoint"] is None
    assert json.loads(json.dumps(summary)) == summary
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="expected"):
        run({"epochs": 1})
