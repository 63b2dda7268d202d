"""COMIX on the real Multi-Agent MuJoCo environments: every sparse-training method runs on
ManySegmentSwimmer 10x2 and Humanoid 9|8 with sparsity held at every evaluation; CEM, the
operators over CEM candidates, action bounds, RLx2's policy distance and the soft targets."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from mast.cem import cem_maximise
from mast.envs.mamujoco_maps import PAPER_SPECS
from mast.experiment import Experiment
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.replay import collate
from mast.replay.episodes import Episode

from .conftest import ROOT
from .test_mamujoco import COMIX_TINY, one_torch_thread  # noqa: F401  (fixture)

METHODS = sorted(p.stem for p in (ROOT / "conf/method").glob("*.yaml") if p.stem != "ticket")
SCENARIOS = {"swimmer": ["env.scenario=ManySegmentSwimmer", "env.agent_conf=10x2"],
             "humanoid": ["env.scenario=Humanoid", "env.agent_conf=9|8"]}
BUDGET = ["t_max=200", "test_interval=100", "test_nepisode=2", "test_n_envs=2"]


def _rows(exp: Experiment) -> list[dict]:
    return [json.loads(x) for x in (exp.store.dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("scenario,method", [(s, m) for s in SCENARIOS for m in METHODS])
def test_every_method_runs_and_holds_sparsity(tiny_cfg, scenario, method):
    exp = Experiment(tiny_cfg(*COMIX_TINY, *SCENARIOS[scenario], *BUDGET, f"method={method}"))
    res = exp.run()
    assert res["status"] == "finished", res
    rows = _rows(exp)
    assert any("train/loss" in r for r in rows) and all(
        np.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
    summary = json.loads((exp.store.dir / "summary.json").read_text())
    assert summary["final_win_rate"] is None  # no win condition: the score is the return
    progress = json.loads((exp.store.dir / "progress.json").read_text())
    assert "win_rate" not in progress and progress["return"] in [  # the live line shows the
        r["test_return_mean"] for r in rows]                        # return, not a win rate of 0
    assert summary["final_return"] == pytest.approx(
        np.mean([r["test_return_mean"] for r in rows[-exp.cfg.final_window:]]))
    if exp.cfg.method.sparse:
        assert all(abs(r["sparsity"] - 0.9) <= 0.005 for r in rows)  # at every evaluation
        assert summary["total_size"] < 0.2 and summary["flops_test"] < 0.2
        density = exp.learner.sparse.masks.density()
        assert abs(1 - density - 0.9) <= 0.005
        for name, p in exp.learner.target.named_parameters():  # targets carry the masks
            if name in exp.learner.sparse.masks.masks:
                assert (p[~exp.learner.sparse.masks.masks[name].bool()] == 0).all()


@pytest.mark.parametrize("ablation", ["operator_softmax", "operator_mellowmax",
                                      "no_soft_mellowmax", "no_hybrid_td"])
def test_operator_ablations_run(tiny_cfg, ablation):
    exp = Experiment(tiny_cfg(*COMIX_TINY, *BUDGET, "method=mast", f"ablation={ablation}"))
    assert exp.run()["status"] == "finished"


def test_cem_finds_the_maximum_of_a_concave_q():
    target = torch.tensor([[0.5, -0.3, 0.0], [-0.7, 0.2, 0.0]])  # 2 agents, agent 1 has 2 dims
    mask = torch.tensor([[True, True, True], [True, True, False]])

    def q_fn(a):  # [K, n, U] → [K, n]
        return -((a - target) ** 2 * mask).sum(-1)

    res = cem_maximise(q_fn, mask, samples=256, elites=16, iterations=6,
                       gen=torch.Generator().manual_seed(0))
    assert torch.allclose(res.best, target, atol=0.08)
    assert (res.best[1, 2] == 0) and (res.candidates[..., 1, 2] == 0).all()  # padded dim held
    assert torch.equal(res.best_value, res.values.max(0).values)


def _learner(cfg_overrides, tiny_cfg):
    cfg = tiny_cfg(*COMIX_TINY, *cfg_overrides)
    torch.manual_seed(0)  # initial weights independent of the tests that ran before
    spec = PAPER_SPECS[cfg.env.map]
    spec = type(spec)(**{**spec.__dict__, "episode_limit": 10})
    return build_learner(cfg, spec, torch.device("cpu"), Widths.from_config(cfg), 0.0), spec


def test_operators_over_candidates_are_ordered(tiny_cfg):
    """max ≥ soft mellowmax ≥ softmax(α)-weighted mean of the same CEM candidate values."""
    learner, _ = _learner(["method=mast"], tiny_cfg)
    values = torch.randn(64, 5, 10, generator=torch.Generator().manual_seed(1))
    sm = learner._operator(values)
    w = torch.softmax(learner.cfg.method.sm_alpha * values, 0)
    assert (sm <= values.max(0).values + 1e-6).all() and (sm >= (w * values).sum(0) - 1e-6).all()


def _random_batch(spec, steps: int = 6):
    rng = np.random.default_rng(0)
    ep = Episode(rng.normal(size=(steps + 1, spec.n_agents, spec.obs_dim)).astype(np.float32),
                 rng.normal(size=(steps + 1, spec.state_dim)).astype(np.float32),
                 np.broadcast_to(spec.continuous.dim_mask(), (steps + 1, spec.n_agents, 2)).copy(),
                 rng.uniform(-1, 1, (steps, spec.n_agents, 2)).astype(np.float32),
                 rng.normal(size=steps).astype(np.float32), np.zeros(steps, bool))
    return collate([ep, ep])


def _bootstrap_and_search(learner, batch, picker):
    """learner.bootstrap_values(batch) and, from the same CEM draws, `picker`'s search at the
    flattened o_{t+1}: (got [B, T], obs [R, n, o], state [R, S], CEMResult)."""
    torch.manual_seed(7)
    got = learner.bootstrap_values(batch)
    torch.manual_seed(7)  # the same CEM draws
    with torch.no_grad():
        obs, state = batch.obs[:, 1:].flatten(0, 1), batch.state[:, 1:].flatten(0, 1)
        return got, obs, state, learner.greedy(picker, obs)


def test_slope_scaled_operator_over_cem_candidates(tiny_cfg):
    """method.operator_scale=mixer_slope: each agent's Soft Mellowmax over its CEM candidate
    values is taken in Q_tot units, the target mixer's ∂Q_tot/∂Q_i at the CEM greedy values
    (checked with the slopes scaled up ≈900×, where the units visibly matter); it lies between
    the per-agent operator and the max."""
    from mast.modules.mixers import mixer_slopes
    from mast.targets import operator_in_units

    learner, spec = _learner([*SCENARIOS["swimmer"], "method=mast", "method.t0_env_steps=0",
                              "method.operator_scale=mixer_slope"], tiny_cfg)
    steps = 6
    batch = _random_batch(spec, steps)
    learner.update(batch, t_env=0)
    with torch.no_grad():
        for prm in learner.target["mixer"].hyper_w_final.parameters():
            prm.mul_(30.0)
    got, obs, state, res = _bootstrap_and_search(learner, batch, learner.target["agent"])
    with torch.no_grad():
        k = mixer_slopes(learner.target["mixer"], res.best_value, state)
        assert k.min() > 1.0
        values = res.values.movedim(0, -1)  # [R, n, K]
        scaled = operator_in_units("soft_mellowmax", values, None, k, alpha=1.0, omega=10.0)
        plain = learner._operator(res.values)
        want = learner.target["mixer"](scaled, state).view(2, steps)
    torch.testing.assert_close(got, want)
    assert (scaled >= plain - 1e-5).all() and (scaled <= values.max(-1).values + 1e-5).all()
    assert (scaled - plain).abs().max() > 1e-3


def _plain_per_agent(learner, agent, obs, res, method: str) -> torch.Tensor:
    """Per-agent bootstrap values [R, n], row by row and agent by agent: `agent`'s value of the
    CEM greedy action (dense: max) or the operator over its values of the candidates (MAST)."""
    per_agent = torch.zeros(len(obs), learner.spec.n_agents)
    for r in range(len(obs)):
        for i in range(learner.spec.n_agents):
            if method == "dense":
                per_agent[r, i] = agent(obs[r:r + 1], res.best[None, r:r + 1])[0, 0, i]
            else:
                values = torch.stack([agent(obs[r:r + 1], c[None, r:r + 1])[0, 0, i]
                                      for c in res.candidates])
                per_agent[r, i] = learner._operator(values[:, None, None])[0, 0]
    return per_agent


def _plain_q_tots(learner, obs, state, res, method: str) -> list[torch.Tensor]:
    """Each target critic's Q_tot [2, T] of `res` by `_plain_per_agent` and its own mixer."""
    return [learner.target[m](_plain_per_agent(learner, learner.target[a], obs, res, method),
                              state).view(2, -1) for a, m in (("agent", "mixer"), ("agent2", "mixer2"))]


