"""Test win rate of chosen runs, each seed faint and their smoothed mean ± std in black:
`python scripts/plot_runs.py OUT.png RUN_DIR [RUN_DIR ...] --title "..."`.

Why: `make figures` groups runs by algorithm/map/sparsity and compares methods; this plots any
set of run folders as one group (e.g. dense-only runs with a longer budget), with the same
smoothing and seed band.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from analysis.figures import _steps_label, seed_band  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--title", default="")
    ap.add_argument("--bar", type=float, default=None, help="draw a horizontal line at this win rate")
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    curves = []
    for run in args.runs:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        t = np.array([r["t_env"] for r in rows])
        w = np.array([r["test_win_rate"] for r in rows])
        curves.append((t, w))
        ax.plot(t, 100 * w, lw=0.6, alpha=0.35)
    x, mean, sd, n = seed_band(curves)
    ax.plot(x, 100 * mean, "k-", label=f"mean of {n} runs (smoothed)")
    ax.fill_between(x, 100 * (mean - sd), 100 * (mean + sd), color="k", alpha=0.15)
    if args.bar is not None:
        ax.axhline(100 * args.bar, color="r", ls=":", lw=1, label=f"{args.bar:g} bar")
    ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
    ax.set(xlabel="environment steps (t_env)", ylabel="test win rate (%)", title=args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
