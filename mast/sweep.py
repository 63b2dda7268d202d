"""What the Ray launcher needs to know about a job before it runs (``hydra.launcher.job_info``).

Its run key is the run id, so jobs that differ only in keys a method ignores (``method=dense``
with several ``sparsity`` values) are one run and train once; its progress file feeds the live
sweep display; its state comes from the results store (finished runs are skipped when launched).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from mast.config import run_id

PROGRESS_FILE = "progress.json"


def run_state(run_dir: Path) -> tuple[str, str]:
    """(new | partial | finished, detail) of a run folder."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return "new", ""
    if manifest.get("status") == "finished":
        return "finished", ""
    try:
        t = json.loads((run_dir / PROGRESS_FILE).read_text()).get("t")
    except (OSError, ValueError):
        t = None
    return "partial", f"{manifest.get('status')}, last at t_env={t}" if t is not None else ""


def job_info(cfg: DictConfig) -> dict:
    rid = run_id(cfg)
    run_dir = Path(cfg.results_dir) / rid
    state, detail = run_state(run_dir)
    return {"key": rid, "progress_file": str(run_dir / PROGRESS_FILE), "work": float(cfg.t_max),
            "state": state, "detail": detail}
