"""One training run, readable top to bottom:

    collect → store → sample → update (+ topology step) → target sync → evaluate → log → checkpoint

`Experiment.run()` returns `{"status", "run_id", "final_win_rate", "final_return"}`; a finished run
found in the results store is reported as skipped, an interrupted one resumes from its last
checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mast import accounting, checkpoint
from mast.config import effective_sparsity, run_id, semantic_dict
from mast.envs import env_maps, make_env
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.modules import fused_gru
from mast.registry import LEARNERS
from mast.replay import collate, make_buffer
from mast.runner import EpisodeRunner
from mast.sweep import PROGRESS_FILE
from mast.tracking.console import Progress
from mast.tracking.lock import ATTEMPT_ENV, LockLost, RunLock
from mast.tracking.store import RunStore
from mast.tracking.wandb_sink import WandbSink

log = logging.getLogger("mast")
SNAPSHOT_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


class Diverged(RuntimeError):
    pass


@dataclass
class Counters:
    """Progress counters; units in the names (env steps, episodes, updates)."""

    t_env: int = 0
    episodes: int = 0
    last_test_t_env: int = -(10**12)
    last_ckpt_t_env: int = 0
    last_target_sync_episode: int = 0
    snapshots_done: int = 0
    flops_spent: float = 0.0
    wall_s: float = 0.0


def task_overrides() -> list[str] | None:
    """The command-line overrides that made this run (recorded so reports can print the exact
    command that fills a missing cell); None outside Hydra (tests, notebooks)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return list(HydraConfig.get().overrides.task)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch sees no GPU; use device=auto or device=cpu")
    return torch.device(name)


