"""Tickets (paper §4.2, Fig. 10): train with the topology of a finished run held fixed.

`method=ticket method.mask_from=<results/<run_id> folder | mask .npz | random>`:
- a run folder gives its final snapshot `masks/mask_t100.npz` (the "winning ticket" of a MAST or
  RigL run); the source must be finished and have the same algo, map and network shape;
- a bare `.npz` (layer name → bool array) is checked against the network's masked layers;
- `random` draws a random mask under the same training recipe (the "random ticket").
Weights are always re-initialised (seeded as any run); only the topology is taken. The mask is
used exactly as stored: no layer is redrawn, so a layer or shape mismatch is an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

RANDOM = "random"
REQUIRED = ""  # an empty source: refused with the allowed values
FINAL_SNAPSHOT = Path("masks") / "mask_t100.npz"
# Keys that fix the masked layers' names and shapes (and what the ticket means).
SHAPE_KEYS = ("algo.name", "algo.learner", "algo.mixer", "env.name", "env.map",
              "agent.share_params", "agent.rnn_hidden_dim", "algo.mixing_embed_dim",
              "algo.hypernet_hidden_dim", "algo.central_hidden_dim", "sparsity")


class TicketError(ValueError):
    """The ticket source cannot be used; one line naming `method.mask_from` and what is allowed."""


def _dotted(d: Mapping, key: str):
    for part in key.split("."):
        if not isinstance(d, Mapping) or part not in d:
            return None
        d = d[part]
    return d


def identity(mask_from: str | None) -> str | None:
    """What a ticket run's id depends on: the content of the mask it trains with, not the path
    it was read from, so the same ticket launched from `results/<run_id>`, from its archived
    copy in `docs/results/runs/` or from another machine's results folder is one run (resumed,
    or skipped when finished). Unusable sources keep their string (start-up refuses them).
    The digest is of the snapshot file's bytes, so copies are one run; the same mask saved
    again (new zip timestamps) is another. Only the run id uses it: stored configs and W&B keep
    the path (the analysis reads the source's method from it)."""
    if mask_from in (None, RANDOM, REQUIRED):
        return mask_from
    try:
        snap, _ = resolve(mask_from)
    except TicketError:
        return mask_from
    return "mask-sha1:" + hashlib.sha1(snap.read_bytes()).hexdigest()[:12]


def resolve(mask_from: str) -> tuple[Path, dict | None]:
    """(snapshot .npz path, source config or None for a bare .npz)."""
    p = Path(mask_from)
    allowed = "allowed: a finished results/<run_id> folder, a mask .npz file, or 'random'"
    if p.is_dir():
        snap, cfg_file = p / FINAL_SNAPSHOT, p / "config.yaml"
        if not snap.exists() or not cfg_file.exists():
            raise TicketError(f"method.mask_from={mask_from!r} has no {FINAL_SNAPSHOT} and "
                              f"config.yaml (run not finished or not sparse); {allowed}")
        status = _read_status(p)
        if status != "finished":
            raise TicketError(f"method.mask_from={mask_from!r} is a run with status "
                              f"{status!r}; {allowed}")
        return snap, yaml.safe_load(cfg_file.read_text()) or {}
    if p.is_file() and p.suffix == ".npz":
        return p, None
    raise TicketError(f"method.mask_from={mask_from!r} does not exist; {allowed}")


def _read_status(run_dir: Path) -> str | None:
    f = run_dir / "manifest.json"
    try:
        return json.loads(f.read_text()).get("status")
    except (OSError, ValueError):
        return None


def check_source_config(cfg, source: Mapping) -> None:
    """Refuse a source run of another algo/map/network shape or sparsity (one line)."""
    from omegaconf import OmegaConf

    for key in SHAPE_KEYS:
        mine, theirs = OmegaConf.select(cfg, key), _dotted(source, key)
        if key == "sparsity":
            mine, theirs = float(mine), float(theirs) if theirs is not None else None
        if mine != theirs:
            raise TicketError(f"method.mask_from={cfg.method.mask_from!r}: the source has "
                              f"{key}={theirs!r}, this run {key}={mine!r}; allowed: a source "
                              f"with the same {', '.join(SHAPE_KEYS)}")


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: np.asarray(z[k]).astype(bool) for k in z.files}


def load_ticket(mask_from: str, shapes: Mapping[str, tuple[int, ...]],
                sparsity: float | None = None) -> dict[str, np.ndarray]:
    """The source's final masks, checked layer by layer against `shapes` (the masked layers of
    this run's networks) and, given `sparsity`, against the run's sparsity (±0.005); any
    difference is refused, never patched."""
    path, _ = resolve(mask_from)
    masks = load_npz(path)
    if set(masks) != set(shapes):
        extra, missing = sorted(set(masks) - set(shapes)), sorted(set(shapes) - set(masks))
        raise TicketError(f"method.mask_from={mask_from!r}: layers differ from this network's "
                          f"(only in source: {extra}; only here: {missing}); allowed: a mask of "
                          "the same algo, map and network shape")
    for name, shape in shapes.items():
        if tuple(masks[name].shape) != tuple(shape):
            raise TicketError(f"method.mask_from={mask_from!r}: layer {name} has shape "
                              f"{tuple(masks[name].shape)}, this network {tuple(shape)}; allowed:"
                              " a mask of the same algo, map and network shape")
    measured = 1.0 - sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    if sparsity is not None and abs(measured - sparsity) > 0.005:
        raise TicketError(f"method.mask_from={mask_from!r} has sparsity {measured:.4f}, this run "
                          f"sparsity={sparsity}; allowed: sparsity={measured:.4f}")
    return masks


def check_config(cfg) -> None:
    """Start-up check of `method.mask_from` (no network is built: names/shapes are checked when
    the masks are loaded)."""
    if cfg.method.mask_from == REQUIRED:
        raise TicketError(f"method.mask_from is empty (method={cfg.method.name}); allowed: "
                          "a finished results/<run_id> folder, a mask .npz file, or 'random'")
    mask_from = cfg.method.mask_from
    if mask_from is None or mask_from == RANDOM:
        return
    if not cfg.method.sparse or cfg.method.topology != "static":
        raise TicketError(f"method.mask_from={mask_from!r} needs method.sparse=true and "
                          f"method.topology=static (got {cfg.method.sparse}, "
                          f"{cfg.method.topology!r}): a ticket's topology is held fixed")
    _, source = resolve(mask_from)
    if source is not None:
        check_source_config(cfg, source)
