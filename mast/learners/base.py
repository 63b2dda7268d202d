"""Q-learning for value decomposition (QMIX, VDN) — the base the WQMIX and RES variants extend.

One update = online agent unroll → chosen Q_tot; target agent unroll → per-agent operator
(double-Q max or Soft Mellowmax) → target mixer → hybrid TD(λ) targets → masked MSE.
Variants override `next_values` and/or `loss`; everything else (optimiser, sparsity, target
sync, checkpoint state) lives here once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from mast import targets as T
from mast.config import slope_scaled, t0_env_steps
from mast.envs.base import EnvSpec
from mast.modules.agents import EpisodeInputs, Packing, RNNAgent, unroll, unroll_reference
from mast.modules.mixers import mix_where, mixer_slopes
from mast.registry import LEARNERS, MIXERS
from mast.replay.episodes import Episode, EpisodeBatch, collate, window_episodes
from mast.runner import agent_inputs, batch_agent_inputs, epsilon_greedy


@dataclass(frozen=True)
class Widths:
    """Hidden widths; Tiny scales all of them by one factor."""

    rnn: int = 64
    embed: int = 32
    hypernet: int = 64
    central: int = 256

    @classmethod
    def from_config(cls, cfg) -> Widths:
        return cls(rnn=cfg.agent.rnn_hidden_dim, embed=cfg.algo.mixing_embed_dim,
                   hypernet=cfg.algo.hypernet_hidden_dim, central=cfg.algo.central_hidden_dim)

    def scaled(self, c: float) -> Widths:
        return Widths(*(max(1, round(c * w)) for w in (self.rnn, self.embed, self.hypernet,
                                                        self.central)))


def make_optimizer(train, params, capturable: bool = False) -> torch.optim.Optimizer:
    """foreach=True on every device (torch turns it on only for CUDA): one op per optimiser
    formula for all parameters instead of one per parameter, same arithmetic. `capturable`
    keeps the step counters on the GPU, so a CUDA graph can replay the step."""
    if train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=train.lr, alpha=train.rms_alpha, eps=train.optim_eps,
                                   foreach=True, capturable=capturable)
    return torch.optim.Adam(params, lr=train.lr, eps=train.optim_eps, foreach=True,
                            capturable=capturable)


@LEARNERS.register("q")
class QLearner:
    fast_path = True  # False: step-by-step unroll, mixers on every step (reference, `make bench`)

    def __init__(self, cfg, spec: EnvSpec, device: torch.device, widths: Widths, sparsity: float):
        self.cfg, self.spec, self.device = cfg, spec, device
        self.gamma = cfg.train.gamma
        self.nets = self.build_nets(cfg, spec, widths).to(device)
        self.sparse = None
        if cfg.method.sparse and sparsity > 0:
            from mast.learners.sparsity import SparsityController

            self.sparse = SparsityController(self.nets, cfg.method, sparsity, cfg.t_max, cfg.seed)
        self.target = copy.deepcopy(self.nets)
        self.optimizer = make_optimizer(cfg.train, self.nets.parameters())
        self.graphs, self.static_shapes = None, False
        if cfg.get("cuda_graphs", False) and device.type == "cuda":
            self.enable_graphs()
        self.n_updates = 0
        self.t0 = t0_env_steps(cfg)
        self.multistep = cfg.method.multistep

    def enable_graphs(self, capture: bool = True, bucket_steps: int = 8) -> None:
        """Replay each update from a CUDA graph per padded episode length (`cuda_graphs=true`,
        mast.learners.graphs). The update then has static shapes — no packing, mixers on every
        step, no host round trip — with the same maths as the packed fast path; `capture=False`
        runs that static update eagerly (the CPU tests). Call before the first update."""
        from mast.learners.graphs import UpdateGraphs

        self.static_shapes = True
        self.optimizer = make_optimizer(self.cfg.train, self.nets.parameters(), capturable=capture)
        self.graphs = UpdateGraphs(self, bucket_steps, capture)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def build_nets(cls, cfg, spec: EnvSpec, w: Widths) -> nn.ModuleDict:
        """Every trainable network in one ModuleDict, so masks and targets address them by name."""
        return nn.ModuleDict({"agent": cls._agent(cfg, spec, w), "mixer": cls._mixer(cfg, spec, w)})

    @staticmethod
    def _agent(cfg, spec: EnvSpec, w: Widths) -> RNNAgent:
        return RNNAgent(spec.agent_input_dim, spec.n_actions, spec.n_agents, w.rnn,
                        cfg.agent.share_params)

    @staticmethod
    def _mixer(cfg, spec: EnvSpec, w: Widths) -> nn.Module:
        return MIXERS.get(cfg.algo.mixer)(spec.n_agents, spec.state_dim, embed_dim=w.embed,
                                          hypernet_dim=w.hypernet)

    @property
    def agent(self) -> RNNAgent:
        return self.nets["agent"]

    # --- targets and loss ---------------------------------------------------------------------
    def agent_next_values(self, q_online: torch.Tensor, q_target: torch.Tensor,
                          avail: torch.Tensor, operator: str | None = None) -> torch.Tensor:
        """Per-agent bootstrap values [B, T, n] from Qs at the next steps [B, T, n, U], by
        `operator` (default: method.operator)."""
        m = self.cfg.method
        operator = operator or m.operator
        if operator == "max":
            if self.cfg.train.double_q:
                greedy = q_online.masked_fill(~avail, -1e9).argmax(-1, keepdim=True)
                return q_target.gather(-1, greedy).squeeze(-1)
            return T.max_operator(q_target, avail)
        return T.OPERATORS[operator](q_target, avail, **T.operator_params(m, operator))

    @torch.no_grad()
    def next_values(self, batch: EpisodeBatch, inputs: EpisodeInputs,
                    q_online: torch.Tensor) -> torch.Tensor:
        """Bootstrap value of the state after each step, [B, T], from the target networks."""
        q_target = self.unroll(self.target["agent"], inputs)[:, 1:]
        m, avail = self.cfg.method, batch.avail[:, 1:]
        if slope_scaled(m):
            v = self._operator_in_mixer_units(q_online[:, 1:].detach(), q_target, avail, batch)
        else:
            v = self.agent_next_values(q_online[:, 1:].detach(), q_target, avail)
        return self.mix(self.target["mixer"], v, batch.state[:, 1:], batch)

    def _operator_in_mixer_units(self, q_online: torch.Tensor, q_target: torch.Tensor,
                                 avail: torch.Tensor, batch: EpisodeBatch) -> torch.Tensor:
        """`method.operator_scale=mixer_slope`: the operator over each agent's target Qs in Q_tot
        units, the unit being ∂Q_tot/∂Q_i of the target mixer at the greedy bootstrap (the max
        operator's values, double-Q if on). [B, T, n]."""
        at_greedy = self.agent_next_values(q_online, q_target, avail, operator="max")
        k = mixer_slopes(self.target["mixer"], at_greedy, batch.state[:, 1:])
        return T.operator_in_units(self.cfg.method.operator, q_target, avail, k.clamp_min(1e-6),
                                   **T.operator_params(self.cfg.method))

    def td_targets(self, batch: EpisodeBatch, next_v: torch.Tensor, t_env: int) -> torch.Tensor:
        mode = "one_step" if self.multistep == "none" else self.multistep
        return T.hybrid_targets(batch.reward, batch.terminated, batch.mask, next_v, self.gamma,
                                t_env=t_env, t0_env_steps=self.t0, mode=mode,
                                lam=self.cfg.algo.td_lambda, n=self.cfg.method.nstep)

    def q_tot_and_targets(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Q_tot of the taken actions and its TD targets, both [B, T]."""
        inputs = self.episode_inputs(batch)
        q = self.unroll(self.agent, inputs)  # [B, T+1, n, U]
        chosen = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)  # [B, T, n]
        q_tot = self.mix(self.nets["mixer"], chosen, batch.state[:, :-1], batch)
        return q_tot, self.td_targets(batch, self.next_values(batch, inputs, q), t_env)

    def episode_inputs(self, batch: EpisodeBatch) -> EpisodeInputs:
        """Agent inputs [B, T+1, n, in] and the packing of the L+1 steps each episode has."""
        x = batch_agent_inputs(batch.obs, batch.actions, self.spec.n_actions)
        if self.static_shapes:  # every step unrolled: no data-dependent shapes
            return EpisodeInputs(x)
        lengths = batch.mask.sum(1).long() + 1
        return EpisodeInputs(x, Packing.from_lengths(lengths, self.spec.n_agents, x.shape[1]))

    def unroll(self, agent: RNNAgent, inputs: EpisodeInputs) -> torch.Tensor:
        """q [B, T+1, n, U] of `agent` (online or target); 0 at padded steps on the fast path,
        the step-by-step reference (equivalence tests, `make bench`'s "before") otherwise."""
        if self.fast_path:
            return unroll(agent, inputs)
        return unroll_reference(agent, inputs.x)

    def mix(self, mixer: nn.Module, qs: torch.Tensor, states: torch.Tensor,
            batch: EpisodeBatch) -> torch.Tensor:
        """mixer(qs [B, T, ..., n], states [B, T, ..., S]) → [B, T, ...], on the fast path only
        at real steps (0 at padded ones); with static shapes at every step (padding masked later)."""
        if self.fast_path and not self.static_shapes:
            return mix_where(mixer, qs, states, batch.mask.bool())
        return mixer(qs, states)

    def make_batch(self, episodes: list[Episode]) -> EpisodeBatch:
        """The update's batch from sampled episodes, cut to `algo.seq_window_steps`-step windows
        where the algorithm has them (COMIX, FACMAC on MA-MuJoCo)."""
        steps = self.cfg.algo.get("seq_window_steps")
        return collate(episodes if steps is None else window_episodes(episodes, steps), self.device)

    def loss(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, dict]:
        q_tot, y = self.q_tot_and_targets(batch, t_env)
        td = (q_tot - y) * batch.mask
        return (td ** 2).sum() / batch.mask.sum(), self._stats(td, q_tot, y, batch.mask)

    @staticmethod
    @torch.no_grad()
    def _stats(td, q_tot, y, mask) -> dict[str, torch.Tensor]:
        """0-dim tensors (read once per update by `update`, after any graph replay)."""
        n = mask.sum().clamp(min=1)
        return {"train/td_error_abs": td.abs().sum() / n,
                "train/q_taken_mean": (q_tot * mask).sum() / n,
                "train/target_mean": (y * mask).sum() / n}

    # --- update -------------------------------------------------------------------------------
    def update(self, batch: EpisodeBatch, t_env: int) -> dict:
        """One gradient step; the statistics as floats (one device-to-host copy)."""
        evolve = self.sparse is not None and self.sparse.topology_due(self.n_updates, t_env)
        if self.graphs is not None and not evolve:
            stats = self.graphs.update(batch, t_env)
        else:
            stats = self.step(batch, t_env, evolve=evolve)
        self.n_updates += 1
        values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
        return dict(zip(stats, values, strict=True))

    def step(self, batch: EpisodeBatch, t_env: int, evolve: bool = False) -> dict[str, torch.Tensor]:
        """Loss, backward, clipping, optimiser step and masks, with no host round trip unless
        `evolve` (a topology update with the dense gradient), so a CUDA graph can capture it."""
        loss, stats = self.loss(batch, t_env)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if evolve:
            self.sparse.before_step(self.nets, self.optimizer, self.n_updates, t_env)
        elif self.sparse is not None:
            self.sparse.masks.mask_grads_(self.nets)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.nets.parameters(),
                                                   self.cfg.train.grad_norm_clip, foreach=True)
        self.optimizer.step()
        if self.sparse is not None:
            self.sparse.after_step(self.nets)
        return stats | {"train/loss": loss.detach(), "train/grad_norm": grad_norm}

    def sync_target(self) -> None:
        self.target.load_state_dict(self.nets.state_dict())
        if self.sparse is not None:
            self.sparse.masks.apply_(self.target)

    @torch.no_grad()
    def q_estimate(self, batch: EpisodeBatch) -> float:
        """Mean target-network Q_tot at the first step of greedy episodes (Fig. 5b diagnostic)."""
        inputs = batch_agent_inputs(batch.obs, batch.actions, self.spec.n_actions)
        q = self.target["agent"](inputs[:, 0], self.target["agent"].initial_hidden(
            batch.batch_size, inputs.device))[0]
        chosen = q.gather(-1, batch.actions[:, 0].unsqueeze(-1)).squeeze(-1)
        return float(self.target["mixer"](chosen, batch.state[:, 0]).mean())

    # --- policy: what the runner calls (DESIGN §2.1) ------------------------------------------
    def exploration(self, t_env: int) -> float:
        """ε at t_env: linear from train.epsilon_start to epsilon_finish over
        algo.epsilon_anneal_env_steps (PyMARL), passed to `act` by the training runner."""
        tr = self.cfg.train
        frac = min(1.0, t_env / self.cfg.algo.epsilon_anneal_env_steps)
        return tr.epsilon_start + frac * (tr.epsilon_finish - tr.epsilon_start)

    def initial_policy_state(self, n_envs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(GRU hidden [N, n, h] on the device, last actions [N, n] long, −1 = none)."""
        last = torch.full((n_envs, self.spec.n_agents), -1, dtype=torch.long)
        return self.agent.initial_hidden(n_envs, self.device), last

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail: torch.Tensor, state, explore: float,
            gen: torch.Generator) -> tuple[torch.Tensor, tuple]:
        """ε-greedy over the online agent's Qs (ε = explore); actions [N, n] long on the cpu."""
        h, last = state
        inputs = agent_inputs(obs.to(self.device), last.to(self.device), self.spec.n_actions)
        q, h = self.agent(inputs, h)
        a = epsilon_greedy(q.cpu(), avail, explore, gen)
        return a, (h, a)

    @torch.no_grad()
    def policy_distance(self, batch: EpisodeBatch) -> float:
        """RLx2's policy distance on stored episodes: the fraction of stored actions that differ
        from the current greedy actions (over real steps)."""
        q = unroll(self.agent, batch_agent_inputs(batch.obs, batch.actions, self.spec.n_actions))
        greedy = q[:, :-1].masked_fill(~batch.avail[:, :-1], -1e9).argmax(-1)
        differ = (greedy != batch.actions).float().mean(-1)
        return float((differ * batch.mask).sum() / batch.mask.sum())

    # --- checkpoint state ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        d = {"nets": self.nets.state_dict(), "target": self.target.state_dict(),
             "optimizer": self.optimizer.state_dict(), "n_updates": self.n_updates}
        if self.sparse is not None:
            d["sparse"] = self.sparse.state_dict()
        return d

    def load_state_dict(self, d: dict) -> None:
        self.nets.load_state_dict(d["nets"])
        self.target.load_state_dict(d["target"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.n_updates = int(d["n_updates"])
        if self.sparse is not None:
            self.sparse.load_state_dict(d["sparse"])


def build_learner(cfg, spec: EnvSpec, device: torch.device, widths: Widths,
                  sparsity: float) -> QLearner:
    return LEARNERS.get(cfg.algo.learner)(cfg, spec, device, widths, sparsity)
