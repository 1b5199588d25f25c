"""Streaming regression tasks: determinism, shapes, the shift, validation."""

from __future__ import annotations

import numpy as np
import pytest

from plastax.tasks.streams import (
    STREAMS,
    DelayedTarget,
    LorenzShift,
    SineShift,
    lorenz_rk4,
    make_stream,
)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_deterministic_shapes_and_dtypes(name):
    task = make_stream(name, n_steps=300, shift_at=200, n_streams=2)
    a, b, c = task.make(3), task.make(3), task.make(4)
    assert c.shift_at == 200
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.inputs, c.inputs)
    assert a.inputs.shape == (300, 2, task.n_in) and a.inputs.dtype == np.float32
    assert a.targets.shape == (300, 2, task.n_out) and a.targets.dtype == np.float32
    assert np.all(np.isfinite(a.inputs)) and np.all(np.isfinite(a.targets))
    inputs, targets, shift_at = a  # unpacks as a triple
    assert shift_at == 200


def _dominant_frequency(x):
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    return np.fft.rfftfreq(len(x))[np.argmax(spectrum)]


def test_sine_shift_changes_the_frequency():
    task = SineShift(n_steps=4000, shift_at=2000, freq_before=0.03, freq_after=0.07)
    x, y, shift = task.make(0)
    before, after = x[:shift, 0, 0], x[shift:, 0, 0]
    assert abs(_dominant_frequency(before) - 0.03) < 2e-3
    assert abs(_dominant_frequency(after) - 0.07) < 2e-3
    # the target is the next input (horizon 1, no noise), and the phase is continuous
    np.testing.assert_allclose(y[:-1], x[1:], atol=1e-6)
    assert np.max(np.abs(np.diff(x[:, 0, 0]))) < 2 * np.pi * 0.07 + 1e-6


def test_lorenz_on_the_attractor_normalised_and_shifted():
    task = LorenzShift(n_steps=1500, shift_at=1000, n_streams=2)
    x, y, shift = task.make(1)
    np.testing.assert_array_equal(y[:-1], x[1:])
    pre = x[:shift].reshape(-1, 3)
    np.testing.assert_allclose(pre.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(pre.std(0), 1.0, atol=1e-4)
    assert np.max(np.abs(x)) < 5.0  # bounded: stays on the attractor
    # rho 28 -> 35 raises the mean of z (about rho - 1) by several units
    assert x[shift:, :, 2].mean() > 0.4
    # the raw samples follow the RK4 trajectory with stride 5
    raw = task.raw(np.random.default_rng(1))
    step = lorenz_rk4(raw[10], task.stride, rho=28.0, sigma=10.0, beta=8 / 3, dt=0.01)[-1]
    np.testing.assert_allclose(step, raw[11], rtol=1e-10)


def test_delayed_target_is_the_input_delay_steps_back():
    task = DelayedTarget(n_steps=600, shift_at=300, delay=50, delay_before=25, n_streams=3)
    x, y, shift = task.make(2)
    np.testing.assert_array_equal(y[shift + 50 :], x[shift:-50])
    np.testing.assert_array_equal(y[25:shift], x[: shift - 25])
    assert abs(x.std() - 1.0) < 0.2  # unit-variance smooth noise


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SineShift(n_steps=10, shift_at=10), "shift_at < n_steps"),
        (lambda: SineShift(freq_after=0.6), "Nyquist"),
        (lambda: SineShift(freq_before=-1.0), "freq_before"),
        (lambda: SineShift(n_streams=0), "n_streams"),
        (lambda: LorenzShift(dt=0.1), "dt <= 0.05"),
        (lambda: LorenzShift(stride=0), "stride"),
        (lambda: DelayedTarget(delay=-1), "delay"),
        (lambda: DelayedTarget(tau=float("nan")), "tau"),
        (lambda: make_stream("nope"), "stream task"),
        (lambda: make_stream("sine", freq=0.1), "parameters among"),
        (lambda: SineShift().make(-1), "seed"),
    ],
)
def test_invalid_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "expected" in str(info.value) and "received" in str(info.value)
