"""End-to-end on the real SMAX env with tiny budgets: results-store schema, skip, resume."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from mast.experiment import Experiment
from mast.modules import fused_gru

SUMMARY_KEYS = {"run_id", "algo", "env", "map", "method", "ablation", "sparsity", "seed", "t_max",
                "status", "final_win_rate", "final_window", "n_evals", "total_size",
                "flops_train", "flops_test"}


def test_results_store_schema_and_skip(tiny_cfg, monkeypatch):
    monkeypatch.setattr(fused_gru, "_used", set())  # this process's earlier tests ran both loops
    cfg = tiny_cfg("method=dense")
    res = Experiment(cfg).run()
    assert res["status"] == "finished"
    d = Experiment(cfg).store.dir
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["run_id"] == res["run_id"]
    assert {"git_commit", "packages", "device", "start_time", "end_time"} <= manifest.keys()
    assert "torch" in manifest["packages"]
    assert manifest["gru_recurrence"] == ["cpp-" + fused_gru._isa_flags()[0]]  # CI has g++
    summary = json.loads((d / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["sparsity"] == 0.0 and summary["total_size"] == 1.0
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == summary["n_evals"] >= 2
    assert [r["t_env"] for r in rows] == sorted({r["t_env"] for r in rows})
    for r in rows:
        assert {"t_env", "episode", "test_win_rate", "test_return_mean", "sparsity"} <= r.keys()
        assert 0.0 <= r["test_win_rate"] <= 1.0
    expected = sum(r["test_win_rate"] for r in rows[-cfg.final_window:]) / cfg.final_window
    assert abs(summary["final_win_rate"] - expected) < 1e-9
    assert yaml.safe_load((d / "config.yaml").read_text())["method"]["name"] == "dense"
    assert not list(d.glob(".*"))  # no temp files left behind
    # relaunch: reported and skipped, files untouched
    before = (d / "metrics.jsonl").read_text()
    assert Experiment(cfg).run()["status"] == "skipped"
    assert (d / "metrics.jsonl").read_text() == before


def _params(exp: Experiment) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in exp.learner.nets.state_dict().items()}


def test_resume_matches_uninterrupted_run(tiny_cfg, tmp_path):
    """Run A straight to t_max; run B is killed after its first checkpoint and relaunched. Both
    must end with identical parameters, counters and evaluation rows (CPU, same seed)."""
    over = ("method=dense", "save_buffer=true", "t_max=600", "checkpoint_interval=250")
    a = Experiment(tiny_cfg(*over, f"results_dir={tmp_path}/a"))
    assert a.run()["status"] == "finished"

    cfg_b = tiny_cfg(*over, f"results_dir={tmp_path}/b")
    crash = tiny_cfg(*over, f"results_dir={tmp_path}/b", "fail_at_t_env=400")
    try:
        Experiment(crash).run()
    except RuntimeError:
        pass
    b_dir = Experiment(cfg_b).store.dir
    assert json.loads((b_dir / "manifest.json").read_text())["status"] == "failed"
    assert (b_dir / "error.txt").exists()
    b = Experiment(cfg_b)  # the test hook is not semantic: same run id, same folder
    assert b.store.dir == Experiment(crash).store.dir
    assert b.run()["status"] == "finished"
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=0)
    assert vars(a.c) | {"wall_s": 0} == vars(b.c) | {"wall_s": 0}
    rows_a = [json.loads(x) for x in (a.store.dir / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (b.store.dir / "metrics.jsonl").read_text().splitlines()]
    drop = lambda r: {k: v for k, v in r.items() if not k.startswith("timing/")}  # noqa: E731
    assert [drop(r) for r in rows_a] == [drop(r) for r in rows_b]


def test_wandb_offline_run_follows_conventions(tiny_cfg):
    """A real offline W&B run: one per job, named by run_id, finished, config and summary sent."""
    from mast.tracking.wandb_sink import init_kwargs

    cfg = tiny_cfg("method=rigl", "wandb.mode=offline", "wandb.project=conv-test")
    exp = Experiment(cfg)
    kw = init_kwargs(cfg, exp.run_id, {"sparsity": 0.9}, "/tmp")
    assert (kw["name"], kw["id"], kw["group"], kw["job_type"]) == (exp.run_id, exp.run_id,
                                                                  exp.run_id, "rigl")
    assert kw["tags"] == ["qmix", "3m", "rigl", "sparsity=0.9"] and kw["mode"] == "offline"
    assert exp.run()["status"] == "finished"
    runs = list((exp.store.dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1  # one run per job, under the run's own folder
    log = runs[0].read_bytes()  # wandb's offline record log (protobuf): look for what was sent
    for sent in (exp.run_id, "sparsity=0.9", "final_win_rate", "test_win_rate", "sparse/mask_change"):
        assert sent.encode() in log, sent


def test_evaluate_final_checkpoint(tiny_cfg):
    from mast.evaluate import main

    exp = Experiment(tiny_cfg("method=rigl"))
    exp.run()
    assert main([str(exp.store.dir), "--episodes", "8"]) == 0
    out = json.loads((exp.store.dir / "eval_final.json").read_text())
    assert out["episodes"] >= 8 and 0.0 <= out["win_rate"] <= 1.0
    assert out["t_env"] >= exp.cfg.t_max
    assert main([str(exp.store.dir / "missing")]) == 1


def test_erk_run_records_its_layer_budget(tiny_cfg):
    """The summary's resource ratios follow the masks' per-layer densities, not 1 − sparsity:
    ERK keeps the thin layers dense, so the same parameter count costs fewer agent FLOPs."""
    from mast import accounting

    exp = Experiment(tiny_cfg("method=static", "sparsity=0.9", "method.distribution=erk"))
    exp.run()
    summary = json.loads((exp.store.dir / "summary.json").read_text())
    sizes = accounting.config_sizes(exp.cfg)
    uniform = accounting.resource_ratios("qmix", exp.spec, 0.9, sizes)
    assert summary["flops_test"] < uniform["flops_test"] - 0.005
    assert summary["flops_test"] == pytest.approx(accounting.resource_ratios(
        "qmix", exp.spec, 0.9, sizes, exp._layer_densities("qmix", sizes))["flops_test"])
