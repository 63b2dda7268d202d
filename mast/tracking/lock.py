"""One run, one writer: an exclusive lock file in the run folder for as long as a process trains.

The lock is taken with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems), and holds
JSON ``{host, pid, start_time}`` so a refusal can name its holder. While held, a daemon thread
touches it every ``stale_after_s / 20`` seconds (its heartbeat). A lock is stale, and taken over,
when its process is dead on this host, or when its heartbeat is older than ``stale_after_s``
(default 10 min) — the only sign a process on another host (a preempted node) leaves. A holder
that was frozen that long and wakes finds the lock no longer its own: ``ensure_held`` raises
``LockLost`` before its next write, so a run never has two writers.
"""

from __future__ import annotations

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


class RunLocked(RuntimeError):
    """Another live process trains this run; the message is one line naming run id and holder."""


class LockLost(RunLocked):
    """This process's lock was taken over while it was frozen: it must stop without writing."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    start_time: str

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} since {self.start_time}"


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
        return Holder(str(d["host"]), int(d["pid"]), str(d["start_time"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # torn write of a crashed taker: treat as unknown
        return Holder("?", -1, "?")


class RunLock:
    """``with RunLock(run_dir, run_id):`` — raises RunLocked at once if a live process holds it."""

    def __init__(self, run_dir: Path, run_id: str, stale_after_s: float = STALE_AFTER_S):
        self.path = Path(run_dir) / LOCK_FILE
        self.run_id = run_id
        self.stale_after_s = stale_after_s
        self.heartbeat_s = stale_after_s / 20
        self.me = Holder(socket.gethostname(), os.getpid(), now_iso())
        self.held = False
        self._lost: Holder | None = None
        self._verified_at = 0.0  # time.monotonic() of the last check that the lock is ours
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a recovered stale lock may be re-taken by a racing process
            if self._try_create():
                self._start_heartbeat()
                return
            holder = _read_holder(self.path)
            if holder is None:  # released between our attempt and the read
                continue
            if self._is_stale(holder):
                self._remove_stale(holder)
                continue
            raise RunLocked(self._refusal(holder))
        raise RunLocked(f"run {self.run_id} could not be locked ({self.path}): "
                        "other processes keep taking it")

    def _is_stale(self, holder: Holder) -> bool:
        if holder.host == self.me.host and holder.pid > 0 and not _pid_alive(holder.pid):
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
            os.replace(aside, self.path)
            return
        aside.unlink(missing_ok=True)

    def _refusal(self, holder: Holder) -> str:
        where = "" if holder.host == self.me.host else (
            f"; it is on another host and its heartbeat is fresh — if that process is gone, "
            f"delete {self.path} or wait {self.stale_after_s:g} s (lock_stale_s) for the "
            f"takeover")
        return f"run {self.run_id} is being trained by {holder.describe()}{where}"

    # --- while held -------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self.held, self._lost = True, None
        self._verified_at = time.monotonic()
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="run-lock-heartbeat",
                                      daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._check():
                return

    def _check(self) -> bool:
        """Is the lock file still ours? If so, refresh its heartbeat; if not, remember who has it."""
        holder = _read_holder(self.path)
        if holder != self.me:
            self._lost = self._lost or holder or Holder("?", -1, "?")
            return False
        try:
            os.utime(self.path)
        except FileNotFoundError:
            self._lost = self._lost or Holder("?", -1, "?")
            return False
        self._verified_at = time.monotonic()
        return True

    def ensure_held(self) -> None:
        """Call before writing to the run: raises LockLost if another process took the lock. Checks
        the file itself when the heartbeat has not done so lately (after a freeze, before the
        heartbeat thread wakes)."""
        if self._lost is None and time.monotonic() - self._verified_at > self.heartbeat_s:
            self._check()
        if self._lost is not None:
            raise LockLost(f"run {self.run_id}: this process ({self.me.describe()}) lost its lock "
                           f"to {self._lost.describe()} after its heartbeat stopped for over "
                           f"{self.stale_after_s:g} s; it stops without writing more")

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        if self.held and _read_holder(self.path) == self.me:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
