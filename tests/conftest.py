"""Shared fixtures: compose the real Hydra config and shrink it to a tiny budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

import mast.config  # noqa: F401  (registers the schemas in Hydra's ConfigStore)

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# Small enough for seconds per run on 2 CPU cores, big enough that updates, target syncs,
# topology updates, evaluations and checkpoints all happen.
TINY = [
    "t_max=400", "test_interval=200", "test_nepisode=4", "test_n_envs=4", "env.n_envs=4",
    "checkpoint_interval=200", "train.batch_size_episodes=4", "train.buffer_capacity_episodes=64",
    "train.target_update_interval_episodes=8", "method.update_interval_episodes=4",
    "method.online_capacity_episodes=8", "method.batch_offline=2", "method.batch_online=2",
    "method.t0_env_steps=150", "method.rlx2_min_capacity_episodes=8",
    "method.rlx2_check_interval_episodes=8", "algo.central_hidden_dim=32",
    "wandb.mode=disabled", "progress=none", "final_window=2",
]


def compose_cfg(overrides: list[str] = (), tiny: bool = True, results_dir: str | None = None
                ) -> DictConfig:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=(TINY if tiny else []) + list(overrides))
    if not any(o.startswith("results_dir=") for o in overrides):
        with open_dict(cfg):
            cfg.results_dir = results_dir or "/tmp/mast-test-results"
    OmegaConf.set_struct(cfg, True)
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str) -> DictConfig:
        return compose_cfg(list(overrides), results_dir=str(tmp_path / "results"))

    return make
