"""The run archiver (`scripts/archive_runs.py`): how many greedy episodes eval_final gets, and a
run whose evaluation fails is skipped (retried later) without stopping the watcher."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from .conftest import compose_cfg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import archive_runs  # noqa: E402


def run_folder(tmp_path: Path, name: str, *overrides: str) -> Path:
    run_dir = tmp_path / "results" / name
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(compose_cfg(list(overrides)), run_dir / "config.yaml")
    (run_dir / "manifest.json").write_text(json.dumps({"status": "finished"}))
    (run_dir / "summary.json").write_text("{}")
    return run_dir


def test_eval_episodes_are_fewer_for_mujoco(tmp_path):
    smax = run_folder(tmp_path, "smax_run")
    mujoco = run_folder(tmp_path, "mujoco_run", "algo=comix", "env=mamujoco")
    assert archive_runs.eval_episodes(smax, 640, 32) == 640
    assert archive_runs.eval_episodes(mujoco, 640, 32) == 32
    assert archive_runs.eval_episodes(mujoco, 16, 32) == 16


def test_failed_evaluation_skips_the_run_and_keeps_going(tmp_path, capsys):
    run_dir = run_folder(tmp_path, "broken_run")
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    out = tmp_path / "archive"
    assert archive_runs.sweep_once([str(tmp_path / "results" / "*")], out, 4, False) == 0
    assert not (out / "broken_run").exists()
    assert "evaluating broken_run failed" in capsys.readouterr().err
