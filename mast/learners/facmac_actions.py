"""The one place where discrete and continuous FACMAC differ: an action head per action kind.

FACMAC's learner is the same for SMAC and Multi-Agent MuJoCo except for how actions are made,
explored, relaxed for the policy gradient and enumerated for the target operator. Each head
answers those questions for its action space (`EnvSpec.action_kind`), so `FACMACLearner` has no
branch on the action space:

| question | discrete (SMAX/SMAC) | continuous (MA-MuJoCo) |
|---|---|---|
| actor | PyMARL RNN agent → logits (unavailable actions −1e10) | MLP → tanh, [-1, 1] |
| what the critic sees | one-hot action | normalised action |
| exploration (`act`) | ε-mixture of softmax(logits) and uniform over available actions, sampled | μ + N(0, σ²), clipped |
| policy-gradient action | straight-through Gumbel-Softmax (hard forward, soft gradient) | μ itself |
| greedy (test, target) | argmax over available logits | μ |
| operator support at o' | every available action (U one-hots) | μ' and K−1 Gaussian perturbations |
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mast.envs.base import EnvSpec
from mast.modules.actors import MLPActor
from mast.modules.agents import EpisodeInputs, Packing, RNNAgent, unroll
from mast.modules.continuous import ActionBox, MLPQAgent, exploration_sigma
from mast.replay.episodes import EpisodeBatch
from mast.runner import agent_inputs, batch_agent_inputs

UNAVAILABLE_LOGIT = -1e10  # finite (FACMAC's mask_before_softmax): rows with no action stay finite


def masked_logits(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """logits [..., U], avail [..., U] bool → logits with unavailable entries at −1e10."""
    return logits.masked_fill(~avail, UNAVAILABLE_LOGIT)


def sample_discrete(logits: torch.Tensor, avail: torch.Tensor, epsilon: float,
                    gen: torch.Generator | None) -> torch.Tensor:
    """FACMAC's SMAC exploration: logits [N, n, U], avail [N, n, U] bool → actions [N, n] long.

    ε = 0: argmax over available actions. ε > 0: sample from (1 − ε)·softmax(masked logits) +
    ε·uniform(available); unavailable actions have probability exactly 0. A row with no available
    action (never produced by SMAX) gets action 0, as `epsilon_greedy` does."""
    has_any = avail.any(-1, keepdim=True)
    greedy = masked_logits(logits, avail).argmax(-1)
    if epsilon <= 0:
        return greedy
    probs = torch.softmax(masked_logits(logits, avail), -1)
    probs = (1 - epsilon) * probs + epsilon / avail.sum(-1, keepdim=True).clamp(min=1)
    probs = probs.masked_fill(~avail, 0.0)
    first = F.one_hot(torch.zeros_like(greedy), logits.shape[-1]).to(probs.dtype)
    probs = torch.where(has_any, probs, first)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=gen).view(greedy.shape)


def gumbel_straight_through(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Relaxed one-hot actions for the policy gradient: logits [..., U] → [..., U].

    Forward value = one-hot argmax of (logits + Gumbel noise) — a sample of softmax(logits), never
    an unavailable action when those logits are −1e10; gradient = that of the Gumbel-Softmax
    sample softmax((logits + g)/τ) (FACMAC's discrete actor update)."""
    u = torch.rand_like(logits).clamp(1e-20, 1.0)
    y = torch.softmax((logits - torch.log(-torch.log(u) + 1e-20)) / temperature, -1)
    hard = F.one_hot(y.argmax(-1), logits.shape[-1]).to(y.dtype)
    return hard - y.detach() + y


