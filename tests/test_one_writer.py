"""One run, one writer (issue 10): the run lock with real processes, stale-lock recovery, and
checkpoint fallback when the last checkpoint is damaged. Real SMAX, tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mast.checkpoint import CheckpointError
from mast.experiment import Experiment
from mast.tracking.lock import LOCK_FILE, Holder, LockLost, RunLock, RunLocked

from .conftest import ROOT, TINY


def _files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run_dir: Path, host: str, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_FILE).write_text(json.dumps({"host": host, "pid": pid,
                                                 "start_time": "2026-01-01T00:00:00+00:00"}))


def _train(results: Path, *extra: str) -> subprocess.Popen:
    env = os.environ | {"WANDB_MODE": "disabled"}
    cmd = [sys.executable, "run.py", *TINY, f"results_dir={results}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_lock_is_exclusive_and_released(tmp_path):
    a = RunLock(tmp_path / "run", "r1")
    with a:
        holder = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunLocked, match=f"run r1 is being trained by host {holder['host']} "
                                            f"pid {os.getpid()}"):
            RunLock(tmp_path / "run", "r1").acquire()  # same process, second writer: refused
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_stale_lock_on_this_host_is_recovered(tmp_path):
    _write_lock(tmp_path / "run", socket.gethostname(), _dead_pid())
    with RunLock(tmp_path / "run", "r1") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_lock_from_another_host_is_reported(tmp_path):
    _write_lock(tmp_path / "run", "node-17", 4242)
    with pytest.raises(RunLocked) as e:
        RunLock(tmp_path / "run", "r1").acquire()
    msg = str(e.value)
    assert "host node-17 pid 4242" in msg and "another host" in msg and "\n" not in msg
    assert f"delete {tmp_path / 'run' / LOCK_FILE}" in msg


def test_heartbeat_keeps_the_lock_fresh(tmp_path):
    with RunLock(tmp_path / "run", "r1", stale_after_s=0.4) as lock:  # heartbeat every 0.02 s
        os.utime(lock.path, (0, 0))
        time.sleep(0.3)
        assert time.time() - lock.path.stat().st_mtime < 0.2


def test_lock_with_a_stopped_heartbeat_is_taken_over(tmp_path, caplog):
    """A node that died leaves a lock nobody here can check; its heartbeat ages, and past
    lock_stale_s the lock is taken over with a warning naming the old holder."""
    _write_lock(tmp_path / "run", "node-17", 4242)
    path = tmp_path / "run" / LOCK_FILE
    old = time.time() - 601
    os.utime(path, (old, old))
    with caplog.at_level("WARNING", logger="mast"), RunLock(tmp_path / "run", "r1") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert "host node-17 pid 4242" in caplog.text and "heartbeat stopped" in caplog.text


def test_a_lock_taken_over_is_lost_and_left_to_its_new_holder(tmp_path):
    lock = RunLock(tmp_path / "run", "r1", stale_after_s=0.4)
    lock.acquire()
    lock.ensure_held()  # still ours
    _write_lock(tmp_path / "run", "node-17", 4242)  # what a takeover leaves
    time.sleep(0.1)
    with pytest.raises(LockLost, match="lost its lock to host node-17 pid 4242"):
        lock.ensure_held()
    lock.release()
    assert json.loads((tmp_path / "run" / LOCK_FILE).read_text())["host"] == "node-17"


def test_a_retry_waits_out_a_fresh_heartbeat_from_another_host(tmp_path):
    """The lock of a job whose node just died is fresh for up to lock_stale_s: the retried job
    (wait_s > 0) waits for it to go stale and takes it over; a first attempt refuses at once."""
    _write_lock(tmp_path / "run", "node-17", 4242)
    path = tmp_path / "run" / LOCK_FILE
    beat = time.time() - 0.7  # the dead holder's last heartbeat, 0.7 s ago
    os.utime(path, (beat, beat))
    with pytest.raises(RunLocked, match="another host and its heartbeat is fresh"):
        RunLock(tmp_path / "run", "r1", stale_after_s=1.0).acquire()
    start = time.monotonic()
    with RunLock(tmp_path / "run", "r1", stale_after_s=1.0, wait_s=2.0) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert 0.2 < time.monotonic() - start < 2.0


def test_a_racing_takeover_never_costs_a_healthy_holder_its_lock(tmp_path):
    """C read a stale holder and moves the lock aside just after B took it over: C puts B's lock
    back and B keeps it; a lock created in that gap by D is never overwritten by the put-back."""
    b = RunLock(tmp_path / "run", "r1", stale_after_s=0.4)
    b.acquire()
    c = RunLock(tmp_path / "run", "r1")
    c._remove_stale(Holder("node-17", 4242, "2026-01-01T00:00:00+00:00"))
    assert json.loads(b.path.read_text())["pid"] == os.getpid()
    time.sleep(0.1)
    b.ensure_held()
    aside = tmp_path / "run" / ".lock.moved"
    os.replace(b.path, aside)
    _write_lock(tmp_path / "run", "node-18", 99)  # D's lock, taken in the gap
    c._put_back(aside)
    assert json.loads(b.path.read_text())["host"] == "node-18" and not aside.exists()
    time.sleep(0.1)
    with pytest.raises(LockLost, match="node-18 pid 99"):
        b.ensure_held()
    b.release()
    assert json.loads(b.path.read_text())["host"] == "node-18"  # release leaves D's lock


def test_second_process_exits_at_once_and_writes_nothing(tmp_path):
    """Process A trains; while it holds the lock (paused, so its own files stand still), process
    B asked for the same run exits non-zero within seconds naming the run and A, and every file
    of the run is byte-identical afterwards. A then finishes with no duplicated evaluation."""
    results = tmp_path / "results"
    a = _train(results, "t_max=3000", "test_interval=500")
    try:
        deadline = time.monotonic() + 300
        while not list(results.glob(f"*/{LOCK_FILE}")) or not list(results.glob("*/config.yaml")):
            assert a.poll() is None, a.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        run_dir = next(results.iterdir())
        os.kill(a.pid, signal.SIGSTOP)
        before = _files(run_dir)
        start = time.monotonic()
        b = subprocess.run([sys.executable, "run.py", *TINY, f"results_dir={results}",
                            "t_max=3000", "test_interval=500"], cwd=ROOT, capture_output=True,
                           text=True, env=os.environ | {"WANDB_MODE": "disabled"}, timeout=120)
        elapsed = time.monotonic() - start
        assert b.returncode != 0
        out = b.stdout + b.stderr
        lines = [line for line in out.splitlines() if "RunLocked" in line]
        assert len(lines) == 1 and run_dir.name in lines[0] and f"pid {a.pid}" in lines[0]
        assert "Traceback" not in out
        assert _files(run_dir) == before
        assert elapsed < 60  # "at once": no environment built, no training step taken
    finally:
        os.kill(a.pid, signal.SIGCONT)
    out_a, _ = a.communicate(timeout=600)
    assert a.returncode == 0, out_a
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["t_env"] for r in rows]
    assert steps == sorted(set(steps))
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
    assert not (run_dir / LOCK_FILE).exists()
    # a clean console: no JaxMARL banner, no TPU probe line
    for noise in ("Submoduled environments", "Unable to initialize backend 'tpu'", "os.fork()"):
        assert noise not in out_a


def test_frozen_holder_is_taken_over_and_stops_without_writing(tmp_path):
    """A trains and is frozen (SIGSTOP) past lock_stale_s; B, asked for the same run, takes the
    lock over, resumes A's checkpoint and finishes. Woken, A finds the lock gone, exits non-zero
    with one LockLost line and writes nothing: B's files are byte-identical afterwards."""
    results = tmp_path / "results"
    budget = ("t_max=3000", "test_interval=500", "checkpoint_interval=500", "lock_stale_s=3")
    a = _train(results, *budget)
    try:
        deadline = time.monotonic() + 300
        while not list(results.glob("*/checkpoints/last.pt")):
            assert a.poll() is None, a.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        run_dir = next(results.iterdir())
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(4)  # A's heartbeat is now older than lock_stale_s
        b = subprocess.run([sys.executable, "run.py", *TINY, f"results_dir={results}", *budget],
                           cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env=os.environ | {"WANDB_MODE": "disabled"})
        assert b.returncode == 0, b.stdout + b.stderr
        assert f"taking over the lock of host {socket.gethostname()} pid {a.pid}" in b.stdout + b.stderr
        after_b = _files(run_dir)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    out_a, _ = a.communicate(timeout=300)
    assert a.returncode == 3, out_a
    lines = [line for line in out_a.splitlines() if "LockLost" in line]
    assert len(lines) == 1 and "lost its lock" in lines[0] and "Traceback" not in out_a
    assert _files(run_dir) == after_b
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed"]
    steps = [json.loads(x)["t_env"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] >= 3000


def test_truncated_checkpoint_falls_back_to_the_previous(tiny_cfg, caplog):
    over = ("method=dense", "t_max=800", "checkpoint_interval=200")
    crash = tiny_cfg(*over, "fail_at_t_env=700")
    with pytest.raises(RuntimeError, match="fail_at_t_env"):
        Experiment(crash).run()
    ckpts = Experiment(crash).store.dir / "checkpoints"
    assert (ckpts / "last.pt").exists() and (ckpts / "prev.pt").exists()
    data = (ckpts / "last.pt").read_bytes()
    (ckpts / "last.pt").write_bytes(data[: len(data) // 2])  # torn write / bit rot
    exp = Experiment(tiny_cfg(*over))
    with caplog.at_level("WARNING", logger="mast"):
        assert exp.run()["status"] == "finished"
    assert "does not load" in caplog.text and "previous checkpoint" in caplog.text
    rows = [json.loads(x) for x in exp.store.metrics_path.read_text().splitlines()]
    assert [r["t_env"] for r in rows] == sorted({r["t_env"] for r in rows})


def test_no_loadable_checkpoint_fails_with_one_line(tiny_cfg):
    over = ("method=dense", "t_max=800", "checkpoint_interval=200")
    with pytest.raises(RuntimeError):
        Experiment(tiny_cfg(*over, "fail_at_t_env=700")).run()
    exp = Experiment(tiny_cfg(*over))
    for name in ("last.pt", "prev.pt"):
        (exp.store.dir / "checkpoints" / name).write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(CheckpointError) as e:
        exp.run()
    msg = str(e.value)
    assert "\n" not in msg and "last.pt" in msg and "prev.pt" in msg
    assert f"rm -r {exp.store.dir}" in msg
    assert not (exp.store.dir / LOCK_FILE).exists()  # the lock is released on the way out
