"""Weighted QMIX (Rashid et al. 2020): an unrestricted central Q* (same RNN agent + feed-forward
mixer on [state, utilities]) supplies the targets at QMIX's greedy joint action, and the QMIX loss
down-weights (by α) the samples the monotonic mixer need not fit: OW keeps weight 1 where
Q_tot < y, CW where the action is greedy or y exceeds Q*(s, û)."""

from __future__ import annotations

import torch
from torch import nn

from mast.envs.base import EnvSpec
from mast.learners.base import QLearner, Widths
from mast.modules.agents import EpisodeInputs, RNNAgent
from mast.modules.mixers import CentralMixer
from mast.registry import LEARNERS
from mast.replay.episodes import EpisodeBatch


@LEARNERS.register("wqmix")
class WQMIXLearner(QLearner):
    @classmethod
    def build_nets(cls, cfg, spec: EnvSpec, w: Widths) -> nn.ModuleDict:
        nets = super().build_nets(cfg, spec, w)
        nets["central_agent"] = RNNAgent(spec.agent_input_dim, spec.n_actions, spec.n_agents,
                                         w.rnn, cfg.agent.share_params)
        nets["central_mixer"] = CentralMixer(spec.n_agents, spec.state_dim, w.central)
        return nets

    @torch.no_grad()
    def next_values(self, batch: EpisodeBatch, inputs: EpisodeInputs,
                    q_online: torch.Tensor) -> torch.Tensor:
        """Target central Q* at QMIX's greedy next actions (or the configured operator)."""
        q_central = self.unroll(self.target["central_agent"], inputs)[:, 1:]
        v = self.agent_next_values(q_online[:, 1:].detach(), q_central, batch.avail[:, 1:])
        return self.mix(self.target["central_mixer"], v, batch.state[:, 1:], batch)

    def loss(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, dict]:
        inputs = self.episode_inputs(batch)
        act = batch.actions.unsqueeze(-1)
        q = self.unroll(self.agent, inputs)
        q_tot = self.mix(self.nets["mixer"], q[:, :-1].gather(-1, act).squeeze(-1),
                         batch.state[:, :-1], batch)
        qc = self.unroll(self.nets["central_agent"], inputs)
        q_star = self.mix(self.nets["central_mixer"], qc[:, :-1].gather(-1, act).squeeze(-1),
                          batch.state[:, :-1], batch)
        y = self.td_targets(batch, self.next_values(batch, inputs, q), t_env)
        w = self._weights(batch, inputs, q, q_tot, y)
        mask = batch.mask
        td = (q_tot - y) * mask
        qmix_loss = (w * td ** 2).sum() / mask.sum()
        central_loss = (((q_star - y) * mask) ** 2).sum() / mask.sum()
        stats = self._stats(td, q_tot, y, mask) | {"train/central_loss": central_loss.detach()}
        return qmix_loss + self.cfg.algo.central_loss_weight * central_loss, stats

    @torch.no_grad()
    def _weights(self, batch, inputs, q, q_tot, y) -> torch.Tensor:
        alpha = self.cfg.algo.wqmix_alpha
        if self.cfg.algo.weighting == "ow":
            return torch.where(q_tot < y, 1.0, alpha)
        avail = batch.avail[:, :-1]
        greedy = q[:, :-1].masked_fill(~avail, -1e9).argmax(-1)  # [B, T, n]
        is_greedy = (greedy == batch.actions).all(-1)
        qc_target = self.unroll(self.target["central_agent"], inputs)  # CW: target Q*(s, û)
        q_star_greedy = self.mix(self.target["central_mixer"],
                                 qc_target[:, :-1].gather(-1, greedy.unsqueeze(-1)).squeeze(-1),
                                 batch.state[:, :-1], batch)
        return torch.where(is_greedy | (y > q_star_greedy), 1.0, alpha)
