"""One run, one writer: an exclusive lock file in the run folder for as long as a process trains.

The lock is taken with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems), and holds
JSON ``{host, pid, start_time}`` so a refusal can name its holder. A lock left by a dead process
on this host is stale and recovered; a lock from another host cannot be checked from here, so it
is reported with the command that clears it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from mast.tracking.store import now_iso

LOCK_FILE = "lock"


class RunLocked(RuntimeError):
    """Another live process trains this run; the message is one line naming run id and holder."""


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

    def __init__(self, run_dir: Path, run_id: str):
        self.path = Path(run_dir) / LOCK_FILE
        self.run_id = run_id
        self.me = Holder(socket.gethostname(), os.getpid(), now_iso())
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a recovered stale lock may be re-taken by a racing process
            if self._try_create():
                self.held = True
                return
            holder = _read_holder(self.path)
            if holder is None:  # released between our attempt and the read
                continue
            if holder.host == self.me.host and holder.pid > 0 and not _pid_alive(holder.pid):
                self._remove_stale(holder)
                continue
            raise RunLocked(self._refusal(holder))
        raise RunLocked(f"run {self.run_id} could not be locked ({self.path}): "
                        "other processes keep taking it")

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
            f"; it is on another host, so this one cannot tell whether it is alive — if that "
            f"process is gone, delete {self.path}")
        return f"run {self.run_id} is being trained by {holder.describe()}{where}"

    def release(self) -> None:
        if self.held and _read_holder(self.path) == self.me:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
