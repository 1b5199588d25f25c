"""The training loop: optax, exact evaluation, JSONL metrics, checkpoints, several
devices, and a progress bar.

    model, history = plastax.train(model, task, learner=plastax.learners.BPTT(),
                                   optimizer=optax.adam(2e-3), epochs=10,
                                   batch_size=64, seed=0)

Data rules (DESIGN.md section 6): each split goes on the device once, as one
``(N, T, n_in)`` array; a training step is one ``eqx.filter_jit``-ed function that
receives the whole arrays and a ``(B,)`` index vector, gathers the batch inside jit and
transposes it to time-major ``(T, B, n_in)``.  Labels are broadcast over time to
``(T, B)`` targets and the task's :meth:`~plastax.tasks.Task.loss_mask` weights the
steps.  Training drops the last incomplete batch, so every step has the same shapes and
the step is compiled once; evaluation pads its last batch and masks the padding out, so
the accuracy is exact on every sample.

A prediction is the arg-max over classes of the readout summed over the masked steps,

    y_hat = argmax_c sum_t mask_t y_t[c].

Randomness: the training set is shuffled each epoch by ``np.random.default_rng(seed)``
and step ``g`` (counted from 0 over the whole run) receives the key
``jax.random.fold_in(jax.random.key(seed), g)``.  The metrics file holds no wall-clock
time, so the same seed and configuration give the same file, bit for bit, on the same
machine and number of devices; timings are in :func:`run`'s summary.

Reliability (see :mod:`plastax.checkpoint` for the format):

* ``checkpoint_dir``: checkpoints every ``checkpoint_every`` steps (default: at the end
  of every epoch), at the end, and when SIGINT or SIGTERM arrives; the signal lets the
  current step finish, saves, and raises :class:`TrainingInterrupted`.  A checkpoint
  holds the model, the optimizer state, the base key, the numpy generator state at the
  start of the current epoch, the position in the epoch, the losses of the epoch's
  steps so far, the metrics history and the configuration, so ``resume=True`` replays
  the same permutation from the same step and ends with bit-identical parameters and
  an identical metrics file.
* Every step checks inside jit that the batch inputs, the loss, every gradient leaf
  and every updated parameter are finite; a step that is not is not applied, and
  training stops with :class:`NonFiniteError` naming the step, the first bad tensor
  and the last good checkpoint.  Data shapes and dtypes are checked up front; finiteness
  of the data is checked batch by batch as it is used.
* The checkpoint directory and the metrics file's folder are probed with a file of the
  expected size before anything is compiled, so a full disk or a missing permission
  fails at once, not after hours.
* ``devices``: data parallelism with ``jax.sharding``.  The batch axis is sharded over a
  one-axis mesh ``("batch",)``, parameters and data are replicated, and XLA inserts the
  gradient reduction.

Nothing here prints except the optional ``tqdm`` progress bar (on stderr); problems
found while resuming are reported with :func:`warnings.warn`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import numbers
import os
import signal
import threading
import time
import types
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, PRNGKeyArray

from . import checkpoint as _checkpoint
from . import learners as _learners
from . import neurons as _neurons
from . import tasks as _tasks
from ._io import probe_writable
from .learners.base import AbstractLearner
from .losses import AbstractLoss, check_mask, cross_entropy
from .network import Layer, LeakyReadout, LinearReadout, Network

__all__ = [
    "NEURONS",
    "NonFiniteError",
    "TrainConfig",
    "TrainingInterrupted",
    "build_model",
    "evaluate",
    "make_optimizer",
    "run",
    "train",
]

NEURONS: dict[str, Callable[[], _neurons.AbstractNeuron]] = {
    "lif": _neurons.LIF,
    "alif": _neurons.ALIF,
    "cubalif": _neurons.CuBaLIF,
    "tanh": _neurons.TanhRNN,
    "lstm": _neurons.LSTM,
    "gru": _neurons.GRU,
}
"""Neuron names accepted by :class:`TrainConfig` and the command line."""

READOUTS = ("leaky", "linear")


def _make_learner(name: str, window: int, k: int | None = None) -> AbstractLearner:
    """The learner called ``name`` from the registry; ``window`` is for ``"tbptt"``,
    ``k`` for ``"sltt"``."""
    return _learners.make_learner(name, window=window, k=k)


# --------------------------------------------------------------------------------------
# Configuration


def _check_positive_int(name: str, value: Any, example: int, owner="TrainConfig") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"{owner}.{name}: expected a positive integer, received {value!r}; "
            f"pass e.g. {name}={example}"
        )


def _check_positive_float(name: str, value: Any, example: float, owner="TrainConfig") -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
        and value > 0
    )
    if not ok:
        raise ValueError(
            f"{owner}.{name}: expected a finite number > 0, received {value!r}; "
            f"pass e.g. {name}={example}"
        )


def _check_choice(name: str, value: Any, known, example: str, owner="TrainConfig") -> None:
    if not isinstance(value, str) or value not in known:
        raise ValueError(
            f"{owner}.{name}: expected one of: {', '.join(known)}, received {value!r}; "
            f"pass e.g. {name}={example!r}"
        )


def _check_seed_and_recurrent(config, owner: str) -> None:
    """The checks that every run configuration shares: ``recurrent`` a bool, ``seed`` a
    non-negative integer."""
    if not isinstance(config.recurrent, bool):
        raise ValueError(
            f"{owner}.recurrent: expected True or False, received {config.recurrent!r}"
        )
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"{owner}.seed: expected a non-negative integer, received {seed!r}; pass e.g. seed=0"
        )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; JSON-able with ``dataclasses.asdict``.

    Attributes:
        task: registered task name (``plastax.tasks.TASKS``), built with its defaults
            except ``data_dir`` and ``split``.
        learner: gradient rule (``"bptt"``, ``"tbptt"``, ...).
        window: truncation window in time steps (``"tbptt"`` only).
        neuron: ``"lif"``, ``"alif"``, ``"cubalif"``, ``"tanh"``, ``"lstm"``, ``"gru"``.
        hidden: neurons per layer.
        layers: number of hidden layers.
        recurrent: whether hidden layers have recurrent weights.
        readout: ``"leaky"`` (leaky integrator with time constant ``readout_tau``)
            or ``"linear"``.
        readout_tau: readout time constant in steps (``"leaky"`` only).
        epochs: passes over the training set.
        batch_size: training examples per step.
        lr: Adam learning rate.
        seed: seeds the task data, the weights and the shuffling.
        update_every: online learners only: apply the optimizer every this many time
            steps inside each sequence (true online learning; the learner's traces
            carry on across updates).  ``None``: once per sequence.
        k: ``"sltt"`` only: contribute the gradient of only ``k`` sampled steps per
            sequence (SLTT-K).  ``None``: every step.
        clip_norm: clip the gradient to this global norm before Adam
            (``optax.clip_by_global_norm``).  ``None``: no clipping.
        devices: number of devices to train on (data parallel: the batch is sharded
            over them, ``batch_size`` must be divisible by it).  ``None``: every visible
            device.
        data_dir: tasks that read files (``"shd"``, ``"fsdd"``): the folder of the
            data set.  ``None``: the task's default (``fsdd``: ``../shared/data/fsdd``
            beside the checkout; ``shd`` has none).
        split: tasks with speakers (``"shd"``, ``"fsdd"``): ``"standard"`` or
            ``"speaker:<name>"`` (leave that speaker out for testing).  ``None``: the
            task's default, ``"standard"``.

    The defaults train the default Randman task (recurrent LIF layer, BPTT) to
    97-99% test accuracy (seeds 0-2) in about 30 s, compilation included, on a
    2-core CPU.
    """

    task: str = "randman"
    learner: str = "bptt"
    window: int = 25
    neuron: str = "lif"
    hidden: int = 128
    layers: int = 1
    recurrent: bool = True
    readout: str = "leaky"
    readout_tau: float = 20.0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 5e-4
    seed: int = 0
    update_every: int | None = None
    k: int | None = None
    clip_norm: float | None = None
    devices: int | None = None
    data_dir: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        _check_choice("task", self.task, sorted(_tasks.TASKS), "randman")
        self._check_task_option("data_dir", "a folder path", "--data-dir")
        self._check_task_option("split", "'standard' or 'speaker:<name>'", "--split")
        _check_choice("neuron", self.neuron, NEURONS, "lif")
        _check_choice("readout", self.readout, READOUTS, "leaky")
        for name, example in (
            ("window", 25),
            ("hidden", 128),
            ("layers", 1),
            ("epochs", 60),
            ("batch_size", 32),
        ):
            _check_positive_int(name, getattr(self, name), example)
        _check_positive_float("lr", self.lr, 5e-4)
        _check_positive_float("readout_tau", self.readout_tau, 20.0)
        _check_seed_and_recurrent(self, "TrainConfig")
        if not isinstance(self.learner, str):
            raise ValueError(
                f"TrainConfig.learner: expected a learner name, received {self.learner!r}; "
                "pass e.g. learner='bptt'"
            )
        if self.clip_norm is not None:
            _check_positive_float("clip_norm", self.clip_norm, 1.0)
            object.__setattr__(self, "clip_norm", float(self.clip_norm))
        for name, example in (("update_every", 10), ("k", 5), ("devices", 1)):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name), example)
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.learner.lower().replace("-", "_") not in _learners.LEARNERS:
            raise ValueError(
                f"TrainConfig.learner: expected a registered learner "
                f"({', '.join(sorted(_learners.LEARNERS))}), received {self.learner!r}; "
                "pass e.g. learner='bptt'"
            )
        try:
            learner = _make_learner(self.learner, self.window, self.k)
        except (TypeError, ValueError) as e:  # e.g. an option the learner requires
            raise ValueError(
                f"TrainConfig.learner: expected the options that learner {self.learner!r} "
                f"needs, received window={self.window}, k={self.k} ({e}); pass them, e.g. k=4"
            ) from None
        if self.update_every is not None and not isinstance(
            learner, _learners.AbstractOnlineLearner
        ):
            online = sorted(
                n
                for n, c in _learners.LEARNERS.items()
                if issubclass(c, _learners.AbstractOnlineLearner)
            )
            raise ValueError(
                f"TrainConfig.update_every: expected an online learner ({', '.join(online)}) "
                f"to update inside a sequence, received learner {self.learner!r}; drop "
                "update_every or choose an online learner"
            )
        # normalise numpy scalars so that asdict() stays JSON-able
        for name in ("window", "hidden", "layers", "epochs", "batch_size", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("lr", "readout_tau"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def _check_task_option(self, name: str, kind: str, flag: str) -> None:
        """``data_dir`` / ``split``: None, or a non-empty str for a task that has it."""
        value = getattr(self, name)
        if value is None:
            return
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
            object.__setattr__(self, name, value)
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"TrainConfig.{name}: expected {kind} (str) or None, received {value!r}"
            )
        fields = {f.name for f in dataclasses.fields(_tasks.TASKS[self.task])}
        if name not in fields:
            takes = sorted(
                t
                for t, cls in _tasks.TASKS.items()
                if name in {f.name for f in dataclasses.fields(cls)}
            )
            raise ValueError(
                f"TrainConfig.{name}: expected a task that takes {name} ({', '.join(takes)}), "
                f"received task {self.task!r}; drop {name} ({flag}) or choose one of those tasks"
            )

    def task_options(self) -> dict[str, Any]:
        """The task parameters that this configuration sets (``data_dir``, ``split``)."""
        return {k: getattr(self, k) for k in ("data_dir", "split") if getattr(self, k) is not None}


SPIKING_GAINS = types.MappingProxyType({"input_gain": 5.0, "recurrent_gain": 0.3})
"""Initial weight gains of the spiking layers built by :func:`build_model`: a strong
input drive and a weak initial recurrence.  On Randman, the :class:`~plastax.Layer`
defaults (3.0 and 1.0) make training noisier and end at lower accuracy.  Rate
neurons use the :class:`~plastax.Layer` defaults."""


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """``optax.adam(config.lr)``, preceded by ``optax.clip_by_global_norm`` when
    ``config.clip_norm`` is set.  Clipping adds no optimizer state, so a run can be
    resumed with or without it.  ``config`` may also be a
    :class:`~plastax.streaming.StreamConfig`."""
    from .streaming import StreamConfig

    if not isinstance(config, TrainConfig | StreamConfig):
        raise ValueError(
            f"make_optimizer: expected a plastax.TrainConfig or StreamConfig, received "
            f"{type(config).__name__}"
        )
    adam = optax.adam(config.lr)
    if config.clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adam)


