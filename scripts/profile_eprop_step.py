"""Where the time of one EProp step goes, against its floors.

    python scripts/profile_eprop_step.py [--neuron alif] [--hidden 256] [--batch 32]
        [--steps 256] [--chunks 1,16] [--ops 25] [--hlo PATH]

Times, per step (min and median of 5 interleaved rounds of a jitted value_and_grad or
forward pass over T steps, compile apart; plastax.bench.timing.time_interleaved):

  inference        model(x), the forward pass alone
  traffic floor    one fused read and write of arrays of EProp's trace size per step
                   (e = a e + b): the memory traffic of a trace update
  BPTT, SLTT       the exact reference, and the online engine without temporal traces
  EProp(chunk=K)   for each K of --chunks (1: step by step)

then, with --ops N, runs the last EProp once under jax.profiler and prints the N
thunks (XLA fusions, matrix products, loops) that took longest, with their count and
their share per step, so that a gap to a floor can be traced to the operations
behind it; --hlo PATH writes the optimised HLO of that EProp to look the names up.

The thunk table under-reports plain ``dot`` thunks (Eigen matrix products): for the
gradient product of factorised LIF it showed 7.8 µs per step, where the product
alone takes about 30 and removing it from the step saves 26.  So --products also
times, in the same interleaved rounds, the matrix products of the last EProp's
chunks alone, with their shapes, one chunk after another over the same T steps:

  gradient product   [x, z, 1] rows (and, factorised, the carried trace's B d rows)
                     transposed times the rows' weights: the gradient of W_in, W_rec
                     and the bias, ((K + d) B x (p + n + 1))^T ((K + d) B x n)
  input product      the chunk's input currents, (K B x p) (p x n)
  readout gradient   (K B x n_out)^T (K B x n), the readout weight's gradient
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import tempfile

import jax
import jax.numpy as jnp

from plastax.bench.timing import (
    build_network,
    inference_function,
    learner_function,
    make_inputs,
    time_interleaved,
    trace_bytes,
    traffic_floor_function,
)
from plastax.learners import BPTT, SLTT, EProp


def op_table(compiled, args, n: int, steps: int) -> list[str]:
    """The ``n`` longest thunks of one run of ``compiled(*args)`` (jax.profiler)."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            jax.block_until_ready(compiled(*args))
        (path,) = glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)
        with gzip.open(path) as fh:
            events = json.load(fh)
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("$", "Thunk", "Pjit", "Slinky")):
            total[name] += e.get("dur", 0)
            count[name] += 1
    lines = ["| thunk | calls | µs per step |", "|---|---|---|"]
    for name, us in total.most_common(n):
        lines.append(f"| {name} | {count[name]} | {us / steps:.2f} |")
    return lines


def product_function(a_shape, b_shape, n_chunks: int, transpose_a: bool, dtype):
    """``(f, args)``: ``f`` sums ``a_i^T b_i`` (or ``a_i b_i``) over ``n_chunks`` pairs of
    random operands of these shapes, one pair per iteration of a scan, as a chunked
    learner does once per chunk (distinct operands, so no product is hoisted)."""
    ka, kb = jax.random.split(jax.random.key(1))
    a = jax.random.normal(ka, (n_chunks, *a_shape), dtype)
    b = jax.random.normal(kb, (n_chunks, *b_shape), dtype)
    out = (a_shape[1] if transpose_a else a_shape[0], b_shape[1])

    def f(a, b):
        def body(acc, ab):
            x, y = ab
            return acc + ((x.T if transpose_a else x) @ y), None

        return jax.lax.scan(body, jnp.zeros(out, dtype), (a, b))[0]

    return f, (a, b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neuron", default="alif", help="lif_detach, lif or alif")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--n-in", type=int, default=100)
    ap.add_argument("--chunks", default="1,16", help="EProp chunk sizes to time")
    ap.add_argument("--ops", type=int, default=0, help="print the N longest thunks")
    ap.add_argument("--hlo", default=None, help="write the optimised HLO of EProp here")
    ap.add_argument(
        "--products", action="store_true", help="also time the last EProp's products alone"
    )
    args = ap.parse_args()
    T, B, n = args.steps, args.batch, args.hidden
    model = build_network(args.neuron, n, n_in=args.n_in)
    x, t, mask = make_inputs(model, T, B)
    tb, shapes = trace_bytes(EProp(), model, B)

    jobs = {}
    f, p = inference_function(model)
    jobs["inference"] = (f, (p, x))
    f, e0 = traffic_floor_function(shapes, model.dtype)
    jobs["traffic floor"] = (f, (e0, jnp.full((T,), 0.9), jnp.full((T,), 0.1)))
    for name, learner in (("BPTT", BPTT()), ("SLTT", SLTT())):
        f, p = learner_function(learner, model)
        jobs[name] = (f, (p, x, t, mask))
    chunks = [int(c) for c in args.chunks.split(",")]
    for k in chunks:
        f, p = learner_function(EProp(chunk=k), model)
        jobs[f"EProp(chunk={k})"] = (f, (p, x, t, mask))
    if args.products:
        learner = EProp(chunk=chunks[-1])
        K, dt = learner.chunk_size(model), model.dtype
        layer, p_in = model.layers[0], model.n_in
        Q = p_in + (n if layer.recurrent else 0) + 1
        rows = (K + (layer.n_states if learner.is_factorised(layer, dt) else 0)) * B
        n_out, n_chunks = model.n_out, T // K
        for name, a, b, tr in (
            ("gradient product", (rows, Q), (rows, n), True),
            ("input product", (K * B, p_in), (p_in, n), False),
            ("readout gradient", (K * B, n_out), (K * B, n), True),
        ):
            jobs[f"{name} alone"] = product_function(a, b, n_chunks, tr, dt)
    timed = time_interleaved(jobs, repeats=5)

    floor = timed["traffic floor"]["min_s"]
    print(
        f"{args.neuron}, n = {n}, B = {B}, T = {T}; traces {tb / 2**20:.1f} MiB; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print("| part | µs per step (min) | median | / traffic floor | compile (s) |")
    print("|---|---|---|---|---|")
    for name, r in timed.items():
        print(
            f"| {name} | {r['min_s'] / T * 1e6:.1f} | {r['median_s'] / T * 1e6:.1f} | "
            f"{r['min_s'] / floor:.2f} | {r['compile_s']:.1f} |"
        )
    last = [name for name in jobs if name.startswith("EProp")][-1]
    if args.ops or args.hlo:
        f, a = jobs[last]
        compiled = jax.jit(f).lower(*a).compile()
        jax.block_until_ready(compiled(*a))
        if args.hlo:
            with open(args.hlo, "w") as fh:
                fh.write(compiled.as_text())
        if args.ops:
            print(f"\n{last}: the {args.ops} longest thunks of one run")
            print("\n".join(op_table(compiled, a, args.ops, T)))


if __name__ == "__main__":
    main()
