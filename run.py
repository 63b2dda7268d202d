"""Hydra entry point: compose the config, validate it, run one Experiment. No logic here.

    python run.py                                   # MAST-QMIX on SMAX 3m, 90% sparse
    python run.py -m algo=qmix,wqmix,res sparsity=0.85,0.9,0.95 seed='range(8)'
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("WANDB_SILENT", "true")
# One BLAS/OpenMP/XLA thread unless the environment says otherwise: a job's ops are small, and
# with more threads than free cores every parallel region spin-waits (`make demo` beside two
# training jobs ran at 15 env steps/s instead of ≈300). Sweep jobs get their `num_cpus` threads
# from the launcher instead.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if os.environ["OMP_NUM_THREADS"] == "1" and "multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import mast.config  # noqa: E402, F401  (registers the schemas)
from mast.config import ConfigError, validate  # noqa: E402

log = logging.getLogger("mast")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    try:
        validate(cfg)
    except ConfigError as e:
        log.error("invalid config: %s", e)
        sys.exit(2)
    from mast.checkpoint import CheckpointError
    from mast.experiment import Experiment  # heavy imports only once the config is valid
    from mast.tracking.lock import RunLocked

    try:
        result = Experiment(cfg).run()
    except (RunLocked, CheckpointError) as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher reports it as this job's one-line failure
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(3)
    log.info("%s %s final_win_rate=%s final_return=%s results=%s", result["status"],
             result["run_id"], result.get("final_win_rate"), result.get("final_return"),
             result.get("dir", ""))
    return result


if __name__ == "__main__":
    main()
