"""Test win rate of chosen runs, each seed faint and their smoothed mean ± std in black:
`python scripts/plot_runs.py OUT.png RUN_DIR [RUN_DIR ...] --title "..."`.

Why: `make figures` groups runs by algorithm/map/sparsity and compares methods; this plots any
set of run folders as one group (e.g. dense-only runs with a longer budget), with the same
smoothing and seed band.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.figures import draw_band, style  # noqa: E402
from analysis.store import read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--title", default="")
    ap.add_argument("--bar", type=float, default=None, help="draw a horizontal line at this win rate")
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    curves, problems = [], []
    for run in args.runs:  # the store's tolerant reader: a running job's torn last line is skipped
        rows = [r for r in read_jsonl(run / "metrics.jsonl", problems) if "test_win_rate" in r]
        curves.append(([r["t_env"] for r in rows], [r["test_win_rate"] for r in rows]))
    for p in problems:
        print(f"warning: {p}")
    for t, w in curves:  # each run faint, in %
        ax.plot(t, [100 * x for x in w], lw=0.6, alpha=0.35)
    draw_band(ax, curves, "mean over runs, smoothed", color="k")
    if args.bar is not None:
        ax.axhline(100 * args.bar, color="r", ls=":", lw=1, label=f"{args.bar:g} bar")
    style(ax, xlabel="environment steps (t_env)", ylabel="test win rate (%)", title=args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