def _is_spiking(neuron) -> bool:
    return hasattr(neuron, "surrogate")


def build_model(config: TrainConfig, n_in: int, n_out: int, key: PRNGKeyArray) -> Network:
    """The network described by ``config``: ``config.layers`` layers of
    ``config.hidden`` neurons and a leaky or linear readout of ``n_out`` units.

    Spiking layers are initialised with :data:`SPIKING_GAINS`; weights come from
    ``key``.  ``config`` may also be a :class:`~plastax.streaming.StreamConfig`.
    """
    from .streaming import StreamConfig

    if not isinstance(config, TrainConfig | StreamConfig):
        raise ValueError(
            f"build_model: expected a plastax.TrainConfig or StreamConfig, received "
            f"{type(config).__name__}"
        )
    neuron = NEURONS[config.neuron]()
    gains = SPIKING_GAINS if _is_spiking(neuron) else {}
    layers = [
        Layer(neuron, config.hidden, recurrent=config.recurrent, **gains)
        for _ in range(config.layers)
    ]
    if config.readout == "leaky":
        readout = LeakyReadout(n_out, tau=config.readout_tau)
    else:
        readout = LinearReadout(n_out)
    return Network(layers, readout, n_in, key=key)


# --------------------------------------------------------------------------------------
# Errors


