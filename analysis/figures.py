"""Figures (PNG, Agg backend) and ``reports/index.md`` embedding them.

Training curves (paper Fig. 13-15), final win rate vs sparsity (Fig. 8), Q estimate vs
discounted return (Fig. 5b), mask heat-maps and sorted connection counts (Fig. 11, 19-25) and
per-agent densities of stacked layers (Fig. 12a).  A figure whose data is absent is skipped
with a note in the index.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.signal import savgol_filter  # noqa: E402

from mast.envs import mamujoco_maps  # noqa: E402
from mast.envs.env_maps import WIN_CONDITION  # noqa: E402

from . import aggregate as agg  # noqa: E402
from .select import (  # noqa: E402
    DENSE,
    algo_label,
    method_label,
    order_algos,
    order_maps,
    pct,
    sparse_cells,
    table_rows,
    unfinished_note,
    values_of,
)
from .store import Store, snapshot_label  # noqa: E402

WINDOW, ORDER, MIN_POINTS = 21, 2, 5
MASK_LAYERS = ("agent.*",)  # heat-maps of the agent network by default (paper Fig. 11, 20-22)
MAX_AGENTS_SHOWN = 8
COLORS = {"dense": "black", "tiny": "tab:gray", "static": "tab:brown", "set": "tab:orange",
          "rigl": "tab:green", "rlx2": "tab:purple", "mast": "tab:red"}
METHOD_ORDER = ["dense", "tiny", "static", "set", "rigl", "rlx2", "mast"]
Q_KEY, RET_KEY = "test/q_estimate", "test/return_discounted"
SEC_SWEEP = "Final win rate vs sparsity (Fig. 8)"
SEC_MAPS = "Mask heat-maps (light = connection; Fig. 11, 20-22)"
SEC_COUNTS = "Sorted per-neuron connection counts (Fig. 19, 23-25)"
SEC_AGENTS = "Per-agent densities of stacked agent layers (Fig. 12a)"


@dataclass
class Index:
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def smooth(y: np.ndarray, window: int = WINDOW, order: int = ORDER) -> np.ndarray:
    """Savitzky-Golay smoothing over at most a quarter of the curve (odd, at least 5 points; a
    400k run's 40 evaluations get 11, a 1M run's 100 the full 21): a window of half the curve
    bends its ends into the polynomial fit. None below 5 points."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < MIN_POINTS:
        return y
    quarter = max(MIN_POINTS, (n // 4) | 1)
    w = min(window, quarter, n if n % 2 else n - 1)
    if w <= order:
        return y
    return savgol_filter(y, w, order)


def seed_band(curves: list[tuple[np.ndarray, np.ndarray]], do_smooth: bool = True):
    """Smooth each seed, put them on the union of their evaluation steps within the range every
    seed covers (a seed's last evaluation overshoots t_max by a different amount, and a point
    only one seed reaches would be that seed alone), and return (grid, mean, std, n_seeds)."""
    curves = [(np.asarray(t, float), np.asarray(y, float)) for t, y in curves if len(t)]
    if not curves:
        return None
    grid = np.unique(np.concatenate([t for t, _ in curves]))
    lo, hi = max(t.min() for t, _ in curves), min(t.max() for t, _ in curves)
    if lo < hi:
        grid = grid[(grid >= lo) & (grid <= hi)]
    stack = []
    for t, y in curves:
        ys = smooth(y) if do_smooth else y
        row = np.interp(grid, t, ys)
        row[(grid < t.min()) | (grid > t.max())] = np.nan
        stack.append(row)
    arr = np.vstack(stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(arr, axis=0)
        sd = np.nanstd(arr, axis=0)
    return grid, mean, sd, len(curves)


def _slug(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(str(p) for p in parts)).strip("_")


def _save(fig, out: Path, name: str, idx: Index, section: str, caption: str) -> None:
    path = out / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    idx.files.append(path)
    idx.sections[section].append((caption, f"figures/{path.name}"))


def _ordered_methods(methods) -> list[str]:
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(dict.fromkeys(methods), key=lambda m: (rank.get(m, 99), m))


def _curves(store: Store, run_ids: list[str], metric: str):
    series = (store.series(rid, metric) for rid in run_ids)
    return [(s["t_env"].to_numpy(), s["value"].to_numpy()) for s in series if len(s)]


def _row_methods(sel: dict, row: tuple) -> dict[str, list[str]]:
    algo, mp, sp = row
    runs = {m: ids for (a, p, s, m), ids in sel["cells"].items() if (a, p, s) == row and ids}
    if sel["dense"].get((algo, mp)):
        runs[DENSE] = sel["dense"][(algo, mp)]
    return {m: runs[m] for m in _ordered_methods(runs)}


def _steps_label(x: float, _pos) -> str:
    return f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x >= 1e3 else f"{x:g}"


def style(ax, legend_size: int = 8, **labels) -> None:
    """Axis labels, grid and legend shared by the line plots (also used by scripts/)."""
    ax.set(**labels)
    if "steps" in labels.get("xlabel", ""):  # 400000 → 400k, so ticks stay readable
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_steps_label))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def draw_band(ax, curves: list[tuple[np.ndarray, np.ndarray]], label: str, color=None,
              ls: str = "-", scale: float = 100.0,
              bounds: tuple[float, float] | None = (0.0, 1.0)) -> bool:
    """Smoothed mean over seeds with a ±1 std band, times `scale` (win rate → %; 1 for returns),
    clipped to `bounds` (a win rate's; None for returns: smoothing near a curve's ends must not
    draw a negative win rate); False when nothing to draw."""
    band = seed_band(curves)
    if band is None:
        return False
    t, mean, sd, n = band
    lo, hi = bounds if bounds is not None else (-np.inf, np.inf)
    ax.plot(t, scale * np.clip(mean, lo, hi), color=color, ls=ls, label=f"{label} (n={n})")
    ax.fill_between(t, scale * np.clip(mean - sd, lo, hi), scale * np.clip(mean + sd, lo, hi),
                    color=color, alpha=0.15, lw=0)
    return True


class _RowPlot(NamedTuple):
    """A kind of per-row figure: where it goes, its file stem, y label, legend and caption."""

    section: str
    stem: str
    ylabel: str
    legend_size: int
    caption: str


CURVES = _RowPlot("Training curves (test win rate vs environment steps; Fig. 13-15)", "curves",
                  "test win rate (%)", 8, f"mean over seeds (Savitzky-Golay, window {WINDOW}, "
                  f"order {ORDER}), band ±1 std")
RETURN_CURVES = _RowPlot("Training curves, environments without a win condition (test return "
                         "vs environment steps; Fig. 17)", "returns", "mean test return", 8,
                         f"mean test return over seeds (Savitzky-Golay, window {WINDOW}, order "
                         f"{ORDER}), band ±1 std; grey: a random policy's mean and the "
                         "learning bar")
QEST = _RowPlot("Q estimate vs discounted return (Fig. 5b)", "qest", "value", 7,
                "Q estimate (solid) vs discounted return (dotted), mean over seeds")


def reference_lines(ax, map_name: str) -> None:
    """A random policy's mean return and the learning bar (random + 5 std) of a return-based
    map, where they are measured (`mast.envs.mamujoco_maps`): what a return curve is read
    against, since returns have no fixed scale and can be negative."""
    if map_name not in mamujoco_maps.RANDOM_RETURNS:
        return
    ax.axhline(agg.random_score(map_name), color="gray", ls="--", lw=1, label="random policy")
    ax.axhline(agg.learning_bar(map_name), color="gray", ls=":", lw=1,
               label=f"random + {mamujoco_maps.LEARNING_BAR_SIGMAS:g} std")


def _row_figures(sel: dict, out: Path, idx: Index, plot: _RowPlot, draw,
                 decorate=None) -> int:
    """Figures of the table rows, method by method with ``draw(ax, method, run_ids) -> bool``,
    then ``decorate(ax, map)`` where given; rows where nothing is drawn are dropped.  Returns
    the number saved."""
    made = 0
    for row in table_rows(sel["cells"]):
        algo, mp, sp = row
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = [draw(ax, m, ids) for m, ids in _row_methods(sel, row).items()]
        if not any(drawn):
            plt.close(fig)
            continue
        if decorate is not None:
            decorate(ax, mp)
        style(ax, plot.legend_size, xlabel="environment steps (t_env)", ylabel=plot.ylabel,
               title=f"{algo_label(algo)} {mp}, sparsity {pct(sp)}")
        _save(fig, out, _slug(plot.stem, algo, mp, "sp" + pct(sp).rstrip("%")), idx,
              plot.section, f"{algo_label(algo)} {mp} {pct(sp)}: {plot.caption}")
        made += 1
    return made


def _scored_by_return(store: Store, ids: list[str]) -> bool:
    """Runs of an environment without a win condition (MA-MuJoCo): their score is the return."""
    envs = store.runs.loc[store.runs["run_id"].isin(ids), "env"].dropna()
    return bool(len(envs)) and not any(WIN_CONDITION.get(e, True) for e in envs)


def _draw_win_rate(store: Store, ax, m: str, ids: list[str]) -> bool:
    """Mean test win rate over seeds with a ±1 std band (rows scored by a win rate only)."""
    if _scored_by_return(store, ids):
        return False
    return draw_band(ax, _curves(store, ids, "test_win_rate"), method_label(m), COLORS.get(m),
                     "--" if m == DENSE else "-")


def _draw_return(store: Store, ax, m: str, ids: list[str]) -> bool:
    """Mean test return over seeds with a ±1 std band (rows scored by the return only)."""
    if not _scored_by_return(store, ids):
        return False
    return draw_band(ax, _curves(store, ids, "test_return_mean"), method_label(m),
                     COLORS.get(m), "--" if m == DENSE else "-", scale=1.0, bounds=None)


def training_curves(store: Store, sel: dict, out: Path, idx: Index) -> None:
    if not store.has_metric("test_win_rate"):
        idx.notes.append("Training curves skipped: no test_win_rate in metrics.")
        return
    made = _row_figures(sel, out, idx, CURVES, partial(_draw_win_rate, store))
    made += _row_figures(sel, out, idx, RETURN_CURVES, partial(_draw_return, store),
                         decorate=reference_lines)
    if not made:
        idx.notes.append("Training curves skipped: no finished run has test curves.")


def sparsity_sweep(store: Store, sel: dict, out: Path, idx: Index) -> None:
    by_am: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (algo, mp, sp, m), ids in sel["cells"].items():
        vals = values_of(store, ids)
        if vals:
            sd = 100 * agg.std(vals)
            by_am[(algo, mp)][m].append((sp, 100 * np.mean(vals), 0.0 if np.isnan(sd) else sd))
    made, algos, maps = 0, order_algos(k[0] for k in by_am), order_maps(k[1] for k in by_am)
    for algo, mp in sorted(by_am, key=lambda k: (algos.index(k[0]), maps.index(k[1]))):
        methods = by_am[(algo, mp)]
        if max(len({p[0] for p in pts}) for pts in methods.values()) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for m in _ordered_methods(methods):
            sps, means, sds = zip(*sorted(methods[m]), strict=True)
            ax.errorbar([100 * x for x in sps], means, yerr=sds, color=COLORS.get(m),
                        marker="o", capsize=3, label=method_label(m))
        dvals = values_of(store, sel["dense"].get((algo, mp), []))
        if dvals:
            ax.axhline(100 * np.mean(dvals), color="black", ls="--", label="Dense")
        style(ax, xlabel="sparsity (%)", ylabel="final win rate (%)",
               title=f"{algo_label(algo)} {mp}")
        _save(fig, out, _slug("sparsity", algo, mp), idx, SEC_SWEEP,
              f"{algo_label(algo)} {mp}: mean ± std over seeds of the final win rate")
        made += 1
    if not made:
        idx.notes.append("Final win rate vs sparsity skipped: no algo/map has finished runs at "
                         "two or more sparsity levels.")


def _draw_q(store: Store, ax, m: str, ids: list[str]) -> bool:
    """Mean Q estimate (solid) and discounted return (dotted) of a method's seeds."""
    q, r = seed_band(_curves(store, ids, Q_KEY)), seed_band(_curves(store, ids, RET_KEY))
    if q is None or r is None:
        return False
    c = COLORS.get(m)
    ax.plot(q[0], q[1], color=c, label=f"{method_label(m)} Q estimate")
    ax.plot(r[0], r[1], color=c, ls=":", label=f"{method_label(m)} discounted return")
    return True


def q_estimates(store: Store, sel: dict, out: Path, idx: Index) -> None:
    if not (store.has_metric(Q_KEY) and store.has_metric(RET_KEY)):
        idx.notes.append(f"Q estimate figure skipped: metrics lack `{Q_KEY}` or `{RET_KEY}`.")
        return
    if not _row_figures(sel, out, idx, QEST, partial(_draw_q, store)):
        idx.notes.append("Q estimate figure skipped: no finished run logs both metrics.")


def _load_masks(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: np.asarray(z[k]).astype(bool) for k in z.files if z[k].ndim in (2, 3)}


def _mask_runs(store: Store, sel: dict, methods: list[str]) -> list[tuple[tuple, str]]:
    """(cell, run) pairs: per cell of ``methods``, its run with snapshots and the lowest seed."""
    runs = store.runs.set_index("run_id")
    picked = []
    for key in sorted(sel["cells"], key=str):
        ids = [r for r in sel["cells"][key] if r in store.masks]
        if key[3] in methods and ids:
            picked.append((key, min(ids, key=lambda r: (str(runs.at[r, "seed"]), r))))
    return picked


def _snapshots(store: Store, rid: str, idx: Index) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(label, masks) of each readable snapshot of a run; unreadable files become notes."""
    snaps = []
    for f in store.masks[rid]:
        try:
            snaps.append((snapshot_label(f), _load_masks(f)))
        except (OSError, ValueError) as e:
            idx.notes.append(f"{f}: unreadable mask snapshot ({e.__class__.__name__}).")
    return snaps


def _heatmap(out: Path, idx: Index, rid: str, head: str, layer: str,
             present: list[tuple[str, np.ndarray]]) -> None:
    """One layer's masks: a column per snapshot, a row per agent (at most MAX_AGENTS_SHOWN)."""
    n_ag = present[0][1].shape[0] if present[0][1].ndim == 3 else 1
    shown = min(n_ag, MAX_AGENTS_SHOWN)
    fig, axes = plt.subplots(shown, len(present), squeeze=False,
                             figsize=(2.2 * len(present) + 0.5, 2.0 * shown + 0.4))
    for j, (lab, arr) in enumerate(present):
        for a in range(shown):
            img = arr[a] if arr.ndim == 3 else arr
            ax = axes[a][j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            if a == 0:
                ax.set_title(f"{lab}\ndensity {img.mean():.3f}", fontsize=7)
            if j == 0 and arr.ndim == 3:
                ax.set_ylabel(f"agent {a + 1}", fontsize=7)
    fig.suptitle(f"{layer} — {head}", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    more = f" (first {shown} of {n_ag} agents)" if shown < n_ag else ""
    _save(fig, out, _slug("mask", rid, layer), idx, SEC_MAPS,
          f"{head}: `{layer}` rows = outputs, columns = inputs{more}")


def _connection_counts(out: Path, idx: Index, rid: str, head: str, layers: list[str],
                       snaps: list[tuple[str, dict]]) -> None:
    """Connections per output / input dimension, sorted, a line per snapshot (agent 1)."""
    fig, axes = plt.subplots(len(layers), 2, squeeze=False, figsize=(8, 2.2 * len(layers) + 0.4))
    for i, layer in enumerate(layers):
        for lab, d in snaps:
            if layer not in d:
                continue
            arr = d[layer][0] if d[layer].ndim == 3 else d[layer]
            axes[i][0].plot(np.sort(arr.sum(axis=1))[::-1], label=lab)
            axes[i][1].plot(np.sort(arr.sum(axis=0))[::-1], label=lab)
        stacked = " (agent 1)" if snaps[-1][1].get(layer, np.zeros((1, 1))).ndim == 3 else ""
        axes[i][0].set_title(f"{layer}{stacked}: output dims", fontsize=8)
        axes[i][1].set_title(f"{layer}{stacked}: input dims", fontsize=8)
        axes[i][0].set_ylabel("connections", fontsize=7)
    axes[0][0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("dimension (sorted, descending)", fontsize=7)
    fig.tight_layout()
    _save(fig, out, _slug("counts", rid), idx, SEC_COUNTS,
          f"{head}: nonzero connections per output / input dimension, descending")


def _agent_densities(out: Path, idx: Index, rid: str, head: str,
                     snaps: list[tuple[str, dict]]) -> bool:
    """Per-agent densities at the last snapshot; False if no layer is stacked (shared net)."""
    lab, last = snaps[-1]
    stacked = {k: v.reshape(v.shape[0], -1) for k, v in last.items() if v.ndim == 3}
    if not stacked:
        return False
    dens = {k: v.mean(axis=1) for k, v in stacked.items()}
    n_ag = next(iter(stacked.values())).shape[0]
    same = [v for v in stacked.values() if v.shape[0] == n_ag]  # pooled: as many agents
    dens["all stacked layers"] = sum(v.sum(1) for v in same) / sum(v.shape[1] for v in same)
    fig, axes = plt.subplots(1, len(dens), squeeze=False, figsize=(2.6 * len(dens) + 0.5, 2.8))
    for ax, (k, d) in zip(axes[0], dens.items(), strict=True):
        agents = np.arange(1, len(d) + 1)
        ax.bar(agents, d, color="tab:red")
        ax.set_title(k, fontsize=7)
        ax.set_xlabel("agent", fontsize=7)
        ax.set_xticks(agents)
    axes[0][0].set_ylabel("density", fontsize=7)
    fig.suptitle(f"{head}, {lab}", fontsize=8)
    fig.tight_layout()
    _save(fig, out, _slug("agents", rid), idx, SEC_AGENTS,
          f"{head}: density of each agent's slice of the stacked layers at {lab}")
    return True


def _run_mask_figures(store: Store, out: Path, idx: Index, key: tuple, rid: str,
                      layer_patterns: tuple[str, ...]) -> bool:
    """All mask figures of one run; True if it had stacked layers (agent densities drawn)."""
    algo, mp, sp, m = key
    snaps = _snapshots(store, rid, idx)
    if not snaps:
        return False
    head = f"{algo_label(algo)} {mp} {pct(sp)} {method_label(m)} ({rid})"
    layers = [k for k in dict.fromkeys(k for _, d in snaps for k in d)
              if any(fnmatch.fnmatch(k, p) for p in layer_patterns)]
    if not layers:
        idx.notes.append(f"{rid}: no mask layer matches {', '.join(layer_patterns)}.")
        return False
    for layer in layers:
        _heatmap(out, idx, rid, head, layer, [(lab, d[layer]) for lab, d in snaps if layer in d])
    _connection_counts(out, idx, rid, head, layers, snaps)
    return _agent_densities(out, idx, rid, head, snaps)


def mask_figures(store: Store, sel: dict, out: Path, idx: Index, methods: list[str],
                 layer_patterns: tuple[str, ...] = MASK_LAYERS) -> None:
    """Heat-maps, connection counts and agent densities of the runs ``_mask_runs`` picks."""
    picked = _mask_runs(store, sel, methods)
    if not picked:
        idx.notes.append(f"Mask figures skipped: no finished run of {', '.join(methods)} has "
                         "masks/mask_t*.npz snapshots.")
        return
    made = [_run_mask_figures(store, out, idx, key, rid, layer_patterns) for key, rid in picked]
    if not any(made):
        idx.notes.append("Per-agent density figure skipped: no stacked [n_agents, out, in] "
                         "layer in the mask snapshots (shared agent network).")


def write_index(store: Store, out: Path, idx: Index) -> Path:
    lines = ["# MAST figures", "", f"Source: {store.source}.", ""]
    un = unfinished_note(store)
    if un:
        lines += [un, ""]
    for section, items in idx.sections.items():
        lines += [f"## {section}", ""]
        for caption, rel in items:
            lines += [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    if idx.notes:
        lines += ["## Skipped", ""] + [f"- {n}" for n in idx.notes] + [""]
    path = out / "index.md"
    path.write_text("\n".join(lines))
    return path


def build_figures(store: Store, out: Path, mask_methods: list[str] | None = None,
                  mask_layers: tuple[str, ...] = MASK_LAYERS, runs: str = "*") -> Index:
    """Every figure of the store; `runs` other than '*' adds per-run curves of those runs."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    idx = Index()
    sel = sparse_cells(store)
    if not sel["cells"]:
        idx.notes.append("No finished sparse runs: every figure skipped.")
    else:
        training_curves(store, sel, out, idx)
        sparsity_sweep(store, sel, out, idx)
        q_estimates(store, sel, out, idx)
        mask_figures(store, sel, out, idx, list(mask_methods or ["mast"]), mask_layers)
    if runs != "*":
        from .run_figures import run_curves  # imports this module

        run_curves(store, runs, out, idx)
    idx.files.append(write_index(store, out, idx))
    return idx
