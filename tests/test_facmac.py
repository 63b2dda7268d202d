"""FACMAC on real SMAX (and MA-MuJoCo): gradients of each loss reach only their own networks
(also in what RigL grows from), masks hold on actor, critic and mixer (online and target),
discrete action selection never picks an unavailable action, the Soft Mellowmax bootstrap
matches a plain loop, and the continuous variant runs. Every method × facmac smoke run on SMAX is
in test_smoke.py (facmac acts in discrete action spaces, so the registry sweep includes it)."""

from __future__ import annotations

import json

import pytest
import torch

from mast import targets as T
from mast.config import ConfigError, validate
from mast.envs import make_env
from mast.experiment import Experiment
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.learners.facmac import assign_grads
from mast.learners.facmac_actions import gumbel_straight_through, masked_logits, sample_discrete
from mast.replay import collate
from mast.runner import EpisodeRunner

from .conftest import compose_cfg
from .test_mamujoco import one_torch_thread  # noqa: F401  (fixture)

SMALL = ["algo=facmac", "env.n_envs=4", "algo.hidden_dim=16",
         "agent.rnn_hidden_dim=16", "algo.mixing_embed_dim=8", "algo.hypernet_hidden_dim=16"]


def _learner(*overrides: str, sparsity: float = 0.9):
    cfg = compose_cfg([*SMALL, *overrides])
    env = make_env(cfg, cfg.env.n_envs, 0)
    torch.manual_seed(0)
    learner = build_learner(cfg, env.spec, torch.device("cpu"), Widths.from_config(cfg), sparsity)
    return cfg, env, learner


@pytest.fixture(scope="module")
def mast_setup():
    """MAST-FACMAC (RigL, Soft Mellowmax, TD(λ) from t=0) and a batch of real SMAX episodes."""
    cfg, env, learner = _learner("method=mast", "method.t0_env_steps=0",
                                 "method.update_interval_episodes=1")
    runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), seed=0)
    episodes = runner.run(1.0)[0] + runner.run(0.5)[0]
    return cfg, env, learner, collate(episodes)


def _grads(loss, params):
    return [torch.zeros_like(p) if g is None else g
            for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True),
                            strict=True)]


def test_each_loss_reaches_only_its_own_networks(mast_setup):
    _, _, learner, batch = mast_setup
    actor, critic = learner.actor_params, learner.critic_params
    # the actor loss runs through critic and mixer, the TD loss never through the actor
    torch.manual_seed(1)
    a_loss = learner.actor_loss(batch)
    assert any(g is not None and g.abs().sum() > 0
               for g in torch.autograd.grad(a_loss, critic, retain_graph=True, allow_unused=True))
    c_loss, _ = learner.critic_loss(batch, t_env=10_000)
    assert all(g is None for g in torch.autograd.grad(c_loss, actor, retain_graph=True,
                                                      allow_unused=True))
    learner.optimizer.zero_grad(set_to_none=True)
    assign_grads(a_loss, actor)
    assert all(p.grad is None for p in critic)  # no policy gradient leaks into critic/mixer
    assert any(p.grad.abs().sum() > 0 for p in actor)
    # compute_grads: actor .grad = ∂(actor loss)/∂actor, critic+mixer .grad = ∂(TD loss)/∂them
    torch.manual_seed(2)
    learner.compute_grads(batch, t_env=10_000)
    got_a, got_c = [p.grad.clone() for p in actor], [p.grad.clone() for p in critic]
    torch.manual_seed(2)
    c_loss, _ = learner.critic_loss(batch, t_env=10_000)
    want_a = _grads(learner.actor_loss(batch), actor)
    want_c = _grads(c_loss, critic)
    for got, want in ((got_a, want_a), (got_c, want_c)):
        assert all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, want, strict=True))


def test_rigl_grows_from_each_networks_own_dense_gradient(mast_setup):
    _, _, learner, batch = mast_setup
    sp = learner.sparse
    torch.manual_seed(3)
    learner.compute_grads(batch, t_env=100)
    dense = {n: p.grad.clone() for n, p in learner.nets.named_parameters() if n in sp.masks.masks}
    before = {n: m.clone() for n, m in sp.masks.masks.items()}
    sp.before_step(learner.nets, learner.optimizer, n_updates=1, t_env=100)  # a topology step
    checked = set()
    for name in ("actor.fc1.weight", "actor.rnn.weight_hh", "critic.fc1.weight",
                 "mixer.hyper_w1.0.weight"):
        grown = sp.masks.masks[name] & ~before[name]
        k = int(grown.sum())
        assert k > 0, name
        score = dense[name].abs()  # grown = the largest |own-loss gradient| among inactive
        assert score[grown].min() >= score[~before[name] & ~grown].max(), name
        checked.add(name.split(".")[0])
    assert checked == {"actor", "critic", "mixer"}


