"""``hydra/sweeper=critical``: find the critical sparsity of one algo/map/method configuration.

    python run.py -m hydra/sweeper=critical algo=qmix env.map=3m method=mast t_max=400000 \\
        hydra.sweeper.seeds='[0,1,2]' hydra.sweeper.grid='[0.5,0.7,0.8,0.9,0.95]'

Round 1 launches the dense baseline and the coarse grid (all seeds) through the configured
launcher (Ray by default) in one call; every further round launches the seeds of one bisection
level. The state (levels tried, win rates per seed, critical sparsity) is written after every
round to ``<results_dir>/_searches/<search_id>/search.json`` with a plot next to it. Relaunching
the same command resumes: levels already in the state are not launched again, and runs that
finished in an interrupted round are skipped by the results store (same run id).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.mast_critical_sweeper.search import SearchSpec, SearchState, key
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
SEARCH_DIR = "_searches"
# Overrides that do not change what is learned: passed to the jobs, left out of the search id.
try:  # the app's own list of keys that do not change what is learned (run ids skip them too)
    from mast.config import NON_SEMANTIC
except ImportError:  # another app: the generic ones
    NON_SEMANTIC = ("results_dir", "device", "progress", "wandb")
NOT_IN_ID = (*NON_SEMANTIC, "hydra.")


class CriticalSweeperError(CompactHydraException):
    """Bad sweeper input; one line naming the key and what is allowed."""


class CriticalSweeper(Sweeper):
    def __init__(self, grid, seeds, resolution, tolerance, relative, baseline, sparsity_key,
                 seed_key, objective, store_dir, max_rounds) -> None:
        self.spec = SearchSpec(sorted(float(s) for s in grid), [int(s) for s in seeds],
                               float(resolution), float(tolerance), bool(relative))
        try:
            self.spec.check()
        except ValueError as e:
            raise CriticalSweeperError(str(e)) from None
        self.baseline = list(baseline)
        self.sparsity_key, self.seed_key, self.objective = sparsity_key, seed_key, objective
        self.store_dir, self.max_rounds = store_dir, int(max_rounds)
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    # --- overrides ------------------------------------------------------------------------------
    def _fixed(self, arguments: list[str]) -> dict[str, str]:
        """key → 'key=value' of the command line; sweeps and the searched keys are refused."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        fixed: dict[str, str] = {}
        for o in parser.parse_overrides(arguments):
            k = o.get_key_element()
            if o.is_sweep_override():
                raise CriticalSweeperError(f"{k}: hydra/sweeper=critical searches "
                                           f"{self.sparsity_key} over seeds itself; allowed: "
                                           "single values only")
            if k in (self.sparsity_key, self.seed_key):
                raise CriticalSweeperError(f"{k} is set by the search; allowed: "
                                           "hydra.sweeper.grid / hydra.sweeper.seeds")
            fixed[k] = f"{k}={o.get_value_element_as_str()}"
        return fixed

    def _job(self, fixed: dict[str, str], level: float | None, seed: int) -> list[str]:
        ov = dict(fixed)
        if level is None:
            ov.update({o.split("=", 1)[0]: o for o in self.baseline})
        else:
            ov[self.sparsity_key] = f"{self.sparsity_key}={key(level)}"
        ov[self.seed_key] = f"{self.seed_key}={seed}"
        return list(ov.values())

    # --- where the state lives --------------------------------------------------------------------
    def _state_path(self, fixed: dict[str, str]) -> Path:
        root = self.store_dir or OmegaConf.select(self.config, "results_dir") or \
            self.config.hydra.sweep.dir
        fixed = {k: v for k, v in fixed.items() if not k.startswith(NOT_IN_ID)}
        blob = json.dumps({"fixed": sorted(fixed.values()), "baseline": self.baseline,
                           "spec": vars(self.spec), "objective": self.objective},
                          sort_keys=True)
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", "_".join(sorted(fixed.values())))[:80].strip("-")
        sid = f"critical_{slug or 'default'}_{hashlib.sha1(blob.encode()).hexdigest()[:8]}"
        return Path(root) / SEARCH_DIR / sid / "search.json"

    def _save(self, path: Path, state: SearchState, fixed: dict[str, str]) -> dict:
        out = state.to_dict() | {"search_id": path.parent.name, "overrides": list(fixed.values()),
                                 "baseline_overrides": self.baseline,
                                 "sparsity_key": self.sparsity_key}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        os.replace(tmp, path)
        try:
            from analysis.sparse_figures import plot_search

            plot_search(out, path.with_name("critical.png"))
        except ImportError:  # plotting is a convenience; the JSON is the result
            pass
        return out

    # --- what a job scored ----------------------------------------------------------------------
    def _objective_of(self, returned: Any, overrides: list[str]) -> float:
        """The job's `objective`; a run that reports none fails the search (a silent 0 would
        make every level pass a threshold of 0, or fail one above it)."""
        value = (returned or {}).get(self.objective) if isinstance(returned, dict) else None
        if value is None:
            raise CriticalSweeperError(
                f"hydra.sweeper.objective={self.objective}: the run {' '.join(overrides)} "
                f"reported no such value; allowed: a numeric key of its summary, e.g. "
                f"final_win_rate (SMAX/SMAC) or final_return")
        return float(value)

    def _check_relative(self, state: SearchState) -> None:
        base = state.mean(None)
        if self.spec.relative and base is not None and base <= 0:
            raise CriticalSweeperError(
                f"hydra.sweeper.relative=true: the baseline's mean {self.objective} is {base:.4g}, "
                "and a relative margin needs a positive one; allowed: hydra.sweeper.relative=false "
                "(tolerance in the objective's units)")

    def _check_objective(self) -> None:
        """Before any job: a win-rate search of an environment without a win condition."""
        try:
            from mast.envs.env_maps import has_win_condition
        except ImportError:  # another app
            return
        env = OmegaConf.select(self.config, "env.name")
        if self.objective == "final_win_rate" and env and not has_win_condition(str(env)):
            raise CriticalSweeperError(
                f"hydra.sweeper.objective=final_win_rate: env={env} has no win condition; "
                "allowed: final_return with hydra.sweeper.relative=false")

    # --- the loop ---------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        assert self.launcher is not None and self.config is not None
        self._check_objective()
        fixed = self._fixed(list(arguments))
        path = self._state_path(fixed)
        state = SearchState(self.spec)
        if path.exists():
            state = SearchState.from_dict(json.loads(path.read_text()), self.spec)
            log.info(f"critical: resuming {path.parent.name} ({len(state.rounds)} rounds done)")
        dry = bool(self.config.hydra.launcher.get("dry_run", False))
        Path(self.config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        job_idx, out = 0, state.to_dict() if dry else self._save(path, state, fixed)
        for _ in range(self.max_rounds):
            todo = state.next_jobs()
            if not todo:
                break
            batch = [self._job(fixed, lv, s) for lv, s in todo]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=job_idx)
            if dry:  # the plan of this round only; nothing is written
                log.info("critical: dry run, the next round depends on this one's win rates")
                return out
            job_idx += len(batch)
            for (lv, s), overrides, r in zip(todo, batch, results, strict=True):
                state.record(lv, s, self._objective_of(r.return_value, overrides))
            self._check_relative(state)
            state.rounds.append(sorted({key(lv) for lv, _ in todo}))
            out = self._save(path, state, fixed)
            log.info(f"critical: round {len(state.rounds)} {state.rounds[-1]} → levels "
                     f"{out['levels']}, threshold {out['threshold']:.4f}")
        log.info(f"critical: critical sparsity {out['critical_sparsity']} (first failing "
                 f"{out['first_failing']}), state in {path}")
        return out
