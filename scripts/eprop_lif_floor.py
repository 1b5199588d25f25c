"""How close can e-prop for LIF with factorised traces get to the inference step?

    python scripts/eprop_lif_floor.py [--chunk 32] [--hidden 256] [--batch 32] [--steps 256]

A hand-written e-prop for one recurrent LIF layer (reset gradient detached, so the
traces are factorised: one per presynaptic unit) and a linear readout, with nothing
but the work it must do, chunk by chunk:

  * the recurrent loop (z W_rec, the membrane update, the spikes), step by step;
  * the input currents, the readout, the learning signal L = (y - y*) W_out^T and the
    readout's gradient, each one matrix product over the chunk's K B rows;
  * the eligibility filter moved onto the learning signal (r_s = w_s + alpha r_{s+1},
    an associative scan) and the gradient of W_in and W_rec as ONE product
    [x, z_prev]^T r over the K B rows.

It is timed against the same layer's forward pass (inference), and against plastax's
``EProp`` and forward pass on a network of that size, in interleaved rounds
(:func:`plastax.bench.timing.time_interleaved`), so each ratio comes from one run.
The ratio of the hand-written pair is what XLA on this machine allows the
"EProp <= 2x inference" target; plastax's ratio over it is plastax's own overhead.
It computes the same kind of work as plastax's EProp, not the same numbers (its
neuron and initialisation are simplified).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from plastax.bench.timing import (
    build_network,
    inference_function,
    learner_function,
    make_inputs,
    parse_learner,
    time_interleaved,
)

ALPHA, THRESHOLD = 0.95, 1.0


def lif_inference(w_in, w_rec, w_out, x):
    """The forward pass, step by step: what every learner's step pays at least."""
    B, n = x.shape[1], w_rec.shape[0]

    def body(carry, x_t):
        v, z = carry
        v = ALPHA * v + x_t @ w_in + z @ w_rec - z * THRESHOLD
        z = (v > THRESHOLD).astype(v.dtype)
        return (v, z), z @ w_out

    zeros = jnp.zeros((B, n), x.dtype)
    return jax.lax.scan(body, (zeros, zeros), x)[1]


def lif_eprop_minimal(w_in, w_rec, w_out, x, targets, chunk: int):
    """The gradient of W_in, W_rec and W_out, ``chunk`` steps at a time (see the
    module docstring).  ``targets``: one-hot (T, B, n_out); T must divide by chunk."""
    T, B, p = x.shape
    n, o, K = w_rec.shape[0], w_out.shape[1], chunk

    def one_chunk(carry, xs):
        v, z, g_in, g_rec, g_out = carry
        xk, tk = xs
        currents = (xk.reshape(K * B, p) @ w_in).reshape(K, B, n)

        def body(c, current):
            v, z_prev = c
            v = ALPHA * v + current + z_prev @ w_rec - z_prev * THRESHOLD
            z = (v > THRESHOLD).astype(v.dtype)
            return (v, z), (v, z, z_prev)

        (v, z), (vs, zs, z_prevs) = jax.lax.scan(body, (v, z), currents)
        spikes = zs.reshape(K * B, n)
        err = spikes @ w_out - tk.reshape(K * B, o)
        signal = (err @ w_out.T).reshape(K, B, n)
        w = signal * jnp.maximum(0.0, 1.0 - jnp.abs(vs - THRESHOLD))  # times psi
        decay = jnp.full((K, 1, 1), ALPHA, v.dtype)
        r = jax.lax.associative_scan(
            lambda a, b: (a[0] * b[0], b[0] * a[1] + b[1]), (decay, w), reverse=True
        )[1]
        pre = jnp.concatenate([xk.reshape(K * B, p), z_prevs.reshape(K * B, n)], axis=1)
        g = pre.T @ r.reshape(K * B, n)
        return (v, z, g_in + g[:p], g_rec + g[p:], g_out + spikes.T @ err), None

    zeros = jnp.zeros((B, n), x.dtype)
    carry = (zeros, zeros, jnp.zeros_like(w_in), jnp.zeros_like(w_rec), jnp.zeros_like(w_out))
    xs = (x.reshape(T // K, K, B, p), targets.reshape(T // K, K, B, o))
    return jax.lax.scan(one_chunk, carry, xs)[0][2:]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--n-in", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    if a.steps % a.chunk:
        ap.error(f"expected --steps divisible by --chunk, received {a.steps} and {a.chunk}")
    T, B, n, p, o = a.steps, a.batch, a.hidden, a.n_in, 10
    keys = jax.random.split(jax.random.key(0), 4)
    w_in = jax.random.normal(keys[0], (p, n)) / p**0.5
    w_rec = jax.random.normal(keys[1], (n, n)) / n**0.5
    w_out = jax.random.normal(keys[2], (n, o)) / n**0.5
    x = (jax.random.uniform(keys[3], (T, B, p)) < 0.05).astype(jnp.float32)
    targets = jax.nn.one_hot(jnp.arange(T * B).reshape(T, B) % o, o)

    model = build_network("lif_detach", n, n_in=p, n_out=o)
    px, pt, pm = make_inputs(model, T, B)
    f_inf, p_inf = inference_function(model)
    f_ep, p_ep = learner_function(parse_learner(f"eprop:chunk={a.chunk}"), model)
    f_ep_default, _ = learner_function(parse_learner("eprop"), model)

    def minimal(*args):
        return lif_eprop_minimal(*args, chunk=a.chunk)

    jobs = {
        "hand-written inference": (lif_inference, (w_in, w_rec, w_out, x)),
        f"hand-written e-prop, chunk {a.chunk}": (minimal, (w_in, w_rec, w_out, x, targets)),
        "plastax inference": (f_inf, (p_inf, px)),
        f"plastax EProp(chunk={a.chunk})": (f_ep, (p_ep, px, pt, pm)),
        "plastax EProp() (default chunk, 32 here)": (f_ep_default, (p_ep, px, pt, pm)),
    }
    r = time_interleaved(jobs, repeats=a.repeats)
    step = {k: v["min_s"] / T * 1e6 for k, v in r.items()}
    names = list(jobs)
    print(f"LIF (factorised), n = {n}, B = {B}, n_in = {p}, T = {T}; µs per step, fastest of "
          f"{a.repeats} interleaved rounds")  # fmt: skip
    print("| | µs per step | / its inference |")
    print("|---|---|---|")
    for k in names:
        den = step[names[0]] if k.startswith("hand") else step[names[2]]
        print(f"| {k} | {step[k]:.1f} | {step[k] / den:.2f} |")


if __name__ == "__main__":
    main()
