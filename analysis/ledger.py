"""One line per finished run: what a closing note or a README results table must state.

Why: the issues ask every learning result to come with its seed, budget, commit and wall time
next to the score; collecting those from five files per run by hand is where mistakes creep in.
`python -m analysis ledger --results docs/results/runs --runs 'wqmix_*'` prints (and writes
`<out>/ledger.md`) per run: the score over the final window, its share of the same seed's dense
run (or of the dense mean where that seed has none, marked †), the re-scored final policy
(`eval_final.json` from `python -m mast.evaluate`), the best evaluation, the logged training wall
time (summed over resumes), the commit and whether the run was resumed. A run launched with
overrides beyond the row's own (algo, map, method, sparsity, seed, ablation, budget) names them
after its label, e.g. `[algo.bootstrap_actions=online]`, so a variant never reads as a duplicate.
"""

from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path

import pandas as pd

from mast.config import NON_SEMANTIC

from .missing import OWN_KEYS
from .render import TableResult
from .select import DENSE, METHODS, algo_label, budget, method_label, order_algos, order_maps, pct
from .store import Store

COLUMNS = ["Run", "Seed", "Budget", "Final", "% of dense", "Final policy", "Best eval",
           "Wall (min)", "Commit", "Run id"]


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# Overrides the row's label already says (or that change where and how often a run is scored,
# not what is trained): the rest name a variant.
LABELLED = (*OWN_KEYS, *NON_SEMANTIC, "ablation", "t_max", "test_interval", "test_nepisode",
            "final_window")


def variant(manifest: dict) -> str:
    """The manifest's overrides that make this run a variant of its row, `[k=v, …]` or ''."""
    keep = []
    for o in manifest.get("overrides") or []:
        key, _, value = o.partition("=")
        key = key.lstrip("+~")
        if key in LABELLED or key.split(".", 1)[0] in NON_SEMANTIC or key.startswith("hydra"):
            continue
        keep.append(f"{key}={Path(value).name if '/' in value else value}")
    return f"[{', '.join(keep)}]" if keep else ""


def run_variant(run_dir: str | Path) -> str:
    """`variant` of the run stored in `run_dir` (its manifest's overrides)."""
    return variant(_json(Path(run_dir) / "manifest.json"))


def run_name(r, label: str = "", task: bool = True) -> str:
    """`QMIX 2s3z MAST 95% (ablation) [variant]` for a store row `r` (a run of the table);
    without the algorithm and map when `task` is False."""
    name = (f"{algo_label(r.algo)} {r.map} " if task else "") + method_label(r.method)
    name += "" if r.method == DENSE else f" {pct(r.sparsity)}"
    name += "" if r.ablation in ("none", None) else f" ({r.ablation})"
    return name + (f" {label}" if label else "")


def _score(x: float, win: bool) -> str:
    return "—" if x is None or math.isnan(x) else (f"{100 * x:.1f}%" if win else f"{x:.1f}")


def _dense_share(runs: pd.DataFrame, r, win: bool, labels: dict[str, str]) -> str:
    """The run's win rate as % of the dense run with its seed, else of the dense mean (†);
    dense variants (`labels`: run id → `variant`) are not the baseline where a plain dense run
    exists.
    Returns (no win condition) get none: they can be negative, and Table 1 normalises them
    against a random policy instead."""
    if r.method == DENSE or not win or math.isnan(r.final_win_rate):
        return "—"
    dense = runs[(runs["algo"] == r.algo) & (runs["map"] == r.map) & (runs["method"] == DENSE)
                 & (runs["t_max"] == r.t_max)]
    plain = dense[[not labels[rid] for rid in dense["run_id"]]]
    dense = plain if not plain.empty else dense
    same = dense[dense["seed"] == r.seed]["final_win_rate"]
    base, mark = (same.mean(), "") if not same.empty else (dense["final_win_rate"].mean(), "†")
    if dense.empty or not base or math.isnan(base):
        return "—"
    return f"{100 * r.final_win_rate / base:.1f}{mark}"


def build_ledger(store: Store, pattern: str = "*") -> TableResult:
    """Rows ordered as Table 1 (algo, map, sparsity, method), then ablation and seed."""
    runs = store.finished()
    chosen = runs[[fnmatch.fnmatchcase(r, pattern) for r in runs["run_id"]]]
    algos, maps = order_algos(chosen["algo"]), order_maps(chosen["map"])
    rank = {m: i for i, m in enumerate((DENSE, *METHODS))}
    variants = {r.run_id: run_variant(r.path) for r in runs.itertuples()}
    labels = [variants[rid] for rid in chosen["run_id"]]
    keys = [(algos.index(r.algo), maps.index(r.map), r.sparsity, rank.get(r.method, 99),
             str(r.ablation), v, r.seed) for r, v in zip(chosen.itertuples(), labels, strict=True)]
    chosen = chosen.assign(variant_label=labels, _k=keys)
    rows = []
    for r in chosen.sort_values("_k").itertuples():
        path = Path(r.path)
        manifest, policy = _json(path / "manifest.json"), _json(path / "eval_final.json")
        win = _json(path / "summary.json").get("final_win_rate") is not None  # null: MA-MuJoCo
        evals = store.series(r.run_id, "test_win_rate" if win else "test_return_mean")["value"]
        wall = store.series(r.run_id, "timing/wall_s")["value"]
        name = run_name(r, r.variant_label)
        key = "win_rate" if win else "return_mean"
        rows.append({
            "Run": name, "Seed": r.seed,
            "Budget": budget(r.t_max) if not math.isnan(r.t_max) else "—",
            "Final": _score(r.final_win_rate, win),
            "% of dense": _dense_share(runs, r, win, variants),
            "Final policy": (f"{_score(policy[key], win)} ({policy.get('episodes')} ep.)"
                             if key in policy else "—"),
            "Best eval": _score(evals.max() if len(evals) else math.nan, win),
            "Wall (min)": f"{wall.iloc[-1] / 60:.0f}" if len(wall) else "—",
            "Commit": (manifest.get("git_commit") or "—")[:7]
            + (" (resumed)" if manifest.get("resumed") else ""),
            "Run id": r.run_id,
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    notes = [f"Runs matching '{pattern}': {len(table)} finished. Final = mean of the last "
             "final_window evaluations (win rate, or test return where there is no win "
             "condition; no % of dense for returns, see Table 1); † = % of the dense mean (no "
             "dense run with that seed); [k=v] = the run's overrides beyond its row (a "
             "variant); wall = logged training time, summed over resumes."]
    return TableResult("ledger", "Run ledger", table, table, notes)