class NonFiniteError(FloatingPointError):
    """A training step produced (or received) NaN or Inf.  Its update was not applied.

    Attributes: ``epoch`` and ``step`` (1-based, within the epoch), ``global_step``
    (1-based over the run), ``tensor`` (``"inputs"``, ``"loss"``,
    ``"grads.layers[0].w_in"``, ``"params..."``) and ``checkpoint`` (the last good
    checkpoint, or ``None``).
    """

    def __init__(self, message: str, *, epoch, step, global_step, tensor, checkpoint):
        super().__init__(message)
        self.epoch, self.step, self.global_step = epoch, step, global_step
        self.tensor, self.checkpoint = tensor, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during training: the current step was finished and a
    checkpoint saved (when there is a checkpoint directory).  A ``KeyboardInterrupt``,
    so ``except Exception`` does not swallow it.

    Attributes: ``signum``, ``epoch``, ``step`` (steps done in that epoch),
    ``global_step`` (steps done in the run) and ``checkpoint`` (path or ``None``).
    """

    def __init__(self, message: str, *, signum, epoch, step, global_step, checkpoint):
        super().__init__(message)
        self.signum, self.epoch, self.step = signum, epoch, step
        self.global_step, self.checkpoint = global_step, checkpoint

    def __str__(self) -> str:
        return str(self.args[0])


# --------------------------------------------------------------------------------------
# Jitted steps


def _shard(x, mesh: Mesh | None, *spec):
    """Constrain ``x`` to ``PartitionSpec(*spec)`` over ``mesh`` (no-op without one)."""
    if mesh is None:
        return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(*spec)))


def _replicate(tree, mesh: Mesh | None):
    """Constrain every array of ``tree`` to be replicated over ``mesh``."""
    if mesh is None:
        return tree
    arrays, rest = eqx.partition(tree, eqx.is_array)
    arrays = jax.tree.map(lambda a: _shard(a, mesh), arrays)
    return eqx.combine(arrays, rest)


def _batch(x_all, y_all, idx, n_out: int, loss: AbstractLoss, mesh: Mesh | None = None):
    """Gather a batch inside jit: time-major inputs (T, B, n_in) and targets.  With a
    mesh, the batch axis is sharded over its devices."""
    x = _shard(jnp.swapaxes(x_all[idx], 0, 1), mesh, None, "batch", None)
    labels = _shard(y_all[idx], mesh, "batch")
    T, B = x.shape[:2]
    if getattr(loss, "classification", True):
        targets = _shard(jnp.broadcast_to(labels, (T, B)), mesh, None, "batch")
    else:  # regression losses (mse) are trained on one-hot targets
        onehot = jax.nn.one_hot(labels, n_out, dtype=x.dtype)
        targets = _shard(jnp.broadcast_to(onehot, (T, B, n_out)), mesh, None, "batch", None)
    return x, labels, targets


def _all_finite(x) -> Array:
    return jnp.all(jnp.isfinite(x))


def _finite_flags(x, value, grads, params) -> Array:
    """``[inputs, loss, *grads leaves, *updated params leaves]`` are finite (bools);
    the names are given by :func:`_flag_names`."""
    flags = [_all_finite(x), _all_finite(value)]
    flags += [_all_finite(g) for g in jax.tree.leaves(grads)]
    flags += [_all_finite(p) for p in jax.tree.leaves(params)]
    return jnp.stack(flags)


def _flag_names(model) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_inexact_array))[0]
    keys = [jax.tree_util.keystr(p) for p, _ in paths]
    return ["inputs", "loss"] + ["grads" + k for k in keys] + ["params" + k for k in keys]


def _keep_if(ok, new, old):
    """``new`` where ``ok`` else ``old``, leaf by leaf (skips a non-finite update)."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def _loss_and_grads(model, x_all, y_all, idx, mask, key, learner, loss, mesh=None):
    """The loss and gradient of the batch ``idx`` by ``learner`` and the gathered,
    sharded inputs.  One device or several, it computes the same quantity; with a
    mesh, XLA reduces the gradient over the batch shards."""
    x, _, targets = _batch(x_all, y_all, idx, model.n_out, loss, mesh)
    value, grads = learner.value_and_grad(model, x, targets, mask, loss=loss, key=key)
    return value, grads, x


def _train_step_impl(
    model, opt_state, x_all, y_all, idx, mask, base_key, step, learner, optimizer, loss, mesh=None
):
    """One optimizer step on the batch ``idx``; returns ``(model, opt_state, loss,
    finite flags)``.  ``step`` (0-based over the run) selects the key; a step whose
    flags are not all true is not applied."""
    key = jax.random.fold_in(base_key, step)
    value, grads, x = _loss_and_grads(model, x_all, y_all, idx, mask, key, learner, loss, mesh)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    flags = _finite_flags(x, value, grads, new_params)
    ok = jnp.all(flags)
    params = _keep_if(ok, new_params, params)
    opt_state = _keep_if(ok, new_opt_state, opt_state)
    out = (eqx.combine(params, static), opt_state, value, flags)
    return _replicate(out, mesh)


_train_step = eqx.filter_jit(_train_step_impl)


