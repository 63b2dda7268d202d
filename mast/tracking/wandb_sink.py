"""W&B sink: offline by default (no account needed, `wandb sync` later), one run per job, always
finished. Only the resolved config is sent — never environment variables or keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def sweep_name() -> str | None:
    """`<date>_<time>` of the Hydra sweep folder when this job is part of a multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):  # not launched by Hydra (tests, scripts)
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(str(hc.sweep.dir))
    return f"{sweep_dir.parent.name}_{sweep_dir.name}"


def init_kwargs(cfg, run_id: str, config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Our conventions: group = sweep (or the run), job_type = method, tags algo/map/method/sparsity,
    name = id = run_id (so a resumed run appends to the same W&B run)."""
    return dict(
        project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode,
        name=run_id, id=run_id, resume="allow",
        group=cfg.wandb.group or sweep_name() or run_id, job_type=cfg.method.name,
        tags=[cfg.algo.name, cfg.env.map, cfg.method.name, f"sparsity={config['sparsity']}"],
        config=config, dir=run_dir)


class WandbSink:
    def __init__(self, cfg, run_id: str, config: dict[str, Any], run_dir: str):
        self.run = None
        if cfg.wandb.mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.run = wandb.init(**init_kwargs(cfg, run_id, config, run_dir),
                              settings=wandb.Settings(console="off"))

    def log(self, row: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log(row, step=step)

    def summary(self, d: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update(d)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            import wandb

            self.run.finish(exit_code=exit_code)
            self.run = None
            # finish() can return before wandb-core has flushed the offline record log (CI saw a
            # header-only .wandb file); teardown waits for the service, so a Ray worker that is
            # reused or killed right after the job never holds a half-written run.
            wandb.teardown()
