"""FACMAC (Peng et al. 2021): decentralised actors trained through a factored centralised critic,
the MAST-FACMAC of paper B.10 / Fig. 18, on discrete (SMAX/SMAC) and continuous (MA-MuJoCo)
actions. The action-space difference lives in `facmac_actions` (one head per kind).

Networks, in one ModuleDict so masks, RigL, Tiny and accounting address them by name:
`actor` (RNN over logits, or MLP μ), `critic` = shared Q_i(o_i, a_i) MLP (obs ⊕ agent id ⊕ action
→ h → h → 1, FACMAC's critic plus the agent id PyMARL agents get), `mixer` = QMIX (VDN allowed).

One update, one Adam optimiser with two parameter groups (actor lr, critic lr):
- critic + mixer: TD loss of Q_tot(s, u_taken) against hybrid TD(λ) targets (`method.multistep`)
  bootstrapped from the target actor, target critic and target mixer (below);
- actor: −Q_tot(s, a) with a = the actor's relaxed action (straight-through Gumbel-Softmax, or
  μ(o) for continuous actions), through the *online* critic and mixer.
Each loss is differentiated only w.r.t. its own networks (`torch.autograd.grad`), so at a
topology update the sparse controller sees each network's dense gradient of its OWN loss: the
actor's from the policy loss, the critic's and mixer's from the TD loss. Both losses use the
critic before this update's step (FACMAC steps the critic first; one step keeps one gradient
snapshot for RigL and one optimiser whose state RigL resets).

Operator placement (MAST's Soft Mellowmax in an actor-critic target): FACMAC bootstraps with
Q_i'(o', μ'(o')), the target critic at the target actor's action — an approximate max, since the
actor is trained to maximise the critic. `method.operator=max` (every non-MAST method) is exactly
that. Any other operator (Soft Mellowmax for MAST) replaces it, per agent and before the mixer as
in MAST-QMIX, by the operator over the target critic's values of a candidate set at o': every
available action for discrete actions, μ'(o') plus K − 1 Gaussian perturbations for continuous
ones. So Soft Mellowmax damps the same overestimation (a max over noisy per-action values) that
it damps in QMIX; it costs U (or K) target-critic passes instead of one.

The operator's α and ω are not scale-free, and FACMAC's QMIX mixer lets the per-agent utilities
be small (≈0.05 per agent on 3m, with Q_tot ≈ 15): there Soft Mellowmax (α 1, ω 10) is close to
the uniform mean over actions and the critic underestimates badly. `method.operator_scale=
mixer_slope` applies the operator to each agent's utilities times ∂Q_tot/∂Q_i at the target
actor's action (`mixer_slopes`), i.e. in Q_tot units, whatever scale the mixer gives them.

Target networks: a hard copy every `train.target_update_interval_episodes` (FACMAC's SMAC setting),
or Polyak averaging with τ = `algo.target_tau` after every update (`algo.target_update=soft`,
FACMAC's MA-MuJoCo setting); masks are re-applied to the targets either way.

FACMAC's own keys replace the value-based `train.*` ones: `algo.actor_lr/critic_lr/optim_eps/
grad_norm_clip` (Adam) for `train.lr/optimizer/optim_eps/grad_norm_clip`, `algo.epsilon_*` for
`train.epsilon_*`; `train.double_q` does not apply (the target actor picks the bootstrap action).
"""

from __future__ import annotations

import torch
from torch import nn

from mast import targets as T
from mast.config import slope_scaled
from mast.envs.base import EnvSpec
from mast.learners.base import QLearner, Widths
from mast.learners.facmac_actions import HEADS
from mast.modules.continuous import MLPQAgent
from mast.modules.mixers import mixer_slopes
from mast.registry import LEARNERS
from mast.replay.episodes import EpisodeBatch


