"""Per-run curves of the runs a `--runs` pattern picks: one line per run, never averaged.

Why: the row figures average seeds of the baseline configuration, so a diagnostic variant (an
override such as `algo.bootstrap_actions=online`) never shows there; comparing a variant with
its baseline seed by seed is how a learning problem is diagnosed. `python -m analysis figures
--runs 'comix_*Swimmer*'` adds, per (algo, map), the test score and the Q estimate against the
discounted return of each matching run, labelled as in the ledger.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import matplotlib.pyplot as plt

from .figures import (
    Q_KEY,
    RET_KEY,
    Index,
    _curves,
    _save,
    _scored_by_return,
    _slug,
    reference_lines,
    style,
)
from .ledger import run_name, run_variant
from .select import algo_label
from .store import Store

SECTION = "Per-run curves of the runs picked by --runs (one line per run, unsmoothed)"


def run_curves(store: Store, pattern: str, out: Path, idx: Index) -> int:
    """One figure per (algo, map) among the finished runs matching `pattern`; returns how many."""
    fin = store.finished()
    picked = fin[[fnmatch.fnmatchcase(r, pattern) for r in fin["run_id"]]]
    made = 0
    for (algo, mp), group in picked.groupby(["algo", "map"]):
        by_return = _scored_by_return(store, group["run_id"].tolist())
        score, scale = ("test_return_mean", 1.0) if by_return else ("test_win_rate", 100.0)
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
        palette = plt.get_cmap("tab10" if len(group) <= 10 else "tab20").colors
        budgets = group["t_max"].nunique() > 1  # a row key, so not in the variant: say it
        for i, r in enumerate(group.sort_values(["method", "seed"]).itertuples()):
            label = f"{run_name(r, run_variant(r.path), task=False)} seed {r.seed}"
            label += f", t_max {int(r.t_max):,}" if budgets else ""
            color = palette[i % len(palette)]
            for t, y in _curves(store, [r.run_id], score):
                left.plot(t, scale * y, color=color, marker=".", label=label)
            for key, ls in ((Q_KEY, "-"), (RET_KEY, ":")):
                for t, y in _curves(store, [r.run_id], key):
                    right.plot(t, y, color=color, ls=ls, label=label if key == Q_KEY else None)
        if by_return:
            reference_lines(left, mp)
        style(left, 6, xlabel="environment steps (t_env)",
              ylabel="mean test return" if by_return else "test win rate (%)",
              title=f"{algo_label(algo)} {mp}: each run")
        if right.lines:
            style(right, 6, xlabel="environment steps (t_env)", ylabel="value",
                  title="Q estimate (solid) vs discounted return (dotted)")
            right.get_legend().remove()  # the same colours as the left panel's
        else:  # runs that log no Q estimate
            right.set_axis_off()
        # one legend under both panels: inside the axes it hid the curves of a dozen runs
        handles, labels = left.get_legend_handles_labels()
        left.get_legend().remove()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02),
                   ncol=2, fontsize=7, frameon=False)
        _save(fig, out, _slug("runs", algo, mp), idx, SECTION,
              f"{algo_label(algo)} {mp}: runs matching `{pattern}`, one line each")
        made += 1
    if not made:
        idx.notes.append(f"Per-run curves skipped: no finished run matches '{pattern}'.")
    return made
