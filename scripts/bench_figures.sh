#!/usr/bin/env bash
# Regenerate the benchmark tables, JSON results and plots shown in the README.
#
#   scripts/bench_figures.sh            # full runs (about an hour and a half on 2 cores)
#   scripts/bench_figures.sh --quick    # small sizes, a few minutes in all
#
# Writes docs/bench/<name>.json (every measurement), docs/bench/<name>.md (the markdown
# tables printed by the command, headed by the machine and its load average) and
# docs/img/bench_<name>.png.  The benchmarks run one after the other, never in
# parallel, so that they do not disturb each other's timings; run it on a quiet
# machine (other processes show up in the load average line and in the times).
# A plot can be redrawn from its JSON without measuring again:
#   plastax bench scaling-hidden --from-json docs/bench/scaling_hidden.json \
#       --plot docs/img/bench_scaling_hidden.png
# BENCH (default: ".venv/bin/plastax bench" if it exists, else "plastax bench") runs
# one benchmark; NAMES (default: all four) the benchmarks to run, e.g.
#   NAMES="alignment sltt" scripts/bench_figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH:-}" ]; then
    if [ -x .venv/bin/plastax ]; then BENCH=".venv/bin/plastax bench"; else BENCH="plastax bench"; fi
fi
mkdir -p docs/bench docs/img
for name in ${NAMES:-scaling-hidden scaling-time alignment sltt}; do
    file=${name//-/_}
    echo "== $BENCH $name $*" >&2
    $BENCH "$name" "$@" \
        --json "docs/bench/$file.json" --plot "docs/img/bench_$file.png" \
        | sed '$d' > "docs/bench/$file.md"
done
