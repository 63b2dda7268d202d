"""One live progress display for a whole sweep, from the progress files the running jobs keep.

Each running job's app rewrites a small JSON file (``{"t": done, "total": work, "rate": per
second}``, see ``_plan.JobInfo.progress_file``); the driver polls them between ``ray.wait``
calls. On a terminal the display is one line redrawn in place; in a log (cluster, CI) it is a
line every ``log_every_s``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read_progress(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return None


def fmt_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or no rate yet
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


@dataclass
class SweepProgress:
    """Jobs by state, aggregate rate and ETA. ``work``: job index -> total work (None: unknown)."""

    work: dict[int, float | None]
    progress_files: dict[int, str | None]
    done: int = 0
    failed: int = 0
    running: set[int] = field(default_factory=set)
    ended: set[int] = field(default_factory=set)
    tty: bool = field(default_factory=lambda: sys.stderr.isatty())
    log_every_s: float = 60.0
    _last_log: float = field(default_factory=time.monotonic)

    def started(self, idx: int) -> None:
        self.running.add(idx)

    def finished(self, idx: int, failed: bool) -> None:
        self.running.discard(idx)
        self.ended.add(idx)
        self.failed += failed
        self.done += not failed

    def snapshot(self) -> str:
        """``sweep: 3/19 done · 2 running · 14 queued · 0 failed · 1,820 env steps/s · ETA …``;
        the ETA divides the work left (running and queued jobs) by the running jobs' rate."""
        rate, left = 0.0, 0.0
        for idx in self.running:
            p = read_progress(self.progress_files.get(idx)) or {}
            rate += float(p.get("rate") or 0.0)
            total = p.get("total", self.work.get(idx)) or 0.0
            left += max(0.0, float(total) - float(p.get("t") or 0.0))
        queued = set(self.work) - self.running - self.ended
        left += sum(self.work[i] or 0.0 for i in queued)
        eta = left / rate if rate > 0 else float("nan")
        return (f"sweep: {self.done}/{len(self.work)} done · {len(self.running)} running · "
                f"{len(queued)} queued · {self.failed} failed · {rate:,.0f} env steps/s · "
                f"ETA {fmt_duration(eta)}")

    def show(self, force: bool = False) -> None:
        line = self.snapshot()
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
        elif force or time.monotonic() - self._last_log >= self.log_every_s:
            self._last_log = time.monotonic()
            log.info(line)

    def clear(self) -> None:
        """Before a job's own line on a terminal, so the live line does not garble it."""
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _value(result: Any, key: str) -> str:
    value = result.job_return._return_value
    got = value.get(key) if isinstance(value, Mapping) else None
    return f"{got:.3f}" if isinstance(got, float) else ("-" if got is None else str(got))


def log_table(results: list[Any], keys: Sequence[str]) -> None:
    """Final table: job, status, the app's summary values present in any result, wall time."""
    rows = sorted(results, key=lambda r: r.job.idx)
    shown = [k for k in keys if any(_value(r, k) != "-" for r in rows)]
    header = ["job", "status", *shown, "wall", "overrides"]
    table = [[str(r.job.idx), r.status, *(_value(r, k) for k in shown),
              with_attempts(fmt_duration(r.elapsed_s), r.attempts), r.job.label] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header[:-1])]
    for line in [header, *table]:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        log.info("  ".join([*cells, line[-1]]))


def with_attempts(wall: str, attempts: int) -> str:
    """A wall time summed over every attempt, and how many there were when a dead worker was
    retried (the report line and the final table say it the same way)."""
    return wall + (f" ({attempts} attempts)" if attempts > 1 else "")
