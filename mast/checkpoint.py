"""Checkpoints as plain tensors + primitives, loadable with `torch.load(weights_only=True)`.

Everything needed to continue bit-for-bit is saved: networks, targets, optimiser, masks, counters,
and the RNG states of torch, NumPy and the JAX environments. The replay buffer is optional
(`save_buffer`): without it a resumed run refills its buffer and continues statistically, not
bit-for-bit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


def numpy_rng_state(rng: np.random.Generator) -> dict:
    s = rng.bit_generator.state
    return {"state_int": str(s["state"]["state"]), "inc": str(s["state"]["inc"]),
            "has_uint32": s["has_uint32"], "uinteger": s["uinteger"]}


def set_numpy_rng_state(rng: np.random.Generator, d: dict) -> None:
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(d["state_int"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


def save(path: Path, state: dict) -> None:
    """Atomic: write to a temp file then rename, so a crash mid-save keeps the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")
