"""Synthetic objective for ``hydra/sweeper=critical``: a deterministic win rate as a function of
sparsity (0.9 dense; 0.9 − 0.01·s up to ``threshold``, 0.3 above), with a results store that
skips finished runs by run id like the real one. Environment variable ``CRITICAL_KILL_AFTER=N``
SIGKILLs the search process (basic launcher: jobs run inside it) once N runs finished; it is not
an override, so the relaunched search has the same search id. ``final_return`` is the win rate
minus ``return_shift`` (a score that can be negative)."""

import json
import os
import signal
from pathlib import Path

import hydra
from omegaconf import DictConfig


def win_rate(method: str, sparsity: float, threshold: float) -> float:
    if method == "dense":
        return 0.9
    return 0.9 - 0.01 * sparsity if sparsity <= threshold else 0.3


@hydra.main(version_base="1.3", config_path="conf_critical", config_name="config")
def main(cfg: DictConfig) -> dict:
    sp = 0.0 if cfg.method == "dense" else float(cfg.sparsity)
    run_id = f"{cfg.method}_sp{sp:g}_seed{cfg.seed}"
    run_dir = Path(cfg.results_dir) / run_id
    summary = run_dir / "summary.json"
    if summary.exists():
        done = json.loads(summary.read_text())["final_win_rate"]
        return {"status": "skipped", "run_id": run_id, "final_win_rate": done,
                "final_return": done - cfg.return_shift}
    run_dir.mkdir(parents=True, exist_ok=True)
    value = win_rate(cfg.method, sp, cfg.threshold)
    summary.write_text(json.dumps({"final_win_rate": value}))
    log = Path(cfg.results_dir) / "finished.log"
    with open(log, "a") as f:
        f.write(run_id + "\n")
    kill_after = int(os.environ.get("CRITICAL_KILL_AFTER", "0"))
    if kill_after and len(log.read_text().splitlines()) == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"status": "finished", "run_id": run_id, "final_win_rate": value,
            "final_return": value - cfg.return_shift}


if __name__ == "__main__":
    main()
