"""W&B sink: offline by default (no account needed, `wandb sync` later), one run per job, always
finished. Only the resolved config is sent — never environment variables or keys."""

from __future__ import annotations

import os
from typing import Any


class WandbSink:
    def __init__(self, cfg, run_id: str, config: dict[str, Any], run_dir: str):
        self.run = None
        if cfg.wandb.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        group = cfg.wandb.group or os.environ.get("MAST_SWEEP_NAME") or run_id
        self.run = wandb.init(
            project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode,
            name=run_id, id=run_id, resume="allow", group=group, job_type=cfg.method.name,
            tags=[cfg.algo.name, cfg.env.map, cfg.method.name, f"sparsity={config['sparsity']}"],
            config=config, dir=run_dir, settings=wandb.Settings(console="off"))

    def log(self, row: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log(row, step=step)

    def summary(self, d: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(d)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
