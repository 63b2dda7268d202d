"""Toy Hydra app for the mast_ray launcher tests.

``x=boom`` raises, ``x=crash`` kills its own worker process (``x=crash_once``: on its first
attempt only), ``x=skip`` returns status skipped;
every job writes ``placement.json`` (thread/GPU env and cwd it saw) into its job folder.
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


class ToyFailure(RuntimeError):
    """Raised for ``x=boom``; the launcher must keep this traceback in error.txt."""


def explode(x: object) -> None:
    raise ToyFailure(f"toy job exploded on purpose (x={x})")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    with open(output_dir / "attempts.txt", "a") as attempts:  # a retried job has two lines
        attempts.write(f"{os.getpid()} attempt={os.environ.get('MAST_RAY_ATTEMPT')}\n")
    first = len((output_dir / "attempts.txt").read_text().splitlines()) == 1
    if cfg.x == "boom":
        explode(cfg.x)
    if cfg.x == "crash" or (cfg.x == "crash_once" and first):
        os.kill(os.getpid(), signal.SIGKILL)  # a worker dying outside Python's control
    time.sleep(cfg.sleep_s)
    seen = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}
    seen["cwd"] = os.getcwd()
    (output_dir / "placement.json").write_text(json.dumps(seen))
    status = "skipped" if cfg.x == "skip" else "finished"
    return {"status": status, "run_id": f"toy-{cfg.x}", "final_win_rate": 0.5}


if __name__ == "__main__":
    main()