def test_masks_hold_on_actor_critic_mixer_and_targets(mast_setup):
    _, _, learner, batch = mast_setup
    names = set(learner.sparse.masks.masks)
    assert {n.split(".")[0] for n in names} == {"actor", "critic", "mixer"}
    for t_env in (100, 200, 300):
        learner.update(batch, t_env)
    learner.sync_target()
    masks = learner.sparse.masks
    assert abs(1 - masks.density() - 0.9) <= 0.005
    for net in (learner.nets, learner.target):
        for name, p in net.named_parameters():
            if name in names:
                assert (p[~masks.masks[name]] == 0).all(), name


def test_discrete_actions_never_unavailable(mast_setup):
    cfg, env, learner, batch = mast_setup
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(512, 3, 9) * 5
    avail = torch.rand(512, 3, 9, generator=gen) < 0.3
    avail[..., 0] |= ~avail.any(-1)  # at least one available action per agent
    for eps in (0.0, 0.05, 0.5, 1.0):
        for _ in range(4):
            a = sample_discrete(logits, avail, eps, gen)
            assert avail.gather(-1, a.unsqueeze(-1)).all(), eps
    relaxed = gumbel_straight_through(masked_logits(logits, avail), 1.0)
    assert (relaxed.detach().sum(-1) - 1).abs().max() < 1e-5
    assert avail.gather(-1, relaxed.argmax(-1, keepdim=True)).all()
    # real SMAX rollouts, exploring and greedy: every stored action was available
    runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), seed=5)
    for explore in (1.0, 0.0):
        b = collate(runner.run(explore)[0])
        taken = b.avail[:, :-1].gather(-1, b.actions.unsqueeze(-1)).squeeze(-1)
        assert taken[b.mask.bool()].all()


def test_soft_mellowmax_bootstrap_matches_plain_loop(mast_setup):
    cfg, _, learner, batch = mast_setup
    got = learner.bootstrap_values(batch)
    with torch.no_grad():
        u = learner.spec.n_actions
        values = torch.stack([learner.target["critic"](
            batch.obs[:, 1:], torch.nn.functional.one_hot(torch.full(batch.actions.shape, a), u)
            .float()) for a in range(u)], -1)  # [B, T, n, U]
        v = T.soft_mellowmax(values, cfg.method.sm_alpha, cfg.method.sm_omega, batch.avail[:, 1:])
        want = learner.target["mixer"](v, batch.state[:, 1:]) * batch.mask
    assert torch.allclose(got, want, atol=1e-5)


def test_max_operator_bootstraps_at_target_actor_action():
    cfg, env, learner = _learner("method=rigl")
    runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), seed=0)
    batch = collate(runner.run(1.0)[0])
    got = learner.bootstrap_values(batch)
    with torch.no_grad():
        logits = learner.head.outputs(learner.target["actor"], batch)[:, 1:]
        greedy = torch.nn.functional.one_hot(logits.argmax(-1), learner.spec.n_actions).float()
        q = learner.target["critic"](batch.obs[:, 1:], greedy)
        want = learner.target["mixer"](q, batch.state[:, 1:]) * batch.mask
    assert torch.allclose(got, want, atol=1e-5)


