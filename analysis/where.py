"""`--where KEY=VALUE`: restrict a store to a configuration slice before any table is built.

A comparison often needs a slice the baseline reduction (`select.select_baseline`) would not
choose, e.g. COMIX with twin critics at the ERK layer budget against a dense reference trained
with TD(λ). `--where` keys apply to every run except that `method.*` keys and `sparsity` skip
dense runs (a dense run has no masks, and its targets are chosen with `--dense-where`, which
applies to dense runs only). A run whose config does not have the key, or where the key chooses nothing, is kept:
`select.config_value` decides, as when it splits cells.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import yaml

from mast.config import LATER_KEYS

from .select import DENSE, NULL, canon, config_value
from .store import Store


class WhereError(ValueError):
    """A malformed or unknown `--where` item; the message is one line."""


def parse_where(items: Sequence[str], flag: str = "--where") -> dict[str, str | None]:
    """{"algo.twin_critics": "true", ...} in `select.canon` form (YAML scalars, so `true`,
    `0.9` and `null` read as a run's config stores them)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise WhereError(f"{flag} {item!r}: expected KEY=VALUE, e.g. method.distribution=erk")
        value = yaml.safe_load(raw.strip())
        out[key.strip()] = NULL if value is None else canon(value)
    return out


def _check_keys(store: Store, keys: Sequence[str], flag: str) -> None:
    known = [*store.configs.columns, *(".".join(k) for k in LATER_KEYS)]  # read as their default
    for key in keys:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise WhereError(f"{flag} {key}: no run in {store.source} has this config key{hint}")


def _sparse_only(key: str) -> bool:
    """Keys a dense run ignores: its method's sparse knobs and the sparsity (a dense run is one
    run whatever sparsity its sweep job named, so its config holds any of them)."""
    return key.startswith("method.") or key == "sparsity"


def _matches(store: Store, run_id: str, where: Mapping[str, str | None]) -> bool:
    for key, wanted in where.items():
        value = config_value(store, run_id, key)
        if value is not None and value != wanted:
            return False
    return True


def restrict(store: Store, where: Mapping[str, str | None],
             dense_where: Mapping[str, str | None]) -> tuple[Store, str | None]:
    """The runs of `store` inside the slice, and a footnote saying what was kept (None when
    nothing was asked)."""
    if not where and not dense_where:
        return store, None
    _check_keys(store, list(where), "--where")
    _check_keys(store, list(dense_where), "--dense-where")
    dense_only = {k: v for k, v in where.items() if not _sparse_only(k)} | dense_where
    methods = dict(zip(store.runs["run_id"], store.runs["method"], strict=True))
    keep = [r for r, m in methods.items()
            if _matches(store, r, dense_only if m == DENSE else where)]
    shown = ", ".join(f"{k}={v}" for k, v in where.items()) or "all"
    dense_shown = ", ".join(f"{k}={v}" for k, v in dense_only.items()) or "all"
    note = (f"Runs restricted to {shown} (dense runs: {dense_shown}): {len(keep)} of "
            f"{len(methods)} runs kept.")
    return store.subset(keep), note
