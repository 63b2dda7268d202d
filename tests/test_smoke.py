"""A tiny-budget run for every algo × method pair and every ablation with method=mast, taken from
the config groups on disk (adding a YAML adds its smoke test). All runs in this process share
the compiled SMAX functions (cached per map and batch size)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mast.config import ALGO_SCHEMAS
from mast.experiment import Experiment

from .conftest import ROOT

# SMAX has discrete actions; continuous-action algorithms (COMIX) smoke-run in test_comix.py
ALGOS = sorted(p.stem for p in (ROOT / "conf/algo").glob("*.yaml")
               if "discrete" in ALGO_SCHEMAS[p.stem].action_kinds)
METHODS = sorted(p.stem for p in (ROOT / "conf/method").glob("*.yaml"))
ABLATIONS = sorted(p.stem for p in (ROOT / "conf/ablation").glob("*.yaml"))


def _rows(exp: Experiment) -> list[dict]:
    return [json.loads(x) for x in (exp.store.dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("algo,method", [(a, m) for a in ALGOS for m in METHODS])
def test_algo_method_smoke(tiny_cfg, algo, method):
    exp = Experiment(tiny_cfg(f"algo={algo}", f"method={method}"))
    res = exp.run()
    assert res["status"] == "finished", res
    rows = _rows(exp)
    assert rows and all(np.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
    assert any("train/loss" in r for r in rows), "no learner update happened"
    summary = json.loads((exp.store.dir / "summary.json").read_text())
    sparse = exp.cfg.method.sparse
    assert summary["sparsity"] == (0.9 if sparse or exp.cfg.method.tiny else 0.0)
    if sparse:
        assert all(abs(r["sparsity"] - 0.9) <= 0.005 for r in rows)
        assert summary["total_size"] < 0.2 and summary["flops_train"] < 0.2
        assert (exp.store.dir / "masks" / "mask_t100.npz").exists()


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_mast_ablation_smoke(tiny_cfg, ablation):
    exp = Experiment(tiny_cfg("method=mast", f"ablation={ablation}"))
    assert exp.run()["status"] == "finished"
    assert json.loads((exp.store.dir / "summary.json").read_text())["ablation"] == ablation


def test_rigl_keeps_sparsity_and_evolves_static_does_not(tiny_cfg):
    over = ("t_max=1200", "test_interval=300")
    rigl = Experiment(tiny_cfg("method=rigl", "sparsity=0.9", *over))
    rigl.run()
    rows = _rows(rigl)
    assert len(rows) >= 3
    assert all(abs(r["sparsity"] - 0.9) <= 0.005 for r in rows)
    assert max(r.get("sparse/mask_change", 0.0) for r in rows) > 0
    static = Experiment(tiny_cfg("method=static", "sparsity=0.9", *over))
    static.run()
    assert all(r.get("sparse/mask_change", 0.0) == 0.0 for r in _rows(static))
    first = np.load(static.store.dir / "masks" / "mask_t000.npz")
    last = np.load(static.store.dir / "masks" / "mask_t100.npz")
    assert all((first[k] == last[k]).all() for k in first.files)
    first, last = (np.load(rigl.store.dir / "masks" / f) for f in ("mask_t000.npz", "mask_t100.npz"))
    assert any((first[k] != last[k]).any() for k in first.files)
