"""Which maps each backend offers, without starting an environment (used by validation)."""

from __future__ import annotations


def backends() -> list[str]:
    return ["smac", "smax"]


def maps_for(backend: str) -> list[str]:
    if backend == "smax":
        from mast.envs.smax import available_maps

        return available_maps()
    if backend == "smac":
        from mast.envs.smac_maps import SMAC_MAPS

        return sorted(SMAC_MAPS)
    raise KeyError(backend)
