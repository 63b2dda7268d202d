"""When the topology evolves: every Δm learner updates until T_end, with a cosine-decayed drop
fraction ζ_t = ζ0/2·(1 + cos(π t/T_end)) (paper Alg. 1, RigL)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TopologySchedule:
    update_interval_updates: int = 200  # Δm, in learner (gradient) updates
    init_drop_fraction: float = 0.5  # ζ0
    end_t_env: int  # T_end, in env steps; no updates from here on

    def __post_init__(self) -> None:
        if self.update_interval_updates < 1:
            raise ValueError("method.update_interval_episodes must be ≥ 1, "
                             f"got {self.update_interval_updates}")
        if not 0.0 <= self.init_drop_fraction <= 1.0:
            raise ValueError(f"method.init_drop_fraction must be in [0, 1], "
                             f"got {self.init_drop_fraction}")
        if self.end_t_env < 0:
            raise ValueError(f"end_t_env must be ≥ 0, got {self.end_t_env}")

    def should_update(self, n_updates: int, t_env: int) -> bool:
        return (n_updates > 0 and n_updates % self.update_interval_updates == 0
                and t_env < self.end_t_env)

    def drop_fraction(self, t_env: int) -> float:
        if t_env >= self.end_t_env:
            return 0.0
        return self.init_drop_fraction / 2 * (1 + math.cos(math.pi * t_env / self.end_t_env))