def test_continuous_facmac_runs_on_mamujoco(tiny_cfg):
    exp = Experiment(tiny_cfg("+experiment=facmac_mamujoco", "env.episode_limit=10",
                              "algo.hidden_dim=32", "algo.operator_samples=4", "method=mast",
                              "t_max=200", "test_interval=100", "test_nepisode=2",
                              "test_n_envs=2", "algo.start_steps=100"))
    assert exp.run()["status"] == "finished"
    rows = [json.loads(x) for x in (exp.store.dir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/actor_loss" in r for r in rows)
    assert all(abs(r["sparsity"] - 0.9) <= 0.005 for r in rows)
    learner = exp.learner
    low, high = (torch.as_tensor(x) for x in exp.spec.continuous.bounds())
    obs = torch.randn(16, exp.spec.n_agents, exp.spec.obs_dim)
    a, _ = learner.act(obs, None, learner.initial_policy_state(16), 1.0,
                       torch.Generator().manual_seed(0))
    assert ((a >= low - 1e-6) & (a <= high + 1e-6)).all()
    # FACMAC's uniform warm-up: ∞ below start_steps, then the Gaussian σ
    assert learner.exploration(99) == float("inf") and learner.exploration(100) == 0.1
    u, _ = learner.act(obs, None, None, float("inf"), torch.Generator().manual_seed(0))
    assert ((u >= low) & (u <= high)).all() and not torch.equal(u[0], u[1])
    with pytest.raises(ConfigError, match="algo.start_steps=5 with algo=facmac on env=smax"):
        validate(compose_cfg(["algo=facmac", "algo.start_steps=5"]))


def test_mixer_slopes_are_the_mixers_partial_derivatives():
    """∂Q_tot/∂Q_i: finite differences of the QMIX mixer; exactly 1 for VDN."""
    from mast.modules.mixers import mixer_slopes

    _, env, learner = _learner("method=dense", sparsity=0.0)
    mixer = learner.nets["mixer"].double()
    g = torch.Generator().manual_seed(0)
    qs = torch.randn(4, env.spec.n_agents, generator=g, dtype=torch.float64)
    states = torch.randn(4, env.spec.state_dim, generator=g, dtype=torch.float64)
    k = mixer_slopes(mixer, qs, states)
    eps = 1e-6
    for i in range(env.spec.n_agents):
        d = torch.zeros_like(qs)
        d[:, i] = eps
        with torch.no_grad():
            fd = (mixer(qs + d, states) - mixer(qs - d, states)) / (2 * eps)
        torch.testing.assert_close(k[:, i], fd, rtol=1e-5, atol=1e-8)
    assert (k >= 0).all()  # QMIX is monotonic
    _, _, vdn = _learner("method=dense", "algo.mixer=vdn", sparsity=0.0)
    assert torch.equal(mixer_slopes(vdn.nets["mixer"], qs.float(), states.float()),
                       torch.ones(4, env.spec.n_agents))


def test_slope_scaled_operator_trains_and_keeps_masks():
    """MAST-FACMAC with method.operator_scale=mixer_slope: updates run and masks hold; the bootstrap
    is the target mixer over Soft Mellowmax in Q_tot units, the units being the target mixer's
    slopes at the target actor's actions (checked with the slopes scaled up 1000×, where the
    units visibly matter)."""
    from mast.modules.mixers import mixer_slopes
    from mast.targets import operator_in_units

    cfg, env, learner = _learner("method=mast", "method.t0_env_steps=0",
                                 "method.operator_scale=mixer_slope")
    runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), seed=0)
    batch = collate(runner.run(1.0)[0] + runner.run(0.5)[0])
    for t in range(3):
        learner.update(batch, t_env=1000 * t)
    masks = learner.sparse.masks
    for name, p in learner.nets.named_parameters():
        if name in masks.masks:
            assert (p[~masks.masks[name]] == 0).all()
    with torch.no_grad():
        for p in learner.target["mixer"].hyper_w_final.parameters():
            p.mul_(1000.0 ** 0.5)  # two layers: the slopes grow 1000×
    got = learner.bootstrap_values(batch)
    valid, head, critic = batch.mask.bool(), learner.head, learner.target["critic"]
    with torch.no_grad():
        out = head.outputs(learner.target["actor"], batch)[:, 1:][valid]
        obs, states = batch.obs[:, 1:][valid], batch.state[:, 1:][valid]
        values, ok = head.candidate_values(critic, obs, out, batch.avail[:, 1:][valid])
        k = mixer_slopes(learner.target["mixer"], critic(obs, head.greedy(out)), states)
        assert k.min() > 1.0  # Q_tot units now much larger than the utilities'
        v = operator_in_units("soft_mellowmax", values, ok, k, alpha=1.0, omega=10.0)
        per_agent = v.new_zeros(*valid.shape, env.spec.n_agents)
        per_agent[valid] = v
        want = learner.mix(learner.target["mixer"], per_agent, batch.state[:, 1:], batch)
    torch.testing.assert_close(got, want)
