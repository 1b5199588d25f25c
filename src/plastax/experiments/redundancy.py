"""Sparse RTRL and continual adaptation: how redundant is gradient transport?

Reproduces, with strong baselines, the claims of "Massive Redundancy in Gradient
Transport Enables Sparse Online Learning" (see :data:`PAPER`): that propagating the RTRL
influence through only ``k`` random recurrent paths per neuron (:class:`SparseRTRL`)
recovers most of full RTRL's adaptation after a shift of the data.

Protocol (``plastax experiment redundancy``; every choice below is recorded in the JSON)
---------------------------------------------------------------------------------------

**Tasks** (:mod:`plastax.tasks.streams`): one stream per seed (batch 1), ``pretrain_steps``
steps before the shift and ``adapt_steps`` after: :class:`SineShift` (next value of a sine,
frequency 0.03 -> 0.07 cycles per step), :class:`LorenzShift` (next sample of the Lorenz
system, ``rho`` 28 -> 35, normalised with the pre-shift statistics), :class:`DelayedTarget`
(output the input of 25 steps back before the shift, 50 steps back after; white-noise
input, so no error tracking can stand in for memory).

**Model**: one recurrent layer of ``n`` units (``rnn``: :class:`TanhRNN`, the vanilla
``h_t = tanh(W x_t + U h_{t-1} + b)``; ``lstm``: :class:`LSTM`), a linear readout,
per-step MSE.  The initial weights depend on the seed only.

**Pre-training, once per (task, cell, n, seed)**: the pre-shift stream is learned by
truncated BPTT in chunks of ``pretrain_window`` steps (Adam, ``pretrain_lr``, global-norm
clipping at 1, ``pretrain_epochs`` passes over the pre-shift stream, each pass from the
zero state with the state carried between chunks).  This is deliberately *none* of the
compared online rules, so no condition starts on its own home ground, and it costs
O(n^2) per step at every ``n`` (full RTRL, O(n^4), could not pre-train n = 256 here).
The pre-trained model is then run once over the whole pre-shift stream; its final network
state and weights are the common starting point of every condition.

**Adaptation, per condition, from that common point**: the post-shift stream runs inside
one jitted ``lax.scan``; at every step the learner computes the step's loss (the
prediction made *before* the update: the online, prequential error) and its gradient
estimate, the optimizer is applied to that one step's gradient and the gradient is reset
(``learner.step`` -> ``optimizer.update(learner.grads(state))`` ->
``learner.reset_grads``).  Every condition starts with zero influence traces and a fresh
optimizer state (Adam moments at zero), the same network state and weights.  A step whose
update would make a weight non-finite is skipped and counted (``skipped_updates``).
Conditions:

* ``frozen``: no update (the model as it was at the shift);
* ``sltt``: :class:`SLTT` (``J = 0``): immediate derivatives only, no temporal transport;
* ``eprop`` (LSTM only): :class:`EProp`, neuron-local blocks of ``J`` (for the vanilla RNN,
  whose units keep no state of their own, e-prop is exactly ``sltt`` and is not re-run);
* ``k=0``: ``SparseRTRL(0)``: neuron-local blocks plus each unit's self-connection, the
  "e-prop traces" baseline of the paper, the ``L_0`` of the recovery;
* ``k=K``: ``SparseRTRL(K, "random")``: K random recurrent paths per neuron, fixed at the
  shift by the learner's key (seed-dependent);
* ``full``: :class:`RTRL` (``k = n - 1``), the ``L_full`` of the recovery.

**Optimizers**: Adam (``lr_adam`` = 3e-4) and plain SGD (``lr_sgd`` = 0.01), the same
learning rate for every condition.  Chosen on a pilot (vanilla RNN, n = 64, seed 100,
outside the reported seeds; all three tasks; ``sltt``, ``k=0``, ``k=4``, ``full``): among
Adam 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-4 gave the lowest post-shift MSE on sine and
Lorenz for *every* one of the four conditions (larger rates, with Adam's moments fresh at
the shift, undo the pre-training); among SGD 0.003, 0.01, 0.02, 0.03, 0.02 was slightly
better than 0.01 on sine and Lorenz but diverged on the delayed task, so 0.01 (stable at
every size up to n = 256 by the LMS bound ``lr |z|^2 < 2``).

**Compilation**: everything for one seed of one (task, cell, n) (pre-training, frozen
run, every condition with every optimizer) is one jitted program, compiled once and
reused by the other seeds and by tasks of the same shapes (sine and delayed); compiling
many small programs, not running them, dominates the cost at small ``n`` on a CPU.

**Metrics, per run**: ``post_shift_mse``: mean per-step loss over the post-shift stream;
``recovery``: ``(log L_0 - log L) / (log L_0 - log L_full)`` with ``L`` the run's
post-shift MSE and ``L_0``, ``L_full`` those of ``k=0`` and ``full`` of the same seed and
optimizer (so 0 for ``k=0`` and 1 for ``full`` by definition; also given for ``sltt``
and ``frozen`` on the same scale: negative means worse than ``k=0``); ``cosine``: for the
first ``cosine_steps`` post-shift steps, an exact :class:`RTRL` learner rides along every
run on the *same* trajectory (the run's own weights and network state) and the cosine
between the run's per-step gradient and RTRL's is recorded; ``cosine`` is its mean over
that window and ``cosine_cumulative`` the cosine between the gradients summed over the
window (what a learner updating once per window would see).  Both are over all trainable
parameters, readout included; the readout's gradient is exact for every learner, which
lifts every cosine (``J = 0`` included), so ``cosine_recurrent`` and
``cosine_recurrent_cumulative`` are the same over the recurrent layer's parameters
(``W_in``, ``W_rec``, bias), where the learners differ.  ``full`` has cosine 1 by
definition and ``frozen`` none.  **Per group** (task, cell, n, optimizer, condition):
mean and sample standard deviation over seeds of each metric, the coefficient of
variation over seeds of the post-shift MSE (s.d. / mean), and ``recovery_of_means``, the
recovery computed from the seed-mean losses.

Sizes: the ``ks`` sweep runs at ``hidden``; at each of ``scale_hidden`` only the
baselines and ``scale_ks`` run; the full-RTRL baseline (and with it recovery and cosine)
only where ``n <= full_max_hidden``.  What was not run is listed in the result's
``not_run``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..learners import RTRL, SLTT, EProp, SparseRTRL
from ..losses import mse
from ..network import Layer, LinearReadout, Network
from ..neurons import LSTM, TanhRNN
from ..tasks.streams import STREAMS, make_stream

__all__ = [
    "CELLS",
    "OPTIMIZERS",
    "PAPER",
    "RedundancyConfig",
    "merge_results",
    "plot_redundancy",
    "run_redundancy",
    "summarise",
]

CELLS = {"rnn": TanhRNN, "lstm": LSTM}
OPTIMIZERS = ("adam", "sgd")

PAPER = {
    "source": "Massive Redundancy in Gradient Transport Enables Sparse Online Learning",
    "claims": {
        "recovery_k4_n64": "k = 4 random paths of n = 64 recover 84 +/- 6% of full RTRL's "
        "adaptation after a shift (log-scale gap recovery, L_0 = e-prop traces, k = 0)",
        "scaling": "k = 4 stays effective up to n = 256",
        "lorenz_cv": "more stable than full RTRL on the chaotic Lorenz system: coefficient "
        "of variation over seeds 13% (sparse) vs 88% (full RTRL)",
        "lstm": "LSTMs at k = 4 match full RTRL",
        "sgd": "the results also hold with SGD",
    },
    "recovery_k4_n64": {"mean": 0.84, "sd": 0.06},
    "lorenz_cv": {"sparse": 0.13, "full": 0.88},
}
"""The claims under test, as stated in the issue that asked for this experiment."""


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"redundancy: expected {name} to be an integer >= {minimum}, received {value!r}"
        )
    return int(value)


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"redundancy: expected {name} to be a positive number, received {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"redundancy: expected {name} to be finite, received {value!r}")
    return float(value)


def _check_names(name: str, values, allowed) -> tuple[str, ...]:
    if isinstance(values, str) or not values:
        raise ValueError(
            f"redundancy: expected {name} to be a non-empty sequence of names among "
            f"{', '.join(allowed)}, received {values!r}"
        )
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(
            f"redundancy: expected {name} among {', '.join(allowed)}, received "
            f"{', '.join(map(repr, bad))}"
        )
    if len(set(values)) != len(values):
        raise ValueError(f"redundancy: expected distinct {name}, received {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class RedundancyConfig:
    """What ``plastax experiment redundancy`` runs (defaults: the issue's full plan).

    ``ks`` are the sparse-RTRL path counts swept at ``hidden``: integers, or ``"full"``
    for ``n - 1``; the baselines ``k=0`` and ``full`` (and ``frozen``, ``sltt``, and
    ``eprop`` for the LSTM) always run.  At each size of ``scale_hidden`` only the
    baselines and ``scale_ks`` run.  ``full_max_hidden``: run the full-RTRL baseline only
    up to this size (``None``: at every size)."""

    tasks: tuple[str, ...] = ("sine", "lorenz", "delayed")
    cells: tuple[str, ...] = ("rnn", "lstm")
    optimizers: tuple[str, ...] = ("adam", "sgd")
    seeds: int = 5
    hidden: int = 64
    ks: tuple[int | str, ...] = (1, 2, 4, 8, 16, 32)
    scale_hidden: tuple[int, ...] = (128, 256)
    scale_ks: tuple[int, ...] = (4,)
    full_max_hidden: int | None = None
    pretrain_steps: int = 2000
    adapt_steps: int = 1000
    cosine_steps: int = 200
    pretrain_epochs: int = 20
    pretrain_window: int = 50
    pretrain_lr: float = 3e-3
    lr_adam: float = 3e-4
    lr_sgd: float = 0.01
    curve_points: int = 100
    first_seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "tasks", _check_names("tasks", self.tasks, tuple(STREAMS)))
        object.__setattr__(self, "cells", _check_names("cells", self.cells, tuple(CELLS)))
        object.__setattr__(
            self, "optimizers", _check_names("optimizers", self.optimizers, OPTIMIZERS)
        )
        _check_int("seeds", self.seeds, 1)
        _check_int("first_seed", self.first_seed, 0)
        _check_int("hidden", self.hidden, 2)
        for name in ("pretrain_steps", "adapt_steps", "pretrain_epochs", "curve_points"):
            _check_int(name, getattr(self, name), 1)
        _check_int("cosine_steps", self.cosine_steps, 0)
        _check_int("pretrain_window", self.pretrain_window, 1)
        if self.cosine_steps > self.adapt_steps:
            raise ValueError(
                f"redundancy: expected cosine_steps <= adapt_steps = {self.adapt_steps}, "
                f"received {self.cosine_steps}"
            )
        if self.pretrain_window > self.pretrain_steps:
            raise ValueError(
                f"redundancy: expected pretrain_window <= pretrain_steps = "
                f"{self.pretrain_steps}, received {self.pretrain_window}"
            )
        for name in ("pretrain_lr", "lr_adam", "lr_sgd"):
            _check_positive(name, getattr(self, name))
        object.__setattr__(self, "scale_hidden", tuple(self.scale_hidden))
        for n in self.scale_hidden:
            _check_int("each scale_hidden size", n, 2)
        if self.hidden in self.scale_hidden or len(set(self.scale_hidden)) != len(
            self.scale_hidden
        ):
            raise ValueError(
                f"redundancy: expected distinct scale_hidden sizes other than hidden = "
                f"{self.hidden}, received {self.scale_hidden!r}"
            )
        if self.full_max_hidden is not None:
            _check_int("full_max_hidden", self.full_max_hidden, 2)
        object.__setattr__(self, "ks", tuple(self.ks))
        object.__setattr__(self, "scale_ks", tuple(self.scale_ks))
        self.resolve_ks(self.ks, self.hidden)
        for n in self.scale_hidden:
            self.resolve_ks(self.scale_ks, n)

    @staticmethod
    def resolve_ks(ks, n: int) -> list[int]:
        """Sorted distinct path counts at size ``n`` (``"full"`` -> ``n - 1``)."""
        out = set()
        for k in ks:
            if k == "full":
                out.add(n - 1)
                continue
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < n:
                raise ValueError(
                    f"redundancy: expected each k to be an integer in [0, n - 1 = {n - 1}] or "
                    f"'full' at n = {n}, received {k!r}"
                )
            out.add(int(k))
        return sorted(out)

    @classmethod
    def quick(cls, **overrides) -> RedundancyConfig:
        """The ``--quick`` preset: n = 32, 2 seeds, short streams, no scale sizes."""
        base = dict(
            hidden=32,
            seeds=2,
            ks=(1, 4),
            scale_hidden=(),
            pretrain_steps=400,
            adapt_steps=300,
            cosine_steps=50,
            pretrain_epochs=10,
            curve_points=30,
        )
        base.update(overrides)
        return cls(**base)

    def sizes(self) -> list[int]:
        return [self.hidden, *self.scale_hidden]

    def conditions(self, cell: str, n: int) -> list[tuple[str, int | None]]:
        """``(name, k)`` of every condition at size ``n`` (``k`` None: not sparse RTRL)."""
        out: list[tuple[str, int | None]] = [("frozen", None), ("sltt", None)]
        if cell == "lstm":
            out.append(("eprop", None))
        ks = self.resolve_ks(self.ks if n == self.hidden else self.scale_ks, n)
        run_full = self.full_max_hidden is None or n <= self.full_max_hidden
        for k in sorted({0, *ks}):
            if k == n - 1:
                continue
            out.append((f"k={k}", k))
        if run_full:
            out.append(("full", n - 1))
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# One seed of one (task, cell, n): pre-training and every condition in one jitted program


def build_model(cell: str, n: int, n_in: int, n_out: int, seed: int) -> Network:
    """One recurrent layer of ``n`` units and a linear readout; weights from ``seed``."""
    return Network(
        [Layer(CELLS[cell](), n, recurrent=True)],
        LinearReadout(n_out),
        n_in=n_in,
        key=jax.random.fold_in(jax.random.key(seed), n),
    )


def _pretrain(model, xs, ys, lr, epochs: int, window: int):
    """Truncated BPTT in chunks of ``window`` steps over the pre-shift stream, ``epochs``
    passes; then one forward pass over the whole stream.  Returns (model, network state
    at the end, per-step MSE of the final pass, mean chunk loss per epoch)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    n_chunks = xs.shape[0] // window
    xc = xs[: n_chunks * window].reshape((n_chunks, window) + xs.shape[1:])
    yc = ys[: n_chunks * window].reshape((n_chunks, window) + ys.shape[1:])
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))

    def chunk_loss(p, state, x, y):
        st, yp, _ = eqx.combine(p, static).run(x, state)
        return jnp.mean((yp - y) ** 2), st

    def chunk(carry, xy):
        p, o, state = carry
        (value, state), g = jax.value_and_grad(chunk_loss, has_aux=True)(p, state, *xy)
        updates, o = opt.update(g, o, p)
        return (eqx.apply_updates(p, updates), o, jax.lax.stop_gradient(state)), value

    def epoch(carry, _):
        p, o = carry
        state0 = model.init_state(xs.shape[1])
        (p, o, _), values = jax.lax.scan(chunk, (p, o, state0), (xc, yc))
        return (p, o), jnp.mean(values)

    (params, _), epoch_loss = jax.lax.scan(epoch, (params, opt.init(params)), None, length=epochs)
    model = eqx.combine(params, static)
    state, yp, _ = model.run(xs)
    return model, state, jnp.mean((yp - ys) ** 2, axis=(1, 2)), epoch_loss


