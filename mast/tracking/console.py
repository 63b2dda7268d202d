"""Live progress: a tqdm bar on a TTY, periodic log lines otherwise (cluster logs, CI), and a
small JSON file (``progress.json`` in the run folder) that the sweep launcher's display reads."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from mast.tracking.store import atomic_write_text

log = logging.getLogger("mast")


class Progress:
    def __init__(self, total: int, start: int, mode: str = "auto", log_every_s: float = 30.0,
                 progress_file: Path | None = None, file_every_s: float = 5.0,
                 score: str = "win_rate"):
        """`score`: what the latest test score is, `win_rate` or `return` (MA-MuJoCo has no win
        condition); it names the score in log lines, the bar and progress.json."""
        self.total, self.t0, self.start = total, time.time(), start
        self.score = score
        self.progress_file, self.file_every_s, self.last_file = progress_file, file_every_s, 0.0
        use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self.mode = "none" if mode == "none" else ("bar" if use_bar else "log")
        self.bar = None
        self.last_log, self.log_every = 0.0, log_every_s
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def steps_per_s(self, t_env: int) -> float:
        return (t_env - self.start) / max(time.time() - self.t0, 1e-9)

    def update(self, t_env: int, win_rate: float | None, force: bool = False) -> None:
        sps = self.steps_per_s(t_env)
        self._write_file(t_env, sps, win_rate, force)
        if self.bar is not None:
            self.bar.n = t_env
            self.bar.set_postfix({"win" if self.score == "win_rate" else "return":
                                  f"{win_rate:.2f}" if win_rate is not None else "-",
                                  "sps": f"{sps:.0f}"}, refresh=False)
            self.bar.refresh()
        elif self.mode == "log" and (force or time.time() - self.last_log > self.log_every):
            self.last_log = time.time()
            eta = (self.total - t_env) / max(sps, 1e-9)
            win = f"{win_rate:.3f}" if win_rate is not None else "-"
            label = "test win" if self.score == "win_rate" else "test return"
            log.info("t_env %d/%d  %s %s  %.0f steps/s  ETA %.0f min", t_env, self.total, label,
                     win, sps, eta / 60)

    def _write_file(self, t_env: int, sps: float, win_rate: float | None, force: bool) -> None:
        if self.progress_file is None or (not force and time.time() - self.last_file < self.file_every_s):
            return
        self.last_file = time.time()
        atomic_write_text(self.progress_file, json.dumps(
            {"t": t_env, "total": self.total, "rate": round(sps, 1), self.score: win_rate}) + "\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
