"""One run, one writer: an exclusive lock file in the run folder for as long as a process trains.

The lock is taken with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems), and holds
JSON ``{host, pid, start_time, node}`` so a refusal can name its holder (``node``: boot id and pid
namespace, so containers that share a host name never judge each other's pids). While held, a
daemon thread touches it every ``stale_after_s / 20`` seconds (its heartbeat). A lock is stale,
and taken over, when its process is dead on this node, or when its heartbeat is older than
``stale_after_s`` (default 10 min) — the only sign a process on another host (a preempted node)
leaves. A holder that was frozen that long and wakes finds the lock no longer its own:
``ensure_held`` (called before each write) raises ``LockLost``, so a run never has two writers —
except for the one write a process may have been frozen in the middle of.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mast.tracking.store import now_iso

log = logging.getLogger(__name__)
LOCK_FILE = "lock"
STALE_AFTER_S = 600.0
ATTEMPT_ENV = "MAST_RAY_ATTEMPT"  # set by the mast_ray launcher in a retried job's worker: 2, 3, …
_GONE_RECHECKS = 5  # a lock file missing this many times 50 ms apart was deleted, not moved aside


class RunLocked(RuntimeError):
    """Another live process trains this run; the message is one line naming run id and holder."""


class LockLost(RunLocked):
    """This process's lock was taken over while it was frozen: it must stop without writing."""


def _node_id() -> str:
    """Boot id + pid namespace: two processes can compare pids only when these are equal."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "/".join(parts)


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    start_time: str
    node: str = ""  # "" in locks written before it existed: fall back to the host name

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} since {self.start_time}"

    def same_node(self, other: Holder) -> bool:
        if self.node and other.node:
            return self.node == other.node
        return self.host == other.host


_UNKNOWN = Holder("?", -1, "?")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(path: Path) -> Holder | None:
    try:
        d = json.loads(path.read_text())
        return Holder(str(d["host"]), int(d["pid"]), str(d["start_time"]), str(d.get("node", "")))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # torn write of a crashed taker: treat as unknown
        return _UNKNOWN


class RunLock:
    """``with RunLock(run_dir, run_id):`` — raises RunLocked at once if a live process holds it.

    ``wait_s``: how long to wait for a lock that another host holds with a fresh heartbeat
    before refusing (a retry of a job whose node died waits out the old heartbeat)."""

    def __init__(self, run_dir: Path, run_id: str, stale_after_s: float = STALE_AFTER_S,
                 wait_s: float = 0.0):
        self.path = Path(run_dir) / LOCK_FILE
        self.run_id = run_id
        self.stale_after_s = stale_after_s
        self.heartbeat_s = stale_after_s / 20
        self.wait_s = wait_s
        self.me = Holder(socket.gethostname(), os.getpid(), now_iso(), _node_id())
        self.held = False
        self._lost: Holder | None = None
        self._verified = (0.0, 0.0)  # (monotonic, wall) time of the last check that it is ours
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # --- taking it ------------------------------------------------------------------------------
    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        races = 0
        while True:
            if self._try_create():
                self._start_heartbeat()
                return
            holder = _read_holder(self.path)
            if holder is None or self._is_stale(holder):
                if holder is not None:
                    self._remove_stale(holder)
                races += 1  # a recovered stale lock may be re-taken by a racing process
                if races <= 3:
                    continue
                raise RunLocked(f"run {self.run_id} could not be locked ({self.path}): "
                                "other processes keep taking it")
            if time.monotonic() >= deadline:
                raise RunLocked(self._refusal(holder))
            time.sleep(min(self.heartbeat_s, max(deadline - time.monotonic(), 0.01)))

    def _is_stale(self, holder: Holder) -> bool:
        if holder.same_node(self.me) and holder.pid > 0 and not _pid_alive(holder.pid):
            return True
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile: the next attempt takes it
        if age <= self.stale_after_s:
            return False
        log.warning("run %s: taking over the lock of %s, whose heartbeat stopped %.0f s ago "
                    "(lock_stale_s=%g)", self.run_id, holder.describe(), age, self.stale_after_s)
        return True

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self.me)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return True

    def _remove_stale(self, holder: Holder) -> None:
        """Rename first, so of two processes recovering the same stale lock only one removes it,
        and never a fresh lock taken meanwhile by a third."""
        aside = self.path.with_name(f".{LOCK_FILE}.stale.{self.me.pid}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if _read_holder(aside) != holder:  # we moved someone's fresh lock: put it back
            self._put_back(aside)
            return
        aside.unlink(missing_ok=True)

    def _put_back(self, aside: Path) -> None:
        """Restore a lock moved aside without replacing one created meanwhile (``link`` fails if
        the name exists; its holder then owns the run and the moved one's owner stops)."""
        with contextlib.suppress(FileExistsError):
            os.link(aside, self.path)
        aside.unlink(missing_ok=True)

    def _refusal(self, holder: Holder) -> str:
        where = "" if holder.same_node(self.me) else (
            f"; it is on another host and its heartbeat is fresh — if that process is gone, "
            f"delete {self.path} or wait {self.stale_after_s:g} s (lock_stale_s) for the "
            f"takeover")
        return f"run {self.run_id} is being trained by {holder.describe()}{where}"

    # --- while held -------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self.held, self._lost = True, None
        self._verified = (time.monotonic(), time.time())
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="run-lock-heartbeat",
                                      daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._check():
                return

    def _check(self) -> bool:
        """Is the lock file still ours? If so, refresh its heartbeat; if not, remember who has it.
        A file error (ESTALE, EIO on a network file system) is logged and decides nothing."""
        try:
            holder = _read_holder(self.path)
            for _ in range(_GONE_RECHECKS):  # moved aside for a moment by a racing takeover
                if holder is not None:
                    break
                time.sleep(0.05)
                holder = _read_holder(self.path)
            if holder != self.me:
                self._lost = self._lost or holder or _UNKNOWN
                return False
            os.utime(self.path)
        except OSError as e:
            log.warning("run %s: could not refresh the run lock %s: %s", self.run_id, self.path, e)
            return True
        self._verified = (time.monotonic(), time.time())
        return True

    def _stale_check(self) -> bool:
        """Longer than a heartbeat since the last check, by either clock (the monotonic clock
        stops while the machine is suspended, the wall clock does not)."""
        mono, wall = self._verified
        return max(time.monotonic() - mono, time.time() - wall) > self.heartbeat_s

    def holds(self) -> bool:
        """Whether this process may still write to the run (checks the file when due)."""
        if self._lost is None and self._stale_check():
            self._check()
        return self.held and self._lost is None

    def ensure_held(self) -> None:
        """Call before writing to the run: raises LockLost if another process took the lock."""
        if not self.holds() and self._lost is not None:
            raise LockLost(f"run {self.run_id}: this process ({self.me.describe()}) lost its lock "
                           f"to {self._lost.describe()} after its heartbeat stopped for over "
                           f"{self.stale_after_s:g} s; it stops without writing more")

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        if self.held:  # move it aside first, so a lock taken over meanwhile is never deleted
            aside = self.path.with_name(f".{LOCK_FILE}.release.{self.me.pid}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, aside)
                if _read_holder(aside) == self.me:
                    aside.unlink(missing_ok=True)
                else:
                    self._put_back(aside)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
