"""The real entry point through the Ray launcher: `python run.py -m ...` on a private local Ray
instance with the real SMAX environment (tiny budgets). Bad input in any job stops the sweep
before Ray starts; a job that raises inside training leaves its traceback while the others
finish; relaunching skips what finished; a job whose worker is killed is retried and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import ROOT, TINY


def sweep_command(tmp_path: Path, *overrides: str) -> tuple[list[str], dict[str, str]]:
    env = os.environ | {"WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "run.py", "-m", *TINY, *overrides,
               f"results_dir={tmp_path / 'results'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    return command, env


def run_sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command, env = sweep_command(tmp_path, *overrides)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_bad_value_in_one_job_stops_the_sweep_before_ray(tmp_path):
    done = run_sweep(tmp_path, "sparsity=0.5,1.0")
    assert done.returncode != 0
    assert "sparsity=1.0 is out of range; allowed: 0 <= sparsity < 1" in done.stderr
    assert "No job was started" in done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()


def test_failed_job_keeps_traceback_others_finish_and_relaunch_skips(tmp_path):
    # t_max=200 ends long before the test hook fires at 1000; t_max=2000 raises inside training
    sweep = ("seed=0", "t_max=200,2000", "fail_at_t_env=1000")
    first = run_sweep(tmp_path, *sweep)
    out = first.stdout + first.stderr
    assert first.returncode != 0
    assert "] done " in out and "t_max=200" in out
    assert "] FAILED " in out and "1 of 2 jobs failed" in out
    errors = list((tmp_path / "sweep").glob("*/error.txt"))  # long override lists: hashed names
    assert len(errors) == 1 and str(errors[0]) in first.stderr  # the summary points at it
    error = errors[0].read_text()
    assert "Traceback (most recent call last)" in error and "fail_at_t_env=1000 reached" in error
    finished = [p for p in (tmp_path / "results").iterdir() if '"finished"' in
                (p / "manifest.json").read_text()]
    assert len(finished) == 1
    again = run_sweep(tmp_path, *sweep)
    assert "] skipped " in again.stdout + again.stderr  # t_max=200 is found and not rerun
    assert again.returncode != 0  # t_max=2000 resumes from its checkpoint and fails again


def test_dense_jobs_of_several_sparsities_train_one_run(tmp_path):
    """method=dense ignores sparsity: the launcher resolves run ids on the driver, trains the
    dense run once and reports the other job as the same run; no evaluation is duplicated."""
    done = run_sweep(tmp_path, "seed=0", "method=dense,mast", "sparsity=0.5,0.9")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "4 jobs -> 3 runs" in out
    same = [line for line in out.splitlines() if "] same run as [0] " in line]
    assert len(same) == 1 and "method=dense" in same[0] and "sparsity=0.9" in same[0]
    assert "os.fork()" not in out and "Submoduled environments" not in out
    assert "1 same run as another" in out
    runs = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(runs) == 3 and sum("_dense_" in r for r in runs) == 1
    dense = next((tmp_path / "results").glob("*_dense_*"))
    steps = [json.loads(x)["t_env"] for x in (dense / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))
    assert json.loads((dense / "manifest.json").read_text())["resumed"] is False
    for header in ("job", "status", "final_win_rate", "wall"):  # the final summary table
        assert header in out


def test_table1_experiment_expands_every_method_and_dry_run_starts_nothing(tmp_path):
    """+experiment=table1 sweeps the seven methods over the user's grid: 2 sparsities x 1 seed
    = 14 jobs, of which the second dense job is the same run as the first -> 13 runs."""
    done = run_sweep(tmp_path, "+experiment=table1", "sparsity=0.5,0.9", "seed=0",
                     "hydra.launcher.dry_run=true")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "14 jobs -> 13 runs (1 same run as another): 13 new" in out
    for method in ("dense", "tiny", "static", "set", "rigl", "rlx2", "mast"):
        assert f"method={method}" in out
    assert "Nothing was started" in out and "Started a local Ray instance" not in out
    assert not (tmp_path / "results").exists()


def test_a_killed_worker_is_retried_and_its_run_resumes(tmp_path):
    """SIGKILL the process training a job once it has checkpointed (a preempted node, an OOM
    kill): the launcher submits the job again, the new worker takes the dead process's lock,
    resumes from the checkpoint and finishes, with every evaluation once."""
    command, env = sweep_command(tmp_path, "seed=0", "t_max=3000", "test_interval=500",
                                 "checkpoint_interval=500", "hydra.launcher.max_retries=1")
    sweep = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    results = tmp_path / "results"
    try:
        deadline = time.monotonic() + 300
        while not list(results.glob("*/checkpoints/prev.pt")):  # a checkpoint after t = 0
            assert sweep.poll() is None, sweep.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        run_dir = next(results.iterdir())
        pid = json.loads((run_dir / "lock").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        out, _ = sweep.communicate(timeout=600)
    finally:
        sweep.kill()
    assert sweep.returncode == 0, out
    retries = [line for line in out.splitlines() if "[retry 1/1] " in line]
    assert len(retries) == 1 and "worker died: WorkerCrashedError" in retries[0]
    assert "[1/1] done " in out and "1 job in" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed"] is True
    steps = [json.loads(x)["t_env"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] >= 3000
    assert not (run_dir / "lock").exists()
