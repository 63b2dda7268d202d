"""Tests of analysis/ on a synthetic results store built here (no training code involved)."""

from __future__ import annotations

import json
import math
import os
import re
import statistics as st
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import aggregate as agg
from analysis.cli import main
from analysis.figures import smooth
from analysis.store import load_store
from analysis.tables import build_ablation_tables, build_table1, build_table5

REPO = Path(__file__).resolve().parents[1]
METHODS = ["tiny", "static", "set", "rigl", "rlx2", "mast"]
LABELS = {"tiny": "Tiny", "static": "SS", "set": "SET", "rigl": "RigL", "rlx2": "RLx2",
          "mast": "MAST", "dense": "Dense"}
ALGO = {"qmix": "QMIX", "wqmix": "WQMIX"}
T0 = 750000

# final win rates per seed (fractions); qmix/2s3z has no RLx2 runs, wqmix/3m SET has 2 seeds
MAIN = {
    ("qmix", "3m", 0.95): {"tiny": [0.85, 0.9, 0.95], "static": [0.7, 0.8, 0.9],
                           "set": [0.9, 0.85, 0.8], "rigl": [0.8, 0.8, 0.9],
                           "rlx2": [0.1, 0.2, 0.0], "mast": [0.9, 0.8, 1.0, 0.5]},
    ("qmix", "2s3z", 0.95): {"tiny": [0.6, 0.7, 0.8], "static": [0.5, 0.6, 0.4],
                             "set": [0.7, 0.7, 0.7], "rigl": [0.55, 0.65, 0.6],
                             "mast": [0.75, 0.8, 0.85]},
    ("qmix", "3m", 0.9): {"rigl": [0.85, 0.95], "mast": [0.9, 1.0]},
    ("wqmix", "3m", 0.9): {"tiny": [0.9, 0.95, 1.0], "static": [0.8, 0.9, 1.0],
                           "set": [0.95, 0.85], "rigl": [0.9, 0.9, 0.9],
                           "rlx2": [0.85, 0.95, 0.9], "mast": [1.0, 0.95, 0.9]},
}
DENSE = {("qmix", "3m"): [0.8, 0.9, 1.0], ("qmix", "2s3z"): [0.8, 0.75, 0.85],
         ("wqmix", "3m"): [0.9, 1.0], ("qmix", "3s5z"): [0.6, 0.7], ("wqmix", "3s5z"): [0.5, 0.6]}
# ablation sweep of method.t0_env_steps (MAST, 3s5z, sparsity 0.9)
SWEEP = {"qmix": {0: [0.5, 0.6], 450000: [0.55, 0.65], 750000: [0.7, 0.8]},
         "wqmix": {0: [0.3, 0.4], 750000: [0.6, 0.7]}}
RESOURCES = {("qmix", 0.95): (0.066, 0.051, 0.050), ("qmix", 0.9): (0.109, 0.101, 0.100),
             ("wqmix", 0.9): (0.108, 0.100, 0.100)}
# Table 1 rows in order (3s5z rows come from the sweep's baseline configuration, T0 = 750000)
ROWS = [("qmix", "3m", 0.9), ("qmix", "3m", 0.95), ("qmix", "2s3z", 0.95), ("qmix", "3s5z", 0.9),
        ("wqmix", "3m", 0.9), ("wqmix", "3s5z", 0.9)]


def cell_values(algo, mp, sp, m):
    if mp == "3s5z":
        return SWEEP[algo][T0] if m == "mast" else []
    return MAIN.get((algo, mp, sp), {}).get(m, [])


def write_run(root: Path, algo, mp, method, sp, seed, final, status="finished", t0=T0,
              masks=False, n_evals=12, extra_cfg=None):
    rid = f"{algo}-{mp}-{method}-sp{sp}-t0{t0}-s{seed}"
    d = root / rid
    d.mkdir(parents=True)
    method_cfg = {"name": method}
    if method == "mast":
        method_cfg["t0_env_steps"] = t0
    method_cfg.update(extra_cfg or {})
    cfg = {"algo": {"name": algo, "td_lambda": 0.8 if algo == "qmix" else 0.6},
           "env": {"name": "smac", "map": mp, "n_envs": 1}, "method": method_cfg,
           "ablation": {"name": "none"}, "sparsity": 0.9 if method == "dense" else sp,
           "seed": seed, "t_max": 110000, "results_dir": str(root),
           "wandb": {"mode": "offline", "project": "p", "run_name": rid}, "final_window": 20}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "manifest.json").write_text(json.dumps({"run_id": rid, "status": status}))
    res = RESOURCES.get((algo, sp), (0.1, 0.1, 0.1))
    if method == "tiny":
        res = (0.07, 0.07, 0.07)
    if method == "dense":
        res = (1.0, 1.0, 1.0)
    summary = {"run_id": rid, "algo": algo, "env": "smac", "map": mp, "method": method,
               "ablation": "none", "sparsity": 0.0 if method == "dense" else sp, "seed": seed,
               "t_max": 110000, "status": status, "final_win_rate": final, "final_window": 20,
               "n_evals": n_evals, "total_size": res[0], "flops_train": res[1],
               "flops_test": res[2]}
    (d / "summary.json").write_text(json.dumps(summary))
    with open(d / "metrics.jsonl", "w") as f:
        for i in range(n_evals):
            row = {"t_env": i * 10000, "episode": i * 100,
                   "test_win_rate": final * i / max(1, n_evals - 1), "sparsity": sp}
            if method in ("mast", "dense"):
                row["test/q_estimate"] = 2.0 + 0.1 * i
                row["test/return_discounted"] = 1.5 + 0.1 * i
            f.write(json.dumps(row) + "\n")
    if masks:
        (d / "masks").mkdir()
        rng = np.random.default_rng(seed)
        for t in (0, 50, 100):
            np.savez_compressed(d / "masks" / f"mask_t{t:03d}.npz", **{
                "agent.fc1.weight": rng.random((3, 16, 20)) < 0.1 + 0.05 * np.arange(3)[:, None,
                                                                                        None],
                "mixer.hyper_w1.0.weight": rng.random((24, 12)) < 0.1})
    return rid


