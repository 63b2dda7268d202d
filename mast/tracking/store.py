"""Results store: one folder per run (`results/<run_id>/`), every file written atomically
(temp file + rename) so a crash or a concurrent reader never sees half a file."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "jax", "jaxmarl", "hydra-core", "omegaconf", "ray", "wandb", "numpy")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunStore:
    """Files of one run. Metrics are appended one JSON line per evaluation; on resume the
    lines after the checkpoint's step are dropped so evaluations are never duplicated."""

    def __init__(self, root: str | Path, run_id: str):
        self.run_id = run_id
        self.dir = Path(root) / run_id
        self.metrics_path = self.dir / "metrics.jsonl"

    # --- manifest -----------------------------------------------------------------------------
    def read_json(self, name: str) -> dict | None:
        p = self.dir / name
        return json.loads(p.read_text()) if p.exists() else None

    def write_json(self, name: str, obj: dict) -> None:
        atomic_write_text(self.dir / name, json.dumps(obj, indent=2, default=str) + "\n")

    @property
    def status(self) -> str | None:
        m = self.read_json("manifest.json")
        return m["status"] if m else None

    def start(self, config_yaml: str, device: str, overrides: list[str] | None = None) -> None:
        old = self.read_json("manifest.json") or {}
        (self.dir / "error.txt").unlink(missing_ok=True)  # stale from an earlier failed attempt
        atomic_write_text(self.dir / "config.yaml", config_yaml)
        self.write_json("manifest.json", {
            "run_id": self.run_id, "status": "running", "git_commit": git_commit(),
            "packages": package_versions(), "device": device,
            "start_time": old.get("start_time", now_iso()), "end_time": None,
            "resumed": bool(old), "host": os.uname().nodename,
            "overrides": overrides if overrides is not None else old.get("overrides")})

    def finish(self, status: str, **provenance: str) -> None:
        """Final status; `provenance` values (e.g. which GRU recurrence ran) accumulate over the
        run's segments as sorted lists, so a resumed run shows every one it used."""
        m = self.read_json("manifest.json") or {"run_id": self.run_id}
        m.update(status=status, end_time=now_iso())
        for key, value in provenance.items():
            m[key] = sorted(set(m.get(key, [])) | {value})
        self.write_json("manifest.json", m)

    # --- metrics ------------------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line]

    def append_metrics(self, row: dict[str, Any]) -> None:
        rows = self.read_metrics() + [row]
        self._write_metrics(rows)

    def truncate_metrics_after(self, t_env: int) -> list[dict[str, Any]]:
        rows = [r for r in self.read_metrics() if r["t_env"] <= t_env]
        self._write_metrics(rows)
        return rows

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
