"""Sparse RTRL: exact at k = n - 1, neuron-local at k = 0, exactly k paths per neuron."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import plastax
from plastax.bench import compare_grads
from plastax.learners import RTRL, EProp, SparseRTRL
from plastax.learners.sparse_rtrl import SELECTIONS, random_paths
from plastax.neurons import ALIF, GRU, LSTM, TanhRNN

N = 8


def _setup(neuron, n=N, readout=None):
    model = plastax.Network(
        [plastax.Layer(neuron, n, recurrent=True)],
        readout or plastax.LinearReadout(2),
        n_in=3,
        key=jax.random.key(0),
    )
    x = jax.random.normal(jax.random.key(1), (12, 2, 3))
    t = jax.random.randint(jax.random.key(2), (12, 2), 0, 2)
    return model, x, t


CASES = [(TanhRNN(), s) for s in SELECTIONS] + [
    (LSTM(), "random"),
    (GRU(), "largest"),
    (ALIF(), "resample"),
]


@pytest.mark.parametrize(
    ("neuron", "selection"), CASES, ids=[f"{type(n).__name__}-{s}" for n, s in CASES]
)
def test_full_paths_equal_rtrl(x64, neuron, selection):
    model, x, t = _setup(neuron, readout=plastax.LeakyReadout(2, 5.0))
    _, g_ref = RTRL().value_and_grad(model, x, t)
    _, g = eqx.filter_jit(SparseRTRL(N - 1, selection).value_and_grad)(model, x, t)
    stats = compare_grads(g, g_ref)
    print(f"SparseRTRL(k=n-1, {selection}) vs RTRL: {stats}")
    assert stats["max_rel_error"] <= 1e-9


def test_zero_paths_equal_the_neuron_local_recursion(x64):
    # spiking layers have no self-connections: k = 0 is exactly e-prop
    model, x, t = _setup(ALIF())
    x = (x > 0.5).astype(x.dtype)
    _, g_e = EProp().value_and_grad(model, x, t)
    _, g_0 = SparseRTRL(0).value_and_grad(model, x, t)
    assert compare_grads(g_0, g_e)["max_rel_error"] <= 1e-12
    # rate units: the self-connection W_rec[j, j] is kept by sparse RTRL; without it,
    # k = 0 is again e-prop
    model, x, t = _setup(TanhRNN())
    w = model.layers[0].w_rec * (1.0 - jnp.eye(N))[:, :, None]
    model = eqx.tree_at(lambda m: m.layers[0].w_rec, model, w)
    _, g_e = EProp().value_and_grad(model, x, t)
    _, g_0 = SparseRTRL(0).value_and_grad(model, x, t)
    assert compare_grads(g_0, g_e)["max_rel_error"] <= 1e-12


def test_intermediate_k_is_between(x64):
    model, x, t = _setup(TanhRNN())
    _, g_ref = RTRL().value_and_grad(model, x, t)
    cos = [
        compare_grads(SparseRTRL(k).value_and_grad(model, x, t)[1], g_ref)["cosine"]
        for k in (0, 4, N - 1)
    ]
    assert cos[0] < cos[1] < cos[2] and cos[2] > 1 - 1e-12


@pytest.mark.parametrize("k", [1, N - 1])
def test_exactly_k_distinct_paths_per_neuron(k):
    idx = random_paths(jax.random.key(3), N, k)
    assert idx.shape == (N, k)
    for j in range(N):
        row = [int(q) for q in idx[j]]
        assert len(set(row)) == k and j not in row
    model, x, t = _setup(LSTM())
    for selection in SELECTIONS:
        learner = SparseRTRL(k, selection)
        state = learner.init(model, 2)
        ctx_state, _ = learner.step(model, state, x[0], t[0])
        if k == 0:
            continue
        # the paths actually used at a step: k distinct presynaptic neurons, never j
        from plastax.learners.base import StepContext
        from plastax.neurons.base import layer_blocks, output_jacobian

        layer = model.layers[0]
        s_prev = ctx_state.net.layers[0]
        z_prev = output_jacobian(layer.neuron, s_prev)[0]
        blocks = layer_blocks(layer.neuron, s_prev, layer.currents(x[1], z_prev))
        psi = output_jacobian(layer.neuron, blocks.s_new)[1]
        ctx = StepContext(s_prev, x[1], z_prev, blocks, psi, None, jax.random.key(9))
        used = learner.kept_paths(layer, ctx_state.traces[0], ctx)
        assert used.shape == (N, k)
        for j in range(N):
            row = [int(q) for q in used[j]]
            assert len(set(row)) == k and j not in row


def test_random_paths_are_fixed_and_resampled_paths_change():
    model, x, t = _setup(TanhRNN())
    fixed = SparseRTRL(3, "random")
    s0 = fixed.init(model, 2, key=jax.random.key(1))
    s1, _ = fixed.step(model, s0, x[0], t[0])
    assert jnp.array_equal(s0.traces[0].paths, s1.traces[0].paths)
    assert SparseRTRL(3, "resample").init(model, 2).traces[0].paths is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected k"):
        SparseRTRL(-1)
    with pytest.raises(ValueError, match="expected selection"):
        SparseRTRL(2, "best")
    model, _, _ = _setup(TanhRNN())
    with pytest.raises(ValueError, match="k <= n - 1"):
        SparseRTRL(N).init(model, 2)
    assert isinstance(plastax.learners.make_learner("sparse_rtrl", k=2), SparseRTRL)


@pytest.mark.parametrize("k", [1, 3, 5, 11])
def test_path_transport_matches_its_definition(x64, k):
    """Both implementations of the transport (one fused gather per path for small k, a
    masked dense product beyond) equal the definition
    sum_{q in S(j) + {j}} W[q, j, c] dz_{t-1}[q]."""
    n = 12
    model, _, _ = _setup(LSTM(), n=n)
    layer = model.layers[0]
    learner = SparseRTRL(k)
    paths = learner.init_paths(layer, jax.random.key(4))
    dz_prev = jax.random.normal(jax.random.key(5), (2, n, 3, 7))
    out = learner.propagate(layer, dz_prev, paths, None)
    _, m_rec = layer.masks(dz_prev.dtype)
    w = layer.w_rec * m_rec
    expected = jnp.zeros_like(out)
    for j in range(n):
        for q in [j] + [int(i) for i in paths[j]]:
            expected = expected.at[:, j].add(jnp.einsum("c,bxy->bcxy", w[q, j], dz_prev[:, q]))
    assert jnp.allclose(out, expected, rtol=1e-12, atol=1e-12)
