"""Checkpoints as plain tensors + primitives, loadable with `torch.load(weights_only=True)`.

Everything needed to continue bit-for-bit is saved: networks, targets, optimiser, masks, counters,
and the RNG states of torch, NumPy and the JAX environments. The replay buffer is optional
(`save_buffer`): without it a resumed run refills its buffer and continues statistically, not
bit-for-bit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("mast")


def numpy_rng_state(rng: np.random.Generator) -> dict:
    s = rng.bit_generator.state
    return {"state_int": str(s["state"]["state"]), "inc": str(s["state"]["inc"]),
            "has_uint32": s["has_uint32"], "uinteger": s["uinteger"]}


def set_numpy_rng_state(rng: np.random.Generator, d: dict) -> None:
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(d["state_int"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


class CheckpointError(RuntimeError):
    """No checkpoint of a run loads; one line naming the files and how to restart from scratch."""


PREVIOUS = "prev.pt"


def save(path: Path, state: dict) -> None:
    """Atomic, keeping the previous checkpoint next to the last: write a temp file, move the last
    one to ``prev.pt``, then rename. A crash at any point leaves at least one complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp.{os.getpid()}")  # never a file another process writes
    torch.save(state, tmp)
    if path.exists():
        os.replace(path, path.with_name(PREVIOUS))
    os.replace(tmp, path)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def load_latest(path: Path, required: tuple[str, ...] = ()) -> tuple[dict, Path] | None:
    """The newest checkpoint that loads: ``path``, else ``prev.pt`` beside it (with a warning).

    Returns None when neither file exists; raises CheckpointError when files exist but none
    loads (truncated, bit rot) or lacks a ``required`` key.
    """
    candidates = [p for p in (path, path.with_name(PREVIOUS)) if p.exists()]
    if not candidates:
        return None
    failures = []
    for p in candidates:
        try:
            state = load(p)
            missing = [k for k in required if k not in state]
            if missing:
                raise KeyError(f"missing {', '.join(missing)}")
        except Exception as e:  # noqa: BLE001 — any unreadable file is a damaged checkpoint
            failures.append(f"{p.name} ({type(e).__name__}: {str(e).splitlines()[0][:80]})")
            log.warning("checkpoint %s does not load (%s: %s)", p, type(e).__name__, e)
            continue
        if failures:
            log.warning("resuming from the previous checkpoint %s instead", p)
        return state, p
    run_dir = path.parent.parent
    raise CheckpointError(
        f"no checkpoint of {run_dir.name} loads: {'; '.join(failures)}; to restart that run from "
        f"scratch, remove its folder (rm -r {run_dir}) and launch it again")
