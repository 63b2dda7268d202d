"""The critical-sparsity search itself, free of Hydra: which jobs to run next given the win rates
so far, and the result. The state is a JSON-able dict, saved after every round, so a killed
search continues where it stopped (and the results store skips runs that finished)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

BASELINE = "baseline"


@dataclass
class SearchSpec:
    grid: list[float]
    seeds: list[int]
    resolution: float = 0.01
    tolerance: float = 0.03
    relative: bool = True

    def check(self) -> None:
        """One-line errors naming the ``hydra.sweeper`` key and what is allowed."""
        if not self.grid or any(not 0.0 <= s < 1.0 for s in self.grid):
            raise ValueError(f"hydra.sweeper.grid={self.grid}: allowed: a non-empty list of "
                             "sparsities in [0, 1)")
        if not self.seeds:
            raise ValueError("hydra.sweeper.seeds is empty; allowed: a non-empty list of seeds")
        if not self.resolution > 0:
            raise ValueError(f"hydra.sweeper.resolution={self.resolution}: allowed: > 0")
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"hydra.sweeper.tolerance={self.tolerance}: allowed: [0, 1)")


def key(level: float | None) -> str:
    return BASELINE if level is None else f"{level:.6g}"


@dataclass
class SearchState:
    """Win rates per level key and seed (str → str → float) plus the rounds launched."""

    spec: SearchSpec
    win_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: list[list[str]] = field(default_factory=list)

    def record(self, level: float | None, seed: int, win_rate: float) -> None:
        self.win_rates.setdefault(key(level), {})[str(seed)] = float(win_rate)

    def mean(self, level: float | None) -> float | None:
        got = self.win_rates.get(key(level), {})
        if any(str(s) not in got for s in self.spec.seeds):
            return None
        return sum(got[str(s)] for s in self.spec.seeds) / len(self.spec.seeds)

    def threshold(self) -> float | None:
        base = self.mean(None)
        if base is None:
            return None
        t = self.spec.tolerance
        return base * (1.0 - t) if self.spec.relative else base - t

    def levels(self) -> list[float]:
        """Evaluated sparsity levels (all seeds in), ascending."""
        out = [float(k) for k in self.win_rates if k != BASELINE]
        return sorted(s for s in out if self.mean(s) is not None)

    def bracket(self) -> tuple[float | None, float | None]:
        """(last passing level below the first failing one, first failing level)."""
        thr, p = self.threshold(), None
        for s in self.levels():
            if self.mean(s) < thr - 1e-12:
                return p, s
            p = s
        return p, None

    def to_dict(self) -> dict:
        p, f = self.bracket() if self.threshold() is not None else (None, None)
        return {"spec": asdict(self.spec), "win_rates": self.win_rates, "rounds": self.rounds,
                "baseline_win_rate": self.mean(None), "threshold": self.threshold(),
                "levels": {key(s): self.mean(s) for s in self.levels()},
                "critical_sparsity": p, "first_failing": f, "done": not self.next_jobs()}

    @classmethod
    def from_dict(cls, d: dict, spec: SearchSpec) -> SearchState:
        return cls(spec, {k: dict(v) for k, v in d.get("win_rates", {}).items()},
                   [list(r) for r in d.get("rounds", [])])

    def _missing(self, levels: list[float | None]) -> list[tuple[float | None, int]]:
        got = self.win_rates
        return [(lv, s) for lv in levels for s in self.spec.seeds
                if str(s) not in got.get(key(lv), {})]

    def next_jobs(self) -> list[tuple[float | None, int]]:
        """(level or None for the baseline, seed) pairs to launch next; [] when done."""
        first = self._missing([None, *self.spec.grid])
        if first:
            return first
        p, f = self.bracket()
        # Dense passes by definition (sparsity 0) and an empty network fails (sparsity 1): a grid
        # whose every level fails (or passes) is bisected towards 0 (or 1), not given up on.
        lo, hi = (0.0 if p is None else p), (1.0 if f is None else f)
        if hi - lo <= self.spec.resolution + 1e-12:
            return []
        mid = round((lo + hi) / 2, 6)
        if math.isclose(mid, lo) or math.isclose(mid, hi):
            return []
        return self._missing([mid])
