"""`python -m analysis sparse` on a hand-written results store: critical sparsity (Fig. 8),
FLOPs frontier, tickets (Fig. 10), per-agent masks and patterns (Fig. 12), search results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from analysis.sparse_figures import critical_sparsity, search_title

ROOT = Path(__file__).resolve().parents[1]
DENSE_WIN = 0.9
WIN = {("mast", 0.5): 0.9, ("mast", 0.8): 0.89, ("mast", 0.9): 0.88, ("mast", 0.95): 0.7,
       ("rigl", 0.5): 0.88, ("rigl", 0.8): 0.8, ("rigl", 0.9): 0.6, ("rigl", 0.95): 0.4}


def write_run(root: Path, rid: str, method: str, sp: float, seed: int, final: float,
              mp: str = "3m", method_cfg: dict | None = None, share: bool = True,
              masks: dict | None = None, t_max: int = 1000, ablation: str = "none") -> Path:
    d = root / rid
    d.mkdir(parents=True)
    cfg = {"algo": {"name": "qmix"}, "env": {"name": "smax", "map": mp},
           "method": {"name": method, "mask_from": None, "unit_density": None,
                      **(method_cfg or {})},
           "agent": {"share_params": share}, "ablation": {"name": ablation}, "sparsity": sp,
           "seed": seed, "t_max": t_max}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "manifest.json").write_text(json.dumps({"run_id": rid, "status": "finished"}))
    (d / "summary.json").write_text(json.dumps({
        "run_id": rid, "algo": "qmix", "env": "smax", "map": mp, "method": method,
        "sparsity": 0.0 if method == "dense" else sp, "seed": seed, "status": "finished",
        "t_max": t_max, "ablation": ablation,
        "final_win_rate": final, "final_window": 2, "n_evals": 6}))
    flops_per_step = 1e6 * (1 - (0.0 if method == "dense" else sp))
    with open(d / "metrics.jsonl", "w") as f:
        for i in range(6):
            f.write(json.dumps({"t_env": 200 * i, "test_win_rate": final * i / 5,
                                "sparse/flops_spent": flops_per_step * 200 * i}) + "\n")
    if masks:
        (d / "masks").mkdir()
        np.savez_compressed(d / "masks" / "mask_t100.npz", **masks)
    return d


def make_store(root: Path) -> None:
    for seed in (0, 1):
        write_run(root, f"dense-s{seed}", "dense", 0.9, seed, DENSE_WIN)
        for (m, sp), w in WIN.items():
            write_run(root, f"{m}-{sp}-s{seed}", m, sp, seed, w + 0.005 * seed)
        write_run(root, f"tw-mast-s{seed}", "ticket", 0.9, seed, 0.86,
                  method_cfg={"mask_from": str(root / "mast-0.9-s0")})
        write_run(root, f"tw-rigl-s{seed}", "ticket", 0.9, seed, 0.7,
                  method_cfg={"mask_from": str(root / "rigl-0.9-s0")})
        write_run(root, f"tr-s{seed}", "ticket", 0.9, seed, 0.65,
                  method_cfg={"mask_from": "random"})
        rng = np.random.default_rng(seed)
        dens = np.array([0.12, 0.12, 0.09, 0.09, 0.09])[:, None, None]
        masks = {"agent.rnn.weight_hh": rng.random((5, 12, 8)) < dens}
        write_run(root, f"pa-adaptive-s{seed}", "mast", 0.9, seed, 0.8, mp="2s3z", share=False,
                  masks=masks)
        write_run(root, f"pa-manual-s{seed}", "mast", 0.9, seed, 0.7, mp="2s3z", share=False,
                  method_cfg={"unit_density": {"stalker": 0.08, "zealot": 0.12}}, masks=masks)
    search = root / "_searches" / "critical_x" / "search.json"
    search.parent.mkdir(parents=True)
    search.write_text(json.dumps({
        "search_id": "critical_x", "overrides": ["method=mast"], "rounds": [["0.5", "baseline"]],
        "win_rates": {"baseline": {"0": 0.9}, "0.5": {"0": 0.89}, "0.9": {"0": 0.5}},
        "levels": {"0.5": 0.89, "0.9": 0.5}, "baseline_win_rate": 0.9, "threshold": 0.873,
        "critical_sparsity": 0.5, "first_failing": 0.9, "done": True}))


def test_critical_sparsity_rule():
    pts = {0.5: 0.9, 0.8: 0.88, 0.9: 0.86, 0.95: 0.89}
    assert critical_sparsity(pts, 0.9) == 0.8  # 0.86 < 0.873: 0.95 passing again is ignored
    assert critical_sparsity(pts, 0.9, tolerance=0.05) == 0.95
    assert critical_sparsity({0.5: 0.1}, 0.9) is None


def test_search_title_names_what_changes_learning():
    d = {"overrides": ["algo=qmix", "env.map=3m", "t_max=400000", "checkpoint_interval=50000",
                       "results_dir=/x/results", "+wandb.mode=offline"],
         "spec": {"seeds": [0, 1]}}
    assert search_title(d) == "algo=qmix env.map=3m t_max=400000, seeds 0,1"


def test_sparse_report(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    make_store(results)
    p = subprocess.run([sys.executable, "-m", "analysis", "sparse", "--results", str(results),
                        "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    figs = {f.name for f in (out / "figures").glob("*.png")}
    assert {"critical_qmix_3m.png", "flops_frontier_3m.png", "critical_x.png",
            "tickets_qmix_3m_sp90_1k.png", "unit_density_qmix_2s3z_sp90_1k.png"} <= figs
    assert sum(f.startswith("agent_masks_") for f in figs) == 4
    table = (out / "critical_sparsity.md").read_text()
    assert "| QMIX | 3m | 1k | MAST | 90% | 90.0% |" in table
    assert "| QMIX | 3m | 1k | RigL | 50% | 90.0% |" in table
    index = (out / "sparse.md").read_text()
    assert "tickets_qmix_3m_sp90_1k.png" in index and "Tickets" in index
    assert "critical sparsity 50%" in index


def test_critical_figure_keeps_budgets_apart(tmp_path):
    """Fig. 8 of a store with a 1k and a 2k sweep of one map: one figure per budget, each level
    compared with the dense runs of its own budget (pooled, 0.9 at 2k would pass against the
    1k dense's 0.7)."""
    from analysis.figures import Index
    from analysis.sparse_figures import critical_figures
    from analysis.store import load_store

    for t_max, dense, wins in ((1000, 0.7, {0.5: 0.7, 0.9: 0.69}),
                               (2000, 0.95, {0.5: 0.95, 0.9: 0.8})):
        for seed in (0, 1):
            write_run(tmp_path, f"dense-{t_max}-s{seed}", "dense", 0.9, seed, dense, t_max=t_max)
            for sp, w in wins.items():
                write_run(tmp_path, f"mast-{sp}-{t_max}-s{seed}", "mast", sp, seed, w,
                          t_max=t_max)
    idx = Index()
    rows = critical_figures(load_store(tmp_path), tmp_path / "out", idx)
    assert sorted(rows) == [("qmix", "3m", "mast", 0.5, 0.95, 2000),
                            ("qmix", "3m", "mast", 0.9, 0.7, 1000)]
    assert {p.name for p in (tmp_path / "out" / "figures").glob("*.png")} == {
        "critical_qmix_3m_1k.png", "critical_qmix_3m_2k.png"}


def test_tickets_and_frontier_keep_budgets_and_ablations_apart(tmp_path):
    """A store with a 1k and a 2k sweep of one cell (and a MAST ablation): the ticket figure's
    comparison runs come from the tickets' own budget, and the frontier has one point per
    budget, not an average of both."""
    from analysis.agent_figures import _ticket_groups
    from analysis.figures import Index
    from analysis.sparse_figures import flops_frontier, frontier_cells
    from analysis.store import load_store

    for seed in (0, 1):
        write_run(tmp_path, f"dense-s{seed}", "dense", 0.9, seed, DENSE_WIN)
        write_run(tmp_path, f"mast-s{seed}", "mast", 0.9, seed, 0.8,
                  method_cfg={"operator_scale": "none"})
        write_run(tmp_path, f"tick-s{seed}", "ticket", 0.9, seed, 0.7,
                  method_cfg={"mask_from": str(tmp_path / "mast-s0")})
        write_run(tmp_path, f"rtick-s{seed}", "ticket", 0.9, seed, 0.6,
                  method_cfg={"mask_from": "random"})
        write_run(tmp_path, f"dense2k-s{seed}", "dense", 0.9, seed, 0.95, t_max=2000)
        write_run(tmp_path, f"mast2k-s{seed}", "mast", 0.9, seed, 0.9, t_max=2000)
        write_run(tmp_path, f"mast-nosm-s{seed}", "mast", 0.9, seed, 0.5,
                  ablation="no_soft_mellowmax")
        write_run(tmp_path, f"dense-pa-s{seed}", "dense", 0.9, seed, 0.99, share=False)
    write_run(tmp_path, "mast-slope-s2", "mast", 0.9, 2, 0.95,  # a diagnostic, not a 3rd seed
              method_cfg={"operator_scale": "mixer_slope"})
    store = load_store(tmp_path)
    notes: list[str] = []
    groups = _ticket_groups(store, notes)
    assert notes == ["Tickets QMIX 3m 1k, cheating ticket (mast): 1 run(s) with "
                     "method.operator_scale ≠ none excluded"]
    assert list(groups) == [("qmix", "3m", 0.9, 1000)]
    g = groups[("qmix", "3m", 0.9, 1000)]
    assert sorted(g["cheating ticket (mast)"]) == ["mast-s0", "mast-s1"]
    assert sorted(g["dense"]) == ["dense-s0", "dense-s1"]
    assert sorted(g["winning ticket (mast)"]) == ["tick-s0", "tick-s1"]
    assert sorted(g["random ticket"]) == ["rtick-s0", "rtick-s1"]

    cells = frontier_cells(store, "3m")
    # dense 1k / 2k / per-agent 1k, MAST 1k / 2k, the ablation, the winning and random tickets
    assert len(cells) == 8
    assert [w for _, w in cells[("qmix", "mast", "", 0.9, 1000, "none")]] == [0.8, 0.8]
    assert [w for _, w in cells[("qmix", "mast", "", 0.9, 2000, "none")]] == [0.9, 0.9]
    assert [w for _, w in cells[("qmix", "ticket", "winning ticket", 0.9, 1000, "none")]] == [
        0.7, 0.7]
    assert [w for _, w in cells[("qmix", "ticket", "random ticket", 0.9, 1000, "none")]] == [
        0.6, 0.6]
    assert [w for _, w in cells[("qmix", "dense", "per-agent", 0.0, 1000, "none")]] == [
        0.99, 0.99]
    idx = Index()
    flops_frontier(store, tmp_path / "out", idx)
    [(caption, _)] = idx.sections["Final win rate vs training FLOPs (frontier per map)"]
    assert "budget" in caption


def test_frontier_ties_go_to_the_methods_usual_setting(tmp_path):
    """One dense run with the max operator and one dense diagnostic with Soft Mellowmax, in a
    store where most runs (MAST) use Soft Mellowmax: the dense point is the max-operator run,
    dense's usual setting, not the store's most frequent operator."""
    from analysis.sparse_figures import frontier_cells
    from analysis.store import load_store

    write_run(tmp_path, "dense-max", "dense", 0.9, 0, 0.9, method_cfg={"operator": "max"})
    write_run(tmp_path, "dense-sm", "dense", 0.9, 1, 0.5,
              method_cfg={"operator": "soft_mellowmax"})
    write_run(tmp_path, "dense-max-2k", "dense", 0.9, 0, 0.95, t_max=2000,
              method_cfg={"operator": "max"})
    for seed in range(3):
        write_run(tmp_path, f"mast-s{seed}", "mast", 0.9, seed, 0.8,
                  method_cfg={"operator": "soft_mellowmax"})
    notes: list[str] = []
    cells = frontier_cells(load_store(tmp_path), "3m", notes)
    assert [w for _, w in cells[("qmix", "dense", "", 0.0, 1000, "none")]] == [0.9]
    assert notes == ["3m frontier, QMIX Dense 0% 1k: 1 run(s) with method.operator ≠ max "
                     "excluded"]


def test_a_null_setting_is_a_value_not_a_missing_key(tmp_path):
    """`method.unit_density: null` (MAST's adaptive allocation) and a manual pattern are two
    configurations: reduced to one, the adaptive run is kept (the pool's usual value), not
    averaged with a pattern. A run whose config predates a key still matches any value."""
    from analysis.select import NULL, config_value, select_baseline
    from analysis.store import load_store

    write_run(tmp_path, "adaptive", "mast", 0.9, 0, 0.8, mp="2s3z", share=False,
              method_cfg={"unit_density": None})
    for name, ud in (("manual-a", {"stalker": 0.08, "zealot": 0.12}),
                     ("manual-b", {"stalker": 0.14, "zealot": 0.06})):
        write_run(tmp_path, name, "mast", 0.9, 0, 0.7, mp="2s3z", share=False,
                  method_cfg={"unit_density": ud})
    write_run(tmp_path, "shared", "mast", 0.9, 1, 0.6, mp="2s3z",
              method_cfg={"unit_density": None})
    store = load_store(tmp_path)
    assert config_value(store, "adaptive", "method.unit_density.stalker") == NULL
    assert config_value(store, "manual-a", "method.unit_density.stalker") == "0.08"
    assert config_value(store, "adaptive", "method.not_yet_a_key") is None
    kept, notes = select_baseline(store, ["adaptive", "manual-a", "manual-b"],
                                  pool=["adaptive", "manual-a", "manual-b", "shared"])
    assert kept == ["adaptive"] and notes == [
        "2 run(s) with method.unit_density.stalker ≠ null excluded"]


def test_pattern_figure_compares_mast_runs_only(tmp_path):
    """Fig. 12b: a per-agent RigL run or a MAST ablation (no unit_density either) is not
    MAST's adaptive allocation."""
    from analysis.agent_figures import _pattern_groups
    from analysis.store import load_store

    for seed in (0, 1):
        write_run(tmp_path, f"adaptive-s{seed}", "mast", 0.9, seed, 0.8, mp="2s3z", share=False)
        write_run(tmp_path, f"manual-s{seed}", "mast", 0.9, seed, 0.7, mp="2s3z", share=False,
                  method_cfg={"unit_density": {"stalker": 0.08, "zealot": 0.12}})
        write_run(tmp_path, f"rigl-s{seed}", "rigl", 0.9, seed, 0.1, mp="2s3z", share=False)
        write_run(tmp_path, f"nosm-s{seed}", "mast", 0.9, seed, 0.2, mp="2s3z", share=False,
                  ablation="no_soft_mellowmax")
    groups = _pattern_groups(load_store(tmp_path))
    assert {k: sorted(v) for k, v in groups[("qmix", "2s3z", 0.9, 1000)].items()} == {
        "adaptive (MAST)": ["adaptive-s0", "adaptive-s1"],
        "manual: stalker 8%, zealot 12%": ["manual-s0", "manual-s1"]}


def test_pattern_figure_gives_each_curve_its_own_color(tmp_path, monkeypatch):
    """Adaptive is red and no manual pattern shares its color (the default cycle's 4th is red)."""
    from matplotlib.colors import to_hex

    import analysis.agent_figures as af
    from analysis.figures import Index
    from analysis.store import load_store

    write_run(tmp_path, "adaptive", "mast", 0.9, 0, 0.8, mp="2s3z", share=False)
    for i, (st, ze) in enumerate([(0.1, 0.1), (0.08, 0.12), (0.14, 0.06), (0.12, 0.0867)]):
        write_run(tmp_path, f"manual-{i}", "mast", 0.9, 0, 0.7, mp="2s3z", share=False,
                  method_cfg={"unit_density": {"stalker": st, "zealot": ze}})
    colors: dict[str, str] = {}
    real = af.draw_band

    def spy(ax, curves, label, color=None, *a, **k):
        colors[label] = color
        return real(ax, curves, label, color, *a, **k)

    monkeypatch.setattr(af, "draw_band", spy)
    af.pattern_figures(load_store(tmp_path), tmp_path / "out", Index())
    assert len(colors) == 5 and len({to_hex(c) for c in colors.values()}) == 5
    assert colors["adaptive (MAST)"] == "tab:red"