@pytest.mark.parametrize("method", ["dense", "mast"])
def test_double_q_bootstrap_matches_a_plain_loop(tiny_cfg, method):
    """algo.bootstrap_actions=online: the online agent's CEM picks the action at o_{t+1}, the
    target agent values it (max) or its candidates (MAST's Soft Mellowmax), the target mixer
    mixes; checked row by row and agent by agent against the same CEM draws."""
    learner, spec = _learner([*SCENARIOS["swimmer"], f"method={method}", "method.t0_env_steps=0",
                              "algo.bootstrap_actions=online"], tiny_cfg)
    batch = _random_batch(spec)
    with torch.no_grad():  # online and target differ, so who picks matters
        for p in learner.nets["agent"].parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    got, obs, state, res = _bootstrap_and_search(learner, batch, learner.agent)
    with torch.no_grad():
        target = learner.target["agent"]
        per_agent = _plain_per_agent(learner, target, obs, res, method)
        want = learner.target["mixer"](per_agent, state).view(2, -1)
        torch.manual_seed(7)
        facmac = learner.greedy(target, obs).best  # the target agent's own search
    torch.testing.assert_close(got, want)
    assert (res.best - facmac).abs().max() > 0.1  # a different picker, different actions


@pytest.mark.parametrize("method", ["dense", "mast"])
def test_twin_critics_bootstrap_is_the_min_of_both(tiny_cfg, method):
    """algo.twin_critics (TD3's clipped double Q): the target agent's CEM picks the actions at
    o_{t+1}; each target critic values them (max) or their candidates (Soft Mellowmax) and mixes
    with its own mixer; the bootstrap is the smaller Q_tot, row by row (plain loop)."""
    learner, spec = _learner([*SCENARIOS["swimmer"], f"method={method}", "method.t0_env_steps=0",
                              "algo.twin_critics=true"], tiny_cfg)
    assert set(learner.nets) == {"agent", "mixer", "agent2", "mixer2"}
    batch = _random_batch(spec)
    _, obs, state, res = _bootstrap_and_search(learner, batch, learner.target["agent"])
    with torch.no_grad():  # shift critic 2 by the median gap: each critic the smaller on some rows
        q_tots = _plain_q_tots(learner, obs, state, res, method)
        learner.target["mixer2"].V[-1].bias.sub_((q_tots[1] - q_tots[0]).median())
    got, obs, state, res = _bootstrap_and_search(learner, batch, learner.target["agent"])
    with torch.no_grad():
        q_tots = _plain_q_tots(learner, obs, state, res, method)
    torch.testing.assert_close(got, torch.minimum(*q_tots))
    assert (q_tots[0] < q_tots[1]).any() and (q_tots[1] < q_tots[0]).any()  # both critics count


