"""Every YAML composes; bad input fails before any work with one clear line naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from mast.config import ALGO_SCHEMAS, ConfigError, run_id, semantic_dict, validate
from mast.envs.env_maps import ACTION_KINDS
from mast.sparse.tickets import RANDOM, REQUIRED

from .conftest import ROOT, compose_cfg

GROUPS = {g: sorted(p.stem for p in (ROOT / "conf" / g).glob("*.yaml"))
          for g in ("algo", "env", "method", "ablation", "preset")}


def _partner(group: str, option: str) -> list[str]:
    """An algo acts only in envs of its action kind (and vice versa): pair it with the first one."""
    kind = (ALGO_SCHEMAS[option].action_kinds[0] if group == "algo"
            else ACTION_KINDS[option] if group == "env" else "discrete")
    if kind == "discrete":
        return []
    other = "env" if group == "algo" else "algo"
    names = ACTION_KINDS if other == "env" else {n: s.action_kinds[0] for n, s in ALGO_SCHEMAS.items()}
    return [f"{other}={min(n for n, k in names.items() if k == kind)}"]


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_yaml_composes_and_validates(group, option):
    cfg = compose_cfg([f"{group}={option}", *_partner(group, option)], tiny=False)
    if group == "preset":  # a preset changes the budget of the default run
        assert cfg.t_max < compose_cfg(tiny=False).t_max
    else:
        assert cfg[group].name == option
    validate(cfg)


def test_defaults_are_the_paper_setup():
    cfg = compose_cfg(tiny=False)
    assert (cfg.algo.name, cfg.env.name, cfg.env.map, cfg.method.name) == ("qmix", "smax", "3m", "mast")
    assert cfg.sparsity == 0.9 and cfg.t_max == 2_050_000 and cfg.train.lr == 5e-4
    assert cfg.method.batch_offline + cfg.method.batch_online == cfg.train.batch_size_episodes


def test_run_id_is_semantic():
    a = compose_cfg(["seed=1"])
    assert run_id(a) == run_id(compose_cfg(["seed=1", "wandb.mode=offline", "device=cpu"]))
    assert run_id(a) != run_id(compose_cfg(["seed=2"]))
    # dense runs ignore the sparsity level, so a sweep over sparsity runs dense once
    assert run_id(compose_cfg(["method=dense", "sparsity=0.5"])) == run_id(
        compose_cfg(["method=dense", "sparsity=0.95"]))


BAD_VALUES = [
    ("sparsity=1.0", "sparsity"), ("sparsity=-0.1", "sparsity"), ("env.map=no_such_map", "env.map"),
    ("env.map=2c_vs_64zg", "env.map"), ("t_max=0", "t_max"), ("t_max=-5", "t_max"),
    ("test_interval=0", "test_interval"), ("test_nepisode=0", "test_nepisode"),
    ("env.n_envs=0", "env.n_envs"), ("device=tpu", "device"), ("wandb.mode=sometimes", "wandb.mode"),
    ("method.topology=magic", "method.topology"), ("method.operator=min", "method.operator"),
    ("method.buffer=triple", "method.buffer"), ("method.distribution=gauss", "method.distribution"),
    ("algo.td_lambda=1.5", "algo.td_lambda"), ("train.gamma=2", "train.gamma"),
    ("train.lr=0", "train.lr"), ("algo=wqmix algo.weighting=xw", "algo.weighting"),
    ("train.optimizer=sgdx", "train.optimizer"), ("seed=-1", "seed"),
    ("method.sm_omega=0", "method.sm_omega"), ("final_window=0", "final_window"),
    ("algo=facmac algo.seq_window_steps=10", "algo.seq_window_steps"),
    ("method.operator_scale=degrees", "method.operator_scale"),
    ("algo=wqmix method.operator_scale=mixer_slope", "method.operator_scale"),
]


@pytest.mark.parametrize("override,key", BAD_VALUES)
def test_bad_values_name_the_key(override, key):
    cfg = compose_cfg(override.split())
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    msg = str(e.value)
    assert key in msg and "\n" not in msg
    assert "allowed" in msg or "must be" in msg


BAD_STRUCTURE = [("algo=qmixx", "algo"), ("method=magic", "method"), ("env=mujoco", "env"),
                 ("no_such_key=1", "no_such_key"), ("method.no_such=1", "no_such"),
                 ("sparsity=abc", "sparsity")]


@pytest.mark.parametrize("override,key", BAD_STRUCTURE)
def test_bad_structure_is_rejected_by_hydra(override, key):
    with pytest.raises((HydraException, OmegaConfBaseException)) as e:
        compose_cfg([override])
    assert key in str(e.value)


def test_cli_bad_input_exits_nonzero_before_work(tmp_path):
    out = subprocess.run([sys.executable, "run.py", "sparsity=1.5", f"results_dir={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "sparsity=1.5 is out of range; allowed: 0 <= sparsity < 1" in out.stdout + out.stderr
    assert not any(Path(tmp_path).iterdir())  # nothing started, nothing written


def test_cli_unknown_group_option_lists_choices(tmp_path):
    out = subprocess.run([sys.executable, "run.py", "method=magic", f"results_dir={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    err = out.stdout + out.stderr
    assert "method" in err and "mast" in err and "rigl" in err


def test_sparse_method_with_zero_sparsity_points_to_dense():
    for method in ("rigl", "mast", "tiny"):
        with pytest.raises(ConfigError, match=f"sparsity=0 with method={method} is a dense "
                                              "network; use method=dense"):
            validate(compose_cfg([f"method={method}", "sparsity=0"]))
    validate(compose_cfg(["method=dense", "sparsity=0"]))  # dense takes any sparsity


def test_comix_swimmer_preset_trains_enough_to_evolve_and_track_targets():
    """The 2-hour COMIX preset's budget arithmetic (Swimmer episodes are always 1000 steps):
    RigL must get several topology updates before its cut-off and the τ targets must forget
    most of their initialisation — the two things an earlier plan (≈245 updates) silently lost —
    without tracking faster than FACMAC's τ per update."""
    cfg = compose_cfg(["+experiment=comix_swimmer_2h_v2", "method=mast"], tiny=False)
    validate(cfg)
    assert (cfg.algo.name, cfg.env.scenario, cfg.env.agent_conf) == ("comix", "ManySegmentSwimmer", "10x2")
    episodes = cfg.t_max / 1000
    updates = episodes * cfg.train.updates_per_episode
    topology_updates = cfg.method.end_fraction * updates / cfg.method.update_interval_episodes
    assert topology_updates >= 10
    assert (1 - cfg.algo.target_tau) ** updates < 0.05
    assert cfg.algo.target_tau <= 0.001  # FACMAC's τ per update (12× that diverged: README)
    assert cfg.final_window * cfg.test_interval <= 0.25 * cfg.t_max
    assert cfg.algo.start_steps >= 10_000  # FACMAC's uniform warm-up
    # FACMAC's 100 transitions per update, and the dual buffer's batch adds up to it
    assert cfg.train.batch_size_episodes * cfg.algo.seq_window_steps == 100
    assert cfg.method.batch_offline + cfg.method.batch_online == cfg.train.batch_size_episodes


