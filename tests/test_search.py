"""Critical-sparsity search (hydra/sweeper=critical) on a cheap synthetic objective: it finds
the known threshold within the resolution, and a search killed mid-way resumes without running
a finished run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hydra_plugins.mast_critical_sweeper.search import SearchSpec, SearchState

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "critical_app.py"
sys.path.insert(0, str(APP.parent))
from critical_app import win_rate  # noqa: E402


def _search(threshold: float, spec: SearchSpec) -> SearchState:
    state = SearchState(spec)
    for _ in range(50):
        jobs = state.next_jobs()
        if not jobs:
            return state
        for lv, seed in jobs:
            state.record(lv, seed, win_rate("dense" if lv is None else "mast", lv or 0.0,
                                            threshold))
        state.rounds.append(sorted({str(lv) for lv, _ in jobs}))
    raise AssertionError("search did not stop")


@pytest.mark.parametrize("threshold", [0.55, 0.83, 0.905, 0.93])
@pytest.mark.parametrize("resolution", [0.01, 0.002])
def test_finds_the_known_threshold_within_the_resolution(threshold, resolution):
    spec = SearchSpec([0.5, 0.7, 0.8, 0.9, 0.95], [0, 1], resolution)
    d = _search(threshold, spec).to_dict()
    assert d["done"] and d["critical_sparsity"] <= threshold < d["first_failing"]
    assert d["first_failing"] - d["critical_sparsity"] <= resolution + 1e-9
    assert len(d["rounds"]) <= 1 + 7  # grid round + log2(0.2 / 0.002) bisections


def test_edges_of_the_grid():
    """Every grid level failing (or passing) is bisected towards dense at 0 (or towards 1),
    so the answer does not depend on the grid holding a passing and a failing level."""
    spec = SearchSpec([0.5, 0.9], [0], 0.01)
    for threshold in (0.3, 0.004, 0.95, 0.999):
        d = _search(threshold, spec).to_dict()
        crit, fail = d["critical_sparsity"], d["first_failing"]
        assert d["done"], threshold
        assert (crit or 0.0) <= threshold < (1.0 if fail is None else fail), (threshold, d)
        assert (1.0 if fail is None else fail) - (crit or 0.0) <= 0.01 + 1e-9, (threshold, d)
    assert _search(0.004, spec).to_dict()["critical_sparsity"] is None  # below the resolution
    assert _search(0.999, spec).to_dict()["first_failing"] is None


def test_bad_spec_is_one_line():
    with pytest.raises(ValueError, match=r"hydra.sweeper.grid=\[1.2\]"):
        SearchSpec([1.2], [0]).check()


def _launch(tmp_path: Path, *extra: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(APP), "-m", f"results_dir={tmp_path / 'results'}",
           f"hydra.sweep.dir={tmp_path / 'multirun'}", *extra]
    env = os.environ | {"CRITICAL_KILL_AFTER": str(kill_after)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=env)


def test_hydra_sweeper_resumes_after_a_kill(tmp_path):
    killed = _launch(tmp_path, kill_after=13)  # SIGKILL during round 2 (after 12 grid runs)
    assert killed.returncode == -9, killed.stderr[-2000:]
    [state_file] = (tmp_path / "results" / "_searches").glob("*/search.json")
    partial = json.loads(state_file.read_text())
    assert len(partial["rounds"]) == 1 and not partial["done"]
    done = _launch(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    final = json.loads(state_file.read_text())  # same search id: resumed, not restarted
    assert final["done"] and final["critical_sparsity"] <= 0.83 < final["first_failing"]
    assert final["first_failing"] - final["critical_sparsity"] <= 0.01 + 1e-9
    runs = Counter((tmp_path / "results" / "finished.log").read_text().split())
    assert runs and max(runs.values()) == 1  # nothing trained twice
    assert len(runs) == 2 * (1 + len(final["levels"]))  # 2 seeds × (baseline + levels)
    assert (state_file.parent / "critical.png").exists()


def test_sweeps_of_the_searched_key_are_refused(tmp_path):
    out = _launch(tmp_path, "sparsity=0.5,0.9")
    assert out.returncode != 0 and "sparsity: hydra/sweeper=critical searches" in out.stderr


@pytest.mark.parametrize("extra, message", [
    (["hydra.sweeper.objective=final_score"],
     "hydra.sweeper.objective=final_score: the run "),
    (["hydra.sweeper.objective=final_return", "return_shift=1.0"],
     "hydra.sweeper.relative=true: the baseline's mean final_return is -0.1"),
])
def test_a_score_the_rule_cannot_use_stops_the_search(tmp_path, extra, message):
    """A run without the objective (it would count as 0) or a negative baseline under the
    relative rule (its threshold would lie above it) stops the search with one line, state
    unwritten, instead of reporting a critical sparsity."""
    out = _launch(tmp_path, *extra, "hydra.sweeper.grid=[0.5]")
    assert out.returncode != 0 and message in out.stderr, out.stderr[-2000:]
    [state_file] = (tmp_path / "results" / "_searches").glob("*/search.json")
    assert json.loads(state_file.read_text())["rounds"] == []


def test_a_win_rate_search_without_a_win_condition_is_refused_up_front(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "-m", "hydra/sweeper=critical", "algo=comix",
         "env=mamujoco", f"results_dir={tmp_path}", f"hydra.sweep.dir={tmp_path / 'm'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode != 0
    assert ("hydra.sweeper.objective=final_win_rate: env=mamujoco has no win condition; "
            "allowed: final_return") in out.stderr, out.stderr[-2000:]
    assert not any(tmp_path.glob("_searches/*"))