def _online_train_step(
    model,
    opt_state,
    x_all,
    y_all,
    idx,
    mask,
    base_key,
    step,
    learner,
    optimizer,
    loss,
    mesh=None,
    *,
    update_every,
):
    """Online learning inside a sequence: the learner steps through time and the
    optimizer is applied every ``update_every`` steps with the gradient accumulated
    since the last update; traces carry on.  Returns what :func:`_train_step` does;
    the flags hold over every update of the sequence."""
    key = jax.random.fold_in(base_key, step)
    x, _, targets = _batch(x_all, y_all, idx, model.n_out, loss, mesh)
    T, B = x.shape[:2]
    n_chunks = -(-T // update_every)
    pad = n_chunks * update_every - T
    weights = mask / jnp.maximum(jnp.sum(mask), 1.0)

    def chunked(a):
        if pad:
            a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
        return a.reshape((n_chunks, update_every) + a.shape[1:])

    params, static = eqx.partition(model, eqx.is_inexact_array)
    lstate = learner.init(
        model,
        B,
        key=key,
        mask=jnp.concatenate([mask, jnp.zeros((pad,), mask.dtype)]) if pad else mask,
    )
    n_flags = len(_flag_names(model)) - 1  # every flag but "inputs"

    def chunk(carry, xs):
        params, opt_state, lstate, flags = carry
        net = eqx.combine(params, static)
        lstate = learner.advance(net, lstate, *xs, loss=loss)  # in chunks where cheaper
        grads = learner.grads(lstate)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        chunk_flags = _finite_flags(xs[0], lstate.loss, grads, new_params)[1:]
        ok = jnp.all(chunk_flags)
        params = _keep_if(ok, new_params, params)
        opt_state = _keep_if(ok, new_opt_state, opt_state)
        value = lstate.loss
        return (params, opt_state, learner.reset_grads(lstate), flags & chunk_flags), value

    flags0 = jnp.ones((n_flags,), bool)
    (params, opt_state, _, flags), values = jax.lax.scan(
        chunk,
        (params, opt_state, lstate, flags0),
        (chunked(x), chunked(targets), chunked(weights)),
    )
    flags = jnp.concatenate([_all_finite(x)[None], flags])
    out = (eqx.combine(params, static), opt_state, jnp.sum(values), flags)
    return _replicate(out, mesh)


@functools.cache
def _jitted_online_step(update_every: int):
    """The jitted online step for ``update_every`` (one wrapper per value, so that
    its compilation is cached like :func:`_train_step`'s)."""
    return eqx.filter_jit(functools.partial(_online_train_step, update_every=update_every))


def _per_example_loss(loss: AbstractLoss, ys, targets, mask):
    """(B,) losses whose mean over the batch is ``sequence_loss(loss, ys, targets, mask)``."""
    if loss.splits_over_time:
        per_step = jax.vmap(loss)(ys, targets)  # (T, B)
        return mask @ per_step / jnp.maximum(jnp.sum(mask), 1.0)
    one = lambda y, t: loss(y[:, None], t[:, None], mask)
    return jax.vmap(one, in_axes=(1, 1))(ys, targets)


@eqx.filter_jit
def _eval_split(model, x_all, y_all, idx, valid, mask, loss, mesh=None):
    """Summed loss and number of correct predictions over ``idx`` (n_batches, B)."""

    def one(args):
        i, v = args
        x, labels, targets = _batch(x_all, y_all, i, model.n_out, loss, mesh)
        ys = model(x)  # (T, B, n_out)
        per_example = _per_example_loss(loss, ys, targets, mask)
        pred = jnp.argmax(jnp.einsum("tbc,t->bc", ys, mask), axis=-1)
        correct = (pred == labels) & v
        return jnp.sum(jnp.where(v, per_example, 0.0)), jnp.sum(correct)

    losses, correct = jax.lax.map(one, (idx, valid))
    return _replicate((jnp.sum(losses), jnp.sum(correct)), mesh)


def _eval_indices(n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_batches, B) indices and validity: the last batch is padded with index 0."""
    n_batches = -(-n // batch_size)
    idx = np.zeros(n_batches * batch_size, np.int32)
    idx[:n] = np.arange(n)
    valid = np.arange(n_batches * batch_size) < n
    shape = (n_batches, batch_size)
    return idx.reshape(shape), valid.reshape(shape)


def _evaluate_arrays(model, x_all, y_all, mask, batch_size: int, loss) -> dict[str, float]:
    n = int(y_all.shape[0])
    idx, valid = _eval_indices(n, min(batch_size, n))
    total, correct = _eval_split(model, x_all, y_all, idx, valid, mask, loss)
    return {"loss": float(total) / n, "accuracy": int(correct) / n}


def _check_batch_size(batch_size, n: int | None = None, what: str = "training set") -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ValueError(f"expected batch_size to be a positive integer, received {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(
            f"expected batch_size to be a positive integer, received {batch_size}; "
            "pass e.g. batch_size=64"
        )
    if n is not None and batch_size > n:
        raise ValueError(
            f"expected batch_size <= the number of samples in the {what} ({n}), received "
            f"batch_size={batch_size}; use a smaller batch size or more samples "
            "(incomplete batches are dropped in training, so no step would run)"
        )
    return int(batch_size)


def evaluate(
    model: Network,
    split: _tasks.Split,
    mask: Float[Array, " time"] | None,
    batch_size: int,
    *,
    loss: AbstractLoss = cross_entropy,
) -> dict[str, float]:
    """Exact loss and accuracy of ``model`` on every sample of ``split``.

    The prediction for a sample is ``argmax_c sum_t mask_t y_t[c]``; ``loss`` is the
    mean over samples of the masked per-sample loss.  The last batch is padded and
    the padding masked out, so the result does not depend on ``batch_size``.

    Returns:
        ``{"loss": float, "accuracy": float}``.
    """
    if not isinstance(model, Network):
        raise ValueError(f"evaluate: expected a plastax.Network, received {type(model).__name__}")
    if not isinstance(split, _tasks.Split):
        raise ValueError(
            f"evaluate: expected a plastax.tasks.Split, received {type(split).__name__}"
        )
    _check_loss(loss, "evaluate")
    _check_batch_size(batch_size)
    if split.x.shape[2] != model.n_in or len(split) == 0:
        raise ValueError(
            f"evaluate: expected a split of shape (N >= 1, T, {model.n_in}) for a model with "
            f"n_in={model.n_in}, received x of shape {split.x.shape}"
        )
    x_all, y_all = jnp.asarray(split.x, model.dtype), jnp.asarray(split.y)
    mask = check_mask(_check_mask_values(mask, "evaluate"), split.x.shape[1], model.dtype)
    return _evaluate_arrays(model, x_all, y_all, mask, int(batch_size), loss)


def _check_mask_values(mask, where: str):
    """A mask, if given, holds finite, non-negative numbers (its shape is checked by
    :func:`~plastax.losses.check_mask`)."""
    if mask is None:
        return None
    try:
        values = np.asarray(mask)
    except (TypeError, ValueError):
        values = np.asarray(None)
    if values.dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: expected the mask to be an array of numbers (one weight per time "
            f"step), received {type(mask).__name__} of dtype {values.dtype}"
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(
            f"{where}: expected finite, non-negative mask weights, received {values}; "
            "pass mask=None to use every step"
        )
    return values


def _check_loss(loss, where: str) -> None:
    if not isinstance(loss, AbstractLoss):
        raise ValueError(
            f"{where}: expected a plastax loss (plastax.losses.cross_entropy, mse, ...), "
            f"received {type(loss).__name__}"
        )


# --------------------------------------------------------------------------------------
# Devices


def _make_mesh(devices, batch_size: int) -> Mesh | None:
    """A one-axis mesh ``("batch",)`` over the first ``devices`` devices (``None``: all
    of them); ``None`` when that is one device."""
    available = jax.devices()
    if devices is None:
        n = len(available)
    else:
        if isinstance(devices, bool) or not isinstance(devices, numbers.Integral) or devices <= 0:
            raise ValueError(
                f"train: expected devices to be a positive integer or None (every device), "
                f"received {devices!r}"
            )
        n = int(devices)
        if n > len(available):
            raise ValueError(
                f"train: expected devices <= the {len(available)} visible "
                f"{jax.default_backend()} device(s), received devices={n}; on a CPU, "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n} (set before JAX is "
                "imported) simulates several devices"
            )
    if jax.process_count() > 1 and n != len(available):
        raise ValueError(
            f"train: expected every one of the {len(available)} devices of the "
            f"{jax.process_count()} processes (devices=None), received devices={n}; with "
            "several hosts each process must hold part of the mesh"
        )
    if batch_size % n:
        lower = max(batch_size // n * n, n)
        raise ValueError(
            f"train: expected batch_size to be divisible by the number of devices ({n}), "
            f"received batch_size={batch_size}; pass batch_size={lower} or "
            f"{lower + n}, or fewer devices (--devices)"
        )
    if n == 1:
        return None
    return Mesh(np.asarray(available[:n]), ("batch",))


def _put(tree, mesh: Mesh | None):
    """Place the arrays of ``tree`` replicated on every device of ``mesh``.  With
    several processes, each holds the same values (same seed, same data) and
    contributes its own devices' copies."""
    if mesh is None:
        return tree
    arrays, rest = eqx.partition(tree, eqx.is_array)
    sharding = NamedSharding(mesh, P())
    if jax.process_count() > 1:  # tested with two local processes (test_sharding.py)

        def put(a):
            if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
                data = np.asarray(jax.random.key_data(a))
                return jax.random.wrap_key_data(
                    jax.make_array_from_process_local_data(sharding, data),
                    impl=jax.random.key_impl(a),
                )
            return jax.make_array_from_process_local_data(sharding, np.asarray(a))

        arrays = jax.tree.map(put, arrays)
    else:
        arrays = jax.device_put(arrays, sharding)
    return eqx.combine(arrays, rest)


# --------------------------------------------------------------------------------------
# Files: metrics, checkpoints, signals


def _progress_bar(epochs: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=epochs, initial=initial, desc="train", unit="epoch", disable=not enabled, leave=True
    )


_METRICS_PROBE = 1 << 16


def _open_metrics(path):
    """Open the metrics file for appending, after checking that its folder takes
    writes (a full disk or a missing permission fails here, before training)."""
    if path is None:
        return None
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    probe_writable(folder, _METRICS_PROBE, "the metrics folder", "choose another metrics path")
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as e:
        raise ValueError(
            f"cannot open the metrics file {path!r} for appending: {e.strerror}; choose "
            "another metrics path"
        ) from None


def _rewind_metrics(path, saved: dict[str, Any], epochs_done: int) -> None:
    """On resume, drop the lines that the interrupted run wrote after its checkpoint
    (epochs ``epochs_done + 1, ...``, which the resumed run writes again), so that the
    file equals that of an uninterrupted run.  Anything else is left alone."""
    if path is None or saved.get("path") is None:
        return
    if os.path.realpath(os.fspath(path)) != saved["path"]:
        return
    offset = int(saved["offset"])
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if size == offset:
        return
    if size < offset:
        warnings.warn(
            f"metrics file {os.fspath(path)!r} is shorter ({size} bytes) than when the "
            f"checkpoint was written ({offset} bytes); appending to it",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    with open(path, "rb") as f:
        f.seek(offset)
        tail = f.read()
    try:
        records = [json.loads(line) for line in tail.decode("utf-8").splitlines()]
        ours = [r.get("epoch") for r in records] == list(
            range(epochs_done + 1, epochs_done + 1 + len(records))
        )
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        ours = False
    if not ours:
        warnings.warn(
            f"metrics file {os.fspath(path)!r} holds lines written after the checkpoint that "
            "are not this run's epochs; they are kept and new epochs are appended",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    with open(path, "r+b") as f:
        f.truncate(offset)


class _Signals:
    """Turn SIGINT and SIGTERM into a request to stop after the current step.  A second
    signal stops at once (``KeyboardInterrupt``).  Only the main thread can install
    signal handlers; elsewhere this does nothing.  The previous handlers come back on
    exit."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping at once")
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        return False


def _describe_task(task) -> dict[str, Any]:
    try:
        return task.describe()
    except (TypeError, AttributeError):
        return {"name": getattr(task, "name", type(task).__name__)}


def _jsonable(obj):
    return json.loads(json.dumps(obj))


_RESUMABLE = {"epochs", "devices", "lr", "clip_norm"}
"""Settings that may change when a run is resumed: train longer, on other devices, or
with a lower learning rate or gradient clipping after a non-finite step."""


def _check_same_run(path: str, saved: dict[str, Any], current: dict[str, Any], what: str):
    saved, current = _jsonable(saved), _jsonable(current)
    keys = (set(saved) | set(current)) - _RESUMABLE
    differ = sorted(k for k in keys if saved.get(k) != current.get(k))
    if differ:
        detail = ", ".join(
            f"{k}={saved.get(k)!r} in the checkpoint, {current.get(k)!r} now" for k in differ
        )
        raise ValueError(
            f"cannot resume from {path}: its {what} differs ({detail}); resume with the "
            f"settings stored in its manifest.json, or start a new run in another checkpoint "
            "directory"
        )


def _quarantine(path: str) -> str:
    """Rename a bad checkpoint ``step-N`` to ``corrupted-step-N`` (kept for inspection,
    never read again)."""
    folder, name = os.path.split(path)
    target = os.path.join(folder, "corrupted-" + name)
    i = 1
    while os.path.exists(target):
        i += 1
        target = os.path.join(folder, f"corrupted-{name}.{i}")
    os.replace(path, target)
    return target


def _fmt_lr_hint() -> str:
    return (
        "lower the learning rate (--lr, e.g. half of it) or clip the gradient "
        "(--clip-norm 1.0; in Python optax.chain(optax.clip_by_global_norm(1.0), ...))"
    )


# --------------------------------------------------------------------------------------
# The loop


class TrainResult(NamedTuple):
    """Everything :func:`train` knows at the end (``run`` builds its summary from it)."""

    model: Network
    history: list[dict[str, Any]]  # every epoch of the run, resumed ones included
    compile_seconds: float  # this session
    train_seconds: float  # training and evaluation, all sessions of the run
    checkpoint: str | None  # the last checkpoint written or resumed from
    resumed_from: str | None
    devices: int


def train(
    model: Network,
    task: _tasks.Task,
    learner: AbstractLearner,
    optimizer: optax.GradientTransformation,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: AbstractLoss = cross_entropy,
    metrics_path: str | os.PathLike | None = None,
    progress: bool = True,
    update_every: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    keep_checkpoints: int = 3,
    devices: int | None = None,
    config: TrainConfig | None = None,
) -> tuple[Network, list[dict[str, Any]]]:
    """Train ``model`` on ``task`` with ``learner`` and ``optimizer``.

    ``task.load(seed)`` gives the data; the training set is shuffled every epoch with
    ``np.random.default_rng(seed)``.  After every epoch the model is evaluated exactly
    on the training and test sets.

    Args:
        metrics_path: if given, a JSONL file that receives (appended, never overwritten)
            one line per epoch, flushed as soon as it is written.  The lines hold no
            wall-clock time: the same seed and settings give the same file.
        progress: show a ``tqdm`` bar on stderr.
        update_every: for an online learner, apply the optimizer every this many time
            steps inside each sequence instead of once at its end (the learner state,
            traces included, carries on across the updates within a sequence).
        checkpoint_dir: folder of the run's checkpoints (see :mod:`plastax.checkpoint`).
            Without ``resume`` it must hold none yet.
        checkpoint_every: save every this many optimizer steps; ``None``: at the end of
            every epoch.  A checkpoint is also saved at the end and on SIGINT/SIGTERM.
        resume: continue from the newest valid checkpoint in ``checkpoint_dir``.
            ``model`` and ``optimizer`` then only give the structure that the saved
            arrays are read into.  Every setting must equal the checkpoint's except
            ``epochs``, ``devices`` and the optimizer's hyperparameters; the metrics
            lines that the interrupted run wrote after its checkpoint are replaced.
        keep_checkpoints: how many of the newest checkpoints to keep.
        devices: number of devices for data parallelism (``None``: all visible).
            ``batch_size`` must be divisible by it.
        config: the :class:`TrainConfig` the run came from, stored in the checkpoints
            and compared on resume.

    Returns:
        ``(trained model, history)``; ``history`` holds one dict per epoch with keys
        ``epoch``, ``train_loss``, ``train_accuracy`` (exact, after the epoch),
        ``step_loss`` (mean of the minibatch losses during the epoch), ``test_loss``
        and ``test_accuracy``: exactly the lines of the metrics file.

    Raises:
        ValueError: bad arguments, an unwritable or full checkpoint or metrics folder,
            or a checkpoint that cannot be resumed (before any training).
        NonFiniteError: a step met NaN or Inf (the message names the step, the tensor,
            the last good checkpoint and a remedy).
        TrainingInterrupted: SIGINT or SIGTERM arrived (after saving a checkpoint).
    """
    result = _train(
        model,
        task,
        learner,
        optimizer,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        loss=loss,
        metrics_path=metrics_path,
        progress=progress,
        update_every=update_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        keep_checkpoints=keep_checkpoints,
        devices=devices,
        config=config,
    )
    return result.model, result.history


def _check_arguments(
    model, task, learner, optimizer, epochs, update_every, loss, checkpoint_dir,
    checkpoint_every, resume, keep_checkpoints, config, seed,
) -> None:  # fmt: skip
    if not isinstance(model, Network):
        raise ValueError(f"train: expected a plastax.Network, received {type(model).__name__}")
    if not isinstance(task, _tasks.Task):
        raise ValueError(
            f"train: expected a plastax.tasks.Task (e.g. plastax.tasks.make_task('randman')), "
            f"received {type(task).__name__}"
        )
    if not isinstance(learner, AbstractLearner):
        raise ValueError(
            f"train: expected a plastax learner (e.g. plastax.learners.BPTT()), received "
            f"{type(learner).__name__}"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            "train: expected an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
            f"received {type(optimizer).__name__}"
        )
    _check_loss(loss, "train")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs <= 0:
        raise ValueError(f"train: expected epochs to be a positive integer, received {epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"train: expected seed to be a non-negative integer, received {seed!r}")
    if update_every is not None:
        if not isinstance(learner, _learners.AbstractOnlineLearner):
            raise ValueError(
                "train: update_every expected an online learner (EProp, SLTT, RTRL, ...), "
                f"received {type(learner).__name__}; drop update_every for it"
            )
        if (
            isinstance(update_every, bool)
            or not isinstance(update_every, numbers.Integral)
            or update_every <= 0
        ):
            raise ValueError(
                f"train: expected update_every to be a positive integer (time steps), "
                f"received {update_every!r}"
            )
    if model.n_in != task.n_in or model.n_out != task.n_out:
        raise ValueError(
            f"train: expected a model with n_in={task.n_in} and n_out={task.n_out} for task "
            f"{task.name!r}, received n_in={model.n_in}, n_out={model.n_out}; build it with "
            "plastax.build_model(config, task.n_in, task.n_out, key)"
        )
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
        raise ValueError(
            f"train: expected checkpoint_dir to be a path, received {type(checkpoint_dir).__name__}"
        )
    if checkpoint_every is not None:
        if (
            isinstance(checkpoint_every, bool)
            or not isinstance(checkpoint_every, numbers.Integral)
            or checkpoint_every <= 0
        ):
            raise ValueError(
                "train: expected checkpoint_every to be a positive integer (optimizer steps), "
                f"received {checkpoint_every!r}"
            )
        if checkpoint_dir is None:
            raise ValueError(
                "train: checkpoint_every expected a checkpoint_dir to save into, received none; "
                "pass checkpoint_dir (--checkpoint-dir DIR)"
            )
    if not isinstance(resume, bool):
        raise ValueError(f"train: expected resume to be True or False, received {resume!r}")
    if resume and checkpoint_dir is None:
        raise ValueError(
            "train: resume expected a checkpoint_dir to resume from, received none; pass "
            "checkpoint_dir (--checkpoint-dir DIR)"
        )
    if (
        isinstance(keep_checkpoints, bool)
        or not isinstance(keep_checkpoints, numbers.Integral)
        or keep_checkpoints <= 0
    ):
        raise ValueError(
            f"train: expected keep_checkpoints to be a positive integer, received "
            f"{keep_checkpoints!r}"
        )
    if config is not None and not isinstance(config, TrainConfig):
        raise ValueError(
            f"train: expected config to be a plastax.TrainConfig or None, received "
            f"{type(config).__name__}"
        )


class _Start(NamedTuple):
    """Where a session starts: the beginning of the run, or a checkpoint."""

    model: Network
    opt_state: Any
    learner: AbstractLearner
    key_data: Any  # jax.random.key_data of the run's base key
    rng_state: dict[str, Any]  # numpy generator state at the start of epoch epochs_done + 1
    epochs_done: int
    step_in_epoch: int  # steps already taken in epoch epochs_done + 1
    epoch_losses: list[float]  # their losses
    history: list[dict[str, Any]]
    train_seconds: float
    checkpoint: tuple[str, int] | None  # (path, global step) resumed from


def _prepare_checkpoint_dir(checkpoint_dir, resume: bool, tree, writer: bool):
    """Check the checkpoint folder before anything else: the newest valid checkpoint
    to resume from (or ``None`` for a fresh start, which needs an empty folder), and
    a probe that a checkpoint of ``tree``'s size can be written there."""
    if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(
            f"train: the checkpoint directory {checkpoint_dir!r} is a file; choose a "
            "folder (it is created if missing)"
        )
    existing = _checkpoint.list_checkpoints(checkpoint_dir)
    found = None
    if resume:
        if not existing:
            raise ValueError(
                f"train: no checkpoint in {checkpoint_dir!r} to resume from; drop resume "
                "(--resume) to start a new run there"
            )
        found = _checkpoint.latest(checkpoint_dir)
    elif existing:
        raise ValueError(
            f"train: the checkpoint directory {checkpoint_dir!r} already holds checkpoints "
            f"(newest: {os.path.basename(existing[-1][1])}); pass resume=True (--resume) to "
            "continue that run, or choose an empty directory"
        )
    if writer:
        probe_writable(
            checkpoint_dir,
            _checkpoint.estimate_bytes(tree),
            "the checkpoint directory",
            "free some space or choose another checkpoint directory (--checkpoint-dir)",
        )
        _checkpoint.clean_temporary(checkpoint_dir)
    return found


def _restore(found, tree, run_info, config_dict, epochs: int, writer: bool, metrics_path):
    """The :class:`_Start` of a resumed session, after checking that the checkpoint
    belongs to the same run."""
    for bad, reason in found.skipped:
        moved = _quarantine(bad) if writer else bad
        warnings.warn(
            f"checkpoint {bad} is unusable ({reason}); resuming from the previous good "
            f"one, {found.path}; the bad one was moved to {moved}",
            RuntimeWarning,
            stacklevel=4,
        )
    meta = found.manifest["metadata"]
    _check_same_run(found.path, meta["run"], run_info, "training setup")
    if config_dict is not None and meta.get("config") is not None:
        _check_same_run(found.path, meta["config"], config_dict, "configuration")
    position = meta["position"]
    if position["epochs_done"] > epochs:
        raise ValueError(
            f"train: the checkpoint {found.path} has completed {position['epochs_done']} "
            f"epochs, more than epochs={epochs}; pass epochs >= {position['epochs_done']}"
        )
    if meta["run"]["devices"] != run_info["devices"]:
        warnings.warn(
            f"resuming on {run_info['devices']} device(s) a run checkpointed on "
            f"{meta['run']['devices']}: results differ from an uninterrupted run by "
            "floating-point rounding",
            RuntimeWarning,
            stacklevel=4,
        )
    loaded, _ = _checkpoint.load(found.path, tree)
    if writer:
        _rewind_metrics(metrics_path, meta["metrics"], position["epochs_done"])
    return _Start(
        model=loaded["model"],
        opt_state=loaded["opt_state"],
        learner=loaded["learner"],
        key_data=loaded["key"],
        rng_state=meta["rng_epoch_start"],
        epochs_done=position["epochs_done"],
        step_in_epoch=position["step_in_epoch"],
        epoch_losses=meta["epoch_step_losses"],
        history=list(meta["history"]),
        train_seconds=float(meta["timing"]["train_seconds"]),
        checkpoint=(found.path, found.manifest["step"]),
    )


def _train(
    model: Network,
    task: _tasks.Task,
    learner: AbstractLearner,
    optimizer: optax.GradientTransformation,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: AbstractLoss = cross_entropy,
    metrics_path=None,
    progress: bool = True,
    update_every: int | None = None,
    checkpoint_dir=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    keep_checkpoints: int = 3,
    devices: int | None = None,
    config: TrainConfig | None = None,
) -> TrainResult:
    """:func:`train`, returning a :class:`TrainResult`."""
    _check_arguments(
        model, task, learner, optimizer, epochs, update_every, loss, checkpoint_dir,
        checkpoint_every, resume, keep_checkpoints, config, seed,
    )  # fmt: skip
    epochs, seed = int(epochs), int(seed)
    batch_size = _check_batch_size(batch_size)
    mesh = _make_mesh(devices, batch_size)
    n_devices = 1 if mesh is None else mesh.size
    writer = jax.process_index() == 0  # with several hosts, one writes the files

    # The skeleton of a checkpoint: what a resumed session reads the arrays into.
    tree = {
        "model": model,
        "opt_state": optimizer.init(eqx.filter(model, eqx.is_inexact_array)),
        "learner": learner,
        "key": jax.random.key_data(jax.random.key(seed)),
    }
    if checkpoint_dir is not None:
        checkpoint_dir = os.fspath(checkpoint_dir)
        found = _prepare_checkpoint_dir(checkpoint_dir, resume, tree, writer)
    else:
        found = None

    train_split, test_split = task.load(seed)
    n_train = len(train_split)
    batch_size = _check_batch_size(batch_size, n_train)
    steps = n_train // batch_size
    for name, split in (("training", train_split), ("test", test_split)):
        if split.x.shape[1:] != (task.n_steps, task.n_in) or len(split) == 0:
            raise ValueError(
                f"train: expected the {name} set of task {task.name!r} to have shape "
                f"(N >= 1, {task.n_steps}, {task.n_in}), received {split.x.shape}"
            )
    run_info = {
        "task": _describe_task(task),
        "learner": repr(learner),
        "loss": loss.name,
        "batch_size": batch_size,
        "seed": seed,
        "update_every": update_every,
        "epochs": epochs,
        "devices": n_devices,
        "n_train": n_train,
        "steps_per_epoch": steps,
    }
    config_dict = None if config is None else dataclasses.asdict(config)
    if found is None:
        start = _Start(
            tree["model"], tree["opt_state"], learner, tree["key"],
            np.random.default_rng(seed).bit_generator.state, 0, 0, [], [], 0.0, None,
        )  # fmt: skip
    else:
        start = _restore(found, tree, run_info, config_dict, epochs, writer, metrics_path)

    model, opt_state, learner = start.model, start.opt_state, start.learner
    base_key = jax.random.wrap_key_data(start.key_data)
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = start.rng_state
    history = start.history
    epoch_losses = [np.asarray(v, model.dtype) for v in start.epoch_losses]
    last_checkpoint = start.checkpoint

    dtype = model.dtype
    x_train, y_train = jnp.asarray(train_split.x, dtype), jnp.asarray(train_split.y)
    x_test, y_test = jnp.asarray(test_split.x, dtype), jnp.asarray(test_split.y)
    mask = check_mask(_check_mask_values(task.loss_mask(), "train"), task.n_steps, dtype)
    eval_batch = max(batch_size, 256)
    # evaluation batches: a multiple of the number of devices, padded and masked
    train_eval, test_eval = (
        _eval_indices(n, -(-min(eval_batch, n) // n_devices) * n_devices)
        for n in (n_train, len(test_split))
    )
    model, opt_state, x_train, y_train, x_test, y_test, mask, base_key = _put(
        (model, opt_state, x_train, y_train, x_test, y_test, mask, base_key), mesh
    )
    train_eval, test_eval = _put((train_eval, test_eval), mesh)
    names = _flag_names(model)

    metrics = _open_metrics(metrics_path) if writer else None  # fail early on a bad path
    bar = None
    try:
        # Compile everything ahead of time so that compilation is timed apart and no
        # step can trigger a second compilation.
        t0 = time.perf_counter()
        step_fn = _train_step if update_every is None else _jitted_online_step(int(update_every))
        idx0, step0 = _put((np.zeros(batch_size, np.int32), np.zeros((), np.int32)), mesh)
        step = step_fn.lower(
            model, opt_state, x_train, y_train, idx0, mask, base_key, step0,
            learner, optimizer, loss, mesh,
        ).compile()  # fmt: skip
        eval_train, eval_test = (
            _eval_split.lower(model, x, y, *ev, mask, loss, mesh).compile()
            for x, y, ev in ((x_train, y_train, train_eval), (x_test, y_test, test_eval))
        )
        compile_seconds = time.perf_counter() - t0
        t_loop = time.perf_counter()

        def save(epochs_done: int, step_in_epoch: int, rng_state) -> str | None:
            """Checkpoint the current state at this position (no-op without a folder)."""
            nonlocal last_checkpoint
            if checkpoint_dir is None:
                return None
            global_step = epochs_done * steps + step_in_epoch
            if last_checkpoint is not None and last_checkpoint[1] == global_step:
                return last_checkpoint[0]  # nothing happened since
            path = os.path.join(checkpoint_dir, _checkpoint.step_name(global_step))
            if writer:
                meta = {
                    "position": {
                        "epochs_done": epochs_done,
                        "step_in_epoch": step_in_epoch,
                        "global_step": global_step,
                        "steps_per_epoch": steps,
                    },
                    "rng_epoch_start": rng_state,
                    "epoch_step_losses": [float(v) for v in epoch_losses[:step_in_epoch]],
                    "history": history,
                    "metrics": {
                        "path": None if metrics is None else os.path.realpath(metrics.name),
                        "offset": None if metrics is None else metrics.tell(),
                    },
                    "run": run_info,
                    "config": config_dict,
                    "timing": {"train_seconds": start.train_seconds + time.perf_counter() - t_loop},
                    "versions": {"jax": jax.__version__, "numpy": np.__version__},
                }
                state = {
                    "model": model,
                    "opt_state": opt_state,
                    "learner": learner,
                    "key": jax.random.key_data(base_key),
                }
                try:
                    _checkpoint.save(
                        checkpoint_dir, global_step, state, meta, keep=keep_checkpoints
                    )
                except OSError as e:
                    previous = "none" if last_checkpoint is None else last_checkpoint[0]
                    raise OSError(
                        e.errno,
                        f"could not write the checkpoint of step {global_step} to "
                        f"{checkpoint_dir!r}: {e.strerror}; the last good checkpoint is "
                        f"{previous}; free some space and continue with --resume",
                    ) from None
            last_checkpoint = (path, global_step)
            return path

        def check(pending) -> None:
            """Raise if the step ``pending`` was not finite; else keep its loss."""
            g, epoch, s, idx, value, flags = pending
            flags = np.asarray(flags)
            if not flags.all():
                raise _non_finite(
                    names[int(np.argmin(flags))], epoch, s, steps, g, idx, train_split,
                    last_checkpoint, checkpoint_dir,
                )  # fmt: skip
            epoch_losses.append(np.asarray(value))

        with _Signals() as signals:
            bar = _progress_bar(epochs, start.epochs_done, progress and writer)
            for epoch in range(start.epochs_done + 1, epochs + 1):
                resumed_epoch = epoch == start.epochs_done + 1
                if not resumed_epoch:
                    epoch_losses = []
                rng_state = copy.deepcopy(rng.bit_generator.state)
                perm = rng.permutation(n_train).astype(np.int32)
                pending = None  # the finiteness of step g is checked after step g + 1 starts
                for s in range(start.step_in_epoch if resumed_epoch else 0, steps):
                    g = (epoch - 1) * steps + s
                    idx = perm[s * batch_size : (s + 1) * batch_size]
                    model, opt_state, value, flags = step(
                        model, opt_state, x_train, y_train, _put(idx, mesh), mask, base_key,
                        _put(np.asarray(g, np.int32), mesh), learner, optimizer, loss, mesh,
                    )  # fmt: skip
                    if pending is not None:
                        check(pending)
                    pending = (g, epoch, s, idx, value, flags)
                    # a periodic checkpoint at the end of an epoch waits for its evaluation
                    periodic = checkpoint_every and (g + 1) % checkpoint_every == 0
                    if signals.signum is not None or (periodic and s + 1 < steps):
                        check(pending)
                        pending = None
                        path = save(epoch - 1, s + 1, rng_state)
                        if signals.signum is not None:
                            raise _interrupted(signals.signum, epoch, s + 1, steps, g + 1, path)
                if pending is not None:
                    check(pending)
                evaluated = {}
                for split_name, fn, x, y, ev, n in (
                    ("train", eval_train, x_train, y_train, train_eval, n_train),
                    ("test", eval_test, x_test, y_test, test_eval, len(test_split)),
                ):
                    total, correct = fn(model, x, y, *ev, mask, loss, mesh)
                    evaluated[split_name] = (float(total) / n, int(correct) / n)
                record = {
                    "epoch": epoch,
                    "train_loss": evaluated["train"][0],
                    "train_accuracy": evaluated["train"][1],
                    "step_loss": float(np.mean(np.stack(epoch_losses))),
                    "test_loss": evaluated["test"][0],
                    "test_accuracy": evaluated["test"][1],
                }
                history.append(record)
                if metrics is not None:
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                g_end = epoch * steps
                stop = signals.signum is not None and epoch < epochs
                if (
                    epoch == epochs
                    or checkpoint_every is None
                    or g_end % checkpoint_every == 0
                    or stop
                ):
                    path = save(epoch, 0, copy.deepcopy(rng.bit_generator.state))
                bar.set_postfix(
                    loss=f"{record['train_loss']:.3f}",
                    train_acc=f"{record['train_accuracy']:.3f}",
                    test_acc=f"{record['test_accuracy']:.3f}",
                    refresh=False,
                )
                bar.update(1)
                if stop:
                    raise _interrupted(signals.signum, epoch, steps, steps, g_end, path)
        train_seconds = start.train_seconds + time.perf_counter() - t_loop
    finally:
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.close()
    return TrainResult(
        model=model,
        history=history,
        compile_seconds=compile_seconds,
        train_seconds=train_seconds,
        checkpoint=None if last_checkpoint is None else last_checkpoint[0],
        resumed_from=None if start.checkpoint is None else start.checkpoint[0],
        devices=n_devices,
    )


def _interrupted(signum, epoch, step, steps, global_step, path) -> TrainingInterrupted:
    name = signal.Signals(signum).name
    where = f"epoch {epoch} after step {step} of {steps} (global step {global_step})"
    if path is None:
        saved = (
            "no checkpoint was saved because there is no checkpoint directory; pass "
            "checkpoint_dir (--checkpoint-dir DIR) to make a run resumable"
        )
    else:
        saved = f"checkpoint saved to {path}"
    return TrainingInterrupted(
        f"interrupted by {name} in {where}; {saved}",
        signum=signum,
        epoch=epoch,
        step=step,
        global_step=global_step,
        checkpoint=path,
    )


def _non_finite(
    tensor, epoch, s, steps, g, idx, train_split, last_checkpoint, checkpoint_dir
) -> NonFiniteError:
    where = f"epoch {epoch}, step {s + 1} of {steps} (global step {g + 1})"
    if tensor == "inputs":
        x = train_split.x[np.asarray(idx)]
        bad = np.asarray(idx)[~np.isfinite(x).reshape(len(x), -1).all(axis=1)]
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        remedy = (
            f"training samples {shown} of the batch hold NaN or Inf; clean the data (each "
            "batch is checked as it is used)"
        )
    else:
        remedy = f"the step was not applied; {_fmt_lr_hint()}"
    if last_checkpoint is not None:
        ckpt = (
            f"the last good checkpoint is {last_checkpoint[0]} (global step "
            f"{last_checkpoint[1]}); continue from it with --resume (resume=True) after the fix"
        )
    elif checkpoint_dir is not None:
        ckpt = f"no checkpoint had been written yet to {checkpoint_dir}"
    else:
        ckpt = "no checkpoint was kept (pass --checkpoint-dir DIR to keep them)"
    return NonFiniteError(
        f"non-finite value (NaN or Inf) in {tensor} at {where}; {remedy}; {ckpt}",
        epoch=epoch,
        step=s + 1,
        global_step=g + 1,
        tensor=tensor,
        checkpoint=None if last_checkpoint is None else last_checkpoint[0],
    )


def run(
    config: TrainConfig,
    *,
    metrics_path: str | os.PathLike | None = None,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Build the task, model, learner and optimizer (:func:`make_optimizer`) described
    by ``config``, train, and return a JSON-able summary.

    The summary holds the final ``test_accuracy``, ``train_accuracy``, ``test_loss``,
    ``train_loss``, ``train_seconds`` (training and evaluation wall time without
    compilation, summed over the sessions of a resumed run), ``compile_seconds`` (this
    session), the main settings, ``n_params``, the task's parameters
    (``task_params``), the JAX backend, ``devices``, ``checkpoint`` (the last one),
    ``resumed_from`` and the full ``config``.  ``checkpoint_dir``,
    ``checkpoint_every`` and ``resume`` are passed to :func:`train`.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"run: expected a plastax.TrainConfig, received {type(config).__name__}")
    task = _tasks.make_task(config.task, **config.task_options())
    learner = _make_learner(config.learner, config.window, config.k)
    model = build_model(config, task.n_in, task.n_out, jax.random.key(config.seed))
    result = _train(
        model,
        task,
        learner,
        make_optimizer(config),
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        metrics_path=metrics_path,
        progress=progress,
        update_every=config.update_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        devices=config.devices,
        config=config,
    )
    last = result.history[-1]
    params = eqx.filter(result.model, eqx.is_inexact_array)
    return {
        "task": config.task,
        "learner": config.learner,
        "neuron": config.neuron,
        "hidden": config.hidden,
        "layers": config.layers,
        "recurrent": config.recurrent,
        "epochs": config.epochs,
        "seed": config.seed,
        "test_accuracy": last["test_accuracy"],
        "train_accuracy": last["train_accuracy"],
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "n_params": int(sum(x.size for x in jax.tree.leaves(params))),
        "backend": jax.default_backend(),
        "devices": result.devices,
        "metrics_path": None if metrics_path is None else os.fspath(metrics_path),
        "checkpoint": result.checkpoint,
        "resumed_from": result.resumed_from,
        "task_params": task.describe(),
        "config": dataclasses.asdict(config),
    }