class DiscreteHead:
    """Discrete actions: RNN actor over PyMARL inputs (obs ⊕ last action ⊕ agent id)."""

    def __init__(self, cfg, spec: EnvSpec, device: torch.device):
        self.cfg, self.spec, self.device = cfg, spec, device

    @staticmethod
    def build_actor(cfg, spec: EnvSpec, rnn_hidden: int, mlp_hidden: int) -> nn.Module:
        return RNNAgent(spec.agent_input_dim, spec.n_actions, spec.n_agents, rnn_hidden,
                        cfg.agent.share_params)

    def outputs(self, actor: nn.Module, batch: EpisodeBatch) -> torch.Tensor:
        """Masked logits [B, T+1, n, U] over every stored observation (padded steps −1e10)."""
        x = batch_agent_inputs(batch.obs, batch.actions, self.spec.n_actions)
        lengths = batch.mask.sum(1).long() + 1
        pk = Packing.from_lengths(lengths, self.spec.n_agents, x.shape[1])
        return masked_logits(unroll(actor, EpisodeInputs(x, pk)), batch.avail)

    def taken(self, batch: EpisodeBatch) -> torch.Tensor:
        """Stored actions [B, T, n] → one-hot [B, T, n, U] (the critic's action input)."""
        return F.one_hot(batch.actions, self.spec.n_actions).float()

    def greedy(self, out: torch.Tensor) -> torch.Tensor:
        return F.one_hot(out.argmax(-1), self.spec.n_actions).to(out.dtype)

    def relaxed(self, out: torch.Tensor) -> torch.Tensor:
        return gumbel_straight_through(out, self.cfg.algo.gumbel_temperature)

    def candidate_values(self, critic: MLPQAgent, obs: torch.Tensor, out: torch.Tensor,
                         avail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q_i(o_i, u) of every action u (one-hot): ([R, n, U], valid = avail [R, n, U])."""
        u = self.spec.n_actions
        eye = torch.eye(u, dtype=out.dtype, device=out.device)[:, None, None, :]
        return critic(obs, eye.expand(u, *out.shape)).movedim(0, -1), avail

    # --- policy --------------------------------------------------------------------------------
    def exploration(self, t_env: int) -> float:
        """ε of FACMAC's SMAC selector: linear from algo.epsilon_start to algo.epsilon_finish
        over algo.epsilon_anneal_env_steps."""
        a = self.cfg.algo
        frac = min(1.0, t_env / a.epsilon_anneal_env_steps)
        return a.epsilon_start + frac * (a.epsilon_finish - a.epsilon_start)

    def initial_state(self, actor: nn.Module, n_envs: int) -> tuple[torch.Tensor, torch.Tensor]:
        last = torch.full((n_envs, self.spec.n_agents), -1, dtype=torch.long)
        return actor.initial_hidden(n_envs, self.device), last

    def act(self, actor: nn.Module, obs: torch.Tensor, avail: torch.Tensor, state,
            explore: float, gen: torch.Generator) -> tuple[torch.Tensor, tuple]:
        h, last = state
        x = agent_inputs(obs.to(self.device), last.to(self.device), self.spec.n_actions)
        logits, h = actor(x, h)
        a = sample_discrete(logits.cpu(), avail.bool(), explore, gen)
        return a, (h, a)

    def policy_distance(self, actor: nn.Module, batch: EpisodeBatch) -> float:
        """Fraction of stored actions that differ from the actor's greedy actions (real steps)."""
        greedy = self.outputs(actor, batch)[:, :-1].argmax(-1)
        differ = (greedy != batch.actions).float().mean(-1)
        return float((differ * batch.mask).sum() / batch.mask.sum())


class ContinuousHead:
    """Continuous actions in normalised units [-1, 1] (padded dims 0), env units at the border."""

    def __init__(self, cfg, spec: EnvSpec, device: torch.device):
        self.cfg, self.spec, self.device = cfg, spec, device
        self.box = ActionBox(spec, device)

    @staticmethod
    def build_actor(cfg, spec: EnvSpec, rnn_hidden: int, mlp_hidden: int) -> nn.Module:
        return MLPActor(spec.obs_dim, spec.n_actions, spec.n_agents, mlp_hidden,
                        cfg.agent.share_params)

    def outputs(self, actor: nn.Module, batch: EpisodeBatch) -> torch.Tensor:
        """μ(o) [B, T+1, n, U] in [-1, 1], padded dims 0."""
        return actor(batch.obs) * self.box.dim_mask

    def taken(self, batch: EpisodeBatch) -> torch.Tensor:
        return self.box.normalise(batch.actions)

    def greedy(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def relaxed(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def candidate_values(self, critic: MLPQAgent, obs: torch.Tensor, out: torch.Tensor,
                         avail: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Q_i(o_i, ·) at μ'(o') and K − 1 copies perturbed by N(0, algo.operator_noise²),
        clipped (K = algo.operator_samples): ([R, n, K], every candidate valid)."""
        a = self.cfg.algo
        noise = a.operator_noise * torch.randn((a.operator_samples - 1, *out.shape),
                                               device=out.device)
        noisy = (out.unsqueeze(0) + noise).clamp(-1, 1) * self.box.dim_mask
        return critic(obs, torch.cat([out.unsqueeze(0), noisy])).movedim(0, -1), None

    # --- policy --------------------------------------------------------------------------------
    def exploration(self, t_env: int) -> float:
        """Gaussian σ (normalised units), constant as in FACMAC; ∞ during `algo.start_steps`."""
        return exploration_sigma(self.cfg.algo, t_env)

    def initial_state(self, actor: nn.Module, n_envs: int) -> None:
        return None

    def act(self, actor: nn.Module, obs: torch.Tensor, avail: torch.Tensor, state,
            explore: float, gen: torch.Generator) -> tuple[torch.Tensor, None]:
        """μ(o) + N(0, explore²) noise, clipped; uniform over the bounds when `explore` is ∞."""
        return self.box.explore(lambda: actor(obs.to(self.device)) * self.box.dim_mask,
                                obs.shape[0], explore, gen), None

    def policy_distance(self, actor: nn.Module, batch: EpisodeBatch) -> float:
        """Fraction of stored agent actions whose RMS distance per real dim from μ(o) exceeds
        `algo.policy_distance_tol` (normalised units), over real steps."""
        valid = batch.mask.bool()
        mu = self.outputs(actor, batch)[:, :-1][valid]
        sq = ((self.box.normalise(batch.actions[valid]) - mu) ** 2).sum(-1) / self.box.dim_mask.sum(-1)
        return float((sq.sqrt() > self.cfg.algo.policy_distance_tol).float().mean())


HEADS: dict[str, type[DiscreteHead] | type[ContinuousHead]] = {
    "discrete": DiscreteHead, "continuous": ContinuousHead}