def _flat(tree) -> jax.Array:
    return jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(tree)])


def _finite(tree) -> jax.Array:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _cos(a, b):
    na, nb = jnp.linalg.norm(a), jnp.linalg.norm(b)
    return jnp.where((na > 0) & (nb > 0), a @ b / jnp.maximum(na * nb, 1e-30), jnp.nan)


def _cos2(a, b, m: int):
    """Cosines of all parameters and of the first ``m`` (the recurrent layer's)."""
    return jnp.stack([_cos(a, b), _cos(a[:m], b[:m])])


def _adapt(model, net_state, xs, ys, lr, use_adam, key, learner, cosine_steps: int):
    """Online adaptation over the post-shift stream, in one ``lax.scan``.

    Every step: ``learner.step`` (loss of the prediction before the update), the
    optimizer applied to that step's gradient (Adam when ``use_adam``, else SGD, both
    with learning rate ``lr``), ``reset_grads``.  During the first ``cosine_steps`` steps
    an exact RTRL learner steps alongside on the same weights and network states, and the
    cosine between the two per-step gradients and between their running sums is
    recorded, over all parameters and over the recurrent layer's alone.  Returns
    (per-step losses (T,), per-step cosines (T, 2), cosines of the running sums (T, 2),
    both NaN after ``cosine_steps``, number of skipped updates)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    batch, dtype = xs.shape[1], xs.dtype
    lstate = learner.init(model, batch, key=key)._replace(net=net_state)
    adam = optax.scale_by_adam()
    shadow = RTRL(max_bytes=2**62) if cosine_steps and not isinstance(learner, RTRL) else None
    nan = jnp.full((2,), jnp.nan, dtype)
    m = _flat(params.layers).shape[0]  # the layer's leaves come first in the flat vector

    def update(params, ostate, g, loss_t):
        direction, new_ostate = adam.update(g, ostate, params)
        step = jax.tree.map(lambda a, b: -lr * jnp.where(use_adam, a, b), direction, g)
        new_params = eqx.apply_updates(params, step)
        ok = _finite(new_params) & jnp.isfinite(loss_t)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        return keep(new_params, params), keep(new_ostate, ostate), ~ok

    def body(carry, xy):
        params, ostate, lstate, skipped, extra = carry
        t, x, y = xy
        net = eqx.combine(params, static)
        lstate, loss_t = learner.step(net, lstate, x, y, loss=mse)
        g = learner.grads(lstate)
        cos = cum = nan
        if shadow is not None:

            def ride(extra):
                fstate, gsum, fsum = extra
                fstate, _ = shadow.step(net, fstate, x, y, loss=mse)
                a, b = _flat(g), _flat(shadow.grads(fstate))
                gsum, fsum = gsum + a, fsum + b
                return (
                    (shadow.reset_grads(fstate), gsum, fsum),
                    _cos2(a, b, m),
                    _cos2(gsum, fsum, m),
                )

            extra, cos, cum = jax.lax.cond(t < cosine_steps, ride, lambda e: (e, nan, nan), extra)
        params, ostate, bad = update(params, ostate, g, loss_t)
        carry = (params, ostate, learner.reset_grads(lstate), skipped + bad, extra)
        return carry, (loss_t, cos, cum)

    extra = None
    if shadow is not None:
        zeros = jnp.zeros(_flat(params).shape, dtype)
        extra = (shadow.init(model, batch, key=key)._replace(net=net_state), zeros, zeros)
    carry = (params, adam.init(params), lstate, jnp.zeros((), jnp.int32), extra)
    steps = jnp.arange(xs.shape[0])
    carry, (losses, cos, cum) = jax.lax.scan(body, carry, (steps, xs, ys))
    return losses, cos, cum, carry[3]


@eqx.filter_jit
def _run_seed(model, pre, post, key, lrs, use_adam, pretrain_lr, static_args):
    """Everything for one seed of one (task, cell, n), in one compiled program (compiled
    once and reused by every seed and by tasks of the same shapes): pre-training, the
    frozen model, and every learner of ``static_args.learners`` with every optimizer
    (``lax.map`` over ``lrs`` / ``use_adam``)."""
    learners, epochs, window, cosine_steps = static_args
    model, state, pre_curve, epoch_loss = _pretrain(model, *pre, pretrain_lr, epochs, window)
    xs, ys = post
    _, yp, _ = model.run(xs, state)
    frozen = jnp.mean((yp - ys) ** 2, axis=(1, 2))

    def per_optimizer(opt):
        lr, flag = opt
        return [_adapt(model, state, xs, ys, lr, flag, key, lrn, cosine_steps) for lrn in learners]

    adapted = jax.lax.map(per_optimizer, (lrs, use_adam))
    return pre_curve, epoch_loss, frozen, adapted


def _learner(name: str, k: int | None):
    if name == "sltt":
        return SLTT()
    if name == "eprop":
        return EProp()
    if name == "full":
        return RTRL(max_bytes=2**62)
    return SparseRTRL(int(k), "random", max_bytes=2**62)


def _blocks(values: np.ndarray, points: int) -> list[float]:
    parts = np.array_split(np.asarray(values, np.float64), min(points, len(values)))
    return [float(np.mean(p)) for p in parts]


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------------------
# The sweep


def run_redundancy(config: RedundancyConfig | None = None, *, progress: bool = True) -> dict:
    """Run the protocol of the module docstring; return the result dictionary (the
    ``--json`` content): ``config``, ``paper``, ``pretrain`` (one row per task, cell, n
    and seed), ``runs`` (one row per task, cell, n, optimizer, seed and condition),
    ``summary`` (mean and s.d. over seeds), ``not_run`` and ``wall_seconds``."""
    from tqdm.auto import tqdm

    config = RedundancyConfig() if config is None else config
    if not isinstance(config, RedundancyConfig):
        raise ValueError(
            f"redundancy: expected a RedundancyConfig, received {type(config).__name__}"
        )
    t_start = time.perf_counter()
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    plan = [
        (task, cell, n) for task in config.tasks for cell in config.cells for n in config.sizes()
    ]
    total = sum(
        len(seeds) * len(config.optimizers) * len(config.conditions(cell, n)) for _, cell, n in plan
    )
    bar = tqdm(total=total, desc="redundancy", unit="run", disable=not progress, leave=True)
    runs: list[dict] = []
    seed_rows: list[dict] = []
    n_steps = config.pretrain_steps + config.adapt_steps
    lrs = jnp.asarray([config.lr_adam if o == "adam" else config.lr_sgd for o in config.optimizers])
    use_adam = jnp.asarray([o == "adam" for o in config.optimizers])
    try:
        for task_name, cell, n in plan:
            stream_task = make_stream(task_name, n_steps=n_steps, shift_at=config.pretrain_steps)
            conds = config.conditions(cell, n)
            trained = [(name, k) for name, k in conds if name != "frozen"]
            has_full = any(name == "full" for name, _ in conds)
            static_args = (
                tuple(_learner(name, k) for name, k in trained),
                config.pretrain_epochs,
                config.pretrain_window,
                config.cosine_steps if has_full else 0,
            )
            for seed in seeds:
                bar.set_postfix_str(f"{task_name} {cell} n={n} seed={seed}")
                t0 = time.perf_counter()
                inputs, targets, shift = stream_task.make(seed)
                model = build_model(cell, n, stream_task.n_in, stream_task.n_out, seed)
                out = _run_seed(
                    model,
                    (jnp.asarray(inputs[:shift]), jnp.asarray(targets[:shift])),
                    (jnp.asarray(inputs[shift:]), jnp.asarray(targets[shift:])),
                    jax.random.fold_in(jax.random.key(seed), 1),
                    lrs,
                    use_adam,
                    jnp.asarray(config.pretrain_lr, lrs.dtype),
                    static_args,
                )
                pre_curve, epoch_loss, frozen, adapted = jax.tree.map(np.asarray, out)
                seconds = time.perf_counter() - t0
                pre_mse = _num(np.mean(pre_curve[-max(1, shift // 4) :]))
                seed_rows.append(
                    {
                        "task": task_name,
                        "cell": cell,
                        "n": n,
                        "seed": seed,
                        "pre_shift_mse": pre_mse,
                        "pretrain_epoch_loss": [_num(v) for v in epoch_loss],
                        "seconds": seconds,
                    }
                )
                for o, opt in enumerate(config.optimizers):
                    for name, k in conds:
                        row = {
                            "task": task_name,
                            "cell": cell,
                            "n": n,
                            "optimizer": opt,
                            "lr": 0.0 if name == "frozen" else float(lrs[o]),
                            "seed": seed,
                            "condition": name,
                            "k": k,
                            "adapt_steps": config.adapt_steps,
                            "pre_shift_mse": pre_mse,
                        }
                        cos = cum = None
                        skipped = 0
                        ones = np.ones((config.cosine_steps, 2))
                        if name == "frozen":
                            losses = frozen
                        else:
                            losses, cos, cum, skipped = (
                                a[o] for a in adapted[trained.index((name, k))]
                            )
                            skipped = int(skipped)
                            if not has_full or not config.cosine_steps:
                                cos = cum = None
                            elif name == "full":
                                cos = cum = ones
                            else:
                                cos = cos[: config.cosine_steps]
                                cum = cum[: config.cosine_steps]
                        row.update(
                            post_shift_mse=_num(np.mean(losses)),
                            recovery=None,
                            cosine=None if cos is None else _num(np.nanmean(cos[:, 0])),
                            cosine_cumulative=None if cum is None else _num(cum[-1, 0]),
                            cosine_recurrent=None if cos is None else _num(np.nanmean(cos[:, 1])),
                            cosine_recurrent_cumulative=None if cum is None else _num(cum[-1, 1]),
                            cosine_recurrent_curve=None
                            if cos is None
                            else _blocks(cos[:, 1], config.curve_points),
                            skipped_updates=skipped,
                            loss_curve=_blocks(losses, config.curve_points),
                        )
                        runs.append(row)
                bar.update(len(config.optimizers) * len(conds))
    finally:
        bar.close()
    _add_recovery(runs)
    return {
        "experiment": "redundancy",
        "config": config.to_dict(),
        "tasks": {
            t: make_stream(t, n_steps=n_steps, shift_at=config.pretrain_steps).config()
            for t in config.tasks
        },
        "protocol": __doc__,
        "paper": PAPER,
        "seeds": seed_rows,
        "runs": runs,
        "summary": summarise(runs),
        "not_run": _not_run(config),
        "backend": jax.default_backend(),
        "wall_seconds": time.perf_counter() - t_start,
    }


def _add_recovery(runs: list[dict]) -> None:
    """Fill ``recovery`` (and the gap ``log L_0 - log L_full``) per seed group."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["cell"], r["n"], r["optimizer"], r["seed"]), []).append(r)
    for rows in groups.values():
        by = {r["condition"]: r for r in rows}
        l0 = by.get("k=0", {}).get("post_shift_mse")
        lf = by.get("full", {}).get("post_shift_mse")
        gap = None
        if l0 is not None and lf is not None and l0 > 0 and lf > 0:
            gap = math.log(l0) - math.log(lf)
        for r in rows:
            r["log_gap_k0_full"] = gap
            loss = r["post_shift_mse"]
            if gap is None or gap == 0.0 or loss is None or loss <= 0:
                r["recovery"] = None
            elif r["condition"] == "k=0":
                r["recovery"] = 0.0
            elif r["condition"] == "full":
                r["recovery"] = 1.0
            else:
                r["recovery"] = (math.log(l0) - math.log(loss)) / gap


