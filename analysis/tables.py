"""Paper tables: Table 1 (normalized to dense), Table 5 (raw ± std) and ablations (Tables 6-10).

The ablation tables are built in ablations.py and re-exported here with ``NoData``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import aggregate as agg
from .ablations import NoData, build_ablation_tables
from .missing import fill_in_note
from .render import MISSING, TableResult, fmt, fmt_ci
from .select import (
    DENSE,
    METHODS,
    algo_label,
    method_label,
    order_algos,
    pct,
    sparse_cells,
    table_rows,
    unfinished_note,
    values_of,
)
from .store import Store

RESOURCE_COLS = [("Total Size", "total_size"), ("FLOPs (Train)", "flops_train"),
                 ("FLOPs (Test)", "flops_test")]
RESOURCE_PREF = ["mast", "rigl", "set", "static", "rlx2", "tiny"]
ABS_MARK = "(abs.)"

__all__ = ["NoData", "build_ablation_tables", "build_table1", "build_table5"]


def _resources(store: Store, cells: dict, row: tuple,
               notes: list[str] | None = None) -> dict[str, float]:
    """A row's resource ratios from its first sparse method with records, taken from the run
    that ended last: records of one configuration differ only when the accounting was corrected
    between runs, and then the newest is the corrected one (noted when ``notes`` is given)."""
    runs = store.runs.set_index("run_id")
    out = {}
    for _, col in RESOURCE_COLS:
        out[col] = math.nan
        for m in RESOURCE_PREF:
            ids = sorted(cells.get((*row, m), []), key=lambda r: runs.at[r, "end_time"])
            vals = [(r, runs.at[r, col]) for r in ids if not pd.isna(runs.at[r, col])]
            if not vals:
                continue
            out[col] = float(vals[-1][1])
            older = [(r, v) for r, v in vals if round(v, 3) != round(out[col], 3)]
            if older and notes is not None:
                tag = lambda r: r.rsplit("_", 1)[-1]  # noqa: E731  (the run id's hash)
                notes.append(f"{_row_label(row)} {col} {out[col]:.3f} from the newest {m} run "
                             f"({tag(vals[-1][0])}), older: "
                             + ", ".join(f"{v:.3f} ({tag(r)})" for r, v in older))
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
            miss.append(f"Dense baseline (so the row shows absolute win rates {ABS_MARK})")
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
    """Mean of the available values, so that one missing cell does not blank an Avg."""
    v = [x for x in vals if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _require_rows(store: Store, cells: dict) -> list[tuple]:
    """Table rows, or NoData saying whether the store is empty or just has no finished run."""
    if store.empty:
        raise NoData(f"No runs found in {store.source} (expected <results>/<run_id>/summary.json).")
    rows = table_rows(cells)
    if not rows:
        n_fin = len(store.finished())
        un = unfinished_note(store) or ""
        raise NoData(f"No finished sparse runs of {', '.join(METHODS)} in {store.source} "
                     f"({len(store.runs)} run(s), {n_fin} finished). {un}".strip())
    return rows


@dataclass
class _Main:
    """What every row of Tables 1 and 5 needs, plus the seed counts their notes report."""

    store: Store
    sel: dict
    stat: str
    n_boot: int
    counts: dict = field(default_factory=dict)
    dense_counts: dict = field(default_factory=dict)
    resource_notes: list = field(default_factory=list)

    @property
    def ci(self) -> bool:
        return self.stat == "iqm"

    def values(self, row: tuple, m: str) -> list[float]:
        """Final win rates of one cell (``m`` may be DENSE), counting its seeds on the way."""
        algo, mp, _ = row
        if m == DENSE:
            vals = values_of(self.store, self.sel["dense"].get((algo, mp), []))
            self.dense_counts[(algo, mp)] = len(vals)
        else:
            vals = values_of(self.store, self.sel["cells"].get((*row, m), []))
            self.counts[(*row, m)] = len(vals)
        return vals

    def notes(self, rows: list[tuple]) -> list[str]:
        resources = (["Resource ratios that differ between runs of a cell (the accounting was "
                      "corrected between them; the newest record is shown): "
                      + "; ".join(self.resource_notes) + "."] if self.resource_notes else [])
        return (_seed_notes(rows, self.counts, self.dense_counts, METHODS)
                + _common_notes(self.store, self.sel, METHODS) + resources)


def _main_rows(store: Store, stat: str, n_boot: int) -> tuple[_Main, list[tuple]]:
    """Baseline runs of each Table 1/5 cell and the (algo, map, sparsity) rows to print."""
    ctx = _Main(store, sparse_cells(store, METHODS), stat, n_boot)
    return ctx, _require_rows(store, ctx.sel["cells"])


def _side_columns(m: str, vals: list[float], lo: float, hi: float, ci: bool) -> dict:
    """Numeric-only columns of a method: seed count and, for IQM, the CI bounds."""
    out = {f"{method_label(m)} n": len(vals)}
    if ci:
        out[f"{method_label(m)} CI low"] = lo
        out[f"{method_label(m)} CI high"] = hi
    return out


def _head(algo: str, env: str, sp: float) -> tuple[dict, dict]:
    """Leading (numeric, display) cells of a row; the display shows sparsity in %."""
    return ({"Alg.": algo_label(algo), "Env.": env, "Sp.": sp},
            {"Alg.": algo_label(algo), "Env.": env, "Sp.": pct(sp)})


def _with_averages(rows: list[tuple], lines: list[tuple[dict, dict]],
                   average) -> tuple[list[dict], list[dict]]:
    """(numeric, display) lines grouped by algorithm, each group followed by its Avg. line,
    ``average(algo, numeric lines of the group)``."""
    num_out, disp_out = [], []
    for algo in order_algos(r[0] for r in rows):
        group = [(n, d) for n, d in lines if n["Alg."] == algo_label(algo)]
        num_out += [n for n, _ in group]
        disp_out += [d for _, d in group]
        avg, davg = average(algo, [n for n, _ in group])
        num_out.append(avg)
        disp_out.append(davg)
    return num_out, disp_out


def _table1_line(ctx: _Main, row: tuple, labels: list[str]) -> tuple[dict, dict]:
    """One Table 1 row: resource ratios, then each method normalized to its dense baseline."""
    dvals = ctx.values(row, DENSE)
    res = _resources(ctx.store, ctx.sel["cells"], row, ctx.resource_notes)
    nrow, drow = _head(*row)
    nrow.update({lab: res[col] for lab, col in RESOURCE_COLS})
    drow.update({lab: fmt(res[col], 3, "x") for lab, col in RESOURCE_COLS})
    extra = {}
    for m, lab in zip(METHODS, labels, strict=True):
        vals = ctx.values(row, m)
        v, lo, hi = agg.normalized(vals, dvals, ctx.stat, ci=ctx.ci, n_boot=ctx.n_boot,
                                   baseline=agg.random_score(row[1]),
                                   bar=agg.learning_bar(row[1]))
        nrow[lab], drow[lab] = v, fmt_ci(v, lo, hi)
        if vals and not _dense_beats_random(dvals, ctx.stat, row[1]):
            # no usable baseline: the absolute score, marked, beats a dash (win rates in %,
            # returns in return units)
            unit = agg.percent_scale(row[1]) / 100.0
            raw, rlo, rhi = (x * unit for x in agg.raw(vals, ctx.stat, ci=ctx.ci,
                                                          n_boot=ctx.n_boot))
            drow[lab] = f"{fmt_ci(raw, rlo, rhi)} {ABS_MARK}"
            extra[f"{lab} absolute"] = raw
        extra.update(_side_columns(m, vals, lo, hi, ctx.ci))
    return {**nrow, **extra, "Dense n": len(dvals)}, drow


def _dense_beats_random(dvals: list[float], stat: str, map_name: str) -> bool:
    """Whether a row can be normalised: a finished dense baseline above the learning bar
    (`agg.learning_bar`: a random policy on return-based maps, by 5 of its stds)."""
    return bool(dvals) and agg.point(dvals, stat) > agg.learning_bar(map_name)


def _table1_average(algo: str, group: list[dict], labels: list[str]) -> tuple[dict, dict]:
    """Avg. row of an algorithm: mean of each column over its maps."""
    avg, davg = _head(algo, "Avg.", _avg([r["Sp."] for r in group]))
    for lab in [c for c, _ in RESOURCE_COLS] + labels:
        avg[lab] = _avg([r[lab] for r in group])
    davg.update({lab: fmt(avg[lab], 3, "x") for lab, _ in RESOURCE_COLS})
    davg.update({lab: fmt(avg[lab]) for lab in labels})
    return avg, davg


def _table1_notes(store: Store, ci: bool, n_boot: int) -> list[str]:
    """How the cells of Table 1 are computed."""
    window = sorted({int(w) for w in store.finished()["final_window"].dropna()}) or [20]
    how = ("IQM over seeds, with a percentile-bootstrap 95% CI in brackets "
           f"({n_boot} resamples; method and dense seeds resampled independently)"
           if ci else "mean over seeds")
    return [f"Cells: 100 × {how} of the final win rate / the same statistic of the dense "
            "baseline (same algorithm and map). Final win rate = mean test win rate over the "
            f"last {'/'.join(map(str, window))} evaluations. Avg. = mean of the available "
            "cells of the column. Rows without a win condition (MA-MuJoCo) use the final test "
            "return instead, normalised as 100 × (x − random) / (dense − random) with a random "
            "policy's mean return (mast.envs.mamujoco_maps.RANDOM_RETURNS), since their returns "
            "can be negative.",
            "Total Size and FLOPs: ratios to the dense model (summary.json) of the row's first "
            "sparse method with records (MAST, RigL, SET, SS, RLx2, Tiny), from its newest run."]


def build_table1(store: Store, stat: str = "mean", n_boot: int = agg.N_BOOT) -> TableResult:
    """Paper Table 1: win rates normalized to the dense baseline, with resource ratios."""
    ctx, rows = _main_rows(store, stat, n_boot)
    labels = [f"{method_label(m)} (%)" for m in METHODS]
    lines = [_table1_line(ctx, row, labels) for row in rows]
    num, disp = _with_averages(rows, lines, lambda a, g: _table1_average(a, g, labels))
    cols = ["Alg.", "Env.", "Sp."] + [c for c, _ in RESOURCE_COLS] + labels
    notes = _table1_notes(store, ctx.ci, n_boot) + ctx.notes(rows)
    if any(ABS_MARK in str(v) for d in disp for v in d.values()):
        notes.insert(0, f"{ABS_MARK} = absolute final win rate (%), or final return on maps "
                        "without a win condition, NOT normalised: no finished dense baseline of "
                        "that algorithm and map yet, or one that has not cleared a random policy "
                        "by 5 stds of its per-episode return (mast.envs.mamujoco_maps).")
    fill = fill_in_note(store)
    if fill:
        notes.append(fill)
    title = "Table 1: MAST vs sparse training baselines, win rate normalized to dense"
    return TableResult("table1", title, pd.DataFrame(disp, columns=cols), pd.DataFrame(num),
                       notes)


def _mean_std(v: float, sd: float) -> str:
    """"v ± sd", or v alone when the std is undefined (fewer than two seeds)."""
    return fmt(v) if math.isnan(sd) else f"{v:.1f} ± {sd:.1f}"


def _table5_line(ctx: _Main, row: tuple, labels: list[str]) -> tuple[dict, dict]:
    """One Table 5 row: raw win rate (%) of Dense and each method, with std (or IQM CI); the
    final return, unscaled, on maps without a win condition."""
    nrow, drow = _head(*row)
    scale = agg.percent_scale(row[1])
    extra = {}
    for m, lab in zip([DENSE] + METHODS, labels, strict=True):
        vals = ctx.values(row, m)
        v, lo, hi = (x * scale / 100.0 for x in agg.raw(vals, ctx.stat, ci=ctx.ci,
                                                          n_boot=ctx.n_boot))
        sd = scale * agg.std(vals)
        nrow[lab] = v
        drow[lab] = fmt_ci(v, lo, hi) if ctx.ci else _mean_std(v, sd)
        extra[f"{method_label(m)} std"] = sd
        extra.update(_side_columns(m, vals, lo, hi, ctx.ci))
    return {**nrow, **extra}, drow


def _table5_average(algo: str, group: list[dict], labels: list[str],
                    ci: bool) -> tuple[dict, dict]:
    """Avg. row: mean of each column and mean of the stds (stds hidden under IQM)."""
    avg, davg = _head(algo, "Avg.", _avg([r["Sp."] for r in group]))
    for m, lab in zip([DENSE] + METHODS, labels, strict=True):
        sdk = f"{method_label(m)} std"
        avg[lab] = _avg([r[lab] for r in group])
        avg[sdk] = _avg([r[sdk] for r in group])
        davg[lab] = fmt(avg[lab]) if ci else _mean_std(avg[lab], avg[sdk])
    return avg, davg


def build_table5(store: Store, stat: str = "mean", n_boot: int = agg.N_BOOT) -> TableResult:
    """Paper Table 5: raw final win rates (%) mean ± std (or IQM [95% CI]), Dense included."""
    ctx, rows = _main_rows(store, stat, n_boot)
    labels = [f"{method_label(m)} (%)" for m in [DENSE] + METHODS]
    lines = [_table5_line(ctx, row, labels) for row in rows]
    num, disp = _with_averages(rows, lines,
                               lambda a, g: _table5_average(a, g, labels, ctx.ci))
    how = ("IQM over seeds [percentile-bootstrap 95% CI]" if ctx.ci
           else "mean ± sample std (ddof=1) over seeds")
    notes = [f"Raw final win rates (%), {how}; not normalized. Dense = the dense baseline of "
             "the same algorithm and map. Avg. = mean of the available cells (± mean of stds)."]
    if any(agg.percent_scale(r[1]) == 1.0 for r in rows):
        notes.append("MA-MuJoCo rows (no win condition): the final test return, in return units, "
                     "not %.")
    title = "Table 5: final win rates (%) with standard deviations"
    return TableResult("table5", title,
                       pd.DataFrame(disp, columns=["Alg.", "Env.", "Sp."] + labels),
                       pd.DataFrame(num), notes + ctx.notes(rows))
