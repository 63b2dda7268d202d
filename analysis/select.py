"""Which runs form a cell: finished runs, varied config keys and the baseline configuration.

A results folder may hold the main sweep and the ablation sweeps together.  Within a cell
(e.g. algo/map/method/sparsity of Table 1) runs that differ in a config knob are reduced to the
baseline configuration: runs with a default ``ablation`` name are preferred, then, key by key,
the most frequent value is kept (ties broken by how often the value occurs in the runs of the
same algo and method, then in all runs).  Everything excluded is reported in footnotes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mast.config import LATER_KEYS, moot_method_keys

from .store import Store

METHODS = ["tiny", "static", "set", "rigl", "rlx2", "mast"]
DENSE = "dense"
METHOD_LABELS = {"tiny": "Tiny", "static": "SS", "set": "SET", "rigl": "RigL", "rlx2": "RLx2",
                 "mast": "MAST", "dense": "Dense"}
ALGO_ORDER = ["qmix", "wqmix", "res", "vdn", "facmac"]
ALGO_LABELS = {"qmix": "QMIX", "wqmix": "WQMIX", "res": "RES", "vdn": "VDN", "facmac": "FACMAC"}
MAP_ORDER = ["3m", "2s3z", "3s5z", "2c_vs_64zg"]
BASELINE_ABLATIONS = {"", "none", "null", "default", "full", "nan", "?"}

# Keys that identify the group or do not change what is learned.
IGNORED_KEYS = {"seed", "results_dir", "device", "run_id", "checkpoint_interval", "algo.name",
                "env.name", "env.map", "method.name", "env.n_envs", "n_envs", "num_workers",
                "name", "tags", "notes", "group", "resume", "git_commit", "log_interval",
                "save_model", "verbose",
                # mast.config.NON_SEMANTIC (analysis imports no training code; a test keeps
                # the two in step): how a run reports and checkpoints, not what it learns
                "progress", "save_buffer", "test_n_envs", "fail_at_t_env", "lock_stale_s",
                "cuda_graphs"}
IGNORED_PREFIXES = ("wandb.", "hydra.", "launcher.", "ray.", "logging.", "_")
IGNORED_SUFFIXES = ("_dir", "_path", ".device", "log_interval")


def algo_label(a: str) -> str:
    return ALGO_LABELS.get(a, str(a).upper())


def method_label(m: str) -> str:
    return METHOD_LABELS.get(m, str(m))


def _order(values: Iterable[str], known: list[str]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (known.index(v) if v in known else len(known), str(v)))


def order_algos(values: Iterable[str]) -> list[str]:
    return _order(values, ALGO_ORDER)


def order_maps(values: Iterable[str]) -> list[str]:
    return _order(values, MAP_ORDER)


def is_ignored_key(key: str) -> bool:
    return (key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)
            or key.endswith(IGNORED_SUFFIXES) or "hydra" in key.split(".")[0])


def canon(v: Any) -> str | None:
    """Hashable, comparable form of a config value; None for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):  # a bool column's cells are numpy bools
        return str(bool(v)).lower()
    if isinstance(v, int | float):
        f = float(v)
        return repr(int(f)) if f.is_integer() else repr(f)
    if isinstance(v, list | tuple | dict):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


NULL = "null"  # the value of a key that is, or sits under, a key set to null in the config


def config_value(store: Store, run_id: str, key: str) -> str | None:
    """canon() of one run's ``key``; NULL where the key or a parent of it is null in the run's
    config (`method.unit_density: null` vs `{stalker: 0.08, …}`); a key added after the run
    (`mast.config.LATER_KEYS`) has the value that reproduces the run's behaviour; None only
    where the run's config does not have the key at all (compatible with any)."""
    cfg = store.configs
    group, _, leaf = key.partition(".")
    if group == "method" and leaf != "operator" and leaf in moot_method_keys(
            {"operator": config_value(store, run_id, "method.operator")}):
        return None  # chooses nothing in this run (as in its run id)
    if key in cfg.columns and run_id in cfg.index:
        v = canon(cfg.at[run_id, key])
        if v is not None:
            return v
    nulls = store.nulls.get(run_id, frozenset())
    parts = key.split(".")
    if any(".".join(parts[:i]) in nulls for i in range(1, len(parts) + 1)):
        return NULL
    if tuple(parts) in LATER_KEYS:
        return canon(LATER_KEYS[tuple(parts)])
    return None


def config_values(store: Store, run_ids: Iterable[str], key: str) -> dict[str, str | None]:
    return {r: config_value(store, r, key) for r in run_ids}


def varied_keys(store: Store, run_ids: Iterable[str]) -> list[str]:
    """Config keys (not ignored) with more than one distinct value among runs; a run without
    the key does not count, one with it null does (NULL is a value)."""
    ids = [r for r in run_ids if r in store.configs.index]
    if len(ids) < 2:
        return []
    out = []
    for key in store.configs.columns:
        if is_ignored_key(key):
            continue
        if len(set(config_values(store, ids, key).values()) - {None}) > 1:
            out.append(key)
    return sorted(out)


def baseline_value(store: Store, run_ids: list[str], key: str, pool: list[str]) -> str | None:
    """Most frequent value of ``key`` among ``run_ids``; ties -> more frequent in ``pool``,
    then among all runs, then the smallest."""
    vals = config_values(store, run_ids, key)
    counts = Counter(v for v in vals.values() if v is not None)
    if not counts:
        return None
    pool_counts = Counter(v for v in config_values(store, pool, key).values() if v is not None)
    all_counts = Counter(
        v for v in config_values(store, store.runs["run_id"], key).values() if v is not None)
    # max() keeps the first of equal candidates: sorted ascending, the smallest wins a tie
    return max(sorted(counts, key=sort_key),
               key=lambda v: (counts[v], pool_counts[v], all_counts[v]))