def _mean_sd(values) -> tuple[float | None, float | None]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return None, None
    mean = float(np.mean(v))
    return mean, (float(np.std(v, ddof=1)) if len(v) > 1 else None)


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and sample s.d. over seeds per (task, cell, n, optimizer, condition)."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = (r["task"], r["cell"], r["n"], r["optimizer"], r["condition"])
        groups.setdefault(key, []).append(r)
    seed_means: dict[tuple, float | None] = {}
    for key, rows in groups.items():
        seed_means[key] = _mean_sd(r["post_shift_mse"] for r in rows)[0]
    out = []
    for key, rows in groups.items():
        task, cell, n, opt, cond = key
        row: dict[str, Any] = dict(
            task=task, cell=cell, n=n, optimizer=opt, condition=cond, k=rows[0]["k"]
        )
        row["n_seeds"] = len(rows)
        for metric in (
            "post_shift_mse",
            "recovery",
            "cosine",
            "cosine_cumulative",
            "cosine_recurrent",
            "cosine_recurrent_cumulative",
        ):
            row[f"{metric}_mean"], row[f"{metric}_sd"] = _mean_sd(r.get(metric) for r in rows)
        m, s = row["post_shift_mse_mean"], row["post_shift_mse_sd"]
        row["post_shift_mse_cv"] = None if m is None or s is None or m == 0 else s / m
        l0 = seed_means.get((task, cell, n, opt, "k=0"))
        lf = seed_means.get((task, cell, n, opt, "full"))
        lk = seed_means[key]
        rec = None
        if None not in (l0, lf, lk) and min(l0, lf, lk) > 0 and l0 != lf:
            rec = (math.log(l0) - math.log(lk)) / (math.log(l0) - math.log(lf))
        row["recovery_of_means"] = rec
        row["skipped_updates"] = sum(r["skipped_updates"] for r in rows)
        out.append(row)
    return out


