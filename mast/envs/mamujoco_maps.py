"""Multi-Agent MuJoCo facts known without importing MuJoCo: which scenario/agent_conf pairs
gymnasium-robotics' `mamujoco_v1` factorises (config validation, before any work) and the
shapes of the paper's scenarios at k = 0 (accounting). Measured with gymnasium-robotics 1.4.2 /
mujoco 4.0.0 (Gymnasium v5 physics: Humanoid's state is 348-dim, FACMAC's era had 376)."""

from __future__ import annotations

import re

from mast.envs.base import ContinuousActions, EnvSpec

# gymnasium_robotics/envs/multiagent_mujoco/obsk.py: get_parts_and_edges
AGENT_CONFS: dict[str, tuple[str, ...]] = {
    "Ant": ("2x4", "2x4d", "4x2"), "HalfCheetah": ("2x3", "6x1"), "Hopper": ("3x1",),
    "Humanoid": ("9|8",), "HumanoidStandup": ("9|8",), "Reacher": ("2x1",), "Pusher": ("3p",),
    "Swimmer": ("2x1",), "Walker2d": ("2x3",), "CoupledHalfCheetah": ("1p1",),
}
# `<agents>x<segments per agent>`, any positive numbers (the robot is generated to fit)
SEGMENTED = ("ManySegmentSwimmer", "ManySegmentAnt")
_SEGMENTS = re.compile(r"^[1-9][0-9]*x[1-9][0-9]*$")
EPISODE_LIMIT = 1000  # every scenario's Gymnasium TimeLimit

SCENARIOS = tuple(sorted((*AGENT_CONFS, *SEGMENTED)))

# Mean return of uniform random actions per paper map (`scripts/mamujoco_bench.py`, seed 0;
# 48 episodes on Swimmer, 8 on the Humanoids): the zero of return-based Table 1 rows, which are
# normalised as (x − random) / (dense − random) because these returns can be negative
# (Swimmer's random policy drifts backwards), where x / dense means nothing.
RANDOM_RETURNS: dict[str, float] = {"ManySegmentSwimmer-10x2": -44.6, "Humanoid-9|8": 105.0,
                                    "HumanoidStandup-9|8": 32817.0}
# Their per-episode standard deviations (same episodes). A dense baseline is a denominator only
# once it clears random + LEARNING_BAR_SIGMAS × std (issue 14's learning bar): a dense run a
# fraction of a std above random has learnt nothing, and dividing by its tiny margin over random
# turns every other method into thousands of percent.
RANDOM_RETURN_STDS: dict[str, float] = {"ManySegmentSwimmer-10x2": 9.8, "Humanoid-9|8": 21.0,
                                        "HumanoidStandup-9|8": 1851.0}
LEARNING_BAR_SIGMAS = 5.0


def is_map(name: str) -> bool:
    """Whether a run's map name (`<scenario>-<agent_conf>`) is a Multi-Agent MuJoCo one."""
    scenario, sep, conf = str(name).partition("-")
    return bool(sep) and check_scenario(scenario, conf) is None


def check_scenario(scenario: str, agent_conf: str) -> str | None:
    """None if mamujoco_v1 factorises `scenario` by `agent_conf`, else a one-line message."""
    if scenario not in SCENARIOS:
        return (f"env.scenario={scenario!r} is not a Multi-Agent MuJoCo scenario; allowed "
                f"values: {', '.join(SCENARIOS)}")
    if scenario in SEGMENTED:
        if not _SEGMENTS.match(str(agent_conf)):
            return (f"env.agent_conf={agent_conf!r} is not valid for env.scenario={scenario}; "
                    "allowed values: <agents>x<segments per agent>, e.g. 10x2")
        return None
    if agent_conf not in AGENT_CONFS[scenario]:
        return (f"env.agent_conf={agent_conf!r} is not valid for env.scenario={scenario}; "
                f"allowed values: {', '.join(AGENT_CONFS[scenario])}")
    return None


def _humanoid(n_obs: tuple[int, int]) -> EnvSpec:
    dims = (9, 8)
    return EnvSpec(n_agents=2, obs_dim=max(n_obs), state_dim=348, n_actions=9,
                   episode_limit=EPISODE_LIMIT,
                   continuous=ContinuousActions(dims, tuple((-0.4,) * d for d in dims),
                                                tuple((0.4,) * d for d in dims)))


# accounting map name `<scenario>-<agent_conf>` → spec (k = 0), measured from the live env
PAPER_SPECS: dict[str, EnvSpec] = {
    "Humanoid-9|8": _humanoid((236, 167)),
    "HumanoidStandup-9|8": _humanoid((236, 167)),
    "ManySegmentSwimmer-10x2": EnvSpec(
        n_agents=10, obs_dim=4, state_dim=44, n_actions=2, episode_limit=EPISODE_LIMIT,
        continuous=ContinuousActions((2,) * 10, ((-1.0, -1.0),) * 10, ((1.0, 1.0),) * 10)),
}


def mamujoco_map_spec(map_name: str) -> EnvSpec:
    """Spec of `<scenario>-<agent_conf>` at k = 0: the static table, else the live env."""
    if map_name in PAPER_SPECS:
        return PAPER_SPECS[map_name]
    scenario, _, agent_conf = map_name.partition("-")
    problem = check_scenario(scenario, agent_conf)
    if problem:
        raise ValueError(f"map {map_name!r} (<scenario>-<agent_conf>): {problem}")
    from mast.envs.mamujoco import mamujoco_spec

    return mamujoco_spec(scenario, agent_conf, 0)