def make_store(root: Path) -> Path:
    for (algo, mp, sp), methods in MAIN.items():
        for m, vals in methods.items():
            for seed, v in enumerate(vals):
                write_run(root, algo, mp, m, sp, seed, v,
                          masks=(algo, mp, sp, m, seed) == ("qmix", "3m", 0.95, "mast", 0))
    for (algo, mp), vals in DENSE.items():
        for seed, v in enumerate(vals):
            write_run(root, algo, mp, "dense", 0.0, seed, v)
    for algo, sweep in SWEEP.items():
        for t0, vals in sweep.items():
            for seed, v in enumerate(vals):
                write_run(root, algo, "3s5z", "mast", 0.9, seed, v, t0=t0)
    write_run(root, "qmix", "3m", "mast", 0.95, 9, 0.0, status="failed", n_evals=3)
    write_run(root, "wqmix", "3m", "rlx2", 0.9, 5, 0.99, status="running", n_evals=3)
    return root


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def store(store_dir):
    return load_store(store_dir)


def row_of(df: pd.DataFrame, algo: str, env: str, sp=None) -> pd.Series:
    sel = df[(df["Alg."] == ALGO[algo]) & (df["Env."] == env)]
    if sp is not None:
        sel = sel[np.isclose(sel["Sp."].astype(float), sp)]
    assert len(sel) == 1, (algo, env, sp, sel)
    return sel.iloc[0]


def test_store_frames(store):
    runs = store.runs
    n_main = sum(len(v) for ms in MAIN.values() for v in ms.values())
    n_total = n_main + sum(map(len, DENSE.values())) + sum(
        len(v) for s in SWEEP.values() for v in s.values()) + 2
    assert len(runs) == n_total
    assert set(runs["status"]) == {"finished", "failed", "running"}
    assert len(store.finished()) == n_total - 2
    assert (runs.loc[runs["method"] == "dense", "sparsity"] == 0.0).all()
    assert store.configs.loc[runs["run_id"].iloc[0], "env.map"] in {"3m", "2s3z", "3s5z"}
    assert "wandb.mode" in store.configs.columns and "method.t0_env_steps" in store.configs
    assert set(store.metrics.columns) == {"run_id", "t_env", "metric", "value"}
    assert {"test_win_rate", "test/q_estimate"} <= set(store.metrics["metric"])
    assert len(store.masks) == 1 and len(next(iter(store.masks.values()))) == 3


