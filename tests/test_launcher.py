"""The ``mast_ray`` Hydra launcher, run for real: a toy Hydra app (tests/apps/toy_app.py) swept
through a private local Ray instance and through a ``ray start --head`` cluster. No mocks.

Every Ray process gets a private HOME (Ray keeps its auth token in ~/.ray) and the cluster head is
stopped by process id, never with ``ray stop`` (which kills every Ray process on the machine).
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "toy_app.py"
RAY_CLI = Path(sys.executable).parent / "ray"
_HERMETIC_UNSET = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "HYDRA_FULL_ERROR")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def ray_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HERMETIC_UNSET}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def sweep(sweep_dir: Path, home: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python tests/apps/toy_app.py -m <overrides> hydra.sweep.dir=<sweep_dir>``."""
    command = [sys.executable, str(APP), "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    done = subprocess.run(
        command, cwd=ROOT, env=ray_env(home), capture_output=True, text=True, timeout=120
    )
    print(done.stdout, done.stderr, sep="\n")  # shown by pytest only when a test fails
    return done


def placement(job_dir: Path) -> dict[str, str]:
    return json.loads((job_dir / "placement.json").read_text())


@pytest.fixture(scope="module")
def ok_sweep(tmp_path_factory: pytest.TempPathFactory, home: Path):
    sweep_dir = tmp_path_factory.mktemp("ok") / "sweep"
    return sweep_dir, sweep(sweep_dir, home, "x=1,2,3,skip")


def test_every_job_completes_and_is_reported(ok_sweep) -> None:
    sweep_dir, done = ok_sweep
    assert done.returncode == 0
    for x in ("1", "2", "3"):
        assert f"] done x={x} " in done.stdout
    assert "mast_ray: 4 jobs in" in done.stdout
    assert "Token authentication is" not in done.stdout + done.stderr  # Ray's per-init notice
    for k in range(1, 5):
        assert f"[{k}/4] " in done.stdout


def test_skipped_status_is_reported_as_skipped(ok_sweep) -> None:
    _, done = ok_sweep
    assert "] skipped x=skip " in done.stdout
    assert "3 done, 1 skipped" in done.stdout


def test_workers_write_under_absolute_sweep_dir_with_placement(ok_sweep) -> None:
    sweep_dir, _ = ok_sweep
    for job in range(4):
        seen = placement(sweep_dir / str(job))
        assert seen["OMP_NUM_THREADS"] == "1"  # hydra.launcher.num_cpus: 1
        assert seen["CUDA_VISIBLE_DEVICES"] == ""  # a CPU job sees no GPU
        assert seen["cwd"] == str(ROOT)  # the driver's cwd, as with the basic launcher


def test_failed_jobs_leave_traceback_and_others_finish(tmp_path: Path, home: Path) -> None:
    done = sweep(tmp_path / "sweep", home, "x=1,2,boom,crash", "hydra.launcher.max_retries=0")
    jobs = tmp_path / "sweep"
    assert done.returncode != 0
    assert "] done x=1 " in done.stdout and "] done x=2 " in done.stdout
    assert "] FAILED x=boom " in done.stdout and "] FAILED x=crash " in done.stdout
    error = (jobs / "2" / "error.txt").read_text()
    assert "Traceback (most recent call last)" in error
    assert "in explode" in error and "ToyFailure: toy job exploded" in error
    assert "2 of 4 jobs failed" in done.stderr
    assert "x=boom" in done.stderr and "x=crash" in done.stderr
    assert "died" in (jobs / "3" / "error.txt").read_text().lower()  # the crashed worker
    assert len((jobs / "3" / "attempts.txt").read_text().splitlines()) == 1  # never retried
    assert (jobs / "1" / "placement.json").exists()


def test_a_dead_worker_is_retried_an_exception_never(tmp_path: Path, home: Path) -> None:
    """max_retries=1: the job whose worker dies once finishes on its second attempt, the one whose
    worker always dies fails after two, the one that raises runs once; each retry is logged and
    the dead attempt's error is kept beside the job."""
    done = sweep(tmp_path / "sweep", home, "x=1,crash_once,crash,boom", "hydra.launcher.max_retries=1")
    jobs = tmp_path / "sweep"
    attempts = {j: len((jobs / str(j) / "attempts.txt").read_text().splitlines()) for j in range(4)}
    assert attempts == {0: 1, 1: 2, 2: 2, 3: 1}
    lines = (jobs / "1" / "attempts.txt").read_text().split()
    assert lines[1::2] == ["attempt=1", "attempt=2"]  # the worker is told which attempt it is
    assert done.returncode != 0 and "2 of 4 jobs failed" in done.stderr
    assert "] done x=crash_once " in done.stdout and "] FAILED x=crash " in done.stdout
    # the report and the final table count every attempt's wall time and say how many there were
    assert re.search(r"\] done x=crash_once [0-9.]+s \(2 attempts\)", done.stdout)
    assert re.search(r"FAILED .*\(2 attempts\)\s+x=crash$", done.stdout, re.M)
    assert "attempts)  x=boom" not in done.stdout
    out = done.stdout + done.stderr
    assert "[retry 1/1] x=crash_once: worker died: WorkerCrashedError" in out
    assert "[retry 1/1] x=crash: worker died" in out and "[retry 1/1] x=boom" not in out
    assert "died" in (jobs / "1" / "error.attempt1.txt").read_text().lower()
    assert not (jobs / "1" / "error.txt").exists()  # it finished: no error left as its outcome
    assert "(attempt 2)" in (jobs / "2" / "error.txt").read_text()


