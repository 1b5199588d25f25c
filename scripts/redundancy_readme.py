"""Markdown tables of a ``plastax experiment redundancy`` result, for the README.

    python scripts/redundancy_readme.py runs/redundancy/merged.json

Prints, from the JSON alone (no re-computation): the log-gap recovery of every k
(mean +/- s.d. over seeds) per task and optimizer; the post-shift MSE of the baselines
and k = 4 with the per-seed comparison of k = 4 against J = 0 (SLTT); the coefficient of
variation over seeds on Lorenz; and the k = 4 rows at every size and cell.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np


def _pm(mean, sd, pct=True, digits=0) -> str:
    if mean is None:
        return "-"
    if pct:
        return f"{100 * mean:.{digits}f} ± {100 * (sd or 0):.{digits}f} %"
    return f"{mean:.2e} ± {sd or 0:.1e}"


def main(path: str) -> None:
    result = json.load(open(path))
    summary = result["summary"]
    runs = result["runs"]
    rows = {(s["task"], s["cell"], s["n"], s["optimizer"], s["condition"]): s for s in summary}

    # 1. recovery against k at the sweep size
    n0 = min(s["n"] for s in summary)
    ks = sorted({s["k"] for s in summary if s["n"] == n0 and s["condition"].startswith("k=")})
    ks = [k for k in ks if k]
    print(
        f"Log-gap recovery of full RTRL's adaptation, tanh RNN, n = {n0} (mean ± s.d. "
        f"over seeds; 0 % = e-prop traces k = 0, 100 % = full RTRL):\n"
    )
    print("| task | optimizer | " + " | ".join(f"k = {k}" for k in ks) + " |")
    print("|---|---|" + "---|" * len(ks))
    for task in result["config"]["tasks"] if "config" in result else []:
        for opt in ("adam", "sgd"):
            cells = [rows.get((task, "rnn", n0, opt, f"k={k}")) for k in ks]
            if not any(cells):
                continue
            vals = [_pm(c["recovery_mean"], c["recovery_sd"]) if c else "-" for c in cells]
            print(f"| {task} | {opt} | " + " | ".join(vals) + " |")

    # 2. baselines and per-seed k = 4 against J = 0
    by_seed = defaultdict(dict)
    for r in runs:
        by_seed[(r["task"], r["cell"], r["n"], r["optimizer"], r["seed"])][r["condition"]] = r
    print("\nPost-shift MSE (mean ± s.d. over seeds) and k = 4 against J = 0 (SLTT, per seed):\n")
    print(
        "| task | cell | n | opt | seeds | frozen | J = 0 (SLTT) | k = 0 | k = 4 | full RTRL "
        "| recovery k = 4 | k = 4 better than J = 0 | median gain |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    groups = sorted({k[:4] for k in rows}, key=lambda g: (g[2], g[1], g[0], g[3]))
    wins_total = n_total = 0
    gains_all = []
    for g in groups:
        cond = lambda c, g=g: rows.get(g + (c,))  # noqa: E731
        if cond("k=4") is None:
            continue
        gains = []
        for key, conds in by_seed.items():
            if key[:4] == g and "k=4" in conds and "sltt" in conds:
                a, b = conds["k=4"]["post_shift_mse"], conds["sltt"]["post_shift_mse"]
                gains.append((b - a) / b)
        wins = sum(x > 0 for x in gains)
        wins_total += wins
        n_total += len(gains)
        gains_all += gains
        cells = [
            _pm(cond(c)["post_shift_mse_mean"], cond(c)["post_shift_mse_sd"], pct=False)
            if cond(c)
            else "-"
            for c in ("frozen", "sltt", "k=0", "k=4", "full")
        ]
        print(
            f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} | {cond('k=4')['n_seeds']} | "
            + " | ".join(cells)
            + f" | {_pm(cond('k=4')['recovery_mean'], cond('k=4')['recovery_sd'])}"
            + f" | {wins}/{len(gains)} | {100 * np.median(gains):.1f} % |"
        )
    print(
        f"\nOver all groups: k = 4 has a lower post-shift MSE than J = 0 in {wins_total} of "
        f"{n_total} seeds, median gain {100 * np.median(gains_all):.1f} %."
    )

    # 3. coefficient of variation on Lorenz
    print("\nCoefficient of variation of the post-shift MSE over seeds, Lorenz:\n")
    print("| cell | n | opt | k = 4 | full RTRL | J = 0 |")
    print("|---|---|---|---|---|---|")
    for g in groups:
        if g[0] != "lorenz" or (g + ("k=4",)) not in rows:
            continue
        cv = [rows.get(g + (c,), {}).get("post_shift_mse_cv") for c in ("k=4", "full", "sltt")]
        print(
            f"| {g[1]} | {g[2]} | {g[3]} | "
            + " | ".join("-" if v is None else f"{100 * v:.0f} %" for v in cv)
            + " |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/redundancy/merged.json")