def assign_grads(loss: torch.Tensor, params: list[nn.Parameter]) -> None:
    """p.grad = ∂loss/∂p for `params` only (0 where loss does not depend on p); no other
    parameter's .grad is touched, whatever the graph runs through."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.zeros_like(p) if g is None else g


@LEARNERS.register("facmac")
class FACMACLearner(QLearner):
    def __init__(self, cfg, spec: EnvSpec, device: torch.device, widths: Widths, sparsity: float):
        self.head = HEADS[spec.action_kind](cfg, spec, device)
        super().__init__(cfg, spec, device, widths, sparsity)
        a = cfg.algo
        self.actor_params = list(self.nets["actor"].parameters())
        self.critic_params = [*self.nets["critic"].parameters(), *self.nets["mixer"].parameters()]
        self.optimizer = torch.optim.Adam(
            [{"params": self.actor_params, "lr": a.actor_lr},
             {"params": self.critic_params, "lr": a.critic_lr}], eps=a.optim_eps, foreach=True)
        for p in self.target.parameters():
            p.requires_grad_(False)

    @classmethod
    def build_nets(cls, cfg, spec: EnvSpec, w: Widths) -> nn.ModuleDict:
        """Tiny scales every width by one factor, carried by `w.rnn`: the MLPs follow it."""
        mlp = max(1, round(cfg.algo.hidden_dim * w.rnn / cfg.agent.rnn_hidden_dim))
        actor = HEADS[spec.action_kind].build_actor(cfg, spec, w.rnn, mlp)
        critic = MLPQAgent(spec.obs_dim, spec.n_actions, spec.n_agents, mlp, cfg.agent.share_params)
        return nn.ModuleDict({"actor": actor, "critic": critic, "mixer": cls._mixer(cfg, spec, w)})

    # --- critic --------------------------------------------------------------------------------
    @torch.no_grad()
    def bootstrap_values(self, batch: EpisodeBatch) -> torch.Tensor:
        """Target Q_tot of the state after each step, [B, T] (0 at padded steps): the target
        critic at the target actor's greedy action (operator max) or the operator over the
        head's candidate actions, then the target mixer."""
        valid = batch.mask.bool()
        out = self.head.outputs(self.target["actor"], batch)[:, 1:][valid]  # [R, n, U]
        obs = batch.obs[:, 1:][valid]
        op, critic = self.cfg.method.operator, self.target["critic"]
        if op == "max":
            v = critic(obs, self.head.greedy(out))  # [R, n] at μ'(o')
        else:
            values, ok = self.head.candidate_values(critic, obs, out,
                                                    batch.avail[:, 1:][valid])  # [R, n, K]
            params = T.operator_params(self.cfg.method)
            if slope_scaled(self.cfg.method):
                k = mixer_slopes(self.target["mixer"], critic(obs, self.head.greedy(out)),
                                 batch.state[:, 1:][valid])
                v = T.operator_in_units(op, values, ok, k.clamp_min(1e-6), **params)
            else:
                v = T.OPERATORS[op](values, ok, **params)
        per_agent = v.new_zeros(*valid.shape, self.spec.n_agents)
        per_agent[valid] = v
        return self.mix(self.target["mixer"], per_agent, batch.state[:, 1:], batch)

    def critic_loss(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, dict]:
        q = self.nets["critic"](batch.obs[:, :-1], self.head.taken(batch))  # [B, T, n]
        q_tot = self.mix(self.nets["mixer"], q, batch.state[:, :-1], batch)
        y = self.td_targets(batch, self.bootstrap_values(batch), t_env)
        td = (q_tot - y) * batch.mask
        return (td ** 2).sum() / batch.mask.sum(), self._stats(td, q_tot, y, batch.mask)

    # --- actor ---------------------------------------------------------------------------------
    def actor_loss(self, batch: EpisodeBatch) -> torch.Tensor:
        """−mean Q_tot(s, a) over real steps with a = the online actor's relaxed actions, through
        the online critic and mixer, plus `algo.actor_reg`·mean(a²) (FACMAC's continuous
        regulariser, 0 for discrete actions)."""
        out = self.head.outputs(self.nets["actor"], batch)[:, :-1]
        act = self.head.relaxed(out)  # [B, T, n, U]
        q = self.nets["critic"](batch.obs[:, :-1], act)
        q_tot = self.mix(self.nets["mixer"], q, batch.state[:, :-1], batch)
        n = batch.mask.sum()
        reg = ((act ** 2).mean((-1, -2)) * batch.mask).sum() / n
        return -(q_tot * batch.mask).sum() / n + self.cfg.algo.actor_reg * reg

    # --- update --------------------------------------------------------------------------------
    def compute_grads(self, batch: EpisodeBatch, t_env: int) -> dict:
        """Both losses; each network's .grad from its own loss only. Returns the stats."""
        critic_loss, stats = self.critic_loss(batch, t_env)
        actor_loss = self.actor_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        assign_grads(critic_loss, self.critic_params)
        assign_grads(actor_loss, self.actor_params)
        return stats | {"train/loss": critic_loss.item(), "train/actor_loss": actor_loss.item()}

    def update(self, batch: EpisodeBatch, t_env: int) -> dict:
        stats = self.compute_grads(batch, t_env)
        if self.sparse is not None:
            self.sparse.before_step(self.nets, self.optimizer, self.n_updates, t_env)
        clip = self.cfg.algo.grad_norm_clip
        critic_norm = torch.nn.utils.clip_grad_norm_(self.critic_params, clip)
        actor_norm = torch.nn.utils.clip_grad_norm_(self.actor_params, clip)
        self.optimizer.step()
        if self.sparse is not None:
            self.sparse.after_step(self.nets)
        self.n_updates += 1
        if self.cfg.algo.target_update == "soft":
            self._soft_update()
        stats |= {"train/grad_norm": critic_norm, "train/actor_grad_norm": actor_norm}
        return {k: float(v) for k, v in stats.items()}

    @torch.no_grad()
    def _soft_update(self) -> None:
        online = [p.detach() for p in self.nets.parameters()]
        torch._foreach_lerp_(list(self.target.parameters()), online, self.cfg.algo.target_tau)
        if self.sparse is not None:
            self.sparse.masks.apply_(self.target)

    def sync_target(self) -> None:
        """The experiment's periodic copy; with soft updates the targets track every update."""
        if self.cfg.algo.target_update == "hard":
            super().sync_target()

    # --- policy (the runner's interface) -------------------------------------------------------
    def exploration(self, t_env: int) -> float:
        return self.head.exploration(t_env)

    def initial_policy_state(self, n_envs: int):
        return self.head.initial_state(self.nets["actor"], n_envs)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail: torch.Tensor, state, explore: float,
            gen: torch.Generator):
        return self.head.act(self.nets["actor"], obs, avail, state, explore, gen)

    # --- diagnostics ---------------------------------------------------------------------------
    @torch.no_grad()
    def q_estimate(self, batch: EpisodeBatch) -> float:
        """Mean target Q_tot of the first step's taken actions (Fig. 5b diagnostic)."""
        q = self.target["critic"](batch.obs[:, 0], self.head.taken(batch)[:, 0])
        return float(self.target["mixer"](q, batch.state[:, 0]).mean())

    @torch.no_grad()
    def policy_distance(self, batch: EpisodeBatch) -> float:
        """RLx2's policy distance of stored episodes under the current actor."""
        return self.head.policy_distance(self.nets["actor"], batch)