def test_summary_fallback_from_metrics(tmp_path):
    d = tmp_path / "r1"
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump(
        {"algo": {"name": "qmix"}, "env": {"map": "3m"}, "method": {"name": "mast"},
         "sparsity": 0.9, "seed": 0, "final_window": 2}))
    (d / "manifest.json").write_text(json.dumps({"status": "finished"}))
    rows = [{"t_env": t, "test_win_rate": w} for t, w in [(0, 0.0), (10, 0.5), (20, 0.7)]]
    (d / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{broken\n")
    s = load_store(tmp_path)
    r = s.runs.iloc[0]
    assert (r["algo"], r["map"], r["method"], r["sparsity"]) == ("qmix", "3m", "mast", 0.9)
    assert r["final_win_rate"] == pytest.approx(0.6)  # mean of the last 2 evaluations
    assert any("malformed" in p for p in s.problems)


def test_table1_numbers(store):
    res = build_table1(store)
    num, disp = res.numeric, res.display
    assert list(disp.columns) == ["Alg.", "Env.", "Sp.", "Total Size", "FLOPs (Train)",
                                  "FLOPs (Test)", "Tiny (%)", "SS (%)", "SET (%)", "RigL (%)",
                                  "RLx2 (%)", "MAST (%)"]
    data_rows = num[num["Env."] != "Avg."]
    assert [(r["Alg."], r["Env."], round(r["Sp."], 2)) for _, r in data_rows.iterrows()] == [
        (ALGO[a], m, s) for a, m, s in ROWS]
    expected: dict[tuple, dict[str, float]] = {}
    for algo, mp, sp in ROWS:
        dense = st.mean(DENSE[(algo, mp)])
        r = row_of(num, algo, mp, sp)
        d = disp.loc[r.name]
        exp = {}
        for m in METHODS:
            vals = cell_values(algo, mp, sp, m)
            col = f"{LABELS[m]} (%)"
            if vals:
                exp[col] = 100 * st.mean(vals) / dense
                assert r[col] == pytest.approx(exp[col]), (algo, mp, sp, m)
                assert d[col] == f"{exp[col]:.1f}"
                assert r[f"{LABELS[m]} n"] == len(vals)
            else:
                assert math.isnan(r[col]) and d[col] == "—"
        tot, ftr, fte = RESOURCES[(algo, sp)]  # from the MAST run, not Tiny's 0.07
        assert (r["Total Size"], r["FLOPs (Train)"], r["FLOPs (Test)"]) == (tot, ftr, fte)
        assert d["Total Size"] == f"{tot:.3f}x" and d["Sp."] == f"{round(100 * sp)}%"
        assert r["Dense n"] == len(DENSE[(algo, mp)])
        expected[(algo, mp, sp)] = exp
    # hand-computed spot checks
    assert row_of(num, "qmix", "3m", 0.95)["MAST (%)"] == pytest.approx(100 * 0.8 / 0.9)
    assert row_of(num, "qmix", "3s5z", 0.9)["MAST (%)"] == pytest.approx(100 * 0.75 / 0.65)
    assert row_of(num, "wqmix", "3m", 0.9)["SET (%)"] == pytest.approx(100 * 0.9 / 0.95)
    # Avg. rows: mean of the available cells per column
    for algo in ALGO:
        avg = row_of(num, algo, "Avg.")
        rows = [r for r in ROWS if r[0] == algo]
        assert avg["Sp."] == pytest.approx(st.mean(r[2] for r in rows))
        assert avg["Total Size"] == pytest.approx(st.mean(RESOURCES[(algo, r[2])][0]
                                                          for r in rows))
        for m in METHODS:
            col = f"{LABELS[m]} (%)"
            vals = [expected[r][col] for r in rows if col in expected[r]]
            assert avg[col] == pytest.approx(st.mean(vals)), (algo, m)
    assert row_of(disp, "qmix", "Avg.")["Sp."] == "92.5%"
    assert row_of(num, "qmix", "Avg.")["RLx2 (%)"] == pytest.approx(100 * 0.1 / 0.9)
    notes = "\n".join(res.footnotes)
    assert "QMIX 2s3z 95%: RLx2;" in notes  # missing cell
    assert "QMIX 3m 90%: Tiny, SS, SET, RLx2;" in notes
    assert "WQMIX 3m 90% SET (n=2)" in notes  # incomplete cell
    assert "MAST n=4" in notes and "Dense n=3" in notes
    assert "1 failed" in notes and "1 running" in notes
    assert "qmix-3m-mast-sp0.95-t0750000-s9" in notes
    assert "method.t0_env_steps ≠ 750000" in notes  # sweep runs excluded from the cell


def test_table1_iqm(store):
    res = build_table1(store, stat="iqm", n_boot=500)
    r = row_of(res.numeric, "qmix", "3m", 0.95)
    # MAST seeds [0.9, 0.8, 1.0, 0.5]: sorted, 1 cut per end -> (0.8 + 0.9) / 2;
    # dense [0.8, 0.9, 1.0]: n < 4 so nothing is cut -> 0.9
    assert r["MAST (%)"] == pytest.approx(100 * 0.85 / 0.9)
    assert r["MAST CI low"] <= r["MAST (%)"] <= r["MAST CI high"]
    cell = res.display.loc[r.name, "MAST (%)"]
    assert re.fullmatch(r"94\.4 \[\d+\.\d, \d+\.\d\]", cell), cell
    # SET of qmix/3m 95%: constant-free but dense-limited: CI bounds within the resample range
    lo, hi = r["SET CI low"], r["SET CI high"]
    vals = MAIN[("qmix", "3m", 0.95)]["set"]
    assert 100 * min(vals) / max(DENSE[("qmix", "3m")]) - 1e-9 <= lo <= hi
    assert hi <= 100 * max(vals) / min(DENSE[("qmix", "3m")]) + 1e-9


def test_iqm_and_bootstrap_by_hand():
    assert agg.iqm([7, 1, 100, 3, 4, 2, 6, 5]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert agg.iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)  # n < 4: plain mean
    assert agg.point([0.5, 1.0, 0.8, 0.9], "iqm") == pytest.approx(0.85)
    assert agg.bootstrap([[0.7, 0.7, 0.7]], "iqm") == pytest.approx((0.7, 0.7))
    lo, hi = agg.bootstrap([[0.1, 0.5, 0.9, 0.3, 0.7]], "iqm", n_boot=1000, seed=1)
    assert 0.1 <= lo < agg.iqm([0.1, 0.5, 0.9, 0.3, 0.7]) < hi <= 0.9
    assert (lo, hi) == agg.bootstrap([[0.1, 0.5, 0.9, 0.3, 0.7]], "iqm", n_boot=1000, seed=1)


def test_table5_numbers(store):
    res = build_table5(store)
    num, disp = res.numeric, res.display
    assert list(disp.columns)[:4] == ["Alg.", "Env.", "Sp.", "Dense (%)"]
    for algo, mp, sp in ROWS:
        r = row_of(num, algo, mp, sp)
        d = disp.loc[r.name]
        for m in ["dense"] + METHODS:
            vals = DENSE[(algo, mp)] if m == "dense" else cell_values(algo, mp, sp, m)
            col = f"{LABELS[m]} (%)"
            if not vals:
                assert d[col] == "—"
                continue
            mean, sd = 100 * st.mean(vals), 100 * st.stdev(vals)
            assert r[col] == pytest.approx(mean)
            assert r[f"{LABELS[m]} std"] == pytest.approx(sd)
            assert d[col] == f"{mean:.1f} ± {sd:.1f}"
    d = disp.loc[row_of(num, "qmix", "3m", 0.95).name]
    assert d["MAST (%)"] == "80.0 ± 21.6" and d["Dense (%)"] == "90.0 ± 10.0"
    avg = row_of(num, "wqmix", "Avg.")
    assert avg["Tiny (%)"] == pytest.approx(95.0)  # only the 3m row has Tiny
    assert avg["MAST std"] == pytest.approx(st.mean([100 * st.stdev([1.0, 0.95, 0.9]),
                                                     100 * st.stdev([0.6, 0.7])]))


def test_ablation_t0_sweep(store):
    tables = {t.name: t for t in build_ablation_tables(store)}
    assert list(tables) == ["ablation_method.t0_env_steps", "ablation_sparsity"]
    sp = tables["ablation_sparsity"].display.set_index("Sp. (final win rate vs sparsity, Fig. 8)")
    assert list(sp.columns) == ["3m RigL", "3m MAST", "Avg."]
    assert list(sp.index) == ["90%", "95%"]
    assert sp.loc["95%", "3m RigL"] == f"{100 * st.mean([0.8, 0.8, 0.9]):.1f} (n=3)"
    assert sp.loc["95%", "3m MAST"] == "80.0 (n=4)" and sp.loc["90%", "3m MAST"] == "95.0 (n=2)"
    t = tables["ablation_method.t0_env_steps"]
    d = t.display
    name = "T0 (hybrid TD(λ))"
    assert list(d.columns) == [name, "QMIX", "WQMIX", "Avg."]
    assert list(d[name]) == ["0", "0.45M", "0.75M"]
    row = d.set_index(name)
    assert row.loc["0", "QMIX"] == "55.0 (n=2)" and row.loc["0", "WQMIX"] == "35.0 (n=2)"
    assert row.loc["0.45M", "WQMIX"] == "—" and row.loc["0.45M", "Avg."] == "60.0"
    assert row.loc["0.75M", "QMIX"] == "75.0 (n=2)" and row.loc["0.75M", "Avg."] == "70.0"
    norm = dict(t.sections)["Normalized to the dense baseline (%)"].set_index(name)
    assert norm.loc["0", "QMIX"] == f"{100 * 0.55 / 0.65:.1f} (n=2)"
    num = t.numeric
    q = num[(num["algo"] == "wqmix") & (num["value"] == "0.75M")].iloc[0]
    assert q["win_rate"] == pytest.approx(65.0) and q["normalized"] == pytest.approx(65 / 0.55)


def test_ablation_paired_keys(tmp_path):
    for (a, w), vals in {(1, 10): [0.9, 0.8], (5, 5): [0.6, 0.7]}.items():
        for seed, v in enumerate(vals):
            write_run(tmp_path, "qmix", "3s5z", "mast", 0.9, f"{a}{w}{seed}", v,
                      extra_cfg={"sm_alpha": a, "sm_omega": w})
    (t,) = build_ablation_tables(load_store(tmp_path))
    assert t.name == "ablation_method.sm_alpha_omega"
    assert t.display.columns[0] == "Soft Mellowmax α/ω"
    assert list(t.display.iloc[:, 1]) == ["85.0 (n=2)", "65.0 (n=2)"]
    assert list(t.display.iloc[:, 0]) == ["α=1, ω=10", "α=5, ω=5"]


def test_smoothing_rules():
    y = np.arange(4.0) ** 2
    assert np.array_equal(smooth(y), y)  # < 5 points: untouched
    assert np.allclose(smooth(np.arange(6.0)), np.arange(6.0))  # window 5, order 2: exact line
    assert smooth(np.random.default_rng(0).random(40)).shape == (40,)
    spike = np.zeros(40)
    spike[20] = 1.0
    s = smooth(spike)  # 40 evaluations: an 11-point window, so the spike spreads ±5 only
    assert np.allclose(s[:15], 0) and np.allclose(s[26:], 0) and not np.isclose(s[15], 0)
    long = np.zeros(101)
    long[50] = 1.0
    assert not np.isclose(smooth(long)[40], 0)  # 101 evaluations: the full 21-point window


def test_figures(store, tmp_path):
    from analysis.figures import build_figures

    idx = build_figures(store, tmp_path)
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    names = [p.name for p in pngs]
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert sum(n.startswith("curves_") for n in names) == len(ROWS)
    assert sum(n.startswith("qest_") for n in names) == len(ROWS)
    assert names.count("sparsity_qmix_3m.png") == 1 and "sparsity_wqmix_3m.png" not in names
    assert sum(n.startswith("mask_") for n in names) == 1  # agent layers only, by default
    assert sum(n.startswith("counts_") for n in names) == 1
    assert sum(n.startswith("agents_") for n in names) == 1  # stacked agent.fc1.weight
    index = (tmp_path / "index.md").read_text()
    for n in names:
        assert f"(figures/{n})" in index
    assert not idx.notes
    every = build_figures(store, tmp_path / "all", mask_layers=("*",))
    assert sum(p.name.startswith("mask_") for p in every.files) == 2  # one per layer


def test_return_curves_for_mamujoco_rows(tmp_path):
    """Rows of an environment without a win condition get test-return curves, not win rates."""
    from analysis.figures import build_figures

    res = tmp_path / "res"
    for method, sp, seed, ret in [("dense", 0.0, 0, 40.0), ("dense", 0.0, 1, 50.0),
                                  ("mast", 0.9, 0, 35.0), ("mast", 0.9, 1, 45.0)]:
        rid = write_run(res, "comix", "ManySegmentSwimmer-10x2", method, sp, seed, 0.0)
        d = res / rid
        summary = json.loads((d / "summary.json").read_text())
        summary.update(env="mamujoco", final_win_rate=None, final_return=ret)
        (d / "summary.json").write_text(json.dumps(summary))
        with open(d / "metrics.jsonl", "w") as f:
            for i in range(12):
                f.write(json.dumps({"t_env": i * 10000, "test_win_rate": 0.0,
                                    "test_return_mean": ret * i / 11}) + "\n")
    write_run(res, "qmix", "3m", "dense", 0.0, 0, 0.8)
    write_run(res, "qmix", "3m", "mast", 0.9, 0, 0.7)
    build_figures(load_store(res), tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert [n for n in names if n.startswith("returns_")] == [
        "returns_comix_ManySegmentSwimmer-10x2_sp90.png"]
    assert [n for n in names if n.startswith("curves_")] == ["curves_qmix_3m_sp90.png"]
    # --runs: each matching run's own curves, per (algo, map); a pattern matching none is noted
    idx = build_figures(load_store(res), tmp_path / "per", runs="comix-*")
    assert [p.name for p in idx.files if p.name.startswith("runs_")] == [
        "runs_comix_ManySegmentSwimmer-10x2.png"]
    assert "(figures/runs_comix_ManySegmentSwimmer-10x2.png)" in (
        tmp_path / "per" / "index.md").read_text()
    idx = build_figures(load_store(res), tmp_path / "none", runs="nothing_*")
    assert any("no finished run matches 'nothing_*'" in n for n in idx.notes)


def test_return_figures_draw_the_random_policy_and_the_learning_bar():
    """A return curve is read against a random policy's mean and the bar (random + 5 std)
    where the map has them measured; a win-rate map gets neither."""
    import matplotlib.pyplot as plt

    from analysis.figures import reference_lines
    from mast.envs.mamujoco_maps import RANDOM_RETURN_STDS, RANDOM_RETURNS

    mp = "ManySegmentSwimmer-10x2"
    fig, (swim, smax) = plt.subplots(1, 2)
    reference_lines(swim, mp)
    reference_lines(smax, "3m")
    levels = sorted(line.get_ydata()[0] for line in swim.lines)
    assert levels == pytest.approx(sorted([RANDOM_RETURNS[mp],
                                           RANDOM_RETURNS[mp] + 5 * RANDOM_RETURN_STDS[mp]]))
    assert not smax.lines
    plt.close(fig)


def test_figures_skip_cleanly(tmp_path):
    from analysis.figures import build_figures

    res = tmp_path / "r"
    write_run(res, "qmix", "3m", "rigl", 0.9, 0, 0.5, n_evals=3)
    idx = build_figures(load_store(res), tmp_path / "out")
    index = (tmp_path / "out" / "index.md").read_text()
    assert "## Skipped" in index and "Mask figures skipped" in index
    assert "Q estimate figure skipped" in index and "vs sparsity skipped" in index
    assert len([p for p in idx.files if p.suffix == ".png"]) == 1  # the curve (no smoothing)


def test_empty_and_unfinished_stores(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["table1", "--results", str(empty), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "no runs found" in err and "Traceback" not in err
    assert main(["table5", "--results", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    failed = tmp_path / "failed"
    write_run(failed, "qmix", "3m", "mast", 0.9, 0, 0.1, status="failed")
    assert main(["table1", "--results", str(failed), "--out", str(tmp_path / "o")]) == 1
    assert "No finished sparse runs" in capsys.readouterr().err
    assert main(["tables", "--results", str(failed), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o" / "table1.md").exists()


def test_wandb_source_with_fake_api(store_dir):
    from analysis.wandb_source import WandbUnavailable, load_wandb

    class FakeRun:
        def __init__(self, d: Path):
            self.id = d.name
            self.name = d.name
            self.state = "finished"
            self.job_type = None
            self.summary = json.loads((d / "summary.json").read_text())
            self.config = yaml.safe_load((d / "config.yaml").read_text())
            self.rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]

        def scan_history(self):
            return iter(self.rows)

    class FakeApi:
        def runs(self, path):
            assert path == "ent/proj"
            return [FakeRun(d) for d in sorted(store_dir.iterdir())]

    wb = load_wandb("proj", "ent", api=FakeApi())
    ref = load_store(store_dir)
    cols = ["run_id", "method", "sparsity", "status", "final_win_rate", "total_size"]
    pd.testing.assert_frame_equal(wb.runs[cols], ref.runs[cols])
    assert len(wb.metrics) == len(ref.metrics)
    assert build_table1(wb).numeric.equals(build_table1(ref).numeric)

    import wandb

    class BrokenApi:
        def runs(self, path):
            raise wandb.errors.CommError("network is unreachable")

    with pytest.raises(WandbUnavailable, match="network is unreachable"):
        load_wandb("proj", None, api=BrokenApi())


def test_wandb_without_login(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wbcfg"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    rc = main(["table1", "--source", "wandb", "--project", "p", "--entity", "e", "--timeout", "3"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot read W&B runs" in err and "Traceback" not in err


def test_cli_subprocess(store_dir, tmp_path):
    out = tmp_path / "reports"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, "-m", "analysis", "table1", "--results", str(store_dir),
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "| Alg. | Env. | Sp. | Total Size |" in p.stdout and "Traceback" not in p.stderr
    for ext in ("md", "csv", "tex"):
        assert (out / f"table1.{ext}").stat().st_size > 0
    csv = pd.read_csv(out / "table1.csv")
    r = csv[(csv["Alg."] == "QMIX") & (csv["Env."] == "2s3z")].iloc[0]
    assert r["MAST (%)"] == pytest.approx(100 * 0.8 / 0.8)
    assert r"\begin{tabular}" in (out / "table1.tex").read_text()


def test_log_wandb_disabled_mode(store_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    rc = main(["table5", "--results", str(store_dir), "--out", str(tmp_path / "o"),
               "--log-wandb", "--project", "p"])
    assert rc == 0 and "logged 1 table(s) to W&B" in capsys.readouterr().err


def test_tables_without_sweeps_is_not_an_error(tmp_path, capsys):
    write_run(tmp_path / "r", "qmix", "3m", "mast", 0.9, 0, 0.8)
    assert main(["tables", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 0
    assert "no ablation tables" in capsys.readouterr().err


def test_table1_without_dense_shows_absolute_values_and_the_fill_in_command(tmp_path):
    """MAST-only store (the users' headline sweep): numbers marked as absolute, never an
    all-dash table, and the exact command that launches the missing runs incl. method=dense."""
    root = tmp_path / "mast_only"
    for sp in (0.85, 0.9):
        for seed in (0, 1):
            rid = write_run(root, "qmix", "3m", "mast", sp, seed, 0.8 + 0.05 * seed)
            manifest = root / rid / "manifest.json"
            m = json.loads(manifest.read_text())
            m["overrides"] = ["algo=qmix", f"sparsity={sp}", f"seed={seed}", "t_max=110000",
                              "results_dir=/x"]
            manifest.write_text(json.dumps(m))
    res = build_table1(load_store(root))
    text = "\n".join(map(str, res.display.iloc[0].tolist()))
    assert "82.5 (abs.)" in text  # mean of 0.80 and 0.85, in %
    notes = "\n".join(res.footnotes)
    assert "NOT normalised" in notes
    assert ("python run.py -m algo=qmix env=smac env.map=3m method=dense seed=0,1 t_max=110000"
            in notes)
    assert ("python run.py -m algo=qmix env=smac env.map=3m method=tiny,static,set,rigl,rlx2 "
            "sparsity=0.85,0.9 seed=0,1 t_max=110000") in notes


def test_fill_in_command_takes_the_budget_of_the_dense_baseline(tmp_path):
    """A map whose store mixes 1M runs with a shorter diagnostic (FACMAC 3m: 200k next to 1M):
    the overrides common to every run drop t_max, which would launch the default budget. The
    command takes the budget (and knobs) of the dense runs Table 1 divides by."""
    root = tmp_path / "mixed"
    runs = [("dense", 0.0, 0, 1_000_000), ("dense", 0.0, 1, 1_000_000),
            ("mast", 0.9, 0, 1_000_000), ("mast", 0.9, 1, 1_000_000), ("mast", 0.5, 0, 200_000)]
    for method, sp, seed, t_max in runs:
        rid = write_run(root, "qmix", "3m", method, sp, seed, 0.7)
        for name in ("summary.json", "manifest.json"):
            doc = json.loads((root / rid / name).read_text())
            doc.update(t_max=t_max) if name == "summary.json" else doc.update(overrides=[
                f"method={method}", f"seed={seed}", f"t_max={t_max}", "checkpoint_interval=5"])
            (root / rid / name).write_text(json.dumps(doc))
    notes = "\n".join(build_table1(load_store(root)).footnotes)
    line = next(x for x in notes.splitlines() if "method=tiny" in x)
    assert line.endswith("seed=0,1 t_max=1000000 checkpoint_interval=5"), line
    # the 200k diagnostic at 50% is not a Table 1 cell of the 1M baseline: no 1M sweep at 50%
    assert "sparsity=0.9 seed" in line, line


def _as_mamujoco(run_dir: Path, overrides: list[str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(env="mamujoco", final_win_rate=None, final_return=-40.0)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "overrides": overrides}))


def test_fill_in_command_names_a_mamujoco_task_by_scenario_and_quotes_it(tmp_path):
    """MA-MuJoCo's map name (Humanoid-9|8) is derived from env.scenario and env.agent_conf, which
    a run must set (env.map alone would train the default Swimmer); the '|' is quoted, else the
    shell pipes into `8`."""
    rid = write_run(tmp_path / "h", "comix", "Humanoid-9|8", "mast", 0.9, 0, 0.0)
    _as_mamujoco(tmp_path / "h" / rid, ["env.scenario=Humanoid", "env.agent_conf='9|8'"])
    notes = "\n".join(build_table1(load_store(tmp_path / "h")).footnotes)
    assert "env=mamujoco env.scenario=Humanoid 'env.agent_conf=9|8' method=dense" in notes
    assert "env.map" not in notes


def test_fill_in_command_keeps_the_baselines_experiment_preset(tmp_path):
    """The Swimmer runs are set by a preset (+experiment=comix_swimmer_2h_v2: budget, warm-up,
    CEM, τ): a hint without it would launch a different experiment. The Table 1 preset, which
    only sweeps the methods the hint lists itself, is left out."""
    root = tmp_path / "swim"
    for method, sp in [("dense", 0.0), ("mast", 0.9)]:
        rid = write_run(root, "comix", "ManySegmentSwimmer-10x2", method, sp, 0, 0.0)
        _as_mamujoco(root / rid, ["+experiment=comix_swimmer_2h_v2", f"method={method}",
                                  "save_buffer=True"])
        rid = write_run(root, "qmix", "3m", method, sp, 0, 0.5)
        manifest = json.loads((root / rid / "manifest.json").read_text())
        manifest["overrides"] = ["+experiment=table1", "t_max=110000"]
        (root / rid / "manifest.json").write_text(json.dumps(manifest))
    lines = [x for x in "\n".join(build_table1(load_store(root)).footnotes).splitlines()
             if "method=tiny" in x]
    swim = next(x for x in lines if "comix" in x)
    assert swim.endswith("seed=0 +experiment=comix_swimmer_2h_v2 save_buffer=True"), swim
    qmix = next(x for x in lines if "qmix" in x)
    assert qmix.endswith("seed=0 t_max=110000"), qmix


def test_return_rows_normalise_against_a_random_policy(tmp_path):
    """Swimmer's returns are negative (its random policy drifts backwards): Table 1 normalises
    return rows as (x − random) / (dense − random), and Table 5 prints them unscaled."""
    from analysis.tables import build_table1, build_table5
    from mast.envs.mamujoco_maps import RANDOM_RETURNS

    res = tmp_path / "res"
    for method, sp, seed, ret in [("dense", 0.0, 0, 10.0), ("dense", 0.0, 1, 20.0),
                                  ("mast", 0.9, 0, -30.0), ("mast", 0.9, 1, -40.0)]:
        rid = write_run(res, "comix", "ManySegmentSwimmer-10x2", method, sp, seed, 0.0)
        summary = json.loads((res / rid / "summary.json").read_text())
        summary.update(env="mamujoco", final_win_rate=None, final_return=ret)
        (res / rid / "summary.json").write_text(json.dumps(summary))
    random = RANDOM_RETURNS["ManySegmentSwimmer-10x2"]
    t1 = build_table1(load_store(res)).numeric
    row = t1[t1["Env."] == "ManySegmentSwimmer-10x2"].iloc[0]
    mast_col = [c for c in t1.columns if c.startswith("MAST")][0]
    # the plain ratio would call MAST (−35) −233% of dense (+15)
    assert row[mast_col] == pytest.approx(100 * (-35 - random) / (15 - random))
    t5 = build_table5(load_store(res))
    row5 = t5.numeric[t5.numeric["Env."] == "ManySegmentSwimmer-10x2"].iloc[0]
    assert row5[[c for c in t5.numeric.columns if c.startswith("Dense")][0]] == pytest.approx(15)
    assert any("return units" in n for n in t5.footnotes)


@pytest.mark.parametrize("dense", [-52.0, -42.0, 4.0])
def test_a_dense_baseline_below_the_learning_bar_is_not_a_denominator(tmp_path, dense):
    """Dense at −52 on Swimmer (random −44.6 ± 9.8) and MAST at −104: (x − random)/(dense −
    random) would read 765%; dense at −42 (0.3 std above random) −2,500%; +4 is still under the
    bar (random + 5 stds = +4.4). The row shows MAST's absolute return in return units, marked
    (abs.), as it does without a dense baseline (Humanoid: MAST only)."""
    from analysis.tables import ABS_MARK, build_table1

    res = tmp_path / "res"
    for env_map, method, sp, ret in [("ManySegmentSwimmer-10x2", "dense", 0.0, dense),
                                     ("ManySegmentSwimmer-10x2", "mast", 0.9, -104.0),
                                     ("Humanoid-9|8", "mast", 0.9, 71.0)]:
        rid = write_run(res, "comix", env_map, method, sp, 0, 0.0)
        summary = json.loads((res / rid / "summary.json").read_text())
        summary.update(env="mamujoco", final_win_rate=None, final_return=ret)
        (res / rid / "summary.json").write_text(json.dumps(summary))
    t1 = build_table1(load_store(res))
    mast_col = [c for c in t1.display.columns if c.startswith("MAST")][0]
    shown = dict(zip(t1.display["Env."], t1.display[mast_col], strict=True))
    assert shown["ManySegmentSwimmer-10x2"] == f"-104.0 {ABS_MARK}"
    assert shown["Humanoid-9|8"] == f"71.0 {ABS_MARK}"  # a return, not 7100 "%"
    assert np.isnan(t1.numeric[t1.numeric["Env."] == "ManySegmentSwimmer-10x2"][mast_col].iloc[0])


def test_keys_that_do_not_change_learning_never_split_a_cell():
    """Every key the run id leaves out (mast.config.NON_SEMANTIC) is ignored when the analysis
    reduces runs to one configuration: a seed run with `progress=log` is still a seed."""
    from analysis.select import is_ignored_key
    from mast.config import NON_SEMANTIC

    assert all(is_ignored_key(k) for k in NON_SEMANTIC if k != "wandb"), NON_SEMANTIC
    assert is_ignored_key("wandb.mode")


def test_win_rate_bands_stay_in_range_returns_do_not_clip():
    """Smoothing a curve that jumps from 0 fits a polynomial through the jump; a win rate is
    still drawn within [0, 100]%, a return as smoothed."""
    import matplotlib.pyplot as plt

    from analysis.figures import draw_band

    t = np.arange(40.0)
    y = np.where(t < 20, 0.0, 1.0)
    assert smooth(y).min() < 0  # what the clip is for
    fig, ax = plt.subplots()
    assert draw_band(ax, [(t, y)], "win rate")
    assert draw_band(ax, [(t, y)], "return", scale=1.0, bounds=None)
    win, ret = (line.get_ydata() for line in ax.lines)
    assert win.min() >= 0 and win.max() <= 100
    assert ret.min() < 0
    plt.close(fig)


def test_ledger_lists_each_run_with_its_share_of_dense_policy_wall_and_commit(tmp_path, capsys):
    """The closing-note ledger: same-seed dense share, else the dense mean (†); the re-scored
    policy, best evaluation, last logged wall time and commit come from the run's own files."""
    root = tmp_path / "led"
    ids = {(m, s): write_run(root, "qmix", "2s3z", m, 0.95, s, f)
           for m, s, f in [("dense", 0, 0.8), ("mast", 0, 0.6), ("mast", 1, 0.4)]}
    for (_, s), rid in ids.items():
        d = root / rid
        with open(d / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"t_env": 10**6, "timing/wall_s": 600.0 * (s + 1)}) + "\n")
        manifest = json.loads((d / "manifest.json").read_text())
        manifest.update(git_commit=f"abc{s}def0123", resumed=s == 1)
        (d / "manifest.json").write_text(json.dumps(manifest))
        (d / "eval_final.json").write_text(json.dumps({"episodes": 640, "win_rate": 0.5}))
    assert main(["ledger", "--results", str(root), "--runs", "*-mast-*", "--out",
                 str(tmp_path / "o")]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| QMIX")]
    assert len(lines) == 2  # the pattern left dense out of the rows, not out of the shares
    seed0, seed1 = ([c.strip() for c in x.strip("|").split("|")] for x in lines)
    assert seed0[:9] == ["QMIX 2s3z MAST 95%", "0", "110k", "60.0%", "75.0", "50.0% (640 ep.)",
                         "60.0%", "10", "abc0def"]
    assert seed1[4] == "50.0†" and seed1[7] == "20" and seed1[8] == "abc1def (resumed)"
    assert (tmp_path / "o" / "ledger.md").exists()
    # a return row (no win condition) gets its return, and no share of a (negative) dense return
    for rid in ids.values():
        summary = json.loads((root / rid / "summary.json").read_text())
        summary.update(final_win_rate=None, final_return=-30.0 if "dense" in rid else -60.0)
        (root / rid / "summary.json").write_text(json.dumps(summary))
    assert main(["ledger", "--results", str(root), "--runs", "*-mast-*-s0", "--out",
                 str(tmp_path / "o")]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| QMIX"))
    assert [c.strip() for c in row.strip("|").split("|")][3:5] == ["-60.0", "—"]


def test_ledger_names_a_variant_and_keeps_it_out_of_the_dense_baseline(tmp_path, capsys):
    """Overrides beyond a row's own keys label the run (`[k=v]`, paths by their last part),
    so a variant does not read as a duplicate; a dense variant is not the baseline of the
    shares while a plain dense run of that seed exists."""
    root = tmp_path / "led"
    write_run(root, "qmix", "2s3z", "dense", 0.95, 0, 0.8)
    odd = write_run(root, "qmix", "2s3z", "dense", 0.5, 0, 0.4)
    write_run(root, "qmix", "2s3z", "mast", 0.95, 0, 0.6)
    manifest = json.loads((root / odd / "manifest.json").read_text())
    manifest["overrides"] = ["method=dense", "seed=0", "results_dir=/x/y", "t_max=110000",
                             "checkpoint_interval=5", "hydra.launcher.max_concurrent=2",
                             "algo.bootstrap_actions=online", "method.mask_from=/a/b/run7"]
    (root / odd / "manifest.json").write_text(json.dumps(manifest))
    assert main(["ledger", "--results", str(root), "--out", str(tmp_path / "o")]) == 0
    rows = [[c.strip() for c in x.strip("|").split("|")]
            for x in capsys.readouterr().out.splitlines() if x.startswith("| QMIX")]
    names = [r[0] for r in rows]
    assert "QMIX 2s3z Dense" in names
    assert "QMIX 2s3z Dense [algo.bootstrap_actions=online, method.mask_from=run7]" in names
    assert next(r for r in rows if r[0].startswith("QMIX 2s3z MAST"))[4] == "75.0"


def test_a_key_added_after_a_run_reads_as_its_earlier_behaviour(tmp_path):
    """A run stored before `algo.bootstrap_actions` existed behaved as `target` (LATER_KEYS):
    next to it an `online` run is a variant and leaves the cell, an explicit `target` stays;
    `method.operator_scale` under the max operator chooses nothing and splits nothing."""
    from analysis.select import select_baseline

    def run(seed, algo_extra=None, method_extra=None):
        rid = write_run(tmp_path, "qmix", "3m", "dense", 0.9, seed, 0.8, extra_cfg=method_extra)
        cfg = yaml.safe_load((tmp_path / rid / "config.yaml").read_text())
        cfg["algo"].update(algo_extra or {})
        (tmp_path / rid / "config.yaml").write_text(yaml.safe_dump(cfg))
        return rid

    old, target, online = run(0), run(1, {"bootstrap_actions": "target"}), run(
        2, {"bootstrap_actions": "online"})
    moot = run(3, method_extra={"operator": "max", "operator_scale": "mixer_slope"})
    plain = run(4, method_extra={"operator": "max", "operator_scale": "none"})
    ids, notes = select_baseline(load_store(tmp_path), [old, target, online, moot, plain])
    assert sorted(ids) == sorted([old, target, moot, plain]), notes


def _swimmer_slice_store(root: Path) -> Path:
    """COMIX Swimmer runs of two layer budgets and two dense references (issue 14's comparison)."""
    dense = {"distribution": "uniform"}  # as a real dense config: the key is there, unused
    runs = [("dense", 0.0, 0, 10.0, dense | {"multistep": "td_lambda"}),
            ("dense", 0.0, 1, 20.0, dense | {"multistep": "td_lambda"}),
            ("dense", 0.0, 0, -50.0, dense | {"multistep": "none"}),
            ("dense", 0.0, 1, -40.0, dense | {"multistep": "none"}),
            ("mast", 0.9, 0, 0.0, {"distribution": "erk"}),
            ("mast", 0.9, 1, 10.0, {"distribution": "erk"}),
            ("mast", 0.9, 0, -80.0, {"distribution": "uniform"}),
            ("mast", 0.9, 1, -70.0, {"distribution": "uniform"}),
            ("rigl", 0.9, 0, -30.0, {"distribution": "erk", "multistep": "none"})]
    for i, (method, sp, seed, ret, knobs) in enumerate(runs):
        rid = write_run(root / f"{i}", "comix", "ManySegmentSwimmer-10x2", method, sp, seed, 0.0,
                        extra_cfg=knobs)
        (root / f"{i}" / rid).rename(root / f"{rid}-{i}")
        run_dir = root / f"{rid}-{i}"
        _as_mamujoco(run_dir, ["+experiment=comix_swimmer_2h_v2", f"method={method}",
                               *[f"method.{k}={v}" for k, v in knobs.items()]])
        summary = json.loads((run_dir / "summary.json").read_text())
        summary.update(final_return=ret, run_id=run_dir.name)
        (run_dir / "summary.json").write_text(json.dumps(summary))
        if method == "dense":  # the sweep job that ran it named another sparsity
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) | {"sparsity": 0.95}
            (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        (root / f"{i}").rmdir()
    return root


def test_where_compares_a_slice_against_its_own_dense_reference(tmp_path, capsys):
    """`--where method.distribution=erk --dense-where method.multistep=td_lambda`: MAST at ERK
    against dense + TD(λ), which the baseline reduction alone would not pick; `method.*` keys of
    --where skip dense runs, the footnote says what was kept, and the fill-in command for the
    sparse methods carries the slice, not the dense reference's TD(λ)."""
    from mast.envs.mamujoco_maps import RANDOM_RETURNS

    root = _swimmer_slice_store(tmp_path / "res")
    out = tmp_path / "out"
    assert main(["table1", "--results", str(root), "--out", str(out), "--where",
                 "method.distribution=erk", "--where", "sparsity=0.9", "--dense-where",
                 "method.multistep=td_lambda"]) == 0
    t1 = pd.read_csv(out / "table1.csv")
    row = t1[t1["Env."] == "ManySegmentSwimmer-10x2"].iloc[0]
    random = RANDOM_RETURNS["ManySegmentSwimmer-10x2"]
    mast_col = next(c for c in t1.columns if c.startswith("MAST"))
    rigl_col = next(c for c in t1.columns if c.startswith("RigL"))
    assert row[mast_col] == pytest.approx(100 * (5.0 - random) / (15.0 - random), abs=1e-3)
    assert row[rigl_col] == pytest.approx(100 * (-30.0 - random) / (15.0 - random), abs=1e-3)
    md = (out / "table1.md").read_text()
    assert ("Runs restricted to method.distribution=erk, sparsity=0.9 (dense runs: "
            "method.multistep=td_lambda): 5 of 9 runs kept.") in md
    fill = next(x for x in md.splitlines() if "method=tiny" in x)
    assert "method.distribution=erk" in fill and "td_lambda" not in fill, fill
    capsys.readouterr()


@pytest.mark.parametrize(("args", "says"), [
    (["--where", "method.distribution"], "--where 'method.distribution': expected KEY=VALUE"),
    (["--where", "method.distributon=erk"], "did you mean method.distribution"),
    (["--dense-where", "algo.nope=1"], "--dense-where algo.nope: no run in"),
])
def test_where_bad_input_is_one_line_naming_the_key(tmp_path, capsys, args, says):
    root = _swimmer_slice_store(tmp_path / "res")
    assert main(["table1", "--results", str(root), "--out", str(tmp_path / "o"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "o").exists()


def test_resource_ratios_come_from_the_newest_record_and_a_disagreement_is_noted(tmp_path):
    """Two seeds of one cell whose FLOPs records differ (the accounting was corrected between
    them): the row shows the run that ended last, whichever seed it is, and a note names both."""
    for seed, v in enumerate((0.8, 0.9)):
        write_run(tmp_path, "qmix", "3m", "dense", 0.0, seed, v)
    ends = {0: "2026-12-02T12:00:00+00:00", 1: "2026-12-01T12:00:00+00:00"}  # seed 0 is newer
    rids = []
    for seed, flops in ((0, 0.066), (1, 0.100)):
        rid = write_run(tmp_path, "qmix", "3m", "mast", 0.9, seed, 0.8)
        rids.append(rid)
        summary = json.loads((tmp_path / rid / "summary.json").read_text())
        summary.update(flops_train=flops, flops_test=flops)
        (tmp_path / rid / "summary.json").write_text(json.dumps(summary))
        (tmp_path / rid / "manifest.json").write_text(json.dumps(
            {"run_id": rid, "status": "finished", "end_time": ends[seed]}))
    res = build_table1(load_store(tmp_path))
    r = row_of(res.numeric, "qmix", "3m", 0.9)
    assert r["FLOPs (Train)"] == pytest.approx(0.066) and r["FLOPs (Test)"] == pytest.approx(0.066)
    assert r["Total Size"] == pytest.approx(0.109)
    note = next(n for n in res.footnotes if n.startswith("Resource ratios that differ"))
    assert f"flops_train 0.066 from the newest mast run ({rids[0]}), older: 0.100 ({rids[1]})" in note
    assert "total_size" not in note  # records that agree are not listed


def test_compare_differences_seed_by_seed_with_a_paired_ci_and_a_sign_test(store, store_dir,
                                                                           tmp_path, capsys):
    """MAST − RigL on QMIX 3m 95%: seeds 0-2 both (MAST 0.9, 0.8, 1.0; RigL 0.8, 0.8, 0.9), MAST's
    seed 3 alone is left out and said so; MAST − Dense (0.8, 0.9, 1.0) on the same seeds."""
    from analysis.compare import build_compare, sign_test_p

    res = build_compare(store, [("mast", "rigl"), ("mast", "dense")], n_boot=500)
    num = res.numeric
    line = num[(num["Alg."] == "QMIX") & (num["Env."] == "3m") & np.isclose(num["Sp."], 0.95)]
    rigl = line[line["A − B"] == "MAST − RigL"].iloc[0]
    assert rigl["Seeds"] == 3 and rigl["Per seed"] == "0:+10.0 1:+0.0 2:+10.0"
    assert rigl["Mean"] == pytest.approx(20 / 3)
    assert (rigl["A above"], rigl["A below"]) == (2, 0)
    assert rigl["Sign test p"] == pytest.approx(0.5)  # 2 of 2 differing seeds: 2 × 1/4
    lo, hi = agg.bootstrap([[10.0, 0.0, 10.0]], "mean", n_boot=500)
    assert (rigl["CI low"], rigl["CI high"]) == pytest.approx((lo, hi))
    dense = line[line["A − B"] == "MAST − Dense"].iloc[0]
    assert dense["Per seed"] == "0:+10.0 1:-10.0 2:+0.0" and dense["Sign test p"] == 1.0
    assert any("seed(s) 3 have one side only" in n for n in res.footnotes)
    # 3s5z has MAST and dense runs but no RigL: only the dense pair is there
    assert set(num[num["Env."] == "3s5z"]["A − B"]) == {"MAST − Dense"}
    # the exact two-sided sign test by hand
    assert sign_test_p(0, 4) == pytest.approx(0.125) and sign_test_p(5, 0) == pytest.approx(1 / 16)
    assert sign_test_p(3, 1) == pytest.approx(2 * 5 / 16) and math.isnan(sign_test_p(0, 0))
    # through the command line, and bad input as one line naming the allowed methods
    assert main(["compare", "--results", str(store_dir), "--out", str(tmp_path),
                 "--pair", "mast:rigl"]) == 0
    assert "| QMIX | 3m | 95% | MAST − RigL | 0,1,2 | +10.0, +0.0, +10.0 |" in capsys.readouterr().out
    assert main(["compare", "--results", str(store_dir), "--out", str(tmp_path),
                 "--pair", "mast-rigl"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dense, tiny, static, set, rigl, rlx2, mast" in err
