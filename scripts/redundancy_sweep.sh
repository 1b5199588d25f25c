#!/bin/bash
# The full `plastax experiment redundancy` sweep behind the README's tables, in parts
# that fit a 2-core machine (about 2 h 40 min in all there), then merged.
set -euo pipefail
out=${1:-runs/redundancy}
mkdir -p "$out"
run() { plastax experiment redundancy --no-progress "$@"; }
# tanh RNN, n = 64: every k, 5 seeds, 3 tasks, Adam and SGD (22 min)
run --cells rnn --scale-hidden "" --json "$out/A-rnn64.json"
# LSTM, n = 64, k = 4, 3 seeds (13 min); tanh RNN at n = 128 (11 min) and n = 256 (47 min)
run --cells lstm --tasks sine,lorenz --optimizers adam --seeds 3 --ks 4 --scale-hidden "" \
    --adapt-steps 500 --cosine-steps 100 --json "$out/B-lstm64.json"
run --cells rnn --tasks sine,lorenz --optimizers adam --seeds 3 --hidden 128 --ks 4 \
    --scale-hidden "" --adapt-steps 500 --cosine-steps 100 --json "$out/C-rnn128.json"
run --cells rnn --tasks sine,lorenz --optimizers adam --seeds 3 --hidden 256 --ks 4 \
    --scale-hidden "" --adapt-steps 300 --cosine-steps 50 --json "$out/D-rnn256.json"
# the recurrent-layer gradient cosine of A and B, on the same trajectories (7 + 5 min)
run --cells rnn --scale-hidden "" --adapt-steps 200 --cosine-steps 200 --json "$out/Acos-rnn64.json"
run --cells lstm --tasks sine,lorenz --optimizers adam --seeds 3 --ks 4 --scale-hidden "" \
    --adapt-steps 100 --cosine-steps 100 --json "$out/Bcos-lstm64.json"
plastax experiment redundancy \
    --merge "$out/A-rnn64.json,$out/B-lstm64.json,$out/C-rnn128.json,$out/D-rnn256.json" \
    --cosine-from "$out/Acos-rnn64.json,$out/Bcos-lstm64.json" \
    --json "$out/merged.json" --plots docs/img
python scripts/redundancy_readme.py "$out/merged.json"
