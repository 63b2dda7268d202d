"""Copy finished runs' compact records into the committed run archive (`docs/results/runs/`).

    python scripts/archive_runs.py results/*            # archive every finished run not yet there
    python scripts/archive_runs.py results/* --commit   # and commit each one as it is archived
    python scripts/archive_runs.py results/* --watch 120 --commit   # keep doing it while a sweep runs
    python scripts/archive_runs.py --restore results    # link archived runs into a fresh store

`--restore` is for a fresh machine: each finished archived run missing from the store is linked
into it, so relaunching a sweep (`scripts/paper_runs.sh` does it first) skips what the archive
already holds instead of training it a second time, and the store's tables include it.

Per run: config.yaml, manifest.json, metrics.jsonl, summary.json, eval_final.json (written first
by `mast.evaluate` when missing: 640 greedy episodes on SMAX, 32 on MA-MuJoCo, whose 1000-step
CEM episodes cost ≈10 s each on a core) and the last mask snapshot. A run whose evaluation fails
is reported and retried at the next scan; the watcher keeps going. Never
checkpoints, W&B files, locks or progress files: the archive is what `python -m analysis ...
--results docs/results/runs` needs on a fresh clone.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ("config.yaml", "manifest.json", "metrics.jsonl", "summary.json", "eval_final.json")


def finished(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError):
        return False


def eval_episodes(run_dir: Path, episodes: int, mujoco_episodes: int) -> int:
    """Greedy episodes for eval_final: fewer where an episode is 1000 CEM steps."""
    from omegaconf import OmegaConf

    env = OmegaConf.load(run_dir / "config.yaml").env.name
    return min(episodes, mujoco_episodes) if env == "mamujoco" else episodes


def ensure_eval(run_dir: Path, episodes: int) -> None:
    if (run_dir / "eval_final.json").exists() or not (run_dir / "checkpoints" / "last.pt").exists():
        return
    subprocess.run([sys.executable, "-m", "mast.evaluate", str(run_dir), "--episodes",
                    str(episodes)], cwd=ROOT, check=True, capture_output=True)


def archive(run_dir: Path, out: Path) -> Path:
    dest = out / run_dir.name
    tmp = out / f".{run_dir.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in RECORD:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, tmp / name)
    masks = sorted((run_dir / "masks").glob("mask_t*.npz"))
    if masks:
        (tmp / "masks").mkdir()
        shutil.copy2(masks[-1], tmp / "masks" / masks[-1].name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def commit(dest: Path) -> None:
    rel = str(dest.relative_to(ROOT))
    subprocess.run(["git", "add", rel], cwd=ROOT, check=True)
    for _ in range(30):  # another process may hold .git/index.lock for a moment
        done = subprocess.run(["git", "commit", "-q", "-m", f"run archive: {dest.name}", "--", rel],
                              cwd=ROOT, capture_output=True, text=True)
        if done.returncode == 0 or "nothing to commit" in done.stdout:
            return
        time.sleep(2)
    print(f"archive: could not commit {rel}: {done.stderr.strip()}", file=sys.stderr)


def restore(out: Path, results: Path) -> int:
    """Symlink every finished archived run that `results` lacks; returns how many were linked.
    A folder already there (a finished, partial or running copy) is never touched."""
    results.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in sorted(out.iterdir()) if out.is_dir() else []:
        link = results / src.name
        if src.name.startswith(".") or not finished(src) or link.exists() or link.is_symlink():
            continue
        link.symlink_to(src.resolve(), target_is_directory=True)
        n += 1
    return n


def sweep_once(patterns: list[str], out: Path, episodes: int, do_commit: bool,
               mujoco_episodes: int = 32) -> int:
    n = 0
    for run_dir in sorted({Path(p) for pat in patterns for p in glob.glob(pat)}):
        if not run_dir.is_dir() or not finished(run_dir) or run_dir.resolve().parent == out:
            continue  # (the last: a link --restore made to the archive itself)
        dest = out / run_dir.name
        if (dest / "summary.json").exists() and (dest / "eval_final.json").exists():
            continue
        try:
            ensure_eval(run_dir, eval_episodes(run_dir, episodes, mujoco_episodes))
        except subprocess.CalledProcessError as e:  # e.g. the run folder went away meanwhile
            print(f"archive: evaluating {run_dir.name} failed ({e.returncode}); retrying at the "
                  f"next scan: {(e.stderr or b'').decode(errors='replace')[-300:]}",
                  file=sys.stderr, flush=True)
            continue
        archive(run_dir, out)
        if do_commit:
            commit(dest)
        print(f"archived {run_dir.name}", flush=True)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", help="run folders or glob patterns (quote them with --watch)")
    ap.add_argument("--restore", type=Path, metavar="RESULTS",
                    help="link the archive's finished runs into this results store and exit")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "runs")
    ap.add_argument("--episodes", type=int, default=640, help="greedy episodes of eval_final")
    ap.add_argument("--mujoco-episodes", type=int, default=32,
                    help="greedy episodes of eval_final for MA-MuJoCo runs (1000-step episodes)")
    ap.add_argument("--commit", action="store_true", help="git commit each archived run")
    ap.add_argument("--watch", type=float, default=0, help="rescan every N seconds (0: once)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if args.restore is not None:
        print(f"restore: linked {restore(out, args.restore)} archived run(s) into {args.restore}")
        return 0
    if not args.runs:
        ap.error("give run folders or patterns to archive, or --restore RESULTS")
    while True:
        sweep_once(args.runs, out, args.episodes, args.commit, args.mujoco_episodes)
        if not args.watch:
            return 0
        time.sleep(args.watch)


if __name__ == "__main__":
    sys.exit(main())
