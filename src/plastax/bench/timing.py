"""Timing and memory helpers shared by the benchmarks (DESIGN.md section 6).

Wall time.  :func:`time_jitted` compiles ``jax.jit(fn).lower(*args).compile()`` and
times that apart (``compile_s``), runs the compiled function ``warmup`` times, then
``repeats`` times, each ended by ``jax.block_until_ready``, and reports the median and
the minimum.  When one warm-up run already takes longer than ``budget_s`` it repeats
fewer times (at least once), so slow baselines (RTRL) do not dominate a benchmark.
:func:`time_interleaved` does the same for several functions whose times are compared,
in rounds (each round runs each function once), so that a change of load from other
processes during the measurement affects all of them alike.

Compiled memory.  :func:`compiled_stats` reads XLA's memory analysis of the compiled
function: ``temp_bytes`` is the scratch memory (stored activations, traces,
temporaries); inputs are arguments and reported apart.

Measured peak.  :func:`run_in_subprocess` runs a configuration in a fresh Python
process, so that nothing of another configuration is resident.  Inside it,
:func:`measure_run_peak` compiles and runs the function once (warm-up: thread pools and
allocator arenas), frees what it can, returns freed heap to the OS (``malloc_trim``),
resets the kernel's high-water mark of resident memory (``/proc/self/clear_refs``,
Linux >= 4.0) and runs again (several times: the median peak is kept, so that a
stray allocation of the runtime in one run does not count).  The *run peak* is the
high-water mark minus the resident memory just before that run: the extra memory the
computation itself needs, without the interpreter, JAX, the compiler or the inputs.
Glibc is told to serve every allocation of 64 KiB or more with ``mmap``
(``MALLOC_MMAP_THRESHOLD_``), so that freed buffers are returned to the OS and the next
run's buffers count again.
Where ``clear_refs`` cannot be written, the run peak falls back to the process peak
(``ru_maxrss``) minus the resident memory before the first run, and says so
(``method``).  The process's lifetime peak (``ru_maxrss`` read before the reset,
so compilation and the first run are included) is reported too, with the resident
memory after imports and building the model (``rss_start_bytes``); their difference
is the "process peak minus baseline" measure.

On an accelerator the computation's memory is the device's, not the process's: the
run peak is then the device allocator's high-water mark during a run minus the bytes
in use before it (:func:`_device_peak_of`).  The child process does not autotune and
takes one preallocated pool of half the device (``XLA_PYTHON_CLIENT_MEM_FRACTION``),
so the parent must not preallocate: run it with
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (``scripts/gpu_bench.sh`` does).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..learners import LEARNERS, make_learner
from ..network import Layer, LeakyReadout, LinearReadout, Network
from ..neurons import ALIF, LIF

__all__ = [
    "NEURONS",
    "build_network",
    "parse_learner",
    "time_jitted",
    "time_interleaved",
    "compiled_stats",
    "learner_function",
    "inference_function",
    "traffic_floor_function",
    "trace_bytes",
    "make_inputs",
    "measure_run_peak",
    "measure_config",
    "time_learners",
    "run_in_subprocess",
    "machine_info",
]


# --------------------------------------------------------------------------------------
# Models and learners by name

NEURONS = {
    # LIF whose reset carries no gradient: its Jacobian blocks are constant, so EProp
    # factorises its traces (one per presynaptic unit, shared by all neurons).
    "lif_detach": lambda: LIF(detach_reset=True),
    # LIF with the reset differentiated through the surrogate: full traces (d = 1).
    "lif": LIF,
    # Adaptive LIF (Bellec et al. 2020): two states, full traces that cannot be factorised.
    "alif": ALIF,
}
"""Neuron models of the benchmarks, by name."""

NEURON_NOTES = {
    "lif_detach": "LIF, reset gradient detached (factorised e-prop traces)",
    "lif": "LIF, reset differentiated (full e-prop traces)",
    "alif": "ALIF (full e-prop traces, cannot be factorised)",
}


def build_network(
    neuron: str,
    hidden: int,
    *,
    n_layers: int = 1,
    recurrent: bool = True,
    n_in: int = 100,
    n_out: int = 10,
    readout: str = "linear",
    seed: int = 0,
    input_gain: float | None = None,
    recurrent_gain: float | None = None,
    dtype=None,
) -> Network:
    """A stack of ``n_layers`` layers of ``hidden`` neurons and a readout
    (``"linear"`` or ``"leaky"``); gains as in :class:`plastax.Layer`."""
    if neuron not in NEURONS:
        raise ValueError(f"bench: unknown neuron {neuron!r}; expected one of: {', '.join(NEURONS)}")
    if readout not in ("linear", "leaky"):
        raise ValueError(f"bench: expected readout 'linear' or 'leaky', received {readout!r}")
    layers = [
        Layer(
            NEURONS[neuron](),
            hidden,
            recurrent=recurrent,
            input_gain=input_gain,
            recurrent_gain=recurrent_gain,
        )
        for _ in range(n_layers)
    ]
    head = LinearReadout(n_out) if readout == "linear" else LeakyReadout(n_out)
    return Network(layers, head, n_in=n_in, key=jax.random.key(seed), dtype=dtype)


def parse_learner(spec: str):
    """``"name"`` or ``"name:option=value:..."`` (e.g. ``"sltt:k=4"``) -> learner.
    Integer values are converted; the spec is the learner's label in tables."""
    name, *opts = str(spec).split(":")
    options = {}
    for opt in opts:
        if "=" not in opt:
            raise ValueError(
                f"bench: expected learner options as name:key=value (e.g. sltt:k=4), "
                f"received {spec!r}"
            )
        key, value = opt.split("=", 1)
        try:
            options[key] = int(value)
        except ValueError:
            options[key] = value
    cls = LEARNERS.get(name.lower().replace("-", "_"))
    if cls is not None:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"bench: learner {name!r} takes no option {', '.join(unknown)}; "
                f"its options: {', '.join(sorted(known)) or 'none'}"
            )
    return make_learner(name, **options)


