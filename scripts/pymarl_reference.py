"""A PyMARL-style QMIX update, written the way PyMARL's `QLearner.train` does it, as the baseline
`make bench` compares the learner update with: the agent (fc1 → nn.GRUCell → fc2) is called
once per time step for the online and the target network, the QMIX mixer multiplies with `bmm`,
1-step double-Q targets, RMSprop with torch's CPU default (one op per parameter).

It runs on a copy of one of our QMIX learners' weights, so the shapes, batches and arithmetic
are the same; only the way the work is issued differs. Not used by training.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mast.runner import batch_agent_inputs


class _Agent(nn.Module):
    def __init__(self, ours):
        super().__init__()
        n_in, hidden, n_actions = ours.fc1.weight.shape[1], ours.hidden, ours.fc2.weight.shape[0]
        self.fc1, self.rnn, self.fc2 = (nn.Linear(n_in, hidden), nn.GRUCell(hidden, hidden),
                                        nn.Linear(hidden, n_actions))
        self.load_state_dict(ours.state_dict())


def _mac_out(agent: _Agent, inputs: torch.Tensor) -> torch.Tensor:
    """inputs [B, T, n, in] → q [B, T, n, U], one agent call per step (PyMARL's mac.forward)."""
    b, t, n, _ = inputs.shape
    h = inputs.new_zeros(b * n, agent.rnn.hidden_size)
    out = []
    for k in range(t):
        h = agent.rnn(F.relu(agent.fc1(inputs[:, k].reshape(b * n, -1))), h)
        out.append(agent.fc2(h).view(b, n, -1))
    return torch.stack(out, dim=1)


def _qmix(mixer, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """PyMARL's QMixer.forward on our mixer's modules: qs [B, T, n], states [B, T, S] → [B, T]."""
    b = qs.shape[0]
    s = states.reshape(-1, states.shape[-1])
    q = qs.reshape(-1, 1, mixer.n_agents)
    w1 = torch.abs(mixer.hyper_w1(s)).view(-1, mixer.n_agents, mixer.embed)
    hidden = F.elu(torch.bmm(q, w1) + mixer.hyper_b1(s).view(-1, 1, mixer.embed))
    w_final = torch.abs(mixer.hyper_w_final(s)).view(-1, mixer.embed, 1)
    return (torch.bmm(hidden, w_final) + mixer.V(s).view(-1, 1, 1)).view(b, -1)


class PyMARLQMIX:
    """`update(batch)` = one PyMARL QMIX training step on a copy of `learner`'s networks."""

    def __init__(self, learner):
        self.n_actions, self.gamma = learner.spec.n_actions, learner.gamma
        self.clip = learner.cfg.train.grad_norm_clip
        self.agent, self.target_agent = _Agent(learner.agent), _Agent(learner.target["agent"])
        self.mixer = copy.deepcopy(learner.nets["mixer"]).to(learner.device)
        self.target_mixer = copy.deepcopy(learner.target["mixer"]).to(learner.device)
        self.agent.to(learner.device), self.target_agent.to(learner.device)
        self.params = list(self.agent.parameters()) + list(self.mixer.parameters())
        tr = learner.cfg.train
        self.optimizer = torch.optim.RMSprop(self.params, lr=tr.lr, alpha=tr.rms_alpha,
                                             eps=tr.optim_eps)

    def update(self, batch, t_env: int = 0) -> dict:
        inputs = batch_agent_inputs(batch.obs, batch.actions, self.n_actions)
        mac_out = _mac_out(self.agent, inputs)
        chosen = torch.gather(mac_out[:, :-1], 3, batch.actions.unsqueeze(3)).squeeze(3)
        with torch.no_grad():
            target_out = _mac_out(self.target_agent, inputs)[:, 1:]
            detached = mac_out.clone().detach()
            detached[~batch.avail] = -9999999
            greedy = detached[:, 1:].max(dim=3, keepdim=True)[1]
            target_max = torch.gather(target_out, 3, greedy).squeeze(3)
            target_tot = _qmix(self.target_mixer, target_max, batch.state[:, 1:])
        q_tot = _qmix(self.mixer, chosen, batch.state[:, :-1])
        targets = batch.reward + self.gamma * (1 - batch.terminated) * target_tot
        td = (q_tot - targets.detach()) * batch.mask
        loss = (td ** 2).sum() / batch.mask.sum()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        return {"train/loss": loss.item()}