@pytest.mark.parametrize("method", ["dense", "mast"])
def test_target_smoothing_values_noisy_actions(tiny_cfg, method):
    """algo.target_noise (TD3's target policy smoothing), with twin critics: after the target
    agent's CEM, the greedy action (dense) or every candidate too (MAST) moves by N(0, σ²)
    noise clipped to ±clip and kept in the box; both target critics value the moved actions
    (plain loop, same draws), and the bootstrap is the smaller Q_tot."""
    sigma, clip = 0.4, 0.25
    learner, spec = _learner([*SCENARIOS["swimmer"], f"method={method}", "method.t0_env_steps=0",
                              "algo.twin_critics=true", f"algo.target_noise={sigma}",
                              f"algo.target_noise_clip={clip}"], tiny_cfg)
    batch = _random_batch(spec)
    got, obs, state, res = _bootstrap_and_search(learner, batch, learner.target["agent"])
    with torch.no_grad():  # the draws that follow CEM's: the greedy action's, then candidates'
        mask = learner.box.dim_mask
        noise = (sigma * torch.randn(res.best.shape)).clamp(-clip, clip)
        best = (res.best + noise).clamp(-1, 1) * mask
        cands = res.candidates
        if method == "mast":
            cands = (cands + (sigma * torch.randn(cands.shape)).clamp(-clip, clip)).clamp(-1, 1) * mask
        moved = type(res)(best, res.best_value, cands, res.values)
        q_tots = _plain_q_tots(learner, obs, state, moved, method)
        plain = _plain_q_tots(learner, obs, state, res, method)
    torch.testing.assert_close(got, torch.minimum(*q_tots))
    assert (noise.abs() <= clip).all() and (noise.abs() == clip).any()  # the clip binds
    assert (best - res.best).abs().max() > 0.1 and (got - torch.minimum(*plain)).abs().max() > 1e-4