def test_gpu_request_on_cpu_cluster_fails_before_any_job(tmp_path: Path, home: Path) -> None:
    start = time.monotonic()
    done = sweep(tmp_path / "sweep", home, "x=1,2", "hydra.launcher.num_gpus=1")
    assert done.returncode != 0
    assert "hydra.launcher.num_gpus=1" in done.stderr and "0 GPU" in done.stderr
    assert "[1/2]" not in done.stdout
    assert not (tmp_path / "sweep" / "0").exists()
    assert time.monotonic() - start < 60  # refused, not left waiting for a GPU


def test_invalid_launcher_value_names_the_key(tmp_path: Path, home: Path) -> None:
    done = sweep(tmp_path / "sweep", home, "x=1,2", "hydra.launcher.num_gpus=1.5")
    assert done.returncode != 0
    assert "hydra.launcher.num_gpus=1.5" in done.stderr
    done = sweep(tmp_path / "sweep2", home, "x=1,2", "hydra.launcher.max_retries=-1")
    assert done.returncode != 0
    assert "hydra.launcher.max_retries=-1: must be >= 0" in done.stderr


# Runs an app with Hydra's per-job composition counted (instrumented, not replaced).
_COUNT_COMPOSITIONS = """
import runpy, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
calls, original = [], ConfigLoaderImpl.load_sweep_config
def counting(self, *args, **kwargs):
    calls.append(1)
    return original(self, *args, **kwargs)
ConfigLoaderImpl.load_sweep_config = counting
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(f"compositions={len(calls)}")
"""


@pytest.mark.parametrize(("sweeper", "per_job"), [("mast", 1), ("basic", 2)])
def test_each_job_is_composed_once(tmp_path: Path, home: Path, sweeper: str, per_job: int) -> None:
    """hydra/sweeper=mast skips BasicSweeper's throw-away composition of every job (mast_ray
    composes and validates each job itself before any starts); Hydra's own sweeper does it."""
    command = [sys.executable, "-c", _COUNT_COMPOSITIONS, str(APP), "-m", "x=1,2,3",
               f"hydra/sweeper={sweeper}", "hydra.launcher.dry_run=true",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    done = subprocess.run(command, cwd=ROOT, env=ray_env(home), capture_output=True, text=True,
                          timeout=120)
    print(done.stdout, done.stderr, sep="\n")
    assert done.returncode == 0
    assert f"compositions={3 * per_job}" in done.stdout


def test_bad_override_fails_before_any_job_with_the_mast_sweeper(tmp_path: Path, home: Path) -> None:
    """Without BasicSweeper's pass, a job that does not compose is still refused up front."""
    done = sweep(tmp_path / "sweep", home, "x=1,2", "nope=3")
    assert done.returncode != 0
    assert "Could not override 'nope'" in done.stderr
    assert "[1/2]" not in done.stdout
    assert not (tmp_path / "sweep" / "0").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead, waiting for its parent to reap it
    except psutil.NoSuchProcess:
        return True


def stop_tree(root: subprocess.Popen, grace_s: float = 2.0) -> None:
    """Stop the head we started and everything it spawned, by process id (SIGTERM, then
    SIGKILL after ``grace_s``: gcs_server and raylet take ~10 s to stop gracefully)."""
    try:
        children = psutil.Process(root.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for proc in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    deadline = time.monotonic() + grace_s
    while not all(_gone(proc) for proc in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    root.terminate()
    try:
        root.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        root.kill()
        root.wait()


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen]]:
    """A real single-node cluster on loopback with token auth on (a token in its HOME)."""
    head_home = tmp_path / "head_home"
    (head_home / ".ray").mkdir(parents=True)
    (head_home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    port = free_port()
    temp_dir = Path(f"/tmp/mrl{port}")  # Ray's socket paths must stay short
    command = [
        str(RAY_CLI), "start", "--head", "--block", "--disable-usage-stats",
        "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
        "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir),
        "--ray-client-server-port", str(free_port()), "--dashboard-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()),
    ]  # fmt: skip
    log_path = tmp_path / "head.log"
    with open(log_path, "w") as log_file:
        head = subprocess.Popen(
            command, env=ray_env(head_home), stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in log_path.read_text():
            assert head.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        yield port, head_home, head
    finally:
        stop_tree(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_existing_cluster_runs_jobs_and_stays_up(tmp_path: Path, ray_head) -> None:
    port, head_home, head = ray_head
    address = f"hydra.launcher.address=127.0.0.1:{port}"
    done = sweep(
        tmp_path / "sweep", head_home, "x=1,2,3,4", address, "hydra.launcher.max_concurrent=1"
    )
    assert done.returncode == 0
    assert "Connected to Ray cluster" in done.stdout + done.stderr
    assert "1 at a time" in done.stdout
    for k in range(1, 5):  # one in flight at a time: they end in submission order
        assert f"[{k}/4] done x={k} " in done.stdout
    assert head.poll() is None  # a joined cluster is left running
