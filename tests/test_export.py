"""Sparse export round trip: the NumPy-only loader reproduces the run's agent (same actions on the
same inputs, same Q_tot), runs without torch, and wins exactly as often on the same seeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mast import checkpoint
from mast.envs import make_env
from mast.experiment import Experiment
from mast.export import main as export_main
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.runner import EpisodeRunner, batch_agent_inputs
from mast.sparse_policy import SparsePolicy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["share", "per_agent"])
def exported(request, tmp_path_factory):
    from tests.conftest import compose_cfg

    tmp = tmp_path_factory.mktemp("export")
    extra = ["agent.share_params=false"] if request.param == "per_agent" else []
    cfg = compose_cfg(["method=mast", "sparsity=0.8", *extra], results_dir=str(tmp / "results"))
    out = Experiment(cfg).run()
    run_dir = Path(out["dir"])
    model = tmp / "model.npz"
    assert export_main([str(run_dir), "--out", str(model)]) == 0
    return run_dir, model


def _run_learner(run_dir: Path, sparsity: float = 0.8):
    cfg = OmegaConf.load(run_dir / "config.yaml")
    env = make_env(cfg, 4, 123)
    learner = build_learner(cfg, env.spec, torch.device("cpu"), Widths.from_config(cfg), sparsity)
    learner.load_state_dict(checkpoint.load(run_dir / "checkpoints" / "last.pt")["learner"])
    return cfg, env, learner


def _same_outputs_along_episodes(agent, policy: SparsePolicy, learner, env):
    """Step the run's agent (torch) and the loader (NumPy) over real SMAX episodes collected with
    exploration (so inputs vary): the loader builds its own inputs from the raw observations and
    last actions (equal to the training code's), same outputs, same greedy actions over
    available ones. Yields (episode, t, torch outputs, NumPy outputs) for further checks."""
    episodes, _ = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), 0).run(0.3)
    for ep in episodes:
        obs, acts = torch.from_numpy(ep.obs)[None], torch.from_numpy(ep.actions)[None]
        inputs = batch_agent_inputs(obs, acts, env.spec.n_actions)[0]  # [T+1, n, in]
        h_t, h_np = agent.initial_hidden(1), policy.initial_hidden(1)
        for t in range(ep.length):
            last = ep.actions[t - 1][None] if t else np.full((1, env.spec.n_agents), -1)
            own = policy.agent_inputs(ep.obs[t][None], last)
            np.testing.assert_array_equal(own, inputs[t][None].numpy())
            with torch.no_grad():
                q_t, h_t = agent(inputs[t][None], h_t)
            q_np, h_np = policy.forward(own, h_np)
            np.testing.assert_allclose(q_np, q_t.numpy(), rtol=1e-4, atol=1e-5)
            avail = ep.avail[t][None]
            greedy_t = q_t.masked_fill(~torch.from_numpy(avail), -float("inf")).argmax(-1)
            np.testing.assert_array_equal(np.where(avail, q_np, -np.inf).argmax(-1),
                                          greedy_t.numpy())
            yield ep, t, q_t, q_np


def test_same_actions_and_q_tot_as_the_run_agent(exported):
    run_dir, model = exported
    cfg, env, learner = _run_learner(run_dir)
    policy = SparsePolicy.load(model)
    for ep, t, q_t, q_np in _same_outputs_along_episodes(learner.agent, policy, learner, env):
        taken = ep.actions[t][None, :, None]
        with torch.no_grad():
            chosen = q_t.gather(-1, torch.from_numpy(taken)).squeeze(-1)
            qt = learner.nets["mixer"](chosen, torch.from_numpy(ep.state[t])[None])
        chosen_np = np.take_along_axis(q_np, taken, -1)[..., 0]
        np.testing.assert_allclose(policy.q_tot(chosen_np, ep.state[t][None]), qt.numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_loader_runs_without_torch_or_the_training_code(exported, tmp_path):
    _, model = exported
    code = f"""
import sys, importlib.util
sys.modules['torch'] = None; sys.modules['mast'] = None  # importing either would fail
spec = importlib.util.spec_from_file_location('sparse_policy', {str(ROOT / 'mast' / 'sparse_policy.py')!r})
sp = importlib.util.module_from_spec(spec); spec.loader.exec_module(sp)
import numpy as np
p = sp.SparsePolicy.load({str(model)!r})
m = p.meta['spec']
obs = np.zeros((2, m['n_agents'], m['obs_dim']), np.float32)
a, h = p.act(obs, -np.ones((2, m['n_agents']), int), np.ones((2, m['n_agents'], m['n_actions']), bool), p.initial_hidden(2))
print(a.shape)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("(2, ")


def test_export_is_smaller_and_wins_as_often_on_the_same_seeds(exported, tmp_path, capsys):
    run_dir, _ = exported
    model = tmp_path / "m.npz"
    assert export_main([str(run_dir), "--out", str(model), "--verify-episodes", "8"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["equal"] and res["win_rate_export"] == res["win_rate_run"]
    assert res["bytes_export"] < res["bytes_dense_export"] < res["bytes_checkpoint"]
    assert res["bytes_export"] < 0.5 * res["bytes_dense_float32"]  # 80% sparse
    meta = SparsePolicy.load(model).meta
    nnz = sum(v.get("nnz", 0) for v in meta["layers"].values())
    assert nnz > 0 and meta["config"]["method"]["name"] == "mast"


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("seed: 0\n")
    assert export_main([str(tmp_path / "run"), "--out", str(tmp_path / "x.npz")]) == 1
    assert "last.pt not found" in capsys.readouterr().err


def test_facmac_exports_its_actor_as_the_greedy_agent(tmp_path, capsys):
    """Discrete FACMAC: the archive holds the actor (masks kept) under `agent` and no mixer; the
    loader's greedy actions equal the run's on the same evaluation seeds."""
    from tests.conftest import compose_cfg

    cfg = compose_cfg(["algo=facmac", "method=mast", "sparsity=0.8", "algo.hidden_dim=16"],
                      results_dir=str(tmp_path / "results"))
    run_dir = Path(Experiment(cfg).run()["dir"])
    model = tmp_path / "facmac.npz"
    assert export_main([str(run_dir), "--out", str(model), "--verify-episodes", "8"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["equal"]
    policy = SparsePolicy.load(model)
    _, env, learner = _run_learner(run_dir)
    steps = list(_same_outputs_along_episodes(learner.nets["actor"], policy, learner, env))
    assert len(steps) > 0
    assert {n.split(".")[0] for n in policy.meta["layers"]} == {"agent"}
    assert policy.meta["mixer"] is None
    masks = checkpoint.load(run_dir / "checkpoints" / "last.pt")["learner"]["sparse"]["masks"]
    for name, info in policy.meta["layers"].items():
        if info["storage"] == "bitmask":
            assert info["nnz"] == int(masks[name.replace("agent.", "actor.", 1)].sum())
    with pytest.raises(ValueError, match="without a mixer"):
        policy.q_tot(np.zeros((1, policy.n_agents)), np.zeros((1, policy.meta["spec"]["state_dim"])))


def test_continuous_action_run_is_refused_in_one_line(tmp_path, capsys):
    from tests.conftest import compose_cfg

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")  # never read: refused before loading
    OmegaConf.save(compose_cfg(["algo=comix", "env=mamujoco"]), run / "config.yaml")
    assert export_main([str(run), "--out", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "continuous action space" in err and "facmac" in err