# --------------------------------------------------------------------------------------
# Wall time


def _block(out):
    return jax.block_until_ready(out)


def time_jitted(
    fn: Callable,
    *args,
    repeats: int = 3,
    warmup: int = 1,
    budget_s: float | None = None,
) -> dict:
    """Compile ``fn`` for ``args``, then time it.

    Returns ``compile_s`` (lowering and compiling), ``median_s`` and ``min_s`` over the
    timed runs, ``runs`` (each run's seconds) and the compiled object's memory stats.
    ``budget_s``: when the first warm-up run takes longer, time fewer runs (>= 1).
    """
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    first = None
    for _ in range(max(int(warmup), 0)):
        t0 = time.perf_counter()
        _block(compiled(*args))
        first = time.perf_counter() - t0 if first is None else first
    n = max(int(repeats), 1)
    if budget_s is not None and first is not None and first > 0:
        n = max(1, min(n, int(budget_s // first)))
    runs = []
    for _ in range(n):
        t0 = time.perf_counter()
        _block(compiled(*args))
        runs.append(time.perf_counter() - t0)
    return {
        "compile_s": compile_s,
        "median_s": statistics.median(runs),
        "min_s": min(runs),
        "runs": runs,
        **_memory_of(compiled),
    }


def time_interleaved(
    jobs: dict, *, repeats: int = 3, warmup: int = 1, budget_s: float | None = None
) -> dict:
    """Time several jitted functions against each other, in rounds.

    ``jobs``: name -> ``(fn, args)``.  Every function is compiled first (``compile_s``
    apart) and warmed up; then each round runs every function once, in turn, each run
    ended by ``jax.block_until_ready``.  Load from other processes that changes during
    the measurement then falls on every function alike, so the ratios of their times
    are measured in one run.  ``budget_s``: a function whose warm-up run takes longer
    joins fewer rounds (at least one).  Returns name -> the dictionary of
    :func:`time_jitted` (``median_s``, ``min_s``, ``runs``, ``compile_s``, memory)."""
    compiled, first, out = {}, {}, {}
    for name, (fn, args) in jobs.items():
        t0 = time.perf_counter()
        compiled[name] = jax.jit(fn).lower(*args).compile()
        out[name] = {"compile_s": time.perf_counter() - t0, **_memory_of(compiled[name])}
    for name, (_, args) in jobs.items():
        for _ in range(max(int(warmup), 1)):
            t0 = time.perf_counter()
            _block(compiled[name](*args))
            first.setdefault(name, time.perf_counter() - t0)
    rounds = {}
    for name in jobs:
        n = max(int(repeats), 1)
        if budget_s is not None and first[name] > 0:
            n = max(1, min(n, int(budget_s // first[name])))
        rounds[name] = n
    runs: dict = {name: [] for name in jobs}
    for r in range(max(rounds.values(), default=0)):
        for name, (_, args) in jobs.items():
            if r >= rounds[name]:
                continue
            t0 = time.perf_counter()
            _block(compiled[name](*args))
            runs[name].append(time.perf_counter() - t0)
    for name in jobs:
        out[name].update(
            median_s=statistics.median(runs[name]), min_s=min(runs[name]), runs=runs[name]
        )
    return out


def _memory_of(compiled) -> dict:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # pragma: no cover - backends without memory analysis
        return {}
    if stats is None:  # pragma: no cover
        return {}
    return {
        "temp_bytes": int(stats.temp_size_in_bytes),
        "argument_bytes": int(stats.argument_size_in_bytes),
        "output_bytes": int(stats.output_size_in_bytes),
    }


def compiled_stats(fn: Callable, *args) -> dict:
    """XLA's memory analysis of ``jax.jit(fn)`` at these argument shapes (``args`` may
    be ``jax.ShapeDtypeStruct``; nothing is executed), plus ``compile_s``."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return {"compile_s": time.perf_counter() - t0, **_memory_of(compiled)}


# --------------------------------------------------------------------------------------
# The functions that are timed


def make_inputs(model, n_steps: int, batch: int, *, rate: float = 0.05, seed: int = 0):
    """Random input spikes (T, B, n_in) at ``rate``, random class targets (T, B) and a
    mask of ones (T,), in the model's dtype."""
    kx, kt = jax.random.split(jax.random.key(seed))
    x = (jax.random.uniform(kx, (n_steps, batch, model.n_in)) < rate).astype(model.dtype)
    t = jax.random.randint(kt, (n_steps, batch), 0, model.n_out)
    m = jnp.ones((n_steps,), model.dtype)
    return x, t, m


def learner_function(learner, model):
    """``(f, params)``: ``f(params, x, targets, mask)`` is ``learner.value_and_grad`` of
    the model with these parameters (arrays are arguments, not constants)."""
    params, static = eqx.partition(model, eqx.is_array)

    def f(p, x, t, m):
        return learner.value_and_grad(eqx.combine(p, static), x, t, m)

    return f, params


def inference_function(model):
    """``(f, params)``: ``f(params, x)`` is the forward pass ``model(x)``, the floor that
    every learner's step pays."""
    params, static = eqx.partition(model, eqx.is_array)

    def f(p, x):
        return eqx.combine(p, static)(x)

    return f, params


def trace_bytes(learner, model, batch: int) -> tuple[int, list[tuple[int, ...]]]:
    """Bytes and shapes of an online learner's traces (``learner.init(...).traces``,
    every layer, filters included), measured from the shapes only."""
    shapes = jax.eval_shape(lambda: learner.init(model, batch).traces)
    leaves = jax.tree.leaves(shapes)
    total = sum(int(np.prod(s.shape)) * jnp.dtype(s.dtype).itemsize for s in leaves)
    return total, [tuple(s.shape) for s in leaves]


def traffic_floor_function(shapes, dtype):
    """``(f, args)``: a ``lax.scan`` over T steps that, per step, reads and writes
    arrays of exactly these shapes once with one fused element-wise op,
    ``e = a_t * e + b_t``.  Its time is bound by memory traffic: no learner that keeps
    traces of this size can step faster.  ``f(e0, a, b)``; ``a``, ``b`` are (T,)."""

    def f(e0, a, b):
        def body(e, ab):
            at, bt = ab
            return tuple(at * x + bt for x in e), None

        e, _ = jax.lax.scan(body, e0, (a, b))
        return e

    e0 = tuple(jnp.zeros(s, dtype) for s in shapes)
    return f, e0


# --------------------------------------------------------------------------------------
# Measured peak memory (in a fresh process)


def _status_kib() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:  # pragma: no cover - not Linux
        pass
    return out


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _settled_rss(timeout_s: float = 1.0) -> int:
    """Resident bytes once the runtime has released the last run's buffers (freed
    asynchronously after the outputs are ready): trim, then wait until two reads
    10 ms apart agree."""
    deadline = time.perf_counter() + timeout_s
    _trim()
    rss = _status_kib().get("VmRSS", 0)
    while time.perf_counter() < deadline:
        time.sleep(0.01)
        _trim()
        now = _status_kib().get("VmRSS", 0)
        if now == rss:
            break
        rss = now
    return rss * 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure_run_peak(fn: Callable, *args) -> dict:
    """Peak extra resident memory of one run of ``jax.jit(fn)(*args)`` (see the module
    docstring), with the compile time.  Call it in a fresh process
    (:func:`run_in_subprocess`)."""
    rss_start = _status_kib().get("VmRSS", 0) * 1024
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    return {"compile_s": compile_s, **_peak_of(compiled, args, rss_start)}


def _device_memory_stats() -> dict | None:
    """The allocator's statistics of the first device where it is an accelerator
    (``bytes_in_use``, ``peak_bytes_in_use``, ...); None on the CPU, where the
    computation's memory is the process's resident memory."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    try:
        return device.memory_stats()
    except Exception:  # pragma: no cover - backends without allocator statistics
        return None


UPPER_BOUND = "device_peak (upper bound: the peak was set before the run)"
"""``method`` of a measured peak that only bounds the run's own (see
:func:`_device_peak_of`)."""


def peak_is_upper_bound(row: dict) -> bool:
    """Whether a result row's measured peak is only an upper bound: an accelerator's
    allocator peak that had been set before the run."""
    return row.get("method") == UPPER_BOUND


def device_of(machine: dict) -> str | None:
    """The accelerator that :func:`machine_info` describes (its kind, e.g. ``NVIDIA
    H100 80GB HBM3``), or None where the numbers come from the CPU."""
    if machine.get("backend", "cpu") == "cpu":
        return None
    return machine.get("device_kind") or machine["backend"]


def _device_in_use(timeout_s: float = 1.0) -> int:
    """Device bytes in use once the runtime has released the last run's buffers
    (freed asynchronously): wait until two reads 10 ms apart agree."""
    deadline = time.perf_counter() + timeout_s
    now = (_device_memory_stats() or {}).get("bytes_in_use", 0)
    while time.perf_counter() < deadline:
        time.sleep(0.01)
        again = (_device_memory_stats() or {}).get("bytes_in_use", 0)
        if again == now:
            break
        now = again
    return int(now)


def _device_peak_of(compiled, args, rss_start: int, repeats: int, budget_s) -> dict:
    """:func:`_peak_of` on an accelerator, where the allocator's high-water mark cannot
    be reset.  The first run's peak, minus what is still allocated once its outputs are
    freed: the arguments, and what the executable allocates at its first run and keeps
    (its constants; reported apart as ``device_resident_after_run_bytes``).  The
    measuring process asks XLA not to autotune (:func:`run_in_subprocess`), which keeps
    compilation's device scratch out of the peak; where compilation had set a higher
    peak all the same, the value is an upper bound and ``method`` says so."""
    before = _device_memory_stats() or {}
    in_use, peak_before = before.get("bytes_in_use", 0), before.get("peak_bytes_in_use", 0)
    t0 = time.perf_counter()
    out = _block(compiled(*args))
    first_s = time.perf_counter() - t0
    peak = (_device_memory_stats() or {}).get("peak_bytes_in_use", 0)
    del out
    resident = _device_in_use()
    method = UPPER_BOUND if peak <= peak_before else "device_peak"
    runs = []
    while len(runs) < max(int(repeats), 1):
        t0 = time.perf_counter()
        _block(compiled(*args))
        runs.append(time.perf_counter() - t0)
        if budget_s is not None and sum(runs) + runs[-1] > budget_s:
            break
    run_peak = max(peak - max(resident, in_use), 0)
    return {
        "run_peak_bytes": int(run_peak),
        "run_peaks_bytes": [int(run_peak)],
        "device_bytes_in_use_before_run": int(in_use),
        "device_resident_after_run_bytes": int(resident - in_use),
        "device_peak_bytes": int(peak),
        "rss_start_bytes": int(rss_start),
        "process_peak_bytes": _maxrss_bytes(),
        "first_run_s": first_s,
        "runs": runs,
        "run_s": statistics.median(runs),
        "method": method,
        **_memory_of(compiled),
    }


def _peak_of(compiled, args, rss_start: int, repeats: int = 1, budget_s=None) -> dict:
    """A warm-up run, then up to ``repeats`` measured runs, each timed and each with
    the high-water mark reset before it.  The run peak is the median of the measured
    peaks, so that a stray allocation of the runtime in one run (a thread's arena) does
    not count.  On an accelerator, the device allocator's peak instead
    (:func:`_device_peak_of`)."""
    if _device_memory_stats() is not None:
        return _device_peak_of(compiled, args, rss_start, repeats, budget_s)
    rss_before_first = _status_kib().get("VmRSS", 0) * 1024
    t0 = time.perf_counter()
    out = _block(compiled(*args))
    first_s = time.perf_counter() - t0
    process_peak = _maxrss_bytes()  # compile and first run included; reset below
    runs, peaks, method = [], [], "clear_refs"
    rss_before = 0
    while len(runs) < max(int(repeats), 1):
        del out
        rss_before = _settled_rss()
        if not _reset_hwm():  # pragma: no cover - kernels without clear_refs
            method = "ru_maxrss"
            runs.append(first_s)
            peaks.append(max(_maxrss_bytes() - rss_before_first, 0))
            break
        t0 = time.perf_counter()
        out = _block(compiled(*args))
        runs.append(time.perf_counter() - t0)
        peaks.append(max(_status_kib().get("VmHWM", 0) * 1024 - rss_before, 0))
        if budget_s is not None and sum(runs) + runs[-1] > budget_s:
            break
    return {
        "run_peak_bytes": int(statistics.median(peaks)),
        "run_peaks_bytes": [int(x) for x in peaks],
        "rss_before_run_bytes": int(rss_before),
        "rss_start_bytes": int(rss_start),
        "process_peak_bytes": max(process_peak, _maxrss_bytes()),
        "first_run_s": first_s,
        "runs": runs,
        "run_s": statistics.median(runs),
        "method": method,
        **_memory_of(compiled),
    }


def measure_config(
    network: dict,
    learner: str,
    n_steps: int,
    batch: int,
    run: bool = True,
    repeats: int = 3,
    budget_s: float | None = None,
) -> dict:
    """Everything about one configuration, for a fresh process: compile time, XLA's
    memory analysis, and ``repeats`` measured runs after a warm-up (fewer when they
    would exceed ``budget_s``): their median time and the run peak (see
    :func:`_peak_of`).  ``network``: keyword arguments of :func:`build_network`;
    ``learner``: a spec for :func:`parse_learner`, or ``"inference"`` for ``model(x)``.
    ``run=False``: compile only."""
    model = build_network(**network)
    # Drawn on the host, then copied: drawing them on an accelerator would leave the
    # random draw's temporaries in the allocator's peak, which cannot be reset.
    with jax.default_device(jax.devices("cpu")[0]):
        inputs = make_inputs(model, n_steps, batch)
    x, t, m = jax.block_until_ready(jax.device_put(inputs, jax.devices()[0]))
    if learner == "inference":
        f, p = inference_function(model)
        args = (p, x)
    else:
        f, p = learner_function(parse_learner(learner), model)
        args = (p, x, t, m)
    if not run:
        return {**compiled_stats(f, *args), "ran": False}
    rss_start = _status_kib().get("VmRSS", 0) * 1024
    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    out = _peak_of(compiled, args, rss_start, repeats, budget_s)
    return {"compile_s": compile_s, **out, "median_s": out["run_s"], "ran": True}


def time_learners(
    network: dict, learners: list, n_steps: int, batch: int, repeats: int = 5, budget_s=None
) -> dict:
    """Time ``value_and_grad`` of several learners (specs for :func:`parse_learner`, or
    ``"inference"``) on the same network and inputs against each other
    (:func:`time_interleaved`); for a fresh process.  Returns spec -> ``compile_s``,
    ``median_s``, ``min_s``, ``runs``."""
    model = build_network(**network)
    x, t, m = jax.block_until_ready(make_inputs(model, n_steps, batch))
    jobs = {}
    for spec in learners:
        if spec == "inference":
            f, p = inference_function(model)
            jobs[spec] = (f, (p, x))
        else:
            f, p = learner_function(parse_learner(spec), model)
            jobs[spec] = (f, (p, x, t, m))
    timed = time_interleaved(jobs, repeats=repeats, budget_s=budget_s)
    keys = ("compile_s", "median_s", "min_s", "runs")
    return {spec: {k: r[k] for k in keys} for spec, r in timed.items()}


_CHILD = (
    "import json, sys, importlib\n"
    "mod, name = sys.argv[1].rsplit(':', 1)\n"
    "fn = getattr(importlib.import_module(mod), name)\n"
    "print('@@RESULT@@' + json.dumps(fn(**json.loads(sys.argv[2]))))\n"
)


def run_in_subprocess(target: str, kwargs: dict, *, timeout: float | None = None) -> dict:
    """Run ``module:function(**kwargs)`` in a fresh Python process and return its
    (JSON) result.  The child inherits the environment (``JAX_*``, ``XLA_FLAGS``),
    with glibc's mmap threshold fixed at 64 KiB (see the module docstring).  A failure
    in the child is returned as ``{"error": ...}``, not raised."""
    env = dict(os.environ)
    if jax.default_backend() == "gpu":
        # No autotuning scratch in the device peak; and one preallocated pool, from
        # which the allocator splits exact chunks: growing on demand instead rounds
        # allocations up to its doubling region sizes, which blurs the peak by up to 2x.
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_gpu_autotune_level=0").strip()
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true"
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, target, json.dumps(kwargs)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@") :])
    tail = (proc.stderr or "").strip().splitlines()[-3:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def machine_info() -> dict:
    """Where the numbers were measured."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "x64": bool(jax.config.read("jax_enable_x64")),
    }
