"""Ablation tables (paper Tables 6-10): one per config knob varied within a group of runs.

``NoData`` lives here, not in tables.py, because tables.py imports this module and
re-exports both; defining it there would make the import circular.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import aggregate as agg
from .render import MISSING, TableResult, fmt, fmt_ci
from .select import (
    DENSE,
    METHODS,
    algo_label,
    canon,
    method_label,
    order_algos,
    order_maps,
    pct,
    select_baseline,
    sort_key,
    sparse_cells,
    unfinished_note,
    values_of,
    varied_keys,
)
from .store import Store

KEY_NAMES = {
    "method.t0_env_steps": "T0 (hybrid TD(λ))",
    "algo.td_lambda": "λ",
    "method.sm_alpha+method.sm_omega": "Soft Mellowmax α/ω",
    "method.sm_alpha": "Soft Mellowmax α/ω",
    "method.sm_omega": "Soft Mellowmax α/ω",
    "method.batch_offline+method.batch_online": "b1:b2 buffer partition",
    "method.batch_offline": "b1:b2 buffer partition",
    "method.batch_online": "b1:b2 buffer partition",
    "method.update_interval_episodes": "Δm",
    "ablation.name": "component ablation",
    "sparsity": "Sp. (final win rate vs sparsity, Fig. 8)",
}
# Knobs that are swept together form one table.
PAIRS = [("method.sm_alpha", "method.sm_omega"), ("method.batch_offline", "method.batch_online")]
PAIR_SLUGS = {PAIRS[0]: "method.sm_alpha_omega", PAIRS[1]: "method.batch_offline_online"}


class NoData(Exception):
    """Nothing to tabulate; the message says why."""


def _fmt_value(key: str, v: str | None) -> str:
    """Readable knob value: sparsity in %, step counts in millions."""
    if v is None:
        return "unset"
    if key == "sparsity":
        try:
            return pct(float(v))
        except ValueError:
            return v
    if key.endswith(("t0_env_steps", "t_max")):
        try:
            f = float(v)
        except ValueError:
            return v
        return "0" if f == 0 else f"{f / 1e6:g}M"
    return v


def _compose(keys: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(table key, knobs) per table: knobs swept together (PAIRS) share one table."""
    out, used = [], set()
    for pair in PAIRS:
        if any(k in keys for k in pair):
            out.append(("+".join(pair), pair))
            used.update(pair)
    out += [(k, (k,)) for k in keys if k not in used]
    return out


def _composite_value(store: Store, rid: str, ckeys: tuple[str, ...]) -> tuple[str, tuple]:
    """Row label of a run's knob value(s) and a key to sort the rows numerically."""
    cfg = store.configs
    vals = [canon(cfg.at[rid, k]) if k in cfg.columns and rid in cfg.index else None
            for k in ckeys]
    skey = tuple(sort_key(v) for v in vals)
    if ckeys == PAIRS[0]:
        return f"α={vals[0]}, ω={vals[1]}", skey
    if ckeys == PAIRS[1]:
        return f"{vals[0]}:{vals[1]}", skey
    return _fmt_value(ckeys[0], vals[0]), skey


def _slug(tkey: str) -> str:
    """File-name stem of a knob's table; a swept pair gets its short joint name."""
    joint = {"+".join(pair): slug for pair, slug in PAIR_SLUGS.items()}
    return joint.get(tkey, tkey).replace("/", "_")


class _Group(NamedTuple):
    """Finished runs of one (algo, map, method), the same algo+method pool (for baseline
    tie-breaks) and the dense baseline's values."""

    key: tuple[str, str, str]
    ids: list[str]
    pool: list[str]
    dvals: list[float]


def _knob_entries(store: Store, group: _Group, tkey: str, ckeys: tuple[str, ...], stat: str,
                  n_boot: int) -> tuple[list[dict], list[str]]:
    """Entries (one per value of the knob ``ckeys``) of one group, and notes on the other
    knobs, fixed at their baseline."""
    (algo, mp, meth), dvals = group.key, group.dvals
    sel, notes = select_baseline(store, group.ids, group.pool, keep=ckeys)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for rid in sel:
        groups[_composite_value(store, rid, ckeys)].append(rid)
    entries = []
    for (vlabel, skey), rids in groups.items():
        vals = values_of(store, rids)
        v, lo, hi = agg.raw(vals, stat, ci=stat == "iqm", n_boot=n_boot)
        nv, _, _ = agg.normalized(vals, dvals, stat, baseline=agg.random_score(mp),
                                  bar=agg.learning_bar(mp))
        entries.append({
            "key": tkey, "name": KEY_NAMES.get(tkey, tkey), "value": vlabel,
            "_sort": skey, "algo": algo, "map": mp, "method": meth, "n": len(vals),
            "win_rate": v, "std": 100.0 * agg.std(vals), "ci_low": lo, "ci_high": hi,
            "normalized": nv, "dense_n": len(dvals)})
    glabel = f"{algo_label(algo)} {mp} {method_label(meth)}"
    return entries, [f"{glabel}: {n}" for n in notes]


