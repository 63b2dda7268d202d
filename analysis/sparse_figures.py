"""Sparse-model analyses (paper Fig. 8, §4.2) and what goes beyond them:

- final win rate vs sparsity per method with the critical sparsity marked (Fig. 8), plus a
  Markdown table of critical sparsities;
- final win rate vs cumulative training FLOPs (`sparse/flops_spent`) per map, with the Pareto
  frontier over every method and sparsity in the store;
- the results of `hydra/sweeper=critical` searches (`<results>/_searches/*/search.json`).
Tickets (Fig. 10) and per-agent masks (Fig. 12) are in `analysis.agent_figures`.

Critical sparsity: the highest evaluated sparsity below the first one whose mean final win rate
falls under (1 − 3%)·dense — the paper's Table 1 rule, made robust to a noisy level that passes
above a failing one (the same rule as the automatic search).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mast.config import NON_SEMANTIC  # noqa: E402

from .aggregate import percent_scale  # noqa: E402
from .figures import COLORS, Index, _ordered_methods, _save, _slug, style  # noqa: E402
from .select import (  # noqa: E402
    BASELINE_ABLATIONS,
    algo_label,
    budget,
    budgets,
    config_value,
    method_label,
    order_maps,
    pct,
    select_baseline,
    sparse_cells,
    values_of,
)
from .store import Store  # noqa: E402

TOLERANCE = 0.03
FLOPS_KEY = "sparse/flops_spent"
SEC_CRIT = "Final win rate vs sparsity, critical sparsity marked (Fig. 8)"
SEC_FLOPS = "Final win rate vs training FLOPs (frontier per map)"
SEC_SEARCH = "Automatic critical-sparsity searches (hydra/sweeper=critical)"
MARKERS = {"qmix": "o", "wqmix": "s", "res": "^", "vdn": "D", "facmac": "P", "comix": "X"}
TICKET_COLORS = {"winning ticket": "tab:green", "random ticket": "tab:brown"}


def critical_sparsity(points: dict[float, float], dense: float, tolerance: float = TOLERANCE,
                      relative: bool = True) -> float | None:
    """Highest sparsity below the first failing one; None if the lowest level already fails."""
    threshold = dense * (1 - tolerance) if relative else dense - tolerance
    best = None
    for s in sorted(points):
        if points[s] < threshold - 1e-12:
            break
        best = s
    return best


def _sweep_points(store: Store, sel: dict) -> dict[tuple, dict[str, dict[float, list[float]]]]:
    """(algo, map, t_max) → method → sparsity → final win rates of the seeds."""
    by: dict = defaultdict(lambda: defaultdict(dict))
    for (algo, mp, sp, m, t_max), ids in sel["cells"].items():
        vals = values_of(store, ids)
        if vals:
            by[(algo, mp, t_max)][m][float(sp)] = vals
    return by


def critical_figures(store: Store, out: Path, idx: Index, tolerance: float = TOLERANCE
                     ) -> list[tuple[str, str, str, float | None, float, int | None]]:
    """Fig. 8 with critical sparsities, one figure per (algo, map, budget): dense and every
    level come from the same t_max. Returns (algo, map, method, critical, dense, t_max) rows."""
    sel, rows = sparse_cells(store, by_budget=True), []
    points = _sweep_points(store, sel)
    for (algo, mp, t_max), methods in sorted(points.items(), key=lambda kv: str(kv[0])):
        dvals = values_of(store, sel["dense"].get((algo, mp, t_max), []))
        methods = {m: p for m, p in methods.items() if len(p) >= 2}  # a sweep has 2+ levels
        if not dvals or not methods:
            continue
        dense = float(np.mean(dvals))
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.axhline(100 * dense, color="black", ls="--", label="Dense")
        ax.axhline(100 * dense * (1 - tolerance), color="black", ls=":", lw=0.8,
                   label=f"Dense − {100 * tolerance:g}%")
        for m in _ordered_methods(methods):
            pts = methods[m]
            sps = sorted(pts)
            crit = critical_sparsity({s: float(np.mean(pts[s])) for s in sps}, dense, tolerance)
            rows.append((algo, mp, m, crit, dense, t_max))
            c = COLORS.get(m)
            ax.errorbar([100 * s for s in sps], [100 * np.mean(pts[s]) for s in sps],
                        yerr=[100 * np.std(pts[s]) for s in sps], color=c, marker="o", capsize=3,
                        label=f"{method_label(m)} (critical {pct(crit)})")
            if crit is not None:
                ax.axvline(100 * crit, color=c, ls="--", lw=0.8, alpha=0.7)
        several = len({k[2] for k in points if k[:2] == (algo, mp)}) > 1
        steps = f", {budget(t_max)} steps" if t_max is not None else ""
        style(ax, 7, xlabel="sparsity (%)", ylabel="final win rate (%)",
              title=f"{algo_label(algo)} {mp}{steps}: critical sparsity (within "
                    f"{100 * tolerance:g}% of dense)")
        _save(fig, out, _slug("critical", algo, mp, *([budget(t_max)] if several else [])), idx,
              SEC_CRIT, f"{algo_label(algo)} {mp}{steps}: mean ± std over seeds; dashed "
                        "verticals = critical")
    if not rows:
        idx.notes.append("Critical-sparsity figure skipped: needs dense runs and one method at "
                         "two or more sparsity levels of the same algo/map and budget.")
    return rows


def _final_flops(store: Store, rid: str) -> float | None:
    s = store.series(rid, FLOPS_KEY)
    return float(s["value"].iloc[-1]) if len(s) else None


def _frontier(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """Pareto staircase: points no other point beats with fewer FLOPs and a higher win rate."""
    fx, fy, best = [], [], -np.inf
    for x, y in sorted(zip(xs, ys, strict=True)):
        if y > best:
            fx.append(x)
            fy.append(y)
            best = y
    return fx, fy


def variant(store: Store, run_id: str, method: str) -> str:
    """What (algo, method, sparsity) does not say about a run: a ticket's kind (its mask from a
    finished run, or random) and per-agent networks. '' for the common case."""
    parts = []
    if method == "ticket":
        random = config_value(store, run_id, "method.mask_from") in ("random", None)
        parts.append("random ticket" if random else "winning ticket")
    if config_value(store, run_id, "agent.share_params") == "false":
        parts.append("per-agent")
    return ", ".join(parts)


def frontier_cells(store: Store, mp: str, notes: list[str] | None = None
                   ) -> dict[tuple, list[tuple[float, float]]]:
    """(algo, method, variant, sparsity, t_max, ablation) → [(cumulative training FLOPs, final
    score)] of the finished runs on one map that log FLOPs. A winning and a random ticket, or
    shared and per-agent networks, are separate points (`variant`). Within a point, runs that
    differ in another knob are reduced to the baseline configuration as in Table 1
    (`select_baseline`; what is excluded goes to `notes`)."""
    fin = store.finished()
    ids: dict = defaultdict(list)
    on_map = fin[fin["map"] == mp]
    for r in on_map.assign(budget=budgets(on_map)).itertuples():
        ids[(r.algo, r.method, variant(store, r.run_id, r.method), float(r.sparsity), r.budget,
             str(r.ablation))].append(r.run_id)
    runs = fin.set_index("run_id")
    cells: dict = {}
    for key, group in ids.items():
        # ties are broken by the method's usual setting over the whole store, as in Table 1
        pool = fin[(fin["algo"] == key[0]) & (fin["method"] == key[1])]["run_id"].tolist()
        kept, why = select_baseline(store, group, pool)
        if notes is not None:
            var = f" ({key[2]})" if key[2] else ""
            notes += [f"{mp} frontier, {algo_label(key[0])} {method_label(key[1])}{var} "
                      f"{pct(key[3])} {budget(key[4])}: {n}" for n in why]
        pts = [(f, float(runs.at[rid, "final_win_rate"])) for rid in kept
               if (f := _final_flops(store, rid)) is not None and f > 0
               and not np.isnan(runs.at[rid, "final_win_rate"])]
        if pts:
            cells[key] = pts
    return cells


def flops_frontier(store: Store, out: Path, idx: Index) -> None:
    """One figure per map: every training configuration's mean final score vs its mean
    cumulative training FLOPs, error bars over seeds, and the Pareto frontier.

    A configuration is (algo, method, sparsity, budget, ablation): a 400k and a 1M sweep of one
    cell are two points of the frontier, not one average."""
    fin = store.finished()
    made = 0
    for mp in order_maps(fin["map"].unique()):
        cells = frontier_cells(store, mp, idx.notes)
        if not cells:
            continue
        scale = percent_scale(mp)
        several_budgets = len({k[4] for k in cells}) > 1
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        xs, ys, seen = [], [], set()
        for (algo, m, var, sp, t_max, abl), pts in sorted(cells.items(),
                                                          key=lambda kv: str(kv[0])):
            f, w = np.array(pts).T
            x, y = float(f.mean()), float(scale * w.mean())
            kind = var.removesuffix("per-agent").rstrip(", ")
            lab = f"{algo_label(algo)} {kind or method_label(m)}" + (
                ", per-agent" if var.endswith("per-agent") else "")
            ax.errorbar(x, y, yerr=scale * w.std(), xerr=f.std(),
                        color=TICKET_COLORS.get(kind, COLORS.get(m)),
                        marker=MARKERS.get(algo, "o"), capsize=2,
                        mfc="none" if var.endswith("per-agent") else None,
                        label=None if lab in seen else lab)
            seen.add(lab)
            note = pct(sp) + (f" {budget(t_max)}" if several_budgets else "")
            note += "" if abl in BASELINE_ABLATIONS else f" {abl}"
            ax.annotate(note, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            xs.append(x)
            ys.append(y)
        ax.step(*_frontier(xs, ys), where="post", color="gray", lw=1, label="frontier")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels collided
        score = "final win rate (%)" if scale == 100.0 else "final test return"
        style(ax, 6, xlabel="cumulative training FLOPs (sparse/flops_spent)",
              ylabel=score, title=f"{mp}: {score.split(' (')[0]} vs training FLOPs")
        _save(fig, out, _slug("flops_frontier", mp), idx, SEC_FLOPS,
              f"{mp}: mean ± std over seeds; labels = sparsity"
              f"{', budget' if several_budgets else ''}; gray = Pareto frontier")
        made += 1
    if not made:
        idx.notes.append(f"FLOPs frontier skipped: no finished run logs `{FLOPS_KEY}`.")


def search_title(d: dict) -> str:
    """What was searched, in the search's own overrides minus the keys that do not change
    learning (`results_dir`, `checkpoint_interval`, … as run ids ignore them), and its seeds."""
    keep = [o for o in d.get("overrides", [])
            if o.split("=", 1)[0].lstrip("+~").split(".", 1)[0] not in NON_SEMANTIC]
    seeds = ",".join(str(s) for s in d.get("spec", {}).get("seeds", []))
    return f"{' '.join(keep)}" + (f", seeds {seeds}" if seeds else "")


def plot_search(d: dict, path: Path) -> Path:
    """One search: per-seed and mean win rate per level, threshold, critical sparsity."""
    if not d.get("levels"):
        return path  # nothing evaluated yet
    fig, ax = plt.subplots(figsize=(6, 4))
    levels = sorted((float(k), v) for k, v in d["levels"].items())
    for k, seeds in d["win_rates"].items():
        if k != "baseline":
            ax.scatter([100 * float(k)] * len(seeds), [100 * v for v in seeds.values()], s=10,
                       color="tab:gray", alpha=0.6)
    if levels:
        ax.plot([100 * s for s, _ in levels], [100 * v for _, v in levels], "o-", color="tab:red",
                label="mean over seeds")
    if d.get("baseline_win_rate") is not None:
        ax.axhline(100 * d["baseline_win_rate"], color="black", ls="--", label="dense")
        ax.axhline(100 * d["threshold"], color="black", ls=":", label="threshold")
    if d.get("critical_sparsity") is not None:
        ax.axvline(100 * d["critical_sparsity"], color="tab:green", ls="--",
                   label=f"critical {pct(d['critical_sparsity'])}")
    style(ax, 7, xlabel="sparsity (%)", ylabel="final win rate (%)",
          title=f"{search_title(d)}\n{len(d['rounds'])} rounds"
                f"{'' if d.get('done') else ' (unfinished)'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def search_results(results: Path, out: Path, idx: Index) -> list[dict]:
    """Plot every search found under `<results>/_searches/` into the report."""
    found = []
    for f in sorted(Path(results).glob("_searches/*/search.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            idx.notes.append(f"{f}: unreadable ({e.__class__.__name__}).")
            continue
        fig_path = plot_search(d, out / "figures" / f"{f.parent.name}.png")
        if not fig_path.exists():
            idx.notes.append(f"{f}: no level evaluated yet.")
            continue
        idx.files.append(fig_path)
        idx.sections[SEC_SEARCH].append(
            (f"{d.get('search_id', f.parent.name)}: critical sparsity "
             f"{pct(d.get('critical_sparsity'))}", f"figures/{fig_path.name}"))
        found.append(d)
    return found


def build_sparse_report(store: Store, results: Path, out: Path) -> Index:
    """Every figure of this module and of `analysis.agent_figures` → `<out>/figures/*.png`,
    `<out>/sparse.md` (index) and `<out>/critical_sparsity.md` (table)."""
    from .agent_figures import agent_mask_figures, pattern_figures, ticket_figures

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    idx = Index()
    rows = critical_figures(store, out, idx)
    flops_frontier(store, out, idx)
    search_results(Path(results), out, idx)
    ticket_figures(store, out, idx)
    agent_mask_figures(store, out, idx)
    pattern_figures(store, out, idx)
    table = ["| algo | map | budget | method | critical sparsity | dense final win rate |",
             "|---|---|---|---|---|---|"]
    table += [f"| {algo_label(a)} | {mp} | {budget(t) if t is not None else '—'} | "
              f"{method_label(m)} | {pct(c)} | {100 * d:.1f}% |" for a, mp, m, c, d, t in rows]
    (out / "critical_sparsity.md").write_text("\n".join(table) + "\n")
    lines = ["# Sparse-model analyses", "", f"Source: {store.source}.", ""]
    for section, items in idx.sections.items():
        lines += [f"## {section}", ""]
        lines += [x for caption, rel in items for x in (f"![{caption}]({rel})", "", f"*{caption}*", "")]
    if rows:
        lines += ["## Critical sparsity (within 3% of dense)", ""] + table + [""]
    if idx.notes:
        lines += ["## Skipped", ""] + [f"- {n}" for n in idx.notes] + [""]
    (out / "sparse.md").write_text("\n".join(lines))
    idx.files += [out / "sparse.md", out / "critical_sparsity.md"]
    return idx
