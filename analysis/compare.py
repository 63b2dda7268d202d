"""Paired, per-seed comparison of two methods in each Table 1 cell.

Why: Table 1 compares means over seeds as if the two methods' seeds were independent. They are
not: runs with the same seed share the environments' seeds and, between sparse methods, the
initial network and mask, so a seed-wise difference removes what both runs share. With four seeds
and a seed std of 13–52 (the Swimmer), "MAST is below RigL on every seed" is a statement the
means cannot make. `python -m analysis compare --results docs/results/runs --pair mast:rigl`
prints per cell: the seeds both methods have, each seed's difference A − B (win rate in points,
or return), their mean with a paired percentile-bootstrap 95% CI (the seeds' differences
resampled), on how many seeds A is above B, and the two-sided exact sign test over the seeds
that differ (assumption-free; no normality is assumed of four numbers). The cells and their
runs are Table 1's (baseline configuration; `--where` / `--dense-where` slice them the same way).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from . import aggregate as agg
from .render import TableResult, fmt, fmt_ci
from .select import DENSE, METHODS, algo_label, method_label, pct, sparse_cells, table_rows
from .store import Store

COLUMNS = ["Alg.", "Env.", "Sp.", "A − B", "Seeds", "Per seed (A − B)", "Mean [95% CI]",
           "A above B", "Sign test p"]


class CompareError(ValueError):
    """A bad --pair: one line naming the allowed methods."""


def parse_pairs(specs: list[str]) -> list[tuple[str, str]]:
    """['mast:rigl', ...] → [('mast', 'rigl'), ...]; [] → MAST against every other method and
    dense."""
    allowed = [DENSE, *METHODS]
    if not specs:
        return [("mast", m) for m in allowed if m != "mast"]
    pairs = []
    for spec in specs:
        a, sep, b = spec.partition(":")
        if not sep or a not in allowed or b not in allowed or a == b:
            raise CompareError(f"--pair {spec!r}: expected A:B with two different methods of "
                               f"{', '.join(allowed)}")
        pairs.append((a, b))
    return pairs


def sign_test_p(above: int, below: int) -> float:
    """Two-sided exact binomial p of `above` vs `below` under p = 1/2 (ties left out)."""
    n = above + below
    return stats.binomtest(above, n).pvalue if n else math.nan


def _by_seed(store: Store, run_ids: list[str]) -> dict[int, float]:
    """{seed: final score}, the mean where a seed has more than one run."""
    runs = store.runs.set_index("run_id").loc[run_ids]
    runs = runs[runs["final_win_rate"].notna()]
    return {int(s): float(g.mean()) for s, g in runs.groupby("seed")["final_win_rate"]}


def _runs_of(sel: dict, row: tuple, method: str) -> list[str]:
    """Run ids of one side of a pair: the cell's, or the dense baseline of its (algo, map)."""
    return sel["dense"].get(row[:2], []) if method == DENSE else sel["cells"].get((*row, method), [])


def _line(row: tuple, a: str, b: str, sa: dict, sb: dict, n_boot: int) -> tuple[dict, dict]:
    algo, env, sp = row
    scale = agg.percent_scale(env)
    seeds = sorted(set(sa) & set(sb))
    diffs = [scale * (sa[s] - sb[s]) for s in seeds]
    mean = float(np.mean(diffs)) if diffs else math.nan
    lo, hi = agg.bootstrap([diffs], "mean", n_boot=n_boot) if len(diffs) > 1 else (math.nan,) * 2
    above, below = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    p = sign_test_p(above, below)
    name = f"{method_label(a)} − {method_label(b)}"
    num = {"Alg.": algo_label(algo), "Env.": env, "Sp.": sp, "A − B": name, "Seeds": len(seeds),
           "Mean": mean, "CI low": lo, "CI high": hi, "A above": above, "A below": below,
           "Sign test p": p, "Per seed": " ".join(f"{s}:{d:+.1f}" for s, d in zip(seeds, diffs, strict=True))}
    shown = {"Alg.": algo_label(algo), "Env.": env, "Sp.": pct(sp), "A − B": name,
             "Seeds": ",".join(map(str, seeds)) or "—",
             "Per seed (A − B)": ", ".join(f"{d:+.1f}" for d in diffs) or "—",
             "Mean [95% CI]": fmt_ci(mean, lo, hi),
             "A above B": f"{above} of {len(seeds)}" if seeds else "—",
             "Sign test p": fmt(p, 3)}
    return num, shown


def build_compare(store: Store, pairs: list[tuple[str, str]],
                  n_boot: int = agg.N_BOOT) -> TableResult:
    """One line per (Table 1 row, pair) where both sides have a finished run."""
    sel = sparse_cells(store, METHODS)
    nums, shown, notes = [], [], []
    for row in table_rows(sel["cells"]):
        algo, env, _ = row
        for a, b in pairs:
            sa, sb = (_by_seed(store, _runs_of(sel, row, m)) for m in (a, b))
            if not sa or not sb:
                continue
            alone = sorted(set(sa) ^ set(sb))
            if alone:
                notes.append(f"{algo_label(algo)} {env} {pct(row[2])} {method_label(a)} − "
                             f"{method_label(b)}: seed(s) {', '.join(map(str, alone))} have one "
                             "side only and are left out")
            n, s = _line(row, a, b, sa, sb, n_boot)
            nums.append(n)
            shown.append(s)
    if not shown:
        raise CompareError("no cell has finished runs of both methods of any --pair")
    notes = ["A − B per seed: final win rate in points (%), or final return on maps without a "
             "win condition; mean with a paired percentile-bootstrap 95% CI over the seeds' "
             f"differences ({n_boot} resamples); sign test: two-sided exact binomial over the "
             "seeds that differ (ties left out). Runs are Table 1's cells (baseline "
             "configuration)."] + notes + sel["notes"]
    return TableResult("compare", "Paired per-seed comparison (A − B)",
                       pd.DataFrame(shown, columns=COLUMNS), pd.DataFrame(nums), notes)
