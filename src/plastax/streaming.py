"""Online training on a stream: ``plastax train --task sine`` (or ``lorenz``, ``delayed``).

A streaming task is one long sequence (:mod:`plastax.tasks.streams`) with a continuous
error signal and a shift of the generating process mid-stream.  Training is a single
pass: at every step the network predicts (the error is that of the prediction made
*before* any update that uses it), and every ``update_every`` steps the optimizer is
applied with the gradient accumulated since the last update.

The stream is processed in segments of ``segment`` steps, one compiled call each (so a
progress bar and the metrics file advance while the stream runs).  **The learner's state
carries from one segment to the next**: the network state, the online learner's
traces / influence matrices and its random key are those the previous segment ended
with, so splitting the stream into segments changes nothing (tested: any segment length
gives the same result as one loop over every step).

Online learners (``eprop``, ``rtrl``, ``sparse_rtrl``, ``sltt``, ...) step through
time with :meth:`~plastax.learners.AbstractOnlineLearner.step`.  ``bptt`` and
``tbptt`` are the offline reference: truncated BPTT over each block of ``update_every``
steps (default: ``window``), with the network state carried across blocks and the
gradient cut at block boundaries.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import learners as _learners
from ._io import atomic_write_text
from .losses import mse
from .tasks.streams import STREAMS, make_stream

__all__ = ["StreamConfig", "run_stream", "train_stream"]


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """Everything one streaming run needs; JSON-able with ``dataclasses.asdict``.

    Attributes:
        task: stream task (``"sine"``, ``"lorenz"``, ``"delayed"``).
        learner: gradient rule; online learners step through time, ``bptt`` / ``tbptt``
            run truncated BPTT over each update block.
        k: ``sparse_rtrl``: recurrent paths per neuron (required); ``sltt``: not allowed
            (a stream has no sequence to sample steps from).
        window: ``bptt`` / ``tbptt``: the update block when ``update_every`` is unset.
        neuron, hidden, layers, recurrent, readout, readout_tau: the network, as in
            :class:`~plastax.TrainConfig` (defaults: one recurrent layer of 64 tanh units
            and a linear readout).
        lr: Adam learning rate.
        clip_norm: clip each update's gradient to this global norm (``None``: no clip).
        seed: seeds the stream and the weights.
        batch_size: independent parallel streams (the batch axis).
        steps: stream length; ``None``: the task's default.  The shift is at two thirds
            of the stream when ``steps`` is given.
        update_every: apply the optimizer every this many steps; ``None``: every step for
            online learners, every ``window`` steps for ``bptt`` / ``tbptt``.
        segment: steps per compiled call (rounded up to a multiple of the update block).
    """

    task: str = "sine"
    learner: str = "eprop"
    k: int | None = None
    window: int = 25
    neuron: str = "tanh"
    hidden: int = 64
    layers: int = 1
    recurrent: bool = True
    readout: str = "linear"
    readout_tau: float = 20.0
    lr: float = 1e-3
    clip_norm: float | None = None
    seed: int = 0
    batch_size: int = 1
    steps: int | None = None
    update_every: int | None = None
    segment: int = 500

    def __post_init__(self) -> None:
        from .train import NEURONS, READOUTS, _check_choice, _check_seed_and_recurrent
        from .train import _check_positive_float as _float
        from .train import _check_positive_int as _pos

        own = "StreamConfig"
        _check_choice("task", self.task, sorted(STREAMS), "sine", own)
        _check_choice("neuron", self.neuron, NEURONS, "tanh", own)
        _check_choice("readout", self.readout, READOUTS, "linear", own)
        for name, example in (
            ("window", 25),
            ("hidden", 64),
            ("layers", 1),
            ("batch_size", 1),
            ("segment", 500),
        ):
            _pos(name, getattr(self, name), example, own)
            object.__setattr__(self, name, int(getattr(self, name)))
        for name, example in (("k", 4), ("steps", 3000), ("update_every", 1)):
            if getattr(self, name) is not None:
                _pos(name, getattr(self, name), example, own)
                object.__setattr__(self, name, int(getattr(self, name)))
        for name, example in (("lr", 1e-3), ("readout_tau", 20.0), ("clip_norm", 1.0)):
            if getattr(self, name) is not None:
                _float(name, getattr(self, name), example, own)
                object.__setattr__(self, name, float(getattr(self, name)))
        _check_seed_and_recurrent(self, own)
        object.__setattr__(self, "seed", int(self.seed))
        if self.steps is not None and self.steps < 3:
            raise ValueError(
                f"StreamConfig.steps: expected at least 3 steps (some before and after the "
                f"shift at two thirds), received {self.steps}"
            )
        learner = self.make_learner()
        if isinstance(learner, _learners.SLTT) and learner.k is not None:
            raise ValueError(
                f"StreamConfig.k: SLTT(k) samples k steps of a finite sequence, but a stream "
                f"has no end; received k={self.k}; drop k (plain sltt) on a stream"
            )

    def make_learner(self) -> _learners.AbstractLearner:
        try:
            return _learners.make_learner(self.learner, window=self.window, k=self.k)
        except ValueError as e:
            raise ValueError(f"StreamConfig.learner: {e}") from None

    @property
    def online(self) -> bool:
        return isinstance(self.make_learner(), _learners.AbstractOnlineLearner)

    @property
    def block(self) -> int:
        """Steps between two optimizer updates."""
        if self.update_every is not None:
            return self.update_every
        return 1 if self.online else self.window

    def make_stream(self):
        if self.steps is None:
            return make_stream(self.task, n_streams=self.batch_size)
        return make_stream(
            self.task,
            n_steps=self.steps,
            shift_at=max(1, (2 * self.steps) // 3),
            n_streams=self.batch_size,
        )


def _finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.asarray(leaves)) if leaves else jnp.asarray(True)


def _apply(optimizer, params, opt_state, grads, ok, weights):
    """One optimizer update, skipped (parameters and optimizer state kept) where anything
    is not finite or the block holds only padding (all ``weights`` zero)."""
    updates, new_opt = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    real = jnp.sum(weights) > 0
    ok = ok & _finite(grads) & _finite(new_params)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok & real, a, b), new, old)
    return keep(new_params, params), keep(new_opt, opt_state), real & ~ok


@eqx.filter_jit(donate="all-except-first")
def _online_segment(static, params, opt_state, lstate, xs, ys, ws, learner, optimizer):
    """``xs`` (n_blocks, block, B, n_in): per block, ``learner.step`` at every step and one
    optimizer update with the block's accumulated gradient.  Returns the carried
    ``(params, opt_state, lstate)``, the per-step loss (n_blocks, block) and the number
    of skipped updates."""

    def block(carry, xyw):
        params, opt_state, lstate, skipped = carry
        net = eqx.combine(params, static)

        def body(st, s):
            x, y, w = s
            st, _ = learner.step(net, st, x, y, w, loss=mse)
            return st, jnp.mean(mse(st.net.readout, y))  # the prediction y_t of this step

        lstate, step_loss = jax.lax.scan(body, lstate, xyw)
        ok = jnp.all(jnp.isfinite(step_loss))
        params, opt_state, bad = _apply(
            optimizer, params, opt_state, learner.grads(lstate), ok, xyw[2]
        )
        return (params, opt_state, learner.reset_grads(lstate), skipped + bad), step_loss

    carry = (params, opt_state, lstate, jnp.zeros((), jnp.int32))
    (params, opt_state, lstate, skipped), losses = jax.lax.scan(block, carry, (xs, ys, ws))
    return params, opt_state, lstate, losses, skipped


@eqx.filter_jit(donate="all-except-first")
def _bptt_segment(static, params, opt_state, net_state, xs, ys, ws, optimizer):
    """Truncated BPTT over each block of ``xs`` (n_blocks, block, B, n_in), the network
    state carried across blocks and the gradient cut at their boundaries."""

    def block_loss(p, state, x, y, w):
        state, yp, _ = eqx.combine(p, static).run(x, state)
        per_step = jnp.mean(mse(yp, y), axis=1)  # (block,)
        return jnp.sum(w * per_step), (state, per_step)

    def block(carry, xyw):
        params, opt_state, state, skipped = carry
        grad_fn = jax.grad(block_loss, has_aux=True)
        grads, (state, per_step) = grad_fn(params, state, *xyw)
        ok = jnp.all(jnp.isfinite(per_step))
        params, opt_state, bad = _apply(optimizer, params, opt_state, grads, ok, xyw[2])
        return (params, opt_state, jax.lax.stop_gradient(state), skipped + bad), per_step

    carry = (params, opt_state, net_state, jnp.zeros((), jnp.int32))
    (params, opt_state, net_state, skipped), losses = jax.lax.scan(block, carry, (xs, ys, ws))
    return params, opt_state, net_state, losses, skipped


def train_stream(
    model,
    inputs,
    targets,
    learner: _learners.AbstractLearner,
    optimizer: optax.GradientTransformation,
    *,
    update_every: int = 1,
    segment: int = 500,
    key=None,
    on_segment=None,
):
    """Train ``model`` online over one stream and return ``(model, per_step_mse)``.

    ``inputs`` (T, B, n_in) and ``targets`` (T, B, n_out), time-major; ``per_step_mse``
    (T,) is the mean squared error of the prediction made at each step, before the
    update that uses it.  The optimizer is applied every ``update_every`` steps; the
    stream is run in compiled segments of ``segment`` steps (rounded up to a multiple of
    ``update_every``) between which the learner state is carried unchanged, so the
    result does not depend on ``segment``.  ``on_segment(t_end, losses, skipped)`` is
    called after each segment with the per-step losses so far (a numpy array).  Updates
    whose gradient or parameters are not finite are skipped; if a prediction is not
    finite, :class:`~plastax.train.NonFiniteError` is raised naming the step.
    """
    from .network import check_inputs
    from .train import NonFiniteError

    check_inputs(inputs, model.n_in)
    inputs = np.asarray(inputs)
    targets = np.asarray(targets)
    T, B = inputs.shape[:2]
    if targets.shape != (T, B, model.n_out):
        raise ValueError(
            f"train_stream: expected targets of shape (T, B, n_out) = {(T, B, model.n_out)}, "
            f"received {targets.shape}; targets must match the inputs step by step"
        )
    for name, value in (("update_every", update_every), ("segment", segment)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(
                f"train_stream: expected {name} to be a positive integer, received {value!r}"
            )
    block = int(update_every)
    seg = block * math.ceil(segment / block)
    n_seg = math.ceil(T / seg)
    pad = n_seg * seg - T
    dt = model.dtype
    w = np.full((T + pad,), 1.0 / block, dtype=np.dtype(dt))
    w[T:] = 0.0  # padding after the end of the stream contributes nothing

    def padded(a):
        a = np.asarray(a, np.dtype(dt))
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a

    xs, ys = padded(inputs), padded(targets)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    params = jax.tree.map(jnp.copy, params)  # the segments donate their carried buffers
    opt_state = optimizer.init(params)
    online = isinstance(learner, _learners.AbstractOnlineLearner)
    if online:
        carried = learner.init(model, B, key=jax.random.key(0) if key is None else key)
    else:
        carried = model.init_state(B)
    losses = np.empty((0,), np.float64)
    skipped = 0
    for i in range(n_seg):
        sl = slice(i * seg, (i + 1) * seg)
        shape = (seg // block, block)
        xb = jnp.asarray(xs[sl].reshape(shape + xs.shape[1:]))
        yb = jnp.asarray(ys[sl].reshape(shape + ys.shape[1:]))
        wb = jnp.asarray(w[sl].reshape(shape))
        if online:
            out = _online_segment(
                static, params, opt_state, carried, xb, yb, wb, learner, optimizer
            )
        else:
            out = _bptt_segment(static, params, opt_state, carried, xb, yb, wb, optimizer)
        params, opt_state, carried, seg_losses, seg_skipped = out
        seg_losses = np.asarray(seg_losses, np.float64).reshape(-1)[: max(0, T - i * seg)]
        skipped += int(seg_skipped)
        bad = np.flatnonzero(~np.isfinite(seg_losses))
        if bad.size:
            t = i * seg + int(bad[0])
            raise NonFiniteError(
                f"the prediction at step {t + 1} of the stream is not finite; lower the "
                f"learning rate or pass a clip norm (--clip-norm)",
                epoch=1,
                step=t + 1,
                global_step=t + 1,
                tensor="loss",
                checkpoint=None,
            )
        losses = np.concatenate([losses, seg_losses])
        if on_segment is not None:
            on_segment(min(T, (i + 1) * seg), losses, skipped)
    return eqx.combine(params, static), losses


def _window_mean(values: np.ndarray, start: int, stop: int) -> float:
    start, stop = max(0, start), min(len(values), stop)
    return float(np.mean(values[start:stop])) if stop > start else float("nan")


def run_stream(
    config: StreamConfig,
    *,
    metrics_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the stream, network, learner and optimizer described by ``config``, train
    over the stream once and return a JSON-able summary.

    The summary holds ``mse_first`` (the first ``window`` steps, ``window = min(500,
    steps // 6)``), ``mse_pre_shift`` (the ``window`` steps before the shift),
    ``mse_post_shift`` (every step after it), ``mse_final`` (the last ``window``
    steps), ``skipped_updates``, ``train_seconds`` (without the first segment, which
    includes compilation), ``compile_seconds`` (the first segment), ``n_params``, the
    stream's parameters and the full ``config``.  ``metrics_path`` receives one JSON
    line per segment (end step, phase and mean MSE), rewritten atomically after each.
    """
    import json

    from tqdm.auto import tqdm

    from .train import build_model, make_optimizer

    if not isinstance(config, StreamConfig):
        raise ValueError(
            f"run_stream: expected a plastax.StreamConfig, received {type(config).__name__}"
        )
    stream = config.make_stream()
    inputs, targets, shift_at = stream.make(config.seed)
    model = build_model(config, stream.n_in, stream.n_out, jax.random.key(config.seed))
    learner = config.make_learner()
    T = inputs.shape[0]
    lines: list[str] = []
    marks = [time.perf_counter()]
    done = {"t": 0, "skipped": 0}
    bar = tqdm(total=T, disable=not progress, unit="step", desc=f"{config.task} {config.learner}")

    def on_segment(t_end, losses, skipped):
        marks.append(time.perf_counter())
        start, done["t"], done["skipped"] = done["t"], t_end, skipped
        seg_mse = float(np.mean(losses[start:t_end]))
        if t_end <= shift_at:
            phase = "pre-shift"
        elif start >= shift_at:
            phase = "post-shift"
        else:
            phase = "shift"
        record = {"step": int(t_end), "phase": phase, "mse": seg_mse, "skipped_updates": skipped}
        lines.append(json.dumps(record))
        if metrics_path is not None:
            atomic_write_text(metrics_path, "\n".join(lines) + "\n")
        bar.set_postfix(mse=f"{seg_mse:.4g}")
        bar.update(t_end - start)

    if metrics_path is not None:
        folder = os.path.dirname(os.fspath(metrics_path))
        if folder:
            os.makedirs(folder, exist_ok=True)
    try:
        _, losses = train_stream(
            model,
            inputs,
            targets,
            learner,
            make_optimizer(config),
            update_every=config.block,
            segment=config.segment,
            key=jax.random.fold_in(jax.random.key(config.seed), 1),
            on_segment=on_segment,
        )
    finally:
        bar.close()
    window = max(1, min(500, T // 6))
    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    return {
        "task": config.task,
        "learner": config.learner,
        "steps": int(T),
        "shift_at": int(shift_at),
        "update_every": config.block,
        "mse_first": _window_mean(losses, 0, window),
        "mse_pre_shift": _window_mean(losses, shift_at - window, shift_at),
        "mse_post_shift": _window_mean(losses, shift_at, T),
        "mse_final": _window_mean(losses, T - window, T),
        "window": window,
        "skipped_updates": int(done["skipped"]),
        "compile_seconds": marks[1] - marks[0],
        "train_seconds": marks[-1] - marks[1],
        "n_params": int(n_params),
        "backend": jax.default_backend(),
        "task_params": stream.config(),
        "config": dataclasses.asdict(config),
    }
