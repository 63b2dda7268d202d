"""Static shapes of the SMAC maps used in the paper, so accounting works without StarCraft II.

Dimensions as reported by SMAC (oxwhirl) with its default observation/state options; they are the
ones that reproduce the resource columns of the paper's Table 1 (DESIGN §5). `2c_vs_64zg` has no
SMAX counterpart (no colossus unit), so this table is the only place its shape is known offline.
"""

from __future__ import annotations

from mast.envs.base import EnvSpec

SMAC_MAPS: dict[str, EnvSpec] = {
    "3m": EnvSpec(n_agents=3, obs_dim=30, state_dim=48, n_actions=9, episode_limit=60),
    "2s3z": EnvSpec(n_agents=5, obs_dim=80, state_dim=120, n_actions=11, episode_limit=120),
    "3s5z": EnvSpec(n_agents=8, obs_dim=128, state_dim=216, n_actions=14, episode_limit=150),
    "2c_vs_64zg": EnvSpec(n_agents=2, obs_dim=332, state_dim=342, n_actions=70, episode_limit=400),
}


def smac_env_spec(map_name: str) -> EnvSpec:
    """`EnvSpec` of a SMAC map from the static table; ValueError names the allowed maps."""
    if map_name not in SMAC_MAPS:
        raise ValueError(
            f"env.map={map_name!r} is not a known SMAC map; allowed: {sorted(SMAC_MAPS)}"
        )
    return SMAC_MAPS[map_name]