class Experiment:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.run_id = run_id(cfg)
        self.store = RunStore(cfg.results_dir, self.run_id)
        self.sparsity = effective_sparsity(cfg)

    # --- top level ------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train (or resume) the run under its lock; a finished run is skipped, a run that another
        live process trains raises RunLocked before anything is written."""
        if self.store.status == "finished":
            return self._skipped()
        stale_s = self.cfg.lock_stale_s
        # a retried job (its worker died) waits out the dead process's heartbeat on another host
        wait_s = stale_s * 1.1 if int(os.environ.get(ATTEMPT_ENV, "1")) > 1 else 0.0
        with RunLock(self.store.dir, self.run_id, stale_s, wait_s) as self.lock:
            if self.store.status == "finished":  # finished while we waited for the lock
                return self._skipped()
            return self._run_locked()

    def _skipped(self) -> dict:
        summary = self.store.read_json("summary.json") or {}
        log.info("run %s already finished: skipped", self.run_id)
        return {"status": "skipped", "run_id": self.run_id,
                "final_win_rate": summary.get("final_win_rate"),
                "final_return": summary.get("final_return")}

    def _run_locked(self) -> dict:
        self._setup()
        status: str | None = "failed"
        try:
            self._train()
            status = "finished"
        except Diverged as e:
            status = "diverged"
            log.error("run %s diverged: %s", self.run_id, e)
        except LockLost:
            status = None  # another process trains the run now: write nothing more
            raise
        except BaseException:
            if self.lock.holds():
                (self.store.dir / "error.txt").write_text(traceback.format_exc())
            raise
        finally:
            summary = self._close(status)
        return {"status": status, "run_id": self.run_id,
                "final_win_rate": summary["final_win_rate"],
                "final_return": summary.get("final_return"), "dir": str(self.store.dir)}

    def _close(self, status: str | None) -> dict:
        """Record how the run ended; a process that lost its lock (status None) writes nothing."""
        summary: dict = {}
        if status is not None and self.lock.holds():
            self.store.finish(status, gru_recurrence=fused_gru.in_use())
            summary = self._write_summary(status)
            self.wandb.summary(summary)
        self.wandb.finish(exit_code=0 if status == "finished" else 1)
        self.progress.close()
        return summary

    def _setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.env = make_env(cfg, cfg.env.n_envs, cfg.seed)
        self.test_env = make_env(cfg, min(cfg.test_n_envs, cfg.test_nepisode), cfg.seed + 100_003)
        self.spec = self.env.spec
        self.learner = build_learner(cfg, self.spec, self.device, self._widths(), self.sparsity)
        self.buffer = make_buffer(cfg.method, cfg.train)
        if hasattr(self.buffer, "policy_distance_fn"):
            self.buffer.policy_distance_fn = self._policy_distance
        self.runner = EpisodeRunner(self.env, self.learner, self.spec, self.device, cfg.seed)
        self.test_runner = EpisodeRunner(self.test_env, self.learner, self.spec,
                                         self.device, cfg.seed + 1)
        self.rng = np.random.default_rng(cfg.seed)
        self.c = Counters()
        algo, sizes = accounting.accounting_name(cfg.algo), accounting.config_sizes(cfg)
        densities = self._layer_densities(algo, sizes)
        self.resources = accounting.resource_ratios(algo, self.spec, self.sparsity, sizes,
                                                    densities)
        self.flops_per_update = accounting.train_flops_per_update(
            algo, self.spec, self.sparsity, cfg.train.batch_size_episodes, sizes, densities)
        self.prev_masks = None
        self._resume_or_start()
        config = semantic_dict(cfg) | {"run_id": self.run_id}
        self.wandb = WandbSink(cfg, self.run_id, config, str(self.store.dir))
        self.progress = Progress(cfg.t_max, self.c.t_env, cfg.progress,
                                 progress_file=self.store.dir / PROGRESS_FILE,
                                 score="win_rate" if self._score_key == "test_win_rate" else "return")

    def _layer_densities(self, algo: str,
                         sizes: accounting.NetworkSizes) -> dict[str, float] | None:
        """The masks' per-layer densities when they are not the uniform budget (ERK, exempt
        layers, per-unit-type densities, a ticket of such a run); None keeps the exact uniform
        accounting."""
        if self.learner.sparse is None:
            return None
        from mast.sparse.distribution import layer_active_counts
        from mast.sparse.masks import sparsifiable_shapes

        shapes = sparsifiable_shapes(self.learner.nets)
        active = {n: int(m.sum()) for n, m in self.learner.sparse.masks.masks.items()}
        if active == layer_active_counts(shapes, self.sparsity):
            return None
        counts = {n: (active.get(n, math.prod(s)), math.prod(s)) for n, s in shapes.items()}
        return accounting.mask_densities(algo, self.spec, counts, sizes)

    def _widths(self) -> Widths:
        """Tiny: shrink every hidden width by one factor so the parameter count matches the
        sparse model of the same sparsity (uniform distribution, biases dense)."""
        configured = Widths.from_config(self.cfg)
        if not self.cfg.method.tiny:
            return configured
        from mast.sparse import solve_width_scale, target_param_count

        learner_cls = LEARNERS.get(self.cfg.algo.learner)

        def build(w: Widths) -> torch.nn.Module:
            return learner_cls.build_nets(self.cfg, self.spec, w)

        full = build(configured)
        target = target_param_count(full, self.sparsity, tuple(self.cfg.method.exempt))
        count = lambda c: sum(p.numel() for p in build(configured.scaled(c)).parameters())  # noqa: E731
        return configured.scaled(solve_width_scale(count, target))

    # --- the loop -------------------------------------------------------------------------------
    def _train(self) -> None:
        cfg, c = self.cfg, self.c
        t_start = time.time() - c.wall_s
        while c.t_env < cfg.t_max:
            episodes, rollout = self.runner.run(self._epsilon(), cfg.train.gamma)  # collect
            self.buffer.insert(episodes)  # store
            c.t_env += rollout.env_steps
            c.episodes += len(episodes)
            train_stats = self._updates(len(episodes))  # sample → update (+ topology)
            if c.episodes - c.last_target_sync_episode >= cfg.train.target_update_interval_episodes:
                self.learner.sync_target()
                c.last_target_sync_episode = c.episodes
            c.wall_s = time.time() - t_start
            if cfg.fail_at_t_env is not None and c.t_env >= cfg.fail_at_t_env:
                raise RuntimeError(f"fail_at_t_env={cfg.fail_at_t_env} reached (test hook)")
            if c.t_env - c.last_test_t_env >= cfg.test_interval or c.t_env >= cfg.t_max:
                self._evaluate(train_stats | {"train/win_rate": rollout.win_rate})  # → log
            self._snapshot_masks()
            if c.t_env - c.last_ckpt_t_env >= cfg.checkpoint_interval or c.t_env >= cfg.t_max:
                self._save_checkpoint()  # checkpoint
            self.lock.ensure_held()
            self.progress.update(c.t_env, self._last_score)

    def _updates(self, n_episodes: int) -> dict:
        stats: dict = {}
        n = max(1, round(n_episodes * self.cfg.train.updates_per_episode))
        for _ in range(n):
            if not self.buffer.ready():
                break
            batch = self.learner.make_batch(self.buffer.sample_batch(self.rng))
            stats = self.learner.update(batch, self.c.t_env)
            self.c.flops_spent += self.flops_per_update
            if not math.isfinite(stats["train/loss"]):
                raise Diverged(f"non-finite loss at t_env={self.c.t_env}")
        return stats

    def _epsilon(self) -> float:
        """The learner's exploration level now (ε for discrete learners, σ for COMIX)."""
        return self.learner.exploration(self.c.t_env)

    # --- evaluation and logging -----------------------------------------------------------------
    _last_score: float | None = None  # latest test score shown by the progress line

    @property
    def _score_key(self) -> str:
        """The test metric a run is judged by: the win rate, or the return where no one wins."""
        return ("test_win_rate" if env_maps.has_win_condition(self.cfg.env.name)
                else "test_return_mean")

    def _evaluate(self, train_stats: dict) -> None:
        cfg, c = self.cfg, self.c
        episodes, wins, rets, disc = [], [], [], []
        while len(episodes) < cfg.test_nepisode:
            eps, st = self.test_runner.run(0.0, cfg.train.gamma)
            episodes += eps
            wins.append(st.win_rate * st.episodes), rets.append(st.return_mean * st.episodes)
            disc.append(st.return_discounted_mean * st.episodes)
        n = len(episodes)
        row = {"t_env": c.t_env, "episode": c.episodes, "updates": self.learner.n_updates,
               "test_win_rate": sum(wins) / n, "test_return_mean": sum(rets) / n,
               "test/return_discounted": sum(disc) / n,
               "test/q_estimate": self.learner.q_estimate(collate(episodes, self.device)),
               "train/epsilon": min(self._epsilon(), 1e9), **train_stats,  # ∞: uniform warm-up
               "sparse/flops_spent": c.flops_spent, "timing/wall_s": c.wall_s,
               "timing/env_steps_per_s": self.progress.steps_per_s(c.t_env)}
        row.update(self._sparsity_stats())
        self.lock.ensure_held()  # before every write: a process frozen past lock_stale_s stops
        self.store.append_metrics(row)
        self.wandb.log(row, step=c.t_env)
        c.last_test_t_env = c.t_env
        self._last_score = row[self._score_key]

    def _sparsity_stats(self) -> dict:
        sp = self.learner.sparse
        if sp is None:
            return {"sparsity": 0.0}
        masks = sp.masks
        out = {"sparsity": 1.0 - masks.density()}
        out.update({f"sparse/density/{k}": v for k, v in masks.layer_densities().items()})
        if self.prev_masks is not None:
            out["sparse/mask_change"] = masks.change_fraction(self.prev_masks)
        self.prev_masks = type(masks)(masks={k: v.clone() for k, v in masks.masks.items()})
        return out

    def _snapshot_masks(self) -> None:
        sp, c = self.learner.sparse, self.c
        while (c.snapshots_done < len(SNAPSHOT_FRACTIONS)
               and c.t_env >= SNAPSHOT_FRACTIONS[c.snapshots_done] * self.cfg.t_max):
            if sp is not None:
                pct = round(100 * SNAPSHOT_FRACTIONS[c.snapshots_done])
                path = self.store.dir / "masks" / f"mask_t{pct:03d}.npz"
                path.parent.mkdir(parents=True, exist_ok=True)
                self.lock.ensure_held()
                np.savez_compressed(path, **sp.masks.to_numpy())
            c.snapshots_done += 1

    def _write_summary(self, status: str) -> dict:
        cfg = self.cfg
        rows = self.store.read_metrics()
        window = [r["test_win_rate"] for r in rows[-cfg.final_window:]]
        returns = [r["test_return_mean"] for r in rows[-cfg.final_window:]]
        if not env_maps.has_win_condition(cfg.env.name):
            window = []  # no win condition (MA-MuJoCo): final_return is the score
        summary = {"run_id": self.run_id, "algo": cfg.algo.name, "env": cfg.env.name,
                   "map": cfg.env.map, "method": cfg.method.name, "ablation": cfg.ablation.name,
                   "sparsity": self.sparsity, "seed": cfg.seed, "t_max": cfg.t_max,
                   "status": status, "final_win_rate": float(np.mean(window)) if window else None,
                   "final_return": float(np.mean(returns)) if returns else None,
                   "final_window": len(returns), "n_evals": len(rows), **self.resources}
        self.store.write_json("summary.json", summary)
        return summary

    # --- checkpoint / resume ----------------------------------------------------------------------
    def _ckpt_path(self) -> Path:
        return self.store.dir / "checkpoints" / "last.pt"

    def _save_checkpoint(self) -> None:
        state = {"learner": self.learner.state_dict(), "counters": vars(self.c).copy(),
                 "rng": {"torch": torch.get_rng_state(), "runner": self.runner.gen.get_state(),
                         "test_runner": self.test_runner.gen.get_state(),
                         "numpy": checkpoint.numpy_rng_state(self.rng),
                         "env": torch.from_numpy(np.array(self.env.get_rng_state())),
                         "test_env": torch.from_numpy(np.array(self.test_env.get_rng_state()))}}
        if self.cfg.save_buffer:
            state["buffer"] = self.buffer.state_dict()
        self.lock.ensure_held()
        checkpoint.save(self._ckpt_path(), state)
        self.c.last_ckpt_t_env = self.c.t_env

    def _resume_or_start(self) -> None:
        yaml = OmegaConf.to_yaml(self.cfg, resolve=True)
        found = checkpoint.load_latest(self._ckpt_path(), required=("learner", "counters", "rng"))
        if found is not None:
            state, _ = found
            self.learner.load_state_dict(state["learner"])
            self.c = Counters(**state["counters"])
            rng = state["rng"]
            torch.set_rng_state(rng["torch"])
            self.runner.gen.set_state(rng["runner"])
            self.test_runner.gen.set_state(rng["test_runner"])
            checkpoint.set_numpy_rng_state(self.rng, rng["numpy"])
            self.env.set_rng_state(rng["env"].numpy())
            self.test_env.set_rng_state(rng["test_env"].numpy())
            if "buffer" in state:
                self.buffer.load_state_dict(state["buffer"])
            rows = self.store.truncate_metrics_after(self.c.t_env)
            self._last_score = rows[-1][self._score_key] if rows else None
            log.info("resuming %s from t_env=%d", self.run_id, self.c.t_env)
        elif self.store.dir.exists():
            self.store.truncate_metrics_after(-1)  # started but never checkpointed: start over
        self.store.start(yaml, str(self.device), overrides=task_overrides())

    def _policy_distance(self, episodes) -> float:
        """RLx2 policy distance of stored episodes, as the learner defines it for its actions."""
        return self.learner.policy_distance(collate(episodes, self.device))
