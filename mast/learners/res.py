"""RES (Pan et al. 2021): the target's max is replaced by a softmax (β) over the joint actions
that change one agent's action from the greedy joint action — values from the target mixer,
weights from the online mixer — and the loss adds λ_RES·(Q_tot − G_t)² with G_t the discounted
Monte-Carlo return, which keeps Q_tot from drifting above what the team actually gets.

RES's softmax *is* its operator, so `method.operator` (and the operator ablations) do not apply to
`algo=res`: MAST-RES keeps RES's target and adds hybrid TD(λ), dual buffers and RigL (paper A.5).
The Monte-Carlo return of a truncated episode has no bootstrap, as in RES's reference code."""

from __future__ import annotations

import torch

from mast import targets as T
from mast.learners.base import QLearner
from mast.modules.agents import EpisodeInputs
from mast.registry import LEARNERS
from mast.replay.episodes import EpisodeBatch


@LEARNERS.register("res")
class RESLearner(QLearner):
    @torch.no_grad()
    def next_values(self, batch: EpisodeBatch, inputs: EpisodeInputs,
                    q_online: torch.Tensor) -> torch.Tensor:
        q_t = self.unroll(self.target["agent"], inputs)[:, 1:]  # [B, T, n, U]
        q_o = q_online[:, 1:].detach()
        avail, state = batch.avail[:, 1:], batch.state[:, 1:]
        greedy = q_o.masked_fill(~avail, -1e9).argmax(-1)  # [B, T, n]
        cand, valid = T.one_agent_deviation_actions(greedy, avail)  # [B, T, K, n], [B, T, K]
        k = cand.shape[2]

        # the fast path runs the hypernetworks once per state, not once per candidate
        states = state.unsqueeze(2) if self.fast_path else state.unsqueeze(2).expand(-1, -1, k, -1)

        def mix(mixer, q):  # utilities of every candidate joint action → Q_tot [B, T, K]
            util = q.unsqueeze(2).expand(-1, -1, k, -1, -1).gather(-1, cand.unsqueeze(-1))
            return self.mix(mixer, util.squeeze(-1), states, batch)

        values = mix(self.target["mixer"], q_t)
        logits = mix(self.nets["mixer"], q_o)
        return T.res_softmax(values, logits, self.cfg.algo.res_beta, valid)

    def loss(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, dict]:
        q_tot, y = self.q_tot_and_targets(batch, t_env)
        mask, n = batch.mask, batch.mask.sum()
        td = (q_tot - y) * mask
        g = T.discounted_returns(batch.reward, mask, self.gamma)
        reg = (((q_tot - g) * mask) ** 2).sum() / n
        stats = self._stats(td, q_tot, y, mask) | {"train/res_reg": reg.detach()}
        return (td ** 2).sum() / n + self.cfg.algo.res_lambda * reg, stats