def test_twin_critics_both_learn(tiny_cfg):
    """Both critics step on the summed loss, the second's Q_tot moves towards the same targets,
    and the soft targets track both; the loss is the sum of the two critics' MSEs."""
    learner, spec = _learner([*SCENARIOS["swimmer"], "algo.twin_critics=true"], tiny_cfg)
    batch = _random_batch(spec)
    before = {k: [p.clone() for p in learner.nets[k].parameters()] for k in ("agent2", "mixer2")}
    target_before = [p.clone() for p in learner.target["agent2"].parameters()]
    torch.manual_seed(3)
    loss, _ = learner.loss(batch, 0)
    torch.manual_seed(3)
    y = learner.td_targets(batch, learner.bootstrap_values(batch), 0)
    mse = [(((learner._q_tot(batch, a, m) - y) * batch.mask) ** 2).sum() / batch.mask.sum()
           for a, m in (("agent", "mixer"), ("agent2", "mixer2"))]
    torch.testing.assert_close(loss, mse[0] + mse[1])
    learner.update(batch, 0)
    for k, params in before.items():
        assert any(not torch.equal(p, q) for p, q in zip(params, learner.nets[k].parameters(), strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(target_before,
                                                      learner.target["agent2"].parameters(), strict=True))


def test_twin_critics_run_sparse(tiny_cfg):
    """MAST with twin critics end to end: both critics masked at the sparsity, targets too."""
    exp = Experiment(tiny_cfg(*COMIX_TINY, *SCENARIOS["swimmer"], *BUDGET, "method=mast",
                              "algo.twin_critics=true"))
    assert exp.run()["status"] == "finished"
    masks = exp.learner.sparse.masks.masks
    assert any(k.startswith("agent2.") for k in masks) and any(k.startswith("mixer2.") for k in masks)
    assert all(abs(r["sparsity"] - 0.9) <= 0.005 for r in _rows(exp) if "sparsity" in r)
    for name, p in exp.learner.target.named_parameters():
        if name in masks:
            assert (p[~masks[name].bool()] == 0).all()


def test_diagnosis_script_measures_the_operator_gap(tiny_cfg):
    """`scripts/comix_diagnose.py` on a MAST run's checkpoint (real process): Soft Mellowmax over
    distinct candidate values sits below their maximum, the CEM greedy value, so its gap in
    Q_tot units is positive. At 50% (at 90% this tiny agent's utilities ignore the action)."""
    exp = Experiment(tiny_cfg(*COMIX_TINY, *SCENARIOS["swimmer"], *BUDGET, "method=mast",
                              "algo.twin_critics=true", "sparsity=0.5"))
    assert exp.run()["status"] == "finished"
    out = subprocess.run([sys.executable, "scripts/comix_diagnose.py", str(exp.store.dir),
                          "--episodes", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    gap = re.search(r"target operator soft_mellowmax: .* gap (\S+) per step", out.stdout)
    assert gap is not None, out.stdout
    assert float(gap.group(1)) > 0
    calib = re.search(r"all steps: Q_tot\(taken\) (\S+)   Monte Carlo return (\S+)   error (\S+)",
                      out.stdout)
    assert calib is not None, out.stdout
    q, mc, err = map(float, calib.groups())
    assert abs(q - mc - err) < 0.011 and mc != 0.0  # the tiny run's returns are not zero


def test_actions_respect_bounds_and_padding(tiny_cfg):
    learner, spec = _learner(SCENARIOS["humanoid"], tiny_cfg)
    obs = torch.randn(6, spec.n_agents, spec.obs_dim)
    avail = torch.as_tensor(spec.continuous.dim_mask()).expand(6, -1, -1)
    gen = torch.Generator().manual_seed(0)
    a, state = learner.act(obs, avail, learner.initial_policy_state(6), 5.0, gen)  # huge noise
    assert a.shape == (6, 2, 9) and state is None
    assert (a.abs() <= 0.4 + 1e-6).all() and (a[:, 1, 8] == 0).all()
    assert ((a.abs() - 0.4).abs() < 1e-6).any()  # the noise was clipped at the bounds
    again, _ = learner.act(obs, avail, None, 5.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, again)  # draws come from the runner's generator only


def test_uniform_warm_up_then_the_policy(tiny_cfg):
    """FACMAC's start_steps: uniform random actions over each agent's real bounds (not the
    CEM argmax plus noise) until t_env reaches algo.start_steps, then σ = act_noise."""
    learner, spec = _learner([*SCENARIOS["humanoid"], "algo.start_steps=100"], tiny_cfg)
    assert learner.exploration(0) == learner.exploration(99) == float("inf")
    assert learner.exploration(100) == learner.cfg.algo.act_noise
    obs = torch.zeros(4000, spec.n_agents, spec.obs_dim)
    avail = torch.as_tensor(spec.continuous.dim_mask()).expand(4000, -1, -1)
    a, _ = learner.act(obs, avail, None, learner.exploration(0), torch.Generator().manual_seed(0))
    assert (a[:, 1, 8] == 0).all()  # agent 1's padded dim
    real = a[:, 0]  # agent 0: 9 dims in ±0.4, uniform: mean 0, variance 0.4² / 3
    assert (real.abs() <= 0.4).all()
    assert real.mean().abs() < 0.01 and (real.var() / (0.4**2 / 3) - 1).abs() < 0.05


def test_policy_distance_for_continuous_actions(tiny_cfg):
    learner, spec = _learner(SCENARIOS["swimmer"], tiny_cfg)
    obs = torch.randn(1, 9, spec.n_agents, spec.obs_dim).numpy()
    greedy = learner.greedy(learner.agent, torch.from_numpy(obs[0, :8]),
                            torch.Generator().manual_seed(0)).best
    stored = learner.box.to_env_units(greedy).numpy()[None]
    avail = np.broadcast_to(spec.continuous.dim_mask(), (9, spec.n_agents, 2))

    def episode(actions):
        return Episode(obs[0], np.zeros((9, spec.state_dim), np.float32), avail.copy(),
                       actions[0].astype(np.float32), np.zeros(8, np.float32), np.zeros(8, bool))

    same = learner.policy_distance(collate([episode(stored)]))
    far = learner.policy_distance(collate([episode(-np.sign(stored) + 0 * stored)]))
    assert same == 0.0 and far > 0.9


def test_soft_targets_track_the_online_nets(tiny_cfg):
    learner, spec = _learner(["algo.target_tau=0.5"], tiny_cfg)
    with torch.no_grad():
        for p in learner.nets.parameters():
            p.add_(1.0)
    before = [p.clone() for p in learner.target.parameters()]
    steps = 3
    ep = Episode(np.zeros((steps + 1, spec.n_agents, spec.obs_dim), np.float32),
                 np.zeros((steps + 1, spec.state_dim), np.float32),
                 np.broadcast_to(spec.continuous.dim_mask(), (steps + 1, spec.n_agents, 2)).copy(),
                 np.zeros((steps, spec.n_agents, 2), np.float32), np.ones(steps, np.float32),
                 np.zeros(steps, bool))
    learner.update(collate([ep, ep]), t_env=0)
    online = list(learner.nets.parameters())
    for b, t, o in zip(before, learner.target.parameters(), online, strict=True):
        assert torch.allclose(t, b + 0.5 * (o.detach() - b), atol=1e-6)
    learner.sync_target()  # the experiment's periodic copy is off with soft targets
    assert not torch.equal(next(learner.target.parameters()), online[0])


def test_resume_matches_uninterrupted_run(tiny_cfg, tmp_path):
    """COMIX on ManySegmentSwimmer: a run killed after its first checkpoint and relaunched ends
    with the same parameters and evaluation returns as an uninterrupted one (env seeds, CEM and
    noise draws all resume from the checkpointed RNG states)."""
    over = (*COMIX_TINY, "method=mast", "save_buffer=true", "t_max=160", "test_interval=80",
            "checkpoint_interval=60", "test_nepisode=2", "test_n_envs=2")
    a = Experiment(tiny_cfg(*over, f"results_dir={tmp_path}/a"))
    assert a.run()["status"] == "finished"
    with pytest.raises(RuntimeError):
        Experiment(tiny_cfg(*over, f"results_dir={tmp_path}/b", "fail_at_t_env=100")).run()
    b = Experiment(tiny_cfg(*over, f"results_dir={tmp_path}/b"))
    assert b.run()["status"] == "finished"
    for (k, pa), pb in zip(a.learner.nets.state_dict().items(),
                           b.learner.nets.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=k)
    ret = [[r["test_return_mean"] for r in _rows(e)] for e in (a, b)]
    assert ret[0] == ret[1]


def test_window_keeps_steps_aligned():
    """Each row of a window is a contiguous slice of its episode: obs/state at t..t+W, actions,
    rewards, terminations and mask at t..t+W-1; short episodes keep their start."""
    from mast.replay.episodes import window_episodes

    lengths, t_max, w = [12, 3, 9], 12, 4
    eps = []
    for length in lengths:
        t = np.arange(length + 1, dtype=np.float32)
        eps.append(Episode(np.broadcast_to(t[:, None, None], (length + 1, 2, 3)).copy(),
                           np.broadcast_to(t[:, None], (length + 1, 4)).copy(),
                           np.ones((length + 1, 2, 1), bool),
                           np.broadcast_to(t[:-1, None, None], (length, 2, 1)).copy(),
                           t[:-1].copy(), np.arange(length) == length - 1))
    batch = collate(eps)
    assert batch.reward.shape[1] == t_max
    for seed in range(5):
        win = collate(window_episodes(eps, w, torch.Generator().manual_seed(seed)))
        assert win.reward.shape == (3, w) and win.obs.shape[1] == w + 1
        for b, length in enumerate(lengths):
            start = int(win.state[b, 0, 0])
            valid = int(win.mask[b].sum())
            assert valid == min(w, length - start) and (length < w or valid == w)
            steps = torch.arange(start, start + valid, dtype=torch.float32)
            assert torch.equal(win.reward[b, :valid], steps)
            assert torch.equal(win.actions[b, :valid, 0, 0], steps)
            assert torch.equal(win.obs[b, : valid + 1, 0, 0], torch.arange(start, start + valid + 1,
                                                                           dtype=torch.float32))
            assert bool(win.terminated[b, :valid].any()) == (start + valid == length)
    assert window_episodes(eps, t_max) is eps  # nothing to cut: no draw
