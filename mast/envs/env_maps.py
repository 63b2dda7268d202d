"""What each backend offers, without starting an environment (used by config validation):
its maps (or scenarios), whether a config names a valid one, and its action kind."""

from __future__ import annotations

ACTION_KINDS = {"smac": "discrete", "smax": "discrete", "mamujoco": "continuous"}
WIN_CONDITION = {"smac": True, "smax": True, "mamujoco": False}  # else scored by return only


def backends() -> list[str]:
    return sorted(ACTION_KINDS)


def action_kind(backend: str) -> str:
    """`discrete` or `continuous`: which algorithms can act in this backend."""
    return ACTION_KINDS[backend]


def maps_for(backend: str) -> list[str]:
    if backend == "smax":
        from mast.envs.smax import available_maps

        return available_maps()
    if backend == "smac":
        from mast.envs.smac_maps import SMAC_MAPS

        return sorted(SMAC_MAPS)
    if backend == "mamujoco":
        from mast.envs.mamujoco_maps import PAPER_SPECS

        return sorted(PAPER_SPECS)
    raise KeyError(backend)


def check(env_cfg) -> str | None:
    """None if `env_cfg` names a task of its backend, else a one-line message naming the key
    and the allowed values."""
    if env_cfg.name == "mamujoco":
        from mast.envs.mamujoco_maps import check_scenario

        problem = check_scenario(env_cfg.scenario, env_cfg.agent_conf)
        expected = f"{env_cfg.scenario}-{env_cfg.agent_conf}"
        if problem is None and env_cfg.map != expected:
            problem = (f"env.map={env_cfg.map!r} must be <scenario>-<agent_conf>; allowed "
                       f"values: {expected} (set env.scenario and env.agent_conf instead)")
        if problem is None and env_cfg.agent_obsk < 0:
            problem = f"env.agent_obsk={env_cfg.agent_obsk} must be >= 0"
        return problem
    maps = maps_for(env_cfg.name)
    if env_cfg.map not in maps:
        return (f"env.map={env_cfg.map!r} is not a map of env={env_cfg.name}; "
                f"allowed values: {', '.join(maps)}")
    return None


def has_win_condition(backend: str) -> bool:
    """SMAC/SMAX battles are won; MA-MuJoCo tasks are scored by return only."""
    return WIN_CONDITION[backend]
