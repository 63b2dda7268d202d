"""Paper tables: Table 1 (normalized to dense), Table 5 (raw ± std) and ablations (Tables 6-10)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

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
    table_rows,
    unfinished_note,
    values_of,
    varied_keys,
)
from .store import Store

RESOURCE_COLS = [("Total Size", "total_size"), ("FLOPs (Train)", "flops_train"),
                 ("FLOPs (Test)", "flops_test")]
RESOURCE_PREF = ["mast", "rigl", "set", "static", "rlx2", "tiny"]

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


def _resources(store: Store, cells: dict, row: tuple) -> dict[str, float]:
    runs = store.runs.set_index("run_id")
    out = {}
    for _, col in RESOURCE_COLS:
        out[col] = math.nan
        for m in RESOURCE_PREF:
            vals = [runs.at[r, col] for r in cells.get((*row, m), [])]
            vals = [v for v in vals if not pd.isna(v)]
            if vals:
                out[col] = float(vals[0])
                break
    return out


def _row_label(row: tuple) -> str:
    return f"{algo_label(row[0])} {row[1]} {pct(row[2])}"


def _common_notes(store: Store, sel: dict, title_methods: list[str]) -> list[str]:
    notes = []
    un = unfinished_note(store)
    if un:
        notes.append(un)
    others = sorted(set(store.finished()["method"]) - set(title_methods) - {DENSE})
    if others:
        notes.append(f"Methods present but not in this table: {', '.join(others)}.")
    if sel["notes"]:
        notes.append("Baseline configuration per cell (other runs are ablations): "
                     + "; ".join(sel["notes"]) + ".")
    if store.problems:
        extra = " …" if len(store.problems) > 10 else ""
        notes.append("Store problems: " + "; ".join(store.problems[:10]) + extra)
    return notes


def _seed_notes(rows: list[tuple], counts: dict, dense_counts: dict, methods: list[str]) -> list:
    """Missing cells, cells with fewer seeds than the usual count, and n per cell."""
    notes = []
    all_n = [n for n in counts.values() if n] + [n for n in dense_counts.values() if n]
    tally = Counter(all_n)
    expected = max(tally, key=lambda n: (tally[n], n)) if tally else 0
    missing, incomplete, per_row = [], [], []
    for row in rows:
        dn = dense_counts.get(row[:2], 0)
        parts, miss = [f"Dense n={dn}"], []
        for m in methods:
            n = counts.get((*row, m), 0)
            parts.append(f"{method_label(m)} n={n}")
            if n == 0:
                miss.append(method_label(m))
            elif n < expected:
                incomplete.append(f"{_row_label(row)} {method_label(m)} (n={n})")
        if dn == 0:
            miss.append("Dense baseline (so every cell of the row is —)")
        elif dn < expected:
            incomplete.append(f"{algo_label(row[0])} {row[1]} Dense (n={dn})")
        if miss:
            missing.append(f"{_row_label(row)}: {', '.join(miss)}")
        per_row.append(f"{_row_label(row)}: " + ", ".join(parts))
    if missing:
        notes.append(f"Missing cells ({MISSING}, no finished run): " + "; ".join(missing) + ".")
    if incomplete:
        notes.append(f"Incomplete cells (fewer than the usual n={expected} seeds): "
                     + "; ".join(dict.fromkeys(incomplete)) + ".")
    notes.append("Seeds found per cell — " + " | ".join(per_row) + ".")
    return notes


def _avg(vals: list[float]) -> float:
    v = [x for x in vals if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _require_rows(store: Store, cells: dict) -> list[tuple]:
    if store.empty:
        raise NoData(f"No runs found in {store.source} (expected <results>/<run_id>/summary.json).")
    rows = table_rows(cells)
    if not rows:
        n_fin = len(store.finished())
        un = unfinished_note(store) or ""
        raise NoData(f"No finished sparse runs of {', '.join(METHODS)} in {store.source} "
                     f"({len(store.runs)} run(s), {n_fin} finished). {un}".strip())
    return rows


def build_table1(store: Store, stat: str = "mean", n_boot: int = agg.N_BOOT) -> TableResult:
    """Paper Table 1: win rates normalized to the dense baseline, with resource ratios."""
    sel = sparse_cells(store, METHODS)
    cells, dense = sel["cells"], sel["dense"]
    rows = _require_rows(store, cells)
    ci = stat == "iqm"
    labels = [f"{method_label(m)} (%)" for m in METHODS]
    disp, num, counts, dense_counts = [], [], {}, {}
    by_algo: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        algo, mp, sp = row
        dvals = values_of(store, dense.get((algo, mp), []))
        dense_counts[(algo, mp)] = len(dvals)
        res = _resources(store, cells, row)
        nrow = {"Alg.": algo_label(algo), "Env.": mp, "Sp.": sp,
                **{lab: res[col] for lab, col in RESOURCE_COLS}}
        drow = {"Alg.": algo_label(algo), "Env.": mp, "Sp.": pct(sp),
                **{lab: fmt(res[col], 3, "x") for lab, col in RESOURCE_COLS}}
        extra = {}
        for m, lab in zip(METHODS, labels, strict=True):
            vals = values_of(store, cells.get((*row, m), []))
            counts[(*row, m)] = len(vals)
            v, lo, hi = agg.normalized(vals, dvals, stat, ci=ci, n_boot=n_boot)
            nrow[lab] = v
            drow[lab] = fmt_ci(v, lo, hi)
            extra[f"{method_label(m)} n"] = len(vals)
            if ci:
                extra[f"{method_label(m)} CI low"] = lo
                extra[f"{method_label(m)} CI high"] = hi
        nrow.update(extra)
        nrow["Dense n"] = len(dvals)
        num.append(nrow)
        disp.append(drow)
        by_algo[algo].append(nrow)
    # Avg. row after each algorithm's rows
    disp_out, num_out = [], []
    for algo in order_algos(by_algo):
        for nrow, drow in zip(num, disp, strict=True):
            if nrow["Alg."] == algo_label(algo):
                num_out.append(nrow)
                disp_out.append(drow)
        group = by_algo[algo]
        avg = {"Alg.": algo_label(algo), "Env.": "Avg.", "Sp.": _avg([r["Sp."] for r in group])}
        for lab, _ in RESOURCE_COLS:
            avg[lab] = _avg([r[lab] for r in group])
        for lab in labels:
            avg[lab] = _avg([r[lab] for r in group])
        num_out.append(avg)
        disp_out.append({"Alg.": avg["Alg."], "Env.": "Avg.", "Sp.": pct(avg["Sp."]),
                         **{lab: fmt(avg[lab], 3, "x") for lab, _ in RESOURCE_COLS},
                         **{lab: fmt(avg[lab]) for lab in labels}})
    cols = ["Alg.", "Env.", "Sp."] + [c for c, _ in RESOURCE_COLS] + labels
    display = pd.DataFrame(disp_out, columns=cols)
    numeric = pd.DataFrame(num_out)
    window = sorted({int(w) for w in store.finished()["final_window"].dropna()}) or [20]
    how = ("IQM over seeds, with a percentile-bootstrap 95% CI in brackets "
           f"({n_boot} resamples; method and dense seeds resampled independently)"
           if ci else "mean over seeds")
    notes = [f"Cells: 100 × {how} of the final win rate / the same statistic of the dense "
             "baseline (same algorithm and map). Final win rate = mean test win rate over the "
             f"last {'/'.join(map(str, window))} evaluations. Avg. = mean of the available "
             "cells of the column.",
             "Total Size and FLOPs: ratios to the dense model (summary.json)."]
    notes += _seed_notes(rows, counts, dense_counts, METHODS)
    notes += _common_notes(store, sel, METHODS)
    title = "Table 1: MAST vs sparse training baselines, win rate normalized to dense"
    return TableResult("table1", title, display, numeric, notes)


def build_table5(store: Store, stat: str = "mean", n_boot: int = agg.N_BOOT) -> TableResult:
    """Paper Table 5: raw final win rates (%) mean ± std (or IQM [95% CI]), Dense included."""
    sel = sparse_cells(store, METHODS)
    cells, dense = sel["cells"], sel["dense"]
    rows = _require_rows(store, cells)
    ci = stat == "iqm"
    all_methods = [DENSE] + METHODS
    labels = [f"{method_label(m)} (%)" for m in all_methods]
    disp, num, counts, dense_counts = [], [], {}, {}
    for row in rows:
        algo, mp, sp = row
        nrow = {"Alg.": algo_label(algo), "Env.": mp, "Sp.": sp}
        drow = {"Alg.": algo_label(algo), "Env.": mp, "Sp.": pct(sp)}
        extra = {}
        for m, lab in zip(all_methods, labels, strict=True):
            ids = dense.get((algo, mp), []) if m == DENSE else cells.get((*row, m), [])
            vals = values_of(store, ids)
            if m == DENSE:
                dense_counts[(algo, mp)] = len(vals)
            else:
                counts[(*row, m)] = len(vals)
            v, lo, hi = agg.raw(vals, stat, ci=ci, n_boot=n_boot)
            sd = 100.0 * agg.std(vals)
            nrow[lab] = v
            if ci:
                drow[lab] = fmt_ci(v, lo, hi)
            else:
                drow[lab] = fmt(v) if math.isnan(sd) else f"{v:.1f} ± {sd:.1f}"
            extra[f"{method_label(m)} std"] = sd
            extra[f"{method_label(m)} n"] = len(vals)
            if ci:
                extra[f"{method_label(m)} CI low"] = lo
                extra[f"{method_label(m)} CI high"] = hi
        nrow.update(extra)
        num.append(nrow)
        disp.append(drow)
    disp_out, num_out = [], []
    for algo in order_algos(r[0] for r in rows):
        group = [r for r in num if r["Alg."] == algo_label(algo)]
        for nrow, drow in zip(num, disp, strict=True):
            if nrow["Alg."] == algo_label(algo):
                num_out.append(nrow)
                disp_out.append(drow)
        avg = {"Alg.": algo_label(algo), "Env.": "Avg.", "Sp.": _avg([r["Sp."] for r in group])}
        davg = {"Alg.": algo_label(algo), "Env.": "Avg.", "Sp.": pct(avg["Sp."])}
        for m, lab in zip(all_methods, labels, strict=True):
            avg[lab] = _avg([r[lab] for r in group])
            sdk = f"{method_label(m)} std"
            avg[sdk] = _avg([r[sdk] for r in group])
            if ci or math.isnan(avg[sdk]):
                davg[lab] = fmt(avg[lab])
            else:
                davg[lab] = f"{avg[lab]:.1f} ± {avg[sdk]:.1f}"
        num_out.append(avg)
        disp_out.append(davg)
    display = pd.DataFrame(disp_out, columns=["Alg.", "Env.", "Sp."] + labels)
    numeric = pd.DataFrame(num_out)
    how = ("IQM over seeds [percentile-bootstrap 95% CI]" if ci
           else "mean ± sample std (ddof=1) over seeds")
    notes = [f"Raw final win rates (%), {how}; not normalized. Dense = the dense baseline of "
             "the same algorithm and map. Avg. = mean of the available cells (± mean of stds)."]
    notes += _seed_notes(rows, counts, dense_counts, METHODS)
    notes += _common_notes(store, sel, METHODS)
    title = "Table 5: final win rates (%) with standard deviations"
    return TableResult("table5", title, display, numeric, notes)


# ---------------------------------------------------------------- ablations (Tables 6-10)

def _fmt_value(key: str, v: str | None) -> str:
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
    out, used = [], set()
    for pair in PAIRS:
        if any(k in keys for k in pair):
            out.append(("+".join(pair), pair))
            used.update(pair)
    out += [(k, (k,)) for k in keys if k not in used]
    return out


def _composite_value(store: Store, rid: str, ckeys: tuple[str, ...]) -> tuple[str, tuple]:
    cfg = store.configs
    vals = [canon(cfg.at[rid, k]) if k in cfg.columns and rid in cfg.index else None
            for k in ckeys]
    skey = tuple(sort_key(v) for v in vals)
    if ckeys == PAIRS[0]:
        return f"α={vals[0]}, ω={vals[1]}", skey
    if ckeys == PAIRS[1]:
        return f"{vals[0]}:{vals[1]}", skey
    return _fmt_value(ckeys[0], vals[0]), skey


def _slug(tkey: str, ckeys: tuple[str, ...]) -> str:
    return PAIR_SLUGS.get(ckeys, tkey).replace("/", "_")


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
    fin = store.finished()
    ci = stat == "iqm"
    dense = sparse_cells(store, [])["dense"]
    entries: dict[str, list[dict]] = defaultdict(list)
    slugs, notes_by = {}, defaultdict(list)
    for (algo, mp, meth), g in fin.groupby(["algo", "map", "method"]):
        ids = g["run_id"].tolist()
        keys = varied_keys(store, ids)
        if meth == DENSE:
            keys = [k for k in keys if k != "sparsity"]
        pool = fin[(fin["algo"] == algo) & (fin["method"] == meth)]["run_id"].tolist()
        dvals = values_of(store, dense.get((algo, mp), []))
        for tkey, ckeys in _compose(keys):
            slugs[tkey] = _slug(tkey, ckeys)
            sel, notes = select_baseline(store, ids, pool, keep=ckeys)
            glabel = f"{algo_label(algo)} {mp} {method_label(meth)}"
            notes_by[tkey] += [f"{glabel}: {n}" for n in notes]
            groups: dict[tuple, list[str]] = defaultdict(list)
            for rid in sel:
                groups[_composite_value(store, rid, ckeys)].append(rid)
            for (vlabel, skey), rids in groups.items():
                vals = values_of(store, rids)
                v, lo, hi = agg.raw(vals, stat, ci=ci, n_boot=n_boot)
                nv, _, _ = agg.normalized(vals, dvals, stat)
                entries[tkey].append({
                    "key": tkey, "name": KEY_NAMES.get(tkey, tkey), "value": vlabel,
                    "_sort": skey, "algo": algo, "map": mp, "method": meth, "n": len(vals),
                    "win_rate": v, "std": 100.0 * agg.std(vals), "ci_low": lo, "ci_high": hi,
                    "normalized": nv, "dense_n": len(dvals)})
    if not entries:
        raise NoData(f"No config key varies within any (algo, map, method) group of finished "
                     f"runs in {store.source}; no ablation tables to build.")
    un = unfinished_note(store)
    out = []
    for tkey in sorted(entries):
        df = pd.DataFrame(entries[tkey])
        combos = df[["algo", "map", "method"]].drop_duplicates()
        one_method = combos["method"].nunique() == 1

        def col_label(r, combos=combos, one_method=one_method) -> str:
            if combos["map"].nunique() == 1 and combos["algo"].nunique() > 1:
                lab = algo_label(r["algo"])
            elif combos["algo"].nunique() == 1:
                lab = r["map"]
            else:
                lab = f"{algo_label(r['algo'])} {r['map']}"
            return lab if one_method else f"{lab} {method_label(r['method'])}"

        df["column"] = df.apply(col_label, axis=1)
        algos, maps = order_algos(df["algo"]), order_maps(df["map"])
        df["_order"] = [(algos.index(a), maps.index(m),
                         METHODS.index(me) if me in METHODS else len(METHODS), str(me))
                        for a, m, me in zip(df["algo"], df["map"], df["method"], strict=True)]
        columns = list(dict.fromkeys(df.sort_values("_order", kind="stable")["column"]))
        values = list(dict.fromkeys(df.sort_values("_sort", kind="stable")["value"]))
        name = KEY_NAMES.get(tkey, tkey)

        def pivot(field: str, with_ci: bool, df=df, columns=columns, values=values,
                  name=name) -> pd.DataFrame:
            rows = []
            for val in values:
                row = {name: val}
                pts = []
                for col in columns:
                    hit = df[(df["value"] == val) & (df["column"] == col)]
                    if hit.empty or math.isnan(hit.iloc[0][field]):
                        row[col] = MISSING
                        continue
                    e = hit.iloc[0]
                    pts.append(e[field])
                    cell = fmt_ci(e[field], e["ci_low"], e["ci_high"]) if with_ci \
                        else fmt(e[field])
                    row[col] = f"{cell} (n={int(e['n'])})"
                if len(columns) > 1:
                    row["Avg."] = fmt(_avg(pts))
                rows.append(row)
            return pd.DataFrame(rows)

        display = pivot("win_rate", ci)
        sections = []
        if df["normalized"].notna().any():
            sections.append(("Normalized to the dense baseline (%)", pivot("normalized", False)))
        how = "IQM [percentile-bootstrap 95% CI]" if ci else "mean"
        notes = [f"Cells: {how} over seeds of the final win rate (%), n = seeds. Columns: "
                 f"groups of runs (algorithm / map / method) in which `{tkey}` varies."]
        if notes_by[tkey]:
            notes.append("Other varied knobs fixed at their baseline: "
                         + "; ".join(notes_by[tkey]) + ".")
        if un:
            notes.append(un)
        numeric = df.drop(columns=["_sort", "_order"])
        out.append(TableResult(f"ablation_{slugs[tkey]}", f"Ablation: {name} (`{tkey}`)",
                               display, numeric, notes, sections))
    return out
