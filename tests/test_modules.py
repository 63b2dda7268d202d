"""Networks: per-agent stacked weights equal separate networks; QMIX is monotonic; GRU matches
torch's GRUCell."""

from __future__ import annotations

import torch

from mast.modules.agents import AgentGRU, RNNAgent, unroll
from mast.modules.mixers import QMixer, VDNMixer


def test_gru_matches_torch():
    torch.manual_seed(0)
    ours, ref = AgentGRU(5, 7), torch.nn.GRUCell(5, 7)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, name).copy_(getattr(ours, name))
    x, h = torch.randn(4, 5), torch.randn(4, 7)
    torch.testing.assert_close(ours(x, h), ref(x, h))


def test_stacked_agents_equal_separate_networks():
    torch.manual_seed(0)
    n = 3
    stacked = RNNAgent(6, 4, n, hidden=8, share_params=False)
    x, h = torch.randn(2, n, 6), torch.randn(2, n, 8)
    q, h2 = stacked(x, h)
    for i in range(n):
        single = RNNAgent(6, 4, 1, hidden=8, share_params=True)
        sd = {k: v[i] for k, v in stacked.state_dict().items()}
        single.load_state_dict(sd)
        qi, hi = single(x[:, i : i + 1], h[:, i : i + 1])
        torch.testing.assert_close(qi[:, 0], q[:, i])
        torch.testing.assert_close(hi[:, 0], h2[:, i])


def test_qmix_is_monotonic_and_vdn_sums():
    torch.manual_seed(0)
    mixer = QMixer(3, 10)
    qs = torch.randn(5, 3, requires_grad=True)
    s = torch.randn(5, 10)
    mixer(qs, s).sum().backward()
    assert (qs.grad >= 0).all()
    torch.testing.assert_close(VDNMixer(3, 10)(qs, s), qs.sum(-1))
    assert mixer(torch.randn(2, 7, 3), torch.randn(2, 7, 10)).shape == (2, 7)


def test_unroll_equals_stepwise_calls():
    """The fused unroll (input projections for all steps at once) is the step-by-step agent."""
    torch.manual_seed(0)
    for share in (True, False):
        agent = RNNAgent(6, 4, 3, hidden=8, share_params=share)
        x = torch.randn(2, 5, 3, 6)
        h, qs = agent.initial_hidden(2), []
        for k in range(5):
            q, h = agent(x[:, k], h)
            qs.append(q)
        torch.testing.assert_close(unroll(agent, x), torch.stack(qs, 1))


def test_network_widths_come_from_the_config():
    from mast.envs.base import EnvSpec
    from mast.learners import build_learner
    from mast.learners.base import Widths

    from .conftest import compose_cfg

    cfg = compose_cfg(["algo=wqmix", "agent.rnn_hidden_dim=16", "algo.mixing_embed_dim=8",
                       "algo.hypernet_hidden_dim=12", "algo.central_hidden_dim=20"])
    spec = EnvSpec(n_agents=3, obs_dim=30, state_dim=48, n_actions=9, episode_limit=60)
    nets = build_learner(cfg, spec, torch.device("cpu"), Widths.from_config(cfg), 0.0).nets
    assert nets["agent"].rnn.weight_hh.shape == (48, 16)
    assert nets["mixer"].hyper_w1[0].weight.shape == (12, 48)
    assert nets["mixer"].hyper_b1.weight.shape == (8, 48)
    assert nets["central_mixer"].V[0].weight.shape == (20, 48)
