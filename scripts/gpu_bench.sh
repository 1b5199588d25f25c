#!/usr/bin/env bash
# The GPU tables of the README: `plastax bench scaling-hidden` and `scaling-time` on
# one CUDA GPU, with JAX's CUDA build installed (the project's own pins are CPU-only).
#
#   bash scripts/gpu_bench.sh check          # versions, GPU identity tests, quick runs
#   bash scripts/gpu_bench.sh time           # scaling-time (T = 100 ... 10000)
#   bash scripts/gpu_bench.sh hidden NEURON  # scaling-hidden for one neuron model
#
# Results go to $OUT (default: docs/bench/gpu): JSON, PNG and the markdown tables.
# Each part fits in about ten minutes on an H100; run them one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/bench/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # measured runs share the device with this process
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
part=${1:-check}

case "$part" in
check)
    $PY -c "import jax, equinox, optax; print('jax', jax.__version__, 'equinox', equinox.__version__, 'optax', optax.__version__); print(jax.devices())"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    # The float64 identities on the GPU: every online learner against BPTT.
    timeout 300 $PY -m pytest -q -x -p no:cacheprovider tests/test_identities.py tests/test_chunks.py 2>&1 | tail -5
    timeout 200 $PY -m plastax bench scaling-hidden --quick --plot none --json "${TMPDIR:-/tmp}/plastax_quick_hidden.json" | tail -40
    ;;
time)
    $PY -m plastax bench scaling-time --max-gib 24 --json "$OUT/scaling_time.json" \
        --plot "$OUT/scaling_time.png" | tee "$OUT/scaling_time.md"
    ;;
hidden)
    neuron=${2:?"expected a neuron model after 'hidden': lif_detach, lif or alif"}
    $PY -m plastax bench scaling-hidden --neurons "$neuron" --max-gib 24 --budget 10 \
        --json "$OUT/scaling_hidden_$neuron.json" --plot "$OUT/scaling_hidden_$neuron.png" \
        | tee "$OUT/scaling_hidden_$neuron.md"
    ;;
*)
    echo "gpu_bench.sh: expected check, time or hidden NEURON; received '$part'" >&2
    exit 2
    ;;
esac
