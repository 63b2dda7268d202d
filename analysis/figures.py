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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.signal import savgol_filter  # noqa: E402

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


@dataclass
class Index:
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def smooth(y: np.ndarray, window: int = WINDOW, order: int = ORDER) -> np.ndarray:
    """Savitzky-Golay smoothing; the window shrinks to an odd length <= len(y); none below 5."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < MIN_POINTS:
        return y
    w = min(window, n if n % 2 else n - 1)
    if w <= order:
        return y
    return savgol_filter(y, w, order)


def seed_band(curves: list[tuple[np.ndarray, np.ndarray]], do_smooth: bool = True):
    """Smooth each seed, put them on the union grid (NaN outside a seed's range) and return
    (grid, mean, std, n_seeds)."""
    curves = [(np.asarray(t, float), np.asarray(y, float)) for t, y in curves if len(t)]
    if not curves:
        return None
    grid = np.unique(np.concatenate([t for t, _ in curves]))
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
    ms = list(dict.fromkeys(methods))
    return sorted(ms, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))


def _curves(store: Store, run_ids: list[str], metric: str):
    out = []
    for rid in run_ids:
        s = store.series(rid, metric)
        if len(s):
            out.append((s["t_env"].to_numpy(), s["value"].to_numpy()))
    return out


def _row_methods(cells: dict, dense: dict, row: tuple) -> dict[str, list[str]]:
    algo, mp, sp = row
    runs = {m: ids for (a, p, s, m), ids in cells.items() if (a, p, s) == row and ids}
    if dense.get((algo, mp)):
        runs[DENSE] = dense[(algo, mp)]
    return {m: runs[m] for m in _ordered_methods(runs)}


def training_curves(store: Store, sel: dict, out: Path, idx: Index) -> None:
    section = "Training curves (test win rate vs environment steps; Fig. 13-15)"
    if not store.has_metric("test_win_rate"):
        idx.notes.append("Training curves skipped: no test_win_rate in metrics.")
        return
    made = 0
    for row in table_rows(sel["cells"]):
        algo, mp, sp = row
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = False
        for m, ids in _row_methods(sel["cells"], sel["dense"], row).items():
            band = seed_band(_curves(store, ids, "test_win_rate"))
            if band is None:
                continue
            t, mean, sd, n = band
            c = COLORS.get(m)
            ax.plot(t, 100 * mean, color=c, ls="--" if m == DENSE else "-",
                    label=f"{method_label(m)} (n={n})")
            ax.fill_between(t, 100 * (mean - sd), 100 * (mean + sd), color=c, alpha=0.15, lw=0)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set(xlabel="environment steps (t_env)", ylabel="test win rate (%)",
               title=f"{algo_label(algo)} {mp}, sparsity {pct(sp)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _save(fig, out, _slug("curves", algo, mp, "sp" + pct(sp).rstrip("%")), idx, section,
              f"{algo_label(algo)} {mp} {pct(sp)}: mean over seeds (Savitzky-Golay, window "
              f"{WINDOW}, order {ORDER}), band ±1 std")
        made += 1
    if not made:
        idx.notes.append("Training curves skipped: no finished run has test_win_rate curves.")


def sparsity_sweep(store: Store, sel: dict, out: Path, idx: Index) -> None:
    section = "Final win rate vs sparsity (Fig. 8)"
    by_am: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (algo, mp, sp, m), ids in sel["cells"].items():
        vals = values_of(store, ids)
        if vals:
            sd = agg.std(vals)
            by_am[(algo, mp)][m].append((sp, 100 * np.mean(vals), 0.0 if np.isnan(sd) else
                                         100 * sd))
    made = 0
    for (algo, mp) in sorted(by_am, key=lambda k: (order_algos([x[0] for x in by_am]).index(
            k[0]), order_maps([x[1] for x in by_am]).index(k[1]))):
        methods = by_am[(algo, mp)]
        if max(len({p[0] for p in pts}) for pts in methods.values()) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for m in _ordered_methods(methods):
            pts = sorted(methods[m])
            xs = [100 * p[0] for p in pts]
            ax.errorbar(xs, [p[1] for p in pts], yerr=[p[2] for p in pts], color=COLORS.get(m),
                        marker="o", capsize=3, label=method_label(m))
        dvals = values_of(store, sel["dense"].get((algo, mp), []))
        if dvals:
            ax.axhline(100 * np.mean(dvals), color="black", ls="--", label="Dense")
        ax.set(xlabel="sparsity (%)", ylabel="final win rate (%)",
               title=f"{algo_label(algo)} {mp}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _save(fig, out, _slug("sparsity", algo, mp), idx, section,
              f"{algo_label(algo)} {mp}: mean ± std over seeds of the final win rate")
        made += 1
    if not made:
        idx.notes.append("Final win rate vs sparsity skipped: no algo/map has finished runs at "
                         "two or more sparsity levels.")


def q_estimates(store: Store, sel: dict, out: Path, idx: Index) -> None:
    section = "Q estimate vs discounted return (Fig. 5b)"
    qk, rk = "test/q_estimate", "test/return_discounted"
    if not (store.has_metric(qk) and store.has_metric(rk)):
        idx.notes.append(f"Q estimate figure skipped: metrics lack `{qk}` or `{rk}`.")
        return
    made = 0
    for row in table_rows(sel["cells"]):
        algo, mp, sp = row
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = False
        for m, ids in _row_methods(sel["cells"], sel["dense"], row).items():
            q, r = seed_band(_curves(store, ids, qk)), seed_band(_curves(store, ids, rk))
            if q is None or r is None:
                continue
            c = COLORS.get(m)
            ax.plot(q[0], q[1], color=c, label=f"{method_label(m)} Q estimate")
            ax.plot(r[0], r[1], color=c, ls=":", label=f"{method_label(m)} discounted return")
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set(xlabel="environment steps (t_env)", ylabel="value",
               title=f"{algo_label(algo)} {mp}, sparsity {pct(sp)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        _save(fig, out, _slug("qest", algo, mp, "sp" + pct(sp).rstrip("%")), idx, section,
              f"{algo_label(algo)} {mp} {pct(sp)}: Q estimate (solid) vs discounted return "
              "(dotted), mean over seeds")
        made += 1
    if not made:
        idx.notes.append("Q estimate figure skipped: no finished run logs both metrics.")


def _load_masks(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: np.asarray(z[k]).astype(bool) for k in z.files if z[k].ndim in (2, 3)}


def _mask_runs(store: Store, sel: dict, methods: list[str]) -> list[tuple[tuple, str]]:
    runs = store.runs.set_index("run_id")
    picked = []
    for key in sorted(sel["cells"], key=str):
        if key[3] not in methods:
            continue
        ids = [r for r in sel["cells"][key] if r in store.masks]
        if ids:
            rid = min(ids, key=lambda r: (str(runs.at[r, "seed"]), r))
            picked.append((key, rid))
    return picked


def mask_figures(store: Store, sel: dict, out: Path, idx: Index, methods: list[str],
                 layer_patterns: tuple[str, ...] = MASK_LAYERS) -> None:
    sec_maps = "Mask heat-maps (light = connection; Fig. 11, 20-22)"
    sec_counts = "Sorted per-neuron connection counts (Fig. 19, 23-25)"
    sec_agents = "Per-agent densities of stacked agent layers (Fig. 12a)"
    picked = _mask_runs(store, sel, methods)
    if not picked:
        idx.notes.append(f"Mask figures skipped: no finished run of {', '.join(methods)} has "
                         "masks/mask_t*.npz snapshots.")
        return
    any_stacked = False
    for (algo, mp, sp, m), rid in picked:
        files = store.masks[rid]
        snaps = []
        for f in files:
            try:
                snaps.append((snapshot_label(f), _load_masks(f)))
            except (OSError, ValueError) as e:
                idx.notes.append(f"{f}: unreadable mask snapshot ({e.__class__.__name__}).")
        if not snaps:
            continue
        head = f"{algo_label(algo)} {mp} {pct(sp)} {method_label(m)} ({rid})"
        layers = [k for k in dict.fromkeys(k for _, d in snaps for k in d)
                  if any(fnmatch.fnmatch(k, p) for p in layer_patterns)]
        if not layers:
            idx.notes.append(f"{rid}: no mask layer matches {', '.join(layer_patterns)}.")
            continue
        for layer in layers:
            present = [(lab, d[layer]) for lab, d in snaps if layer in d]
            n_ag = present[0][1].shape[0] if present[0][1].ndim == 3 else 1
            shown = min(n_ag, MAX_AGENTS_SHOWN)
            fig, axes = plt.subplots(shown, len(present), squeeze=False,
                                     figsize=(2.2 * len(present) + 0.5, 2.0 * shown + 0.4))
            for j, (lab, arr) in enumerate(present):
                for a in range(shown):
                    img = arr[a] if arr.ndim == 3 else arr
                    ax = axes[a][j]
                    ax.imshow(img, cmap="gray", vmin=0, vmax=1, aspect="auto",
                              interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if a == 0:
                        ax.set_title(f"{lab}\ndensity {img.mean():.3f}", fontsize=7)
                    if j == 0 and arr.ndim == 3:
                        ax.set_ylabel(f"agent {a + 1}", fontsize=7)
            fig.suptitle(f"{layer} — {head}", fontsize=8)
            fig.tight_layout(rect=(0, 0, 1, 0.97))
            more = f" (first {shown} of {n_ag} agents)" if shown < n_ag else ""
            _save(fig, out, _slug("mask", rid, layer), idx, sec_maps,
                  f"{head}: `{layer}` rows = outputs, columns = inputs{more}")
        # sorted connection counts, agent 1 of stacked layers
        fig, axes = plt.subplots(len(layers), 2, squeeze=False,
                                 figsize=(8, 2.2 * len(layers) + 0.4))
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
        _save(fig, out, _slug("counts", rid), idx, sec_counts,
              f"{head}: nonzero connections per output / input dimension, descending")
        # per-agent densities at the last snapshot
        lab, last = snaps[-1]
        stacked_layers = [k for k, v in last.items() if v.ndim == 3]
        if stacked_layers:
            any_stacked = True
            n_ag = last[stacked_layers[0]].shape[0]
            panels = stacked_layers + ["all stacked layers"]
            fig, axes = plt.subplots(1, len(panels), squeeze=False,
                                     figsize=(2.6 * len(panels) + 0.5, 2.8))
            for j, k in enumerate(panels):
                if k == "all stacked layers":
                    act = sum(last[x].reshape(last[x].shape[0], -1).sum(1) for x in stacked_layers
                              if last[x].shape[0] == n_ag)
                    tot = sum(last[x][0].size for x in stacked_layers if last[x].shape[0] == n_ag)
                    dens = act / tot
                else:
                    dens = last[k].reshape(last[k].shape[0], -1).mean(axis=1)
                ax = axes[0][j]
                ax.bar(np.arange(1, len(dens) + 1), dens, color="tab:red")
                ax.set_title(k, fontsize=7)
                ax.set_xlabel("agent", fontsize=7)
                ax.set_xticks(np.arange(1, len(dens) + 1))
            axes[0][0].set_ylabel("density", fontsize=7)
            fig.suptitle(f"{head}, {lab}", fontsize=8)
            fig.tight_layout()
            _save(fig, out, _slug("agents", rid), idx, sec_agents,
                  f"{head}: density of each agent's slice of the stacked layers at {lab}")
    if not any_stacked:
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
                  mask_layers: tuple[str, ...] = MASK_LAYERS) -> Index:
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
    idx.files.append(write_index(store, out, idx))
    return idx
