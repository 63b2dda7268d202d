"""What runs inside the Ray worker process for one job (imports no ray, jax or torch).

The job's config and the shared state arrive as pickled bytes and are unpickled only after the
thread and device environment is set, so nothing the task imports (jax, torch) starts before it.
"""

import logging
import os
import pickle
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals

log = logging.getLogger(__name__)
ERROR_FILE = "error.txt"
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class RemoteJobError(Exception):
    """Stands in for a job's exception on the driver: carries the worker traceback as text."""


@dataclass
class JobOutcome:
    """What a worker sends back: Hydra's JobReturn, run time, traceback text if it failed."""

    job_return: JobReturn
    elapsed_s: float
    traceback: str | None = None


def place_job(num_cpus: float, num_gpus: float) -> None:
    """Confine the job to what Ray reserved for it; must run before the task imports jax/torch.

    GPU jobs keep the ``CUDA_VISIBLE_DEVICES`` Ray set, so ``device=auto`` finds CUDA. CPU jobs
    see no GPU (the scheduler gave them none) and JAX runs on CPU. Every job gets
    ``max(1, int(num_cpus))`` BLAS/OpenMP threads; with one thread XLA's CPU pool is off too.
    """
    threads = max(1, int(num_cpus))
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_SINGLE_THREAD}".strip()
    if num_gpus == 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch = sys.modules.get("torch")  # imported later, torch reads OMP_NUM_THREADS instead
    if torch is not None:
        torch.set_num_threads(threads)


ATTEMPT_ENV = "MAST_RAY_ATTEMPT"  # 1, then 2, 3, … when the driver resubmits a dead worker's job


def execute_job(
    job_blob: bytes, shared_blob: bytes, num_cpus: float, num_gpus: float, attempt: int = 1
) -> JobOutcome:
    """Run one Hydra job: ``job_blob`` pickles (sweep_config, job_dir), ``shared_blob``
    (hydra_context, singleton_state, task_function). ``attempt`` is exported as
    ``MAST_RAY_ATTEMPT``: a task can tell a retry (e.g. wait for the dead attempt's lock)."""
    start = time.perf_counter()
    os.environ[ATTEMPT_ENV] = str(attempt)
    place_job(num_cpus, num_gpus)
    sweep_config, job_dir = pickle.loads(job_blob)
    hydra_context, singleton_state, task_function = pickle.loads(shared_blob)
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    driver_cwd = Path(str(sweep_config.hydra.runtime.cwd))
    if driver_cwd.is_dir():  # same file system as the driver: relative paths mean the same
        os.chdir(driver_cwd)
    ret = run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    text = None
    if ret.status == JobStatus.FAILED:
        error = ret._return_value
        text = "".join(traceback.format_exception(error))
        write_error(Path(job_dir), text)
        log.error(f"job failed, traceback also in {Path(job_dir) / ERROR_FILE}:\n{text}")
        # The original exception may not unpickle on the driver; its text always does.
        ret.return_value = RemoteJobError(f"{type(error).__name__}: {error}")
    return JobOutcome(job_return=ret, elapsed_s=time.perf_counter() - start, traceback=text)


def write_error(job_dir: Path, text: str) -> Path:
    """Write ``error.txt`` into the job folder; returns its path."""
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / ERROR_FILE
    path.write_text(text)
    return path