def _not_run(config: RedundancyConfig) -> list[str]:
    notes = []
    for cell in config.cells:
        for n in config.sizes():
            if config.full_max_hidden is not None and n > config.full_max_hidden:
                notes.append(
                    f"{cell} n={n}: no full-RTRL baseline (n > full_max_hidden = "
                    f"{config.full_max_hidden}), so no recovery and no gradient cosine"
                )
        if cell == "rnn":
            notes.append(
                "rnn: EProp() not run separately: the vanilla RNN unit keeps no state of its "
                "own, so e-prop is exactly SLTT (J = 0); see the 'sltt' rows"
            )
    return notes


# --------------------------------------------------------------------------------------
# Plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


_STYLE = {
    ("rnn", "adam"): "C0",
    ("rnn", "sgd"): "C1",
    ("lstm", "adam"): "C2",
    ("lstm", "sgd"): "C3",
}


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _window_mean(run: dict, window: int | None) -> float | None:
    """Post-shift MSE of a run over its first ``window`` steps (from the block means of
    its loss curve; exact when the blocks divide the window)."""
    steps = run.get("adapt_steps")
    if window is None or not steps or window >= steps:
        return run["post_shift_mse"]
    curve = run["loss_curve"]
    blocks = max(1, round(len(curve) * window / steps))
    return float(np.mean(curve[:blocks]))


