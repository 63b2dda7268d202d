"""Figures of the sparse models themselves (paper §4.2):

- Fig. 10, tickets: test win rate curves of winning tickets (`method=ticket` from a MAST or RigL
  run, grouped by the source's method), the random ticket (`method.mask_from=random`, or
  `method=static`), the cheating ticket (the MAST runs themselves) and dense;
- Fig. 12a, per-agent masks of per-agent networks grouped by unit type, with each agent's
  density (final snapshot);
- Fig. 12b, MAST's adaptive per-agent allocation vs manual `method.unit_density` patterns.
Unit types come from a small static table (analysis imports no training or env code).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .figures import Index, _curves, _load_masks, _save, _slug, draw_band, style  # noqa: E402
from .select import (  # noqa: E402
    BASELINE_ABLATIONS,
    DENSE,
    algo_label,
    budget,
    budgets,
    pct,
    select_baseline,
)
from .store import Store  # noqa: E402

SEC_TICKETS = "Tickets: winning, random and cheating (Fig. 10)"
SEC_AGENT_MASKS = "Per-agent masks grouped by unit type (Fig. 12a)"
SEC_PATTERNS = "Adaptive vs manual per-agent sparsity (Fig. 12b)"
UNIT_TYPES = {"3m": ["marine"] * 3, "8m": ["marine"] * 8, "25m": ["marine"] * 25,
              "2s3z": ["stalker"] * 2 + ["zealot"] * 3, "3s5z": ["stalker"] * 3 + ["zealot"] * 5}
TYPE_COLORS = {"stalker": "tab:blue", "zealot": "tab:orange", "marine": "tab:green"}
MASK_LAYER = "agent.rnn.weight_hh"
MANUAL_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                 "tab:gray", "tab:olive", "tab:cyan"]
TICKET_STYLE = {"cheating": ("tab:red", "-"), "winning": ("tab:green", "-"),
                "random": ("tab:brown", "--"), DENSE: ("black", "--")}


def _cfg(store: Store, rid: str, key: str):
    if key not in store.configs.columns or rid not in store.configs.index:
        return None
    v = store.configs.at[rid, key]
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def _source_method(store: Store, mask_from: str) -> str:
    rid = Path(str(mask_from)).name
    runs = store.runs.set_index("run_id")
    if rid in runs.index:
        return str(runs.at[rid, "method"])
    return "?"


def _baseline_runs(store: Store) -> pd.DataFrame:
    """Finished runs of the baseline ablation, with `budget` = t_max (None where unknown, so
    equal budgets compare equal: NaN does not)."""
    fin = store.finished()
    fin = fin[fin["ablation"].astype(str).isin(BASELINE_ABLATIONS)]
    return fin.assign(budget=budgets(fin),
                      share=[_cfg(store, r, "agent.share_params") for r in fin["run_id"]])


def _ticket_groups(store: Store, notes: list[str] | None = None
                   ) -> dict[tuple, dict[str, list[str]]]:
    """(algo, map, sparsity, t_max) → group label → run ids, for cells that have ticket runs.

    The comparison runs (cheating = MAST, random = static, dense) must share the tickets' budget,
    agent sharing and the baseline ablation: a store usually holds a 400k and a 1M sweep of
    the same map, and their curves must not be averaged together. Each comparison group is
    then reduced to its baseline configuration (a diagnostic run with another operator scale
    is not one more seed); what is left out goes to ``notes``."""
    fin = _baseline_runs(store)
    groups: dict = defaultdict(lambda: defaultdict(list))
    share: dict[tuple, set] = defaultdict(set)
    for r in fin[fin["method"] == "ticket"].itertuples():
        cell = (r.algo, r.map, float(r.sparsity), r.budget)
        src = _cfg(store, r.run_id, "method.mask_from")
        label = ("random ticket" if src == "random" else
                 f"winning ticket ({_source_method(store, src)})")
        groups[cell][label].append(r.run_id)
        share[cell].add(r.share)
    labels = {"mast": "cheating ticket (mast)", "static": "random ticket (static)", DENSE: DENSE}
    for r in fin[fin["method"].isin(list(labels))].itertuples():
        for cell in groups:
            algo, mp, sp, t = cell
            same_cell = (r.algo, r.map, r.budget) == (algo, mp, t) and r.share in share[cell]
            if same_cell and (r.method == DENSE or float(r.sparsity) == sp):
                groups[cell][labels[r.method]].append(r.run_id)
    for cell, by_label in groups.items():
        for label in set(labels.values()) & set(by_label):
            by_label[label], dropped = select_baseline(store, by_label[label])
            if notes is not None:
                notes += [f"Tickets {algo_label(cell[0])} {cell[1]} {budget(cell[3])}, {label}: "
                          f"{d}" for d in dropped]
    return groups


def _save_curves(fig, ax, out: Path, idx: Index, cell: tuple, stem: str, section: str) -> None:
    """Style and save a win-rate-vs-steps figure of one (algo, map, sparsity, t_max) cell."""
    algo, mp, sp, t_max = cell
    style(ax, 7, xlabel="environment steps (t_env)", ylabel="test win rate (%)",
          title=f"{algo_label(algo)} {mp}, sparsity {pct(sp)}, {budget(t_max)} steps: "
                f"{section.split(' (')[0]}")
    _save(fig, out, _slug(stem, algo, mp, "sp" + pct(sp).rstrip("%"), budget(t_max)), idx,
          section, f"{algo_label(algo)} {mp} {pct(sp)}, {budget(t_max)} steps: "
                   "mean ± std over seeds")


def ticket_figures(store: Store, out: Path, idx: Index) -> None:
    made = 0
    for cell, groups in sorted(_ticket_groups(store, idx.notes).items(),
                               key=lambda kv: str(kv[0])):
        fig, ax = plt.subplots(figsize=(6, 4))
        for label in sorted(groups, key=lambda g: (g == DENSE, g)):
            color, ls = TICKET_STYLE.get(label.split(" ")[0], ("gray", "-"))
            if "rigl" in label:
                color = "tab:olive"
            draw_band(ax, _curves(store, groups[label], "test_win_rate"), label, color, ls)
        _save_curves(fig, ax, out, idx, cell, "tickets", SEC_TICKETS)
        made += 1
    if not made:
        idx.notes.append("Ticket figure skipped: no finished method=ticket run.")


def _per_agent_runs(store: Store) -> pd.DataFrame:
    fin = store.finished()
    shared = {r: _cfg(store, r, "agent.share_params") for r in fin["run_id"]}
    keep = [r for r, v in shared.items() if v is not None and not bool(v)]
    return fin[fin["run_id"].isin(keep)]


def _pattern_label(store: Store, rid: str) -> str:
    cols = sorted(c for c in store.configs.columns if c.startswith("method.unit_density."))
    parts = [f"{c.rsplit('.', 1)[1]} {100 * float(store.configs.at[rid, c]):g}%" for c in cols
             if not pd.isna(store.configs.at[rid, c])]
    return "manual: " + ", ".join(parts) if parts else "adaptive (MAST)"


def agent_mask_figures(store: Store, out: Path, idx: Index, layer: str = MASK_LAYER) -> None:
    """Fig. 12a: the final mask of `layer` of each agent, agents grouped by unit type."""
    made = 0
    for r in _per_agent_runs(store).itertuples():
        files = store.masks.get(r.run_id)
        if r.method == DENSE or not files:
            continue
        masks = _load_masks(files[-1])
        if layer not in masks or masks[layer].ndim != 3:
            continue
        m = masks[layer]
        types = UNIT_TYPES.get(r.map, [f"agent {i + 1}" for i in range(m.shape[0])])
        order = sorted(range(m.shape[0]), key=lambda a: (types[a], a))
        fig, axes = plt.subplots(1, len(order), squeeze=False, figsize=(1.9 * len(order), 2.4))
        for ax, a in zip(axes[0], order, strict=True):
            ax.imshow(m[a], cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"{types[a]} (agent {a + 1})\ndensity {m[a].mean():.3f}", fontsize=7,
                         color=TYPE_COLORS.get(types[a], "black"))
        fig.suptitle(f"{layer}, {r.map} {pct(r.sparsity)} {_pattern_label(store, r.run_id)} "
                     f"({r.run_id})", fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        _save(fig, out, _slug("agent_masks", r.run_id), idx, SEC_AGENT_MASKS,
              f"{r.run_id}: final {layer} mask per agent (light = connection)")
        made += 1
    if not made:
        idx.notes.append("Per-agent mask figure skipped: no finished run with "
                         "agent.share_params=false and mask snapshots.")


def _pattern_groups(store: Store) -> dict[tuple, dict[str, list[str]]]:
    """(algo, map, sparsity, t_max) → "adaptive (MAST)" or "manual: …" → run ids: MAST's own
    per-agent runs of the baseline ablation (a per-agent RigL run or a MAST ablation has no
    pattern either, but is not MAST's adaptive allocation)."""
    runs = _per_agent_runs(store)
    runs = runs[(runs["method"] == "mast")
                & runs["ablation"].astype(str).isin(BASELINE_ABLATIONS)]
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in runs.itertuples():
        t_max = None if pd.isna(r.t_max) else int(r.t_max)
        groups[(r.algo, r.map, float(r.sparsity), t_max)][_pattern_label(store, r.run_id)].append(
            r.run_id)
    return groups


def pattern_figures(store: Store, out: Path, idx: Index) -> None:
    """Fig. 12b: curves of MAST's adaptive allocation vs each manual pattern, per (algo, map,
    sparsity, budget)."""
    made = 0
    for cell, by in sorted(_pattern_groups(store).items(), key=lambda kv: str(kv[0])):
        if len(by) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        manual = iter(MANUAL_COLORS * len(by))  # adaptive keeps red; no manual curve is red
        for label in sorted(by, key=lambda k: (not k.startswith("adaptive"), k)):
            draw_band(ax, _curves(store, by[label], "test_win_rate"), label,
                      "tab:red" if label.startswith("adaptive") else next(manual))
        _save_curves(fig, ax, out, idx, cell, "unit_density", SEC_PATTERNS)
        made += 1
    if not made:
        idx.notes.append("Adaptive vs manual figure skipped: needs per-agent runs of one "
                         "algo/map/sparsity with and without method.unit_density.")
