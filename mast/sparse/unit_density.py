"""Manual per-unit-type densities of per-agent networks (paper §4.2, Fig. 12b).

With `agent.share_params=false` the agent layers are stacked `[n_agents, out, in]` and MAST's
global budget lets agents end up with different densities (Fig. 12a). `method.unit_density`
fixes them instead, per unit type: e.g. on 2s3z `{stalker: 0.08, zealot: 0.12}` gives every
stalker's slice of every agent layer density ≈ 0.08. Rules (checked at start-up):
- the keys are exactly the unit types of the map's allied agents;
- the agent-weighted mean of the densities is within `MEAN_TOLERANCE` of 1 − sparsity; it is then
  rescaled to exactly 1 − sparsity (ratios kept), so manual patterns are compared with MAST's
  adaptive allocation at the same budget (the paper's 3s5z patterns miss it by up to 0.01);
- the other layers (mixer, …) keep the configured distribution at the overall sparsity;
- topology updates (SET/RigL) swap connections within each agent's slice, so the pattern holds.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

# SMAC's allied unit types per agent (SMAC orders agents by unit type, as SMAX does).
SMAC_UNIT_TYPES = {
    "3m": ["marine"] * 3,
    "2s3z": ["stalker"] * 2 + ["zealot"] * 3,
    "3s5z": ["stalker"] * 3 + ["zealot"] * 5,
    "2c_vs_64zg": ["colossus"] * 2,
}
MEAN_TOLERANCE = 0.01
AGENT_PREFIX = "agent."


class UnitDensityError(ValueError):
    """Bad `method.unit_density`; one line naming the key and the allowed values."""


def unit_types(env_name: str, map_name: str) -> list[str]:
    """Unit type name of each allied agent, in agent order."""
    if env_name == "smax":
        import inspect

        from jaxmarl.environments.smax import map_name_to_scenario
        from jaxmarl.environments.smax.smax_env import SMAX

        sc = map_name_to_scenario(map_name)
        names = inspect.signature(SMAX.__init__).parameters["unit_type_names"].default
        return [names[int(t)] for t in sc.unit_types[: sc.num_allies]]
    if map_name not in SMAC_UNIT_TYPES:
        raise UnitDensityError(f"env.map={map_name!r}: unit types unknown for env={env_name}; "
                               f"allowed maps: {', '.join(SMAC_UNIT_TYPES)}")
    return list(SMAC_UNIT_TYPES[map_name])


def agent_densities(unit_density: Mapping[str, float], types: list[str],
                    sparsity: float) -> list[float]:
    """Per-agent density, validated and rescaled to mean exactly 1 − sparsity."""
    allowed = sorted(set(types))
    if set(unit_density) != set(allowed):
        raise UnitDensityError(f"method.unit_density keys {sorted(unit_density)} must be the "
                               f"map's unit types; allowed keys: {', '.join(allowed)}")
    for k, v in unit_density.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < float(v) <= 1.0:
            raise UnitDensityError(f"method.unit_density.{k}={v} is out of range; "
                                   "allowed: 0 < density <= 1")
    dens = [float(unit_density[t]) for t in types]
    mean, target = sum(dens) / len(dens), 1.0 - sparsity
    if abs(mean - target) > MEAN_TOLERANCE:
        raise UnitDensityError(f"method.unit_density gives mean agent density {mean:.4f} over "
                               f"{len(types)} agents; allowed: 1 - sparsity = {target:.4f} "
                               f"± {MEAN_TOLERANCE}")
    scaled = [d * target / mean for d in dens]
    if max(scaled) > 1.0:
        raise UnitDensityError(f"method.unit_density rescaled to the budget exceeds 1 "
                               f"({max(scaled):.3f}); allowed: densities <= 1")
    return scaled


def stacked_agent_layers(shapes: Mapping[str, tuple[int, ...]], n_agents: int) -> list[str]:
    """Masked agent-network layers stacked per agent ([n_agents, out, in])."""
    return [n for n, s in shapes.items()
            if n.startswith(AGENT_PREFIX) and len(s) == 3 and s[0] == n_agents]


def random_masks(shapes: Mapping[str, tuple[int, ...]], agent_density: list[float],
                 other_counts: Mapping[str, int], generator: torch.Generator
                 ) -> dict[str, torch.Tensor]:
    """Uniformly random masks: each agent slice of the stacked agent layers gets
    round(density_a · numel) active weights, every other layer its count from `other_counts`."""
    masks: dict[str, torch.Tensor] = {}
    stacked = stacked_agent_layers(shapes, len(agent_density))
    for name in stacked:
        shape = shapes[name]
        numel = shape[1] * shape[2]
        m = torch.zeros(shape[0], numel, dtype=torch.bool)
        for a, d in enumerate(agent_density):
            m[a, torch.randperm(numel, generator=generator)[: round(d * numel)]] = True
        masks[name] = m.view(shape)
    for name, count in other_counts.items():
        numel = int(torch.Size(shapes[name]).numel())
        flat = torch.zeros(numel, dtype=torch.bool)
        flat[torch.randperm(numel, generator=generator)[:count]] = True
        masks[name] = flat.view(shapes[name])
    return masks


def check_config(cfg) -> None:
    """Start-up check: per-agent networks, the map's unit types, the overall budget."""
    from omegaconf import DictConfig

    ud = cfg.method.unit_density
    if ud is None:
        return
    if not isinstance(ud, DictConfig) or not ud:
        raise UnitDensityError(f"method.unit_density={ud!r} must be a mapping unit type -> "
                               "density, e.g. {stalker: 0.08, zealot: 0.12}")
    if cfg.agent.share_params:
        raise UnitDensityError("method.unit_density needs per-agent networks; allowed: "
                               "agent.share_params=false")
    if not cfg.method.sparse:
        raise UnitDensityError(f"method.unit_density needs a sparse method (method="
                               f"{cfg.method.name} has method.sparse=false)")
    agent_densities(dict(ud), unit_types(cfg.env.name, cfg.env.map), float(cfg.sparsity))
