"""Load a results store (``results/<run_id>/``) into tidy DataFrames.

``Store.runs``     one row per run: the summary.json fields plus ``status`` and ``path``.
``Store.metrics``  long frame, one row per (run_id, t_env, metric) with a float ``value``.
``Store.configs``  one row per run (index ``run_id``), columns = dotted config keys.
``Store.masks``    run_id -> sorted list of mask snapshot files.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

RUN_COLUMNS = [
    "run_id", "algo", "env", "map", "method", "ablation", "sparsity", "seed", "t_max", "status",
    "final_win_rate", "final_window", "n_evals", "total_size", "flops_train", "flops_test", "path",
    "end_time",
]
METRIC_COLUMNS = ["run_id", "t_env", "metric", "value"]
DEFAULT_FINAL_WINDOW = 20
MASK_RE = re.compile(r"mask_t(\d+)\.npz$")
_RUN_FILES = ("summary.json", "manifest.json", "config.yaml", "metrics.jsonl")


@dataclass
class Store:
    runs: pd.DataFrame
    metrics: pd.DataFrame
    configs: pd.DataFrame
    masks: dict[str, list[Path]] = field(default_factory=dict)
    # run id → dotted keys set to null in its config (`method.unit_density: null`): a frame cell
    # cannot tell that from a key the run's config predates, and the two mean different things
    nulls: dict[str, frozenset[str]] = field(default_factory=dict)
    source: str = ""
    problems: list[str] = field(default_factory=list)
    _groups: dict | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return self.runs.empty

    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "finished"]

    def unfinished(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "finished"]

    def series(self, run_id: str, metric: str) -> pd.DataFrame:
        """Sorted (t_env, value) of one metric of one run; duplicates of t_env keep the last."""
        if self._groups is None:
            self._groups = {k: g for k, g in self.metrics.groupby(["run_id", "metric"], sort=False)}
        sel = self._groups.get((run_id, metric))
        if sel is None:
            return pd.DataFrame({"t_env": [], "value": []})
        sel = sel[["t_env", "value"]].dropna()
        sel = sel.drop_duplicates("t_env", keep="last").sort_values("t_env")
        return sel.reset_index(drop=True)

    def subset(self, run_ids: Iterable[str]) -> Store:
        """The same store holding only `run_ids` (analysis `--where`)."""
        keep = set(run_ids)
        return Store(runs=self.runs[self.runs["run_id"].isin(keep)].reset_index(drop=True),
                     metrics=self.metrics[self.metrics["run_id"].isin(keep)],
                     configs=self.configs[self.configs.index.isin(keep)],
                     masks={k: v for k, v in self.masks.items() if k in keep},
                     nulls={k: v for k, v in self.nulls.items() if k in keep},
                     source=self.source, problems=list(self.problems))

    def has_metric(self, metric: str) -> bool:
        return bool((self.metrics["metric"] == metric).any()) if not self.metrics.empty else False


class StoreError(Exception):
    """The store cannot be read at all (missing directory, ...)."""


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted.key: value}; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if v:
                out.update(flatten(v, key + "."))
            else:
                out[key] = None
        else:
            out[key] = v
    return out


def _num(x: Any) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


def _name(x: Any) -> str | None:
    """Group entries may be strings or nodes with a ``name``."""
    if isinstance(x, Mapping):
        x = x.get("name")
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        problems.append(f"{path}: unreadable ({e.__class__.__name__})")
        return None
    return data if isinstance(data, dict) else None


def _read_yaml(path: Path, problems: list[str]) -> dict | None:
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"{path}: unreadable ({e.__class__.__name__})")
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: Path, problems: list[str]) -> list[dict]:
    """Rows of a JSONL file; malformed lines (a running job's torn last line) are skipped and
    reported in `problems` instead of failing the whole report."""
    if not path.exists():
        return []
    rows, bad = [], 0
    try:
        text = path.read_text()
    except OSError as e:
        problems.append(f"{path}: unreadable ({e.__class__.__name__})")
        return []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    if bad:
        problems.append(f"{path}: skipped {bad} malformed line(s)")
    return rows


def final_from_metrics(rows: list[dict], window: int) -> float:
    """Mean test_win_rate over the last ``window`` evaluations (contract definition)."""
    vals = [(_num(r.get("t_env")), _num(r.get("test_win_rate"))) for r in rows]
    vals = sorted((t, v) for t, v in vals if not math.isnan(v))
    if not vals:
        return math.nan
    return float(np.mean([v for _, v in vals[-max(1, window):]]))


def make_run_record(
    run_id: str,
    summary: Mapping | None,
    config: Mapping | None,
    manifest: Mapping | None,
    metric_rows: list[dict],
    path: str = "",
    state: str | None = None,
) -> dict[str, Any]:
    """One row of ``Store.runs``; missing summary fields fall back to config / metrics."""
    s = dict(summary or {})
    c = dict(config or {})
    flat = flatten(c)
    status = (manifest or {}).get("status") or s.get("status") or state or "unknown"
    env = c.get("env") if isinstance(c.get("env"), Mapping) else {}
    window = s.get("final_window") or flat.get("final_window") or DEFAULT_FINAL_WINDOW
    try:
        window = int(window)
    except (TypeError, ValueError):
        window = DEFAULT_FINAL_WINDOW
    method = _name(s.get("method")) or _name(c.get("method"))
    final = _num(s.get("final_win_rate"))
    if math.isnan(final) and s.get("final_return") is not None:
        final = _num(s.get("final_return"))  # no win condition (MA-MuJoCo): the return is the score
    if math.isnan(final) and metric_rows:
        final = final_from_metrics(metric_rows, window)
    sparsity = _num(s.get("sparsity"))
    cfg_sp = _num(flat.get("sparsity"))
    if method == "dense":
        sparsity = 0.0
    elif (math.isnan(sparsity) or sparsity == 0.0) and not math.isnan(cfg_sp):
        # e.g. Tiny: a dense net sized for the target sparsity; rows are keyed by the target
        sparsity = cfg_sp
    n_evals = s.get("n_evals")
    if n_evals is None:
        n_evals = sum(1 for r in metric_rows if "test_win_rate" in r)
    return {
        "run_id": str(s.get("run_id") or (manifest or {}).get("run_id") or run_id),
        "algo": _name(s.get("algo")) or _name(c.get("algo")),
        "env": _name(s.get("env")) or _name(env),
        "map": _name(s.get("map")) or _name(env.get("map")) or _name(flat.get("env.map")),
        "method": method,
        "ablation": _name(s.get("ablation")) or _name(c.get("ablation")) or "none",
        "sparsity": round(sparsity, 6) if not math.isnan(sparsity) else math.nan,
        "seed": s.get("seed", flat.get("seed")),
        "t_max": _num(s.get("t_max", flat.get("t_max"))),
        "status": str(status),
        "final_win_rate": final,
        "final_window": window,
        "n_evals": int(n_evals) if n_evals is not None else 0,
        "total_size": _num(s.get("total_size")),
        "flops_train": _num(s.get("flops_train")),
        "flops_test": _num(s.get("flops_test")),
        "path": path,
        "end_time": str((manifest or {}).get("end_time") or ""),  # ISO 8601: sorts as text
    }


def metric_records(run_id: str, rows: Iterable[Mapping]) -> list[tuple]:
    """Long (run_id, t_env, metric, value) tuples; non-numeric values are dropped."""
    out = []
    for r in rows:
        t = _num(r.get("t_env"))
        if math.isnan(t):
            continue
        for k, v in r.items():
            if k == "t_env" or isinstance(v, bool | str | Mapping | list) or v is None:
                continue
            f = _num(v)
            if not math.isnan(f):
                out.append((run_id, t, k, f))
    return out


def build_store(
    records: list[dict], metrics: list[tuple], configs: dict[str, dict], masks: dict[str, list],
    source: str, problems: list[str],
) -> Store:
    runs = pd.DataFrame(records, columns=RUN_COLUMNS)
    if not runs.empty:
        dup = runs["run_id"].duplicated(keep="first")
        for rid in runs.loc[dup, "run_id"]:
            problems.append(f"duplicate run_id {rid}: later copy ignored")
        runs = runs[~dup].reset_index(drop=True)
        for col in ("algo", "map", "method", "env", "ablation"):
            runs[col] = runs[col].fillna("?").astype(str)
    mdf = pd.DataFrame(metrics, columns=METRIC_COLUMNS)
    flat = {k: flatten(v) for k, v in configs.items()}
    cdf = pd.DataFrame.from_dict(flat, orient="index")
    cdf.index.name = "run_id"
    nulls = {k: frozenset(key for key, v in f.items() if v is None) for k, f in flat.items()}
    return Store(runs=runs, metrics=mdf, configs=cdf, masks=masks, nulls=nulls, source=source,
                 problems=problems)


def _mask_files(run_dir: Path) -> list[Path]:
    d = run_dir / "masks"
    if not d.is_dir():
        return []
    files = [p for p in d.iterdir() if MASK_RE.search(p.name)]
    return sorted(files, key=lambda p: int(MASK_RE.search(p.name).group(1)))


def load_store(results_dir: str | Path) -> Store:
    """Read every ``results/<run_id>/`` folder; unreadable pieces are listed in ``problems``."""
    root = Path(results_dir)
    if not root.is_dir():
        raise StoreError(f"results directory '{root}' does not exist")
    problems: list[str] = []
    records, metrics, configs, masks = [], [], {}, {}
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not any((run_dir / f).exists() for f in _RUN_FILES):
            continue
        summary = _read_json(run_dir / "summary.json", problems)
        manifest = _read_json(run_dir / "manifest.json", problems)
        config = _read_yaml(run_dir / "config.yaml", problems) or {}
        rows = read_jsonl(run_dir / "metrics.jsonl", problems)
        if summary is None and not config:
            problems.append(f"{run_dir}: no summary.json and no config.yaml, skipped")
            continue
        rec = make_run_record(run_dir.name, summary, config, manifest, rows, path=str(run_dir))
        rid = rec["run_id"]
        if rid in configs:
            problems.append(f"{run_dir}: duplicate run_id {rid}, skipped")
            continue
        records.append(rec)
        metrics.extend(metric_records(rid, rows))
        configs[rid] = config
        files = _mask_files(run_dir)
        if files:
            masks[rid] = files
    return build_store(records, metrics, configs, masks, f"results store {root}", problems)


def snapshot_label(path: Path) -> str:
    m = MASK_RE.search(Path(path).name)
    return f"{int(m.group(1))}% of t_max" if m else Path(path).stem
