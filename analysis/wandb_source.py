"""Weights & Biases as a results source (``--source wandb``) and sink (``--log-wandb``).

Runs are read through ``wandb.Api()``: summary + config + history, with the keys of the
results store (docs/contracts.md), into the same ``Store`` DataFrames.  Mask snapshots are
not on W&B, so mask figures are skipped for this source.  Network or login problems raise
``WandbUnavailable`` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .render import TableResult
from .store import Store, build_store, make_run_record, metric_records

TIMEOUT_S = 15
_STATES = {"finished": "finished", "failed": "failed", "crashed": "failed", "killed": "failed",
           "running": "running", "pending": "running", "preempted": "failed"}


class WandbUnavailable(Exception):
    """W&B cannot be used (not installed, not logged in, no network, unknown project)."""


def _wandb():
    try:
        import wandb
    except ImportError as e:
        raise WandbUnavailable("wandb is not installed in this environment") from e
    return wandb


def _errors(wandb) -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [wandb.errors.Error, OSError, TimeoutError]
    try:
        import requests
        errs.append(requests.exceptions.RequestException)
    except ImportError:
        pass
    return tuple(errs)


def _msg(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{e.__class__.__name__}: {text[0] if text else ''}".rstrip(": ")


def _as_dict(obj: Any) -> dict:
    raw = getattr(obj, "_json_dict", None)
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(obj, Mapping):
        return dict(obj)
    try:
        return dict(obj.items())
    except (AttributeError, TypeError):
        return {}


def _unwrap(v: Any) -> Any:
    """Old-style config entries {"value": x, "desc": ...} -> x; recurse into dicts."""
    if isinstance(v, Mapping):
        if set(v) <= {"value", "desc"} and "value" in v:
            return _unwrap(v["value"])
        return {k: _unwrap(x) for k, x in v.items()}
    return v


def runs_to_store(runs: Iterable[Any], source: str) -> Store:
    """Convert W&B public-API run objects (or look-alikes) into a Store."""
    records, metrics, configs, problems = [], [], {}, []
    for run in runs:
        if getattr(run, "job_type", None) == "analysis":
            continue
        summary = _as_dict(run.summary)
        config = {k: _unwrap(v) for k, v in _as_dict(run.config).items()
                  if not str(k).startswith("_")}
        state = _STATES.get(str(getattr(run, "state", "")), getattr(run, "state", None))
        rows = [dict(r) for r in run.scan_history()]
        rid = str(summary.get("run_id") or getattr(run, "name", None) or run.id)
        rec = make_run_record(rid, summary, config, None, rows,
                              path=f"wandb:{source}/{getattr(run, 'id', rid)}", state=state)
        if rec["run_id"] in configs:
            problems.append(f"W&B run {getattr(run, 'id', rid)}: duplicate run_id {rid}, skipped")
            continue
        records.append(rec)
        metrics.extend(metric_records(rec["run_id"], rows))
        configs[rec["run_id"]] = config
    return build_store(records, metrics, configs, {}, f"W&B project {source}", problems)


def load_wandb(project: str, entity: str | None = None, timeout: int = TIMEOUT_S,
               api: Any = None) -> Store:
    if not project:
        raise WandbUnavailable("--source wandb needs --project (and usually --entity)")
    wandb = _wandb()
    path = f"{entity}/{project}" if entity else project
    try:
        api = api if api is not None else wandb.Api(timeout=timeout)
        return runs_to_store(list(api.runs(path)), path)
    except _errors(wandb) as e:
        raise WandbUnavailable(f"cannot read W&B runs of '{path}' ({_msg(e)}). Check "
                               "`wandb login`, network access, --entity and --project.") from e


def log_tables(tables: list[TableResult], project: str | None, entity: str | None,
               images: list[Path] | None = None, name: str = "analysis",
               timeout: int = TIMEOUT_S) -> str:
    """Upload tables (and images) as ``wandb.Table``s in one run with job_type "analysis"."""
    wandb = _wandb()
    try:
        run = wandb.init(project=project or "mast", entity=entity, job_type="analysis",
                         name=name, reinit="finish_previous",
                         settings=wandb.Settings(init_timeout=timeout, silent=True))
        payload = {}
        for t in tables:
            payload[t.name] = wandb.Table(dataframe=t.display.astype(str))
            payload[f"{t.name}_numeric"] = wandb.Table(dataframe=t.numeric.astype(object))
        for p in images or []:
            payload[f"figures/{Path(p).stem}"] = wandb.Image(str(p))
        run.log(payload)
        url = "(offline run)" if getattr(run, "offline", False) else getattr(run, "url", "")
        run.finish()
        return url
    except _errors(wandb) as e:
        raise WandbUnavailable(f"cannot log to W&B project '{project}' ({_msg(e)}). Check "
                               "`wandb login` and network access, or set WANDB_MODE=offline.") \
            from e