def test_archived_runs_keep_their_run_ids():
    """Relaunching an archived run's command must find its folder: composing the manifest's
    overrides with today's schemas gives the archived run id (a new config key that changed
    every id would silently orphan a store of finished runs; see LATER_KEYS)."""
    archive = ROOT / "docs" / "results" / "runs"
    runs = sorted(archive.glob("*/manifest.json"))
    assert runs
    for manifest in runs:
        overrides = [_relocated(o, archive) for o in json.loads(manifest.read_text())["overrides"]]
        assert run_id(compose_cfg(overrides, tiny=False)) == manifest.parent.name


def _relocated(override: str, archive: Path) -> str:
    """A ticket's source as a relaunch on another machine names it: the manifest keeps the
    absolute path it was read from (another checkout's archive); its archived copy here has the
    same mask bytes, hence the same run id."""
    key, _, value = override.partition("=")
    if key == "method.mask_from" and value not in (RANDOM, REQUIRED) and not Path(value).exists():
        return f"{key}={archive / Path(value).name}"
    return override


def test_later_keys_enter_the_run_id_only_when_set():
    base = compose_cfg(["algo=facmac"])
    assert "operator_scale" not in semantic_dict(base)["method"]
    scaled = compose_cfg(["algo=facmac", "method.operator_scale=mixer_slope"])
    assert semantic_dict(scaled)["method"]["operator_scale"] == "mixer_slope"
    assert run_id(scaled) != run_id(base)
    # with the max operator (dense and most baselines) the units change nothing, nor the id
    assert run_id(compose_cfg(["algo=facmac", "method=dense", "method.operator_scale=mixer_slope"])
                  ) == run_id(compose_cfg(["algo=facmac", "method=dense"]))
    replaced = compose_cfg(["algo=facmac", "train.sample_with_replacement=true"])
    assert semantic_dict(replaced)["train"]["sample_with_replacement"] is True
    assert run_id(replaced) != run_id(base)


def test_configs_stored_before_a_later_key_still_validate():
    """An archived run's config.yaml predates `method.operator_scale`: it must still validate
    (mast.evaluate, tickets and resumed sweeps read stored configs)."""
    from omegaconf import OmegaConf

    stored = OmegaConf.load(ROOT / "docs" / "results" / "runs"
                            / "facmac_smax-3m_dense_sp0_none_seed0_940a8022" / "config.yaml")
    assert "operator_scale" not in stored.method
    validate(stored)