def _ablation_entries(store: Store, stat: str, n_boot: int) -> tuple[dict, dict]:
    """Entries and baseline notes per table key, over every group where a knob varies."""
    fin = store.finished()
    dense = sparse_cells(store, [])["dense"]
    entries: dict[str, list[dict]] = defaultdict(list)
    notes_by: dict[str, list[str]] = defaultdict(list)
    for (algo, mp, meth), g in fin.groupby(["algo", "map", "method"]):
        ids = g["run_id"].tolist()
        keys = varied_keys(store, ids)
        if meth == DENSE:
            keys = [k for k in keys if k != "sparsity"]
        pool = fin[(fin["algo"] == algo) & (fin["method"] == meth)]["run_id"].tolist()
        group = _Group((algo, mp, meth), ids, pool, values_of(store, dense.get((algo, mp), [])))
        for tkey, ckeys in _compose(keys):
            new, notes = _knob_entries(store, group, tkey, ckeys, stat, n_boot)
            entries[tkey] += new
            notes_by[tkey] += notes
    return entries, notes_by


def _column_label(r, combos: pd.DataFrame) -> str:
    """Name a column by whatever distinguishes the groups of the table (algo, map, method)."""
    if combos["map"].nunique() == 1 and combos["algo"].nunique() > 1:
        lab = algo_label(r["algo"])
    elif combos["algo"].nunique() == 1:
        lab = r["map"]
    else:
        lab = f"{algo_label(r['algo'])} {r['map']}"
    return lab if combos["method"].nunique() == 1 else f"{lab} {method_label(r['method'])}"


def _ablation_frame(entries: list[dict]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Entries as a frame with a column label, plus the ordered columns and knob values."""
    df = pd.DataFrame(entries)
    combos = df[["algo", "map", "method"]].drop_duplicates()
    df["column"] = df.apply(_column_label, axis=1, combos=combos)
    algos, maps = order_algos(df["algo"]), order_maps(df["map"])
    df["_order"] = [(algos.index(a), maps.index(m),
                     METHODS.index(me) if me in METHODS else len(METHODS), str(me))
                    for a, m, me in zip(df["algo"], df["map"], df["method"], strict=True)]
    columns = list(dict.fromkeys(df.sort_values("_order", kind="stable")["column"]))
    values = list(dict.fromkeys(df.sort_values("_sort", kind="stable")["value"]))
    return df, columns, values


def _pivot(df: pd.DataFrame, columns: list[str], values: list[str], name: str, field: str,
           with_ci: bool) -> pd.DataFrame:
    """Knob values × columns table of ``field`` with n per cell and a row Avg."""
    rows = []
    for val in values:
        row, pts = {name: val}, []
        for col in columns:
            hit = df[(df["value"] == val) & (df["column"] == col)]
            if hit.empty or math.isnan(hit.iloc[0][field]):
                row[col] = MISSING
                continue
            e = hit.iloc[0]
            pts.append(e[field])
            cell = fmt_ci(e[field], e["ci_low"], e["ci_high"]) if with_ci else fmt(e[field])
            row[col] = f"{cell} (n={int(e['n'])})"
        if len(columns) > 1:
            row["Avg."] = fmt(float(np.mean(pts)) if pts else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _ablation_table(tkey: str, entries: list[dict], baseline_notes: list[str], ci: bool,
                    unfinished: str | None) -> TableResult:
    """The table of one knob: raw win rates, plus a normalized section when dense exists."""
    df, columns, values = _ablation_frame(entries)
    name = KEY_NAMES.get(tkey, tkey)
    display = _pivot(df, columns, values, name, "win_rate", ci)
    sections = []
    if df["normalized"].notna().any():
        sections.append(("Normalized to the dense baseline (%)",
                         _pivot(df, columns, values, name, "normalized", False)))
    how = "IQM [percentile-bootstrap 95% CI]" if ci else "mean"
    notes = [f"Cells: {how} over seeds of the final win rate (%), n = seeds. Columns: "
             f"groups of runs (algorithm / map / method) in which `{tkey}` varies."]
    if baseline_notes:
        notes.append("Other varied knobs fixed at their baseline: "
                     + "; ".join(baseline_notes) + ".")
    if unfinished:
        notes.append(unfinished)
    numeric = df.drop(columns=["_sort", "_order"])
    return TableResult(f"ablation_{_slug(tkey)}", f"Ablation: {name} (`{tkey}`)", display, numeric,
                       notes, sections)


def build_ablation_tables(store: Store, stat: str = "mean",
                          n_boot: int = agg.N_BOOT) -> list[TableResult]:
    """One table per config knob that varies within an (algo, map, method) group.

    Rows: values of the knob; columns: the groups (maps, algos or algo+map); cells: the
    statistic over seeds of the final win rate (%), with n.  Other knobs that vary in the same
    group are fixed at their baseline value.  When a dense baseline exists a second table gives
    the values normalized to it (as the paper's Tables 6-10).
    """
    if store.empty:
        raise NoData(f"No runs found in {store.source} (expected <results>/<run_id>/summary.json).")
    entries, notes_by = _ablation_entries(store, stat, n_boot)
    if not entries:
        raise NoData(f"No config key varies within any (algo, map, method) group of finished "
                     f"runs in {store.source}; no ablation tables to build.")
    un = unfinished_note(store)
    return [_ablation_table(tkey, entries[tkey], notes_by[tkey], stat == "iqm", un)
            for tkey in sorted(entries)]