def _sweep_size(summary, task, cell, opt) -> int | None:
    """The size with the most values of k for (task, cell, optimizer) (ties: smallest)."""
    counts: dict[int, int] = {}
    for s in summary:
        if (s["task"], s["cell"], s["optimizer"]) == (task, cell, opt) and s["k"] is not None:
            counts[s["n"]] = counts.get(s["n"], 0) + 1
    return min(counts, key=lambda n: (-counts[n], n)) if counts else None


def plot_redundancy(result: dict, folder: str, prefix: str = "redundancy") -> list[str]:
    """PNG plots of a result (as returned, merged or loaded from JSON) into ``folder``:
    recovery and gradient cosine against k (at the size of each k sweep), post-shift
    MSE against n (when several sizes ran), and post-shift loss curves per seed for each
    cell and optimizer.  Returns the paths written."""
    import os

    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    summary, runs = result["summary"], result["runs"]
    tasks = _ordered(s["task"] for s in summary)
    cells = _ordered(s["cell"] for s in summary)
    opts = _ordered(s["optimizer"] for s in summary)
    paths = []

    def row(task, cell, n, opt, cond):
        for s in summary:
            if (s["task"], s["cell"], s["n"], s["optimizer"], s["condition"]) == (
                task, cell, n, opt, cond,
            ):  # fmt: skip
                return s
        return None

    for metric, label, fname in (
        ("recovery", "log-gap recovery (k=0: 0, full RTRL: 1)", "recovery"),
        (
            "cosine_recurrent",
            "cosine to the RTRL gradient\n(recurrent layer, mean per step)",
            "cosine",
        ),
    ):
        fig, axes = plt.subplots(
            1, len(tasks), figsize=(4.4 * len(tasks), 3.8), squeeze=False, sharey=True
        )
        for ax, task in zip(axes[0], tasks, strict=True):
            for cell in cells:
                for opt in opts:
                    n = _sweep_size(summary, task, cell, opt)
                    if n is None:
                        continue
                    rows = sorted(
                        (
                            s
                            for s in summary
                            if (s["task"], s["cell"], s["n"], s["optimizer"])
                            == (task, cell, n, opt)
                            and s["k"] is not None
                            and s[f"{metric}_mean"] is not None
                        ),
                        key=lambda s: s["k"],
                    )
                    if not rows:
                        continue
                    color = _STYLE.get((cell, opt), "C4")
                    ax.errorbar(
                        [r["k"] for r in rows],
                        [r[f"{metric}_mean"] for r in rows],
                        yerr=[r[f"{metric}_sd"] or 0.0 for r in rows],
                        marker="o",
                        ms=3,
                        capsize=2,
                        color=color,
                        label=f"{cell} n={n} {opt}",
                    )
                    base = row(task, cell, n, opt, "sltt")
                    if base and base[f"{metric}_mean"] is not None:
                        ax.axhline(base[f"{metric}_mean"], color=color, ls=":", lw=1)
            if metric == "recovery":
                ax.errorbar([4], [0.84], yerr=[0.06], marker="*", ms=10, color="k", ls="none",
                            label="paper: k=4, n=64")  # fmt: skip
                ax.axhline(0.0, color="0.6", lw=0.5)
                ax.axhline(1.0, color="0.6", lw=0.5)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(-0.2, None)
            ax.set_xlabel("k, paths per neuron (k = n - 1: full RTRL)")
            ax.set_title(task)
        axes[0][0].set_ylabel(label)
        handles = {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lab, h)
        axes[0][-1].legend(
            list(handles.values()),
            list(handles),
            fontsize=7,
            title="dotted: J = 0 (SLTT)",
            title_fontsize=7,
        )
        fig.tight_layout()
        path = os.path.join(folder, f"{prefix}_{fname}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    opt = "adam" if "adam" in opts else opts[0]
    scaled = [t for t in tasks if len({r["n"] for r in runs if r["task"] == t}) > 1]
    if scaled:
        fig, axes = plt.subplots(1, len(scaled), figsize=(4.6 * len(scaled), 3.8), squeeze=False)
        for ax, task in zip(axes[0], scaled, strict=True):
            sel = [r for r in runs if r["task"] == task and r["optimizer"] == opt]
            window = min(r.get("adapt_steps", 0) or 0 for r in sel) or None
            for cell in cells:
                for j, cond in enumerate(("frozen", "sltt", "k=0", "k=4", "full")):
                    points = []
                    for n in sorted({r["n"] for r in sel if r["cell"] == cell}):
                        v = [
                            _window_mean(r, window)
                            for r in sel
                            if (r["cell"], r["n"], r["condition"]) == (cell, n, cond)
                        ]
                        m, sd = _mean_sd(v)
                        if m is not None:
                            points.append((n, m, sd or 0.0))
                    if points:
                        ns, ms, sds = zip(*points, strict=True)
                        ax.errorbar(ns, ms, yerr=sds, marker="o" if cell == "rnn" else "s",
                                    color=f"C{j}", ls="-" if cell == "rnn" else "--",
                                    capsize=2, label=f"{cell} {cond}")  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("n (hidden units)")
            ax.set_title(f"{task} ({opt}), first {window} post-shift steps", fontsize=9)
            ax.legend(fontsize=6)
        axes[0][0].set_ylabel("post-shift MSE (mean ± s.d. over seeds)")
        fig.tight_layout()
        path = os.path.join(folder, f"{prefix}_scaling.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    show = ("frozen", "sltt", "eprop", "k=0", "k=4", "full")
    for cell in cells:
        for opt in opts:
            sel = [r for r in runs if r["cell"] == cell and r["optimizer"] == opt]
            if not sel:
                continue
            n = min(r["n"] for r in sel)
            sel = [r for r in sel if r["n"] == n]
            row_tasks = _ordered(r["task"] for r in sel)
            seeds = sorted({r["seed"] for r in sel})[:5]
            fig, axes = plt.subplots(
                len(row_tasks),
                len(seeds),
                figsize=(3.0 * len(seeds), 2.4 * len(row_tasks)),
                squeeze=False,
                sharex=True,
            )
            for i, task in enumerate(row_tasks):
                for j, seed in enumerate(seeds):
                    ax = axes[i][j]
                    for c, cond in enumerate(show):
                        hit = [
                            r
                            for r in sel
                            if (r["task"], r["seed"], r["condition"]) == (task, seed, cond)
                        ]
                        if not hit:
                            continue
                        curve = np.asarray(hit[0]["loss_curve"], float)
                        steps = hit[0].get("adapt_steps", len(curve))
                        x = np.linspace(0, steps, len(curve), endpoint=False)
                        ax.plot(x, curve, color=f"C{c}", lw=1, label=cond)
                    ax.set_yscale("log")
                    if i == 0:
                        ax.set_title(f"seed {seed}", fontsize=9)
                    if j == 0:
                        ax.set_ylabel(f"{task}\nMSE", fontsize=8)
                    if i == len(row_tasks) - 1:
                        ax.set_xlabel("steps after the shift", fontsize=8)
            axes[0][-1].legend(fontsize=6)
            fig.suptitle(f"post-shift loss, {cell} n={n}, {opt} (block means)", fontsize=10)
            fig.tight_layout()
            path = os.path.join(folder, f"{prefix}_curves_{cell}_{opt}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths


_RECURRENT_COSINE = ("cosine_recurrent", "cosine_recurrent_cumulative", "cosine_recurrent_curve")


def _run_key(r: dict) -> tuple:
    return (r["task"], r["cell"], r["n"], r["optimizer"], r["seed"], r["condition"])


def _check_result(res) -> None:
    if not isinstance(res, dict) or res.get("experiment") != "redundancy":
        raise ValueError(
            "redundancy: expected results of plastax experiment redundancy, received "
            f"{type(res).__name__} {str(res)[:60]!r}"
        )


def merge_results(results: list[dict], cosine_from: list[dict] | None = None) -> dict:
    """One result from several (e.g. parts of a sweep run with different options):
    runs, per-seed rows and notes concatenated, summary recomputed; ``parts`` keeps each
    part's configuration and wall time.  Raises ``ValueError`` on a run that appears in
    two parts.

    ``cosine_from``: results of a shorter re-run of the same runs (same seeds and
    pre-training, ``adapt_steps = cosine_steps``) that recorded the recurrent-layer
    cosine a part lacks.  Its first ``cosine_steps`` post-shift steps are the same
    trajectory, which is checked: the all-parameter cosines of both must agree to 1e-3,
    and the cosine windows must be equal; the ``cosine_recurrent*`` fields are then
    copied (and ``cosine_recurrent_from`` set to ``"re-run"``)."""
    if not results:
        raise ValueError("redundancy: expected at least one result to merge, received none")
    runs, seeds, notes, seen = [], [], [], set()
    for res in results:
        _check_result(res)
        part = [dict(r) for r in res["runs"]]  # copies: the inputs are left as they are
        for r in part:
            key = _run_key(r)
            if key in seen:
                raise ValueError(
                    f"redundancy: expected each run in one part only, received {key} twice"
                )
            seen.add(key)
        if cosine_from:
            _fill_cosine(part, res["config"]["cosine_steps"], cosine_from)
        runs.extend(part)
        seeds.extend(res.get("seeds", []))
        notes.extend(n for n in res.get("not_run", []) if n not in notes)
    first = results[0]
    return {
        "experiment": "redundancy",
        "config": first["config"],
        "parts": [{"config": r["config"], "wall_seconds": r.get("wall_seconds")} for r in results],
        "cosine_from": [
            {"config": r["config"], "wall_seconds": r.get("wall_seconds")}
            for r in cosine_from or []
        ],
        "tasks": {k: v for r in results for k, v in r.get("tasks", {}).items()},
        "protocol": first.get("protocol"),
        "paper": PAPER,
        "seeds": seeds,
        "runs": runs,
        "summary": summarise(runs),
        "not_run": notes,
        "backend": first.get("backend"),
        "wall_seconds": sum(r.get("wall_seconds") or 0.0 for r in results),
    }


def _fill_cosine(runs: list[dict], window: int, sources: list[dict]) -> None:
    """Copy the recurrent-layer cosine into ``runs`` (of a part whose cosine window is
    ``window``) from the runs of ``sources``, after checking they are the same runs."""
    source: dict[tuple, tuple[dict, int]] = {}
    for res in sources:
        _check_result(res)
        for r in res["runs"]:
            source[_run_key(r)] = (r, res["config"]["cosine_steps"])
    for r in runs:
        if r.get("cosine_recurrent") is not None or _run_key(r) not in source:
            continue
        src, src_window = source[_run_key(r)]
        if src_window != window:
            raise ValueError(
                f"redundancy: expected the cosine re-run of {_run_key(r)} to use the same "
                f"window, cosine_steps = {window}, received {src_window}"
            )
        a, b = r.get("cosine"), src.get("cosine")
        if (a is None) != (b is None) or (a is not None and abs(a - b) > 1e-3):
            raise ValueError(
                f"redundancy: expected the cosine re-run of {_run_key(r)} to follow the "
                f"same trajectory (all-parameter cosine {a}), received cosine {b}"
            )
        for field in _RECURRENT_COSINE:
            r[field] = src.get(field)
        r["cosine_recurrent_from"] = "re-run"
