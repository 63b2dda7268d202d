"""Typed schema of ``hydra/sweeper=critical`` (every key is ``hydra.sweeper.<key>``)."""

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class CriticalSweeperConf:
    """Search the highest sparsity whose mean final win rate stays within ``tolerance`` of the
    dense baseline (relative: ≥ (1 − tolerance)·dense, the paper's Table 1 rule; absolute:
    ≥ dense − tolerance). ``grid``: coarse levels, evaluated with the baseline in one round;
    then bisection between the last passing and the first failing level until they are at most
    ``resolution`` apart (dense counts as passing at 0 and an empty network as failing at 1, so
    a grid whose every level fails or passes is bisected towards 0 or 1). Every level runs all
    ``seeds`` in parallel (one launcher call).
    ``baseline``: overrides that turn a job into the dense reference (replacing the same keys).
    ``store_dir``: where ``_searches/<search_id>/search.json`` goes (null: the app's
    ``results_dir``). ``objective``: key of the dict the task returns."""

    _target_: str = "hydra_plugins.mast_critical_sweeper.critical_sweeper.CriticalSweeper"
    grid: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    resolution: float = 0.01
    tolerance: float = 0.03
    relative: bool = True
    baseline: list[str] = field(default_factory=lambda: ["method=dense"])
    sparsity_key: str = "sparsity"
    seed_key: str = "seed"
    objective: str = "final_win_rate"
    store_dir: str | None = None
    max_rounds: int = 30


ConfigStore.instance().store(group="hydra/sweeper", name="critical", node=CriticalSweeperConf)