def sort_key(v: Any) -> tuple:
    """Numeric values first, in numeric order, then strings."""
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def select_baseline(store: Store, run_ids: list[str], pool: list[str] | None = None,
                    keep: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Reduce runs to the baseline configuration.

    Returns (selected run ids, notes on what was excluded).  Keys in ``keep`` are allowed to
    vary (e.g. the swept key of an ablation table).
    """
    keep = set(keep)
    pool = list(pool if pool is not None else run_ids)
    notes: list[str] = []
    ids = list(run_ids)
    runs = store.runs.set_index("run_id")
    abl = {r: str(runs.at[r, "ablation"]).lower() for r in ids if r in runs.index}
    if "ablation.name" not in keep and len(set(abl.values())) > 1:
        base = [r for r in ids if abl.get(r) in BASELINE_ABLATIONS]
        if base and len(base) < len(ids):
            dropped = sorted({abl[r] for r in ids if r not in base})
            notes.append(f"{len(ids) - len(base)} run(s) of ablation {', '.join(dropped)} "
                         "excluded")
            ids = base
    while True:
        keys = [k for k in varied_keys(store, ids) if k not in keep]
        if not keys:
            break
        key = keys[0]
        best = baseline_value(store, ids, key, pool)
        vals = config_values(store, ids, key)
        kept = [r for r in ids if vals[r] in (best, None)]
        notes.append(f"{len(ids) - len(kept)} run(s) with {key} ≠ {best} excluded")
        ids = kept
    return ids, notes


def sparse_cells(store: Store, methods: Iterable[str] | None = None,
                 by_budget: bool = False) -> dict:
    """Finished, baseline-reduced runs per cell.

    Returns {"cells": {(algo, map, sparsity, method): [run_id...]},
             "dense": {(algo, map): [run_id...]}, "notes": [...]}.
    ``by_budget``: keys end with t_max (None where unknown), so a 400k and a 1M sweep of one
    map are two cells, not one reduced to the more frequent budget.
    """
    fin = store.finished()
    if by_budget:
        fin = fin.assign(budget=budgets(fin))
    extra = ["budget"] if by_budget else []
    cells: dict[tuple, list[str]] = {}
    dense: dict[tuple, list[str]] = {}
    notes: list[str] = []
    wanted = set(methods) if methods is not None else None
    sparse = fin[fin["method"] != DENSE]
    if wanted is not None:
        sparse = sparse[sparse["method"].isin(wanted)]
    for key, g in sparse.groupby(["algo", "map", "sparsity", "method", *extra], dropna=False):
        algo, mp, sp, meth = key[:4]
        pool = fin[(fin["algo"] == algo) & (fin["method"] == meth)]["run_id"].tolist()
        ids, n = select_baseline(store, g["run_id"].tolist(), pool)
        cells[_none_nan(key)] = ids
        notes += [f"{algo_label(algo)} {mp} {pct(sp)} {method_label(meth)}: {x}" for x in n]
    for key, g in fin[fin["method"] == DENSE].groupby(["algo", "map", *extra], dropna=False):
        algo, mp = key[:2]
        pool = fin[(fin["algo"] == algo) & (fin["method"] == DENSE)]["run_id"].tolist()
        ids, n = select_baseline(store, g["run_id"].tolist(), pool)
        dense[_none_nan(key)] = ids
        notes += [f"{algo_label(algo)} {mp} Dense: {x}" for x in n]
    return {"cells": cells, "dense": dense, "notes": notes}


def budgets(runs: pd.DataFrame) -> list[int | None]:
    """Each run's t_max as an int, None where unknown (NaN ≠ NaN would split equal budgets)."""
    return [None if pd.isna(t) else int(t) for t in runs["t_max"]]


def _none_nan(key: tuple) -> tuple:
    """A group key with NaN budgets as None (NaN ≠ NaN would make every lookup miss)."""
    return tuple(None if isinstance(k, float) and math.isnan(k) else k for k in key)


def table_rows(cells: dict) -> list[tuple]:
    """(algo, map, sparsity) rows of the cells in paper order (known algos/maps first)."""
    keys = {(a, m, s) for a, m, s, _ in cells}
    algos, maps = order_algos(k[0] for k in keys), order_maps(k[1] for k in keys)
    return sorted(keys, key=lambda k: (algos.index(k[0]), maps.index(k[1]),
                                       -1.0 if pd.isna(k[2]) else float(k[2])))


def pct(s: float) -> str:
    """Sparsity fraction -> '95%' (one decimal when not integral)."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "—"
    v = 100.0 * float(s)
    return f"{v:.0f}%" if abs(v - round(v)) < 1e-6 else f"{v:.1f}%"


def budget(t_max) -> str:
    """400000 -> '400k', 1000000 -> '1M' (figure titles and file names)."""
    if t_max is None or pd.isna(t_max):
        return "?"
    t = int(t_max)
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if t >= div and t % (div // 10) == 0:
            return f"{t / div:g}{suffix}"
    return str(t)


def unfinished_note(store: Store) -> str | None:
    """Footnote on runs that do not count (status other than finished)."""
    un = store.unfinished()
    if un.empty:
        return None
    counts = un["status"].value_counts()
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    ids = ", ".join(sorted(un["run_id"].astype(str))[:20])
    more = " …" if len(un) > 20 else ""
    return f"Not counted (status ≠ finished): {parts} — {ids}{more}."


def values_of(store: Store, run_ids: list[str], col: str = "final_win_rate") -> list[float]:
    runs = store.runs.set_index("run_id")
    return [float(runs.at[r, col]) for r in run_ids if not pd.isna(runs.at[r, col])]
