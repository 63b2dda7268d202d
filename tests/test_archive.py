"""The run archiver (`scripts/archive_runs.py`): how many greedy episodes eval_final gets, a
run whose evaluation fails is skipped (retried later) without stopping the watcher, and a store
restored from the archive skips what it holds."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf

from .conftest import compose_cfg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import archive_runs  # noqa: E402

ARCHIVED = "facmac_smax-3m_dense_sp0_none_seed0_940a8022"  # a small finished run of the archive


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


def test_restored_archive_is_skipped_by_a_relaunch_and_not_archived_again(tmp_path):
    """A fresh machine's store linked from the archive: relaunching an archived run's own command
    skips it (nothing trained or written), and the watcher neither re-archives nor deletes it."""
    from mast.experiment import Experiment

    archived = ROOT / "docs" / "results" / "runs" / ARCHIVED
    archive = tmp_path / "archive"
    shutil.copytree(archived, archive / ARCHIVED)
    results = tmp_path / "results"
    (results / "partial_run").mkdir(parents=True)  # a store folder of its own stays as it is
    assert archive_runs.restore(archive, results) == 1
    assert archive_runs.restore(archive, results) == 0
    assert (results / ARCHIVED).is_symlink() and not (results / "partial_run").is_symlink()

    before = sorted(p.name for p in (archive / ARCHIVED).rglob("*"))
    overrides = [o for o in json.loads((archived / "manifest.json").read_text())["overrides"]
                 if not o.startswith("results_dir=")]
    cfg = compose_cfg([*overrides, f"results_dir={results}"], tiny=False)
    out = Experiment(cfg).run()
    assert out["status"] == "skipped" and out["run_id"] == ARCHIVED
    assert out["final_win_rate"] == json.loads((archived / "summary.json").read_text())["final_win_rate"]
    assert archive_runs.sweep_once([str(results / "*")], archive.resolve(), 4, False) == 0
    assert sorted(p.name for p in (archive / ARCHIVED).rglob("*")) == before
