"""COMIX (Peng et al. 2021): QMIX over continuous actions, the MAST-COMIX of paper B.9.

Networks (one ModuleDict, so masks, RigL and accounting see them by name): `agent` = shared
Q_i(o_i, a_i) MLP (2 × 400, agent id in the input), `mixer` = QMIX. Greedy actions come from
CEM (`mast.cem`) on each agent's Q_i; exploration adds Gaussian noise σ = `algo.act_noise` (in
units of the half action range) and clips to the bounds, after `algo.start_steps` env steps of
uniform random actions (FACMAC's warm-up). Targets: CEM on the *target* agent at
o_{t+1} (FACMAC: the target controller picks the bootstrap actions; `algo.bootstrap_actions=
online` lets the online agent pick them, double Q), target mixer, hybrid TD(λ) through
`QLearner.td_targets`; soft (Polyak) target updates with τ = `algo.target_tau` after every
update, as FACMAC (`algo.target_update=hard` restores the periodic copy). `algo.twin_critics`
adds a second critic (`agent2` + `mixer2`, not acting) and bootstraps from the smaller of the
two target critics' Q_tot at the same actions: TD3's clipped double Q, against the
overestimation the dense critic shows on the Swimmer (README, COMIX on a CPU budget).
`algo.target_noise` is TD3's target policy smoothing: the target critics value those actions
plus clipped Gaussian noise, so a bootstrap cannot ride a narrow peak of Q in the action that
the CEM found (off by default, as FACMAC).

Operators over a continuous action set: `method.operator` (max, soft_mellowmax, mellowmax,
softmax) is applied per agent over the K values of the last CEM iteration's candidates — K
samples of the CEM Gaussian fitted around the approximate argmax. `max` is the CEM greedy value
(FACMAC's target); Soft Mellowmax sm_ω = (1/ω)[LSE((α+ω)Q) − LSE(αQ)] over those K values lies
between their softmax(αQ)-weighted mean and their max, so it damps the overestimation of a
sampled max exactly as it does over discrete actions. `method.operator_scale=mixer_slope` applies
it in Q_tot units (the target mixer's ∂Q_tot/∂Q_i at the CEM greedy values), as for QMIX and
FACMAC: Soft Mellowmax's temperatures are not scale-free, and on the Swimmer one unit of an
agent's utility was worth ≈3.4 units of Q_tot (README, COMIX on a CPU budget).
`train.double_q` does not apply: `algo.bootstrap_actions=online` is COMIX's double Q (the online
agent's CEM picks, the target agent values). The optimiser settings are
COMIX's own (`algo.lr`, `algo.optim_eps`, `algo.grad_norm_clip`, Adam) and replace
`train.lr/optimizer/optim_eps/grad_norm_clip`.
"""

from __future__ import annotations

import copy

import torch
from omegaconf import open_dict
from torch import nn

from mast import targets as T
from mast.cem import CEMResult, cem_maximise
from mast.config import later_key, slope_scaled
from mast.envs.base import EnvSpec
from mast.learners.base import QLearner, Widths
from mast.modules.continuous import ActionBox, MLPQAgent, exploration_sigma
from mast.modules.mixers import mixer_slopes
from mast.registry import LEARNERS
from mast.replay.episodes import EpisodeBatch

CEM_CHUNK_ELEMENTS = 2**13  # samples × rows × agents per CEM call (cache-sized: 1.2× vs 2**17)
CRITICS = (("agent", "mixer"), ("agent2", "mixer2"))  # the second only with algo.twin_critics


def _comix_train_settings(cfg):
    """A copy of cfg whose `train` optimiser keys are COMIX's (Adam, algo.lr, …)."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.train.optimizer, cfg.train.lr = "adam", cfg.algo.lr
        cfg.train.optim_eps, cfg.train.grad_norm_clip = cfg.algo.optim_eps, cfg.algo.grad_norm_clip
    return cfg


@LEARNERS.register("comix")
class COMIXLearner(QLearner):
    def __init__(self, cfg, spec: EnvSpec, device: torch.device, widths: Widths, sparsity: float):
        if spec.continuous is None:
            raise ValueError("algo=comix needs continuous actions (env=mamujoco); "
                             "use algo=qmix for discrete action spaces")
        super().__init__(_comix_train_settings(cfg), spec, device, widths, sparsity)
        self.box = ActionBox(spec, device)
        for p in self.target.parameters():
            p.requires_grad_(False)

    @classmethod
    def build_nets(cls, cfg, spec: EnvSpec, w: Widths) -> nn.ModuleDict:
        """Tiny scales every width by one factor, carried by `w.rnn`: the MLP follows it."""
        hidden = max(1, round(cfg.algo.hidden_dim * w.rnn / cfg.agent.rnn_hidden_dim))
        nets = {}
        for agent_key, mixer_key in CRITICS[:2 if later_key(cfg.algo, "algo", "twin_critics") else 1]:
            nets[agent_key] = MLPQAgent(spec.obs_dim, spec.n_actions, spec.n_agents, hidden,
                                        cfg.agent.share_params)
            nets[mixer_key] = cls._mixer(cfg, spec, w)
        return nn.ModuleDict(nets)

    @property
    def critics(self) -> tuple[tuple[str, str], ...]:
        """(agent, mixer) names of each critic: one (FACMAC), two with `algo.twin_critics`."""
        return tuple(c for c in CRITICS if c[0] in self.nets)

    def _chunk_rows(self, samples: int) -> int:
        """Rows of o per call when each is scored at `samples` actions (cache-sized calls)."""
        return max(1, CEM_CHUNK_ELEMENTS // (samples * self.spec.n_agents))

    def greedy(self, agent: nn.Module, obs: torch.Tensor,
               gen: torch.Generator | None = None) -> CEMResult:
        """CEM on `agent` for obs [R, n, o], in chunks of rows → CEMResult over [R, ...]."""
        a = self.cfg.algo
        rows = self._chunk_rows(a.cem_samples)
        parts = []
        for o in obs.split(rows):
            mask = self.box.dim_mask.expand(o.shape[0], *self.box.dim_mask.shape)
            parts.append(cem_maximise(lambda x, o=o: agent(o, x), mask, a.cem_samples,
                                      a.cem_elites, a.cem_iterations, gen))
        if len(parts) == 1:
            return parts[0]
        return CEMResult(*(torch.cat([getattr(p, f) for p in parts], dim=0 if f.startswith("best")
                                     else 1) for f in ("best", "best_value", "candidates", "values")))

    # --- policy (the runner's interface) -----------------------------------------------------
    def exploration(self, t_env: int) -> float:
        """σ of the Gaussian exploration noise, ∞ during `algo.start_steps` (uniform warm-up)."""
        return exploration_sigma(self.cfg.algo, t_env)

    def initial_policy_state(self, n_envs: int) -> None:
        return None  # feed-forward agent: no recurrent state

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail: torch.Tensor, state, explore: float,
            gen: torch.Generator) -> tuple[torch.Tensor, None]:
        """CEM greedy actions + N(0, explore²) noise, clipped; uniform over the bounds when
        `explore` is ∞ (the warm-up: no CEM); [N, n, U] env units on the cpu."""
        return self.box.explore(lambda: self.greedy(self.agent, obs.to(self.device), gen).best,
                                obs.shape[0], explore, gen), None

    # --- targets and loss ----------------------------------------------------------------------
    def _operator(self, values: torch.Tensor, unit: torch.Tensor | None = None) -> torch.Tensor:
        """Per-agent operator over the K candidate values: [K, R, n] → [R, n], in the units
        `unit` [R, n] when given (else the utilities' own)."""
        m = self.cfg.method
        if unit is None:
            return T.OPERATORS[m.operator](values.movedim(0, -1), None, **T.operator_params(m))
        return T.operator_in_units(m.operator, values.movedim(0, -1), None, unit,
                                   **T.operator_params(m))

    def _bootstrap_candidates(self, obs: torch.Tensor) -> CEMResult:
        """CEM at o_{t+1} [R, n, o] with the values the bootstrap uses: the target agent's own
        search (FACMAC), or with `algo.bootstrap_actions=online` the online agent's search
        re-valued by the target agent (double Q: the network that picks an action does not
        value it, so a sampled max's upward noise is not selected and counted twice)."""
        if later_key(self.cfg.algo, "algo", "bootstrap_actions") == "target":
            return self.greedy(self.target["agent"], obs)
        return self._revalue(self.target["agent"], obs, self.greedy(self.nets["agent"], obs))

    def _revalue(self, agent: nn.Module, obs: torch.Tensor, res: CEMResult) -> CEMResult:
        """`res`'s actions valued by `agent`: the greedy action, and the candidates only for
        operators other than max (they cost K passes; with max, `values` is left as it was)."""
        rows = self._chunk_rows(res.values.shape[0])
        best_value = torch.cat([agent(o, b[None])[0] for o, b in
                                zip(obs.split(rows), res.best.split(rows), strict=True)])
        values = res.values
        if self.cfg.method.operator != "max":
            values = torch.cat([agent(o, c) for o, c in zip(
                obs.split(rows), res.candidates.split(rows, dim=1), strict=True)], dim=1)
        return CEMResult(res.best, best_value, res.candidates, values)

    def _per_agent_bootstrap(self, res: CEMResult, mixer: nn.Module,
                             state: torch.Tensor) -> torch.Tensor:
        """Per-agent bootstrap values [R, n]: the greedy value (`max`), else the operator over
        the candidates' values (in `mixer`'s Q_tot units with `operator_scale=mixer_slope`)."""
        if self.cfg.method.operator == "max":
            return res.best_value
        unit = None
        if slope_scaled(self.cfg.method):
            unit = mixer_slopes(mixer, res.best_value, state).clamp_min(1e-6)
        return self._operator(res.values, unit)

    @torch.no_grad()
    def bootstrap_values(self, batch: EpisodeBatch) -> torch.Tensor:
        """Target Q_tot of the state after each step, [B, T]: CEM at o_{t+1}
        (`_bootstrap_candidates`), per agent the operator over the candidates' values (`max`:
        the value of the CEM greedy action), the target mixer (real steps only). With twin
        critics the second target critic values the same actions and the smaller Q_tot counts
        (TD3's clipped double Q: an error one critic makes upwards the other rarely shares)."""
        obs, state, valid = batch.obs[:, 1:], batch.state[:, 1:], batch.mask.bool()
        res = self._bootstrap_candidates(obs[valid]) if valid.any() else None
        if res is not None and later_key(self.cfg.algo, "algo", "target_noise") > 0:
            res = self._smoothed(obs[valid], res)
        v = None
        for k, (agent_key, mixer_key) in enumerate(self.critics):
            per_agent = torch.zeros(valid.shape + (self.spec.n_agents,), device=obs.device)
            if res is not None:
                if k > 0:
                    res = self._revalue(self.target[agent_key], obs[valid], res)
                per_agent[valid] = self._per_agent_bootstrap(res, self.target[mixer_key],
                                                             state[valid])
            q = self.target[mixer_key](per_agent, state)
            v = q if v is None else torch.minimum(v, q)
        return v

    def _smoothed(self, obs: torch.Tensor, res: CEMResult) -> CEMResult:
        """TD3's target policy smoothing: `res`'s greedy action (and its candidates, for
        operators other than max) plus N(0, σ²) noise clipped to ±`algo.target_noise_clip`,
        kept in the box, re-valued by the target agent. Noise from the global generator, drawn
        for the greedy action first, as CEM's own target draws."""
        a = self.cfg.algo

        def jitter(x: torch.Tensor) -> torch.Tensor:
            return self.box.perturb(x, a.target_noise, None, a.target_noise_clip)

        best = jitter(res.best)
        candidates = res.candidates if self.cfg.method.operator == "max" else jitter(res.candidates)
        return self._revalue(self.target["agent"], obs,
                             CEMResult(best, res.best_value, candidates, res.values))

    def _q_tot(self, batch: EpisodeBatch, agent_key: str = "agent",
               mixer_key: str = "mixer") -> torch.Tensor:
        """Q_tot [B, T] of the taken actions by one online critic."""
        q = self.nets[agent_key](batch.obs[:, :-1], self.box.normalise(batch.actions))  # [B, T, n]
        return self.nets[mixer_key](q, batch.state[:, :-1])

    def q_tot_and_targets(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._q_tot(batch), self.td_targets(batch, self.bootstrap_values(batch), t_env)

    def loss(self, batch: EpisodeBatch, t_env: int) -> tuple[torch.Tensor, dict]:
        """Masked MSE to the TD targets; with twin critics the sum of both critics' (TD3), the
        logged statistics those of the first (the one that acts)."""
        if len(self.critics) == 1:
            return super().loss(batch, t_env)
        q_tot, y = self.q_tot_and_targets(batch, t_env)
        td = (q_tot - y) * batch.mask
        td2 = (self._q_tot(batch, *self.critics[1]) - y) * batch.mask
        loss = ((td ** 2).sum() + (td2 ** 2).sum()) / batch.mask.sum()
        return loss, self._stats(td, q_tot, y, batch.mask)

    # --- targets: FACMAC's soft updates --------------------------------------------------------
    def update(self, batch: EpisodeBatch, t_env: int) -> dict:
        stats = super().update(batch, t_env)
        if self.cfg.algo.target_update == "soft":
            online = [p.detach() for p in self.nets.parameters()]
            torch._foreach_lerp_(list(self.target.parameters()), online, self.cfg.algo.target_tau)
            if self.sparse is not None:
                self.sparse.masks.apply_(self.target)
        return stats

    def sync_target(self) -> None:
        """The experiment's periodic copy; with soft updates the targets track every update."""
        if self.cfg.algo.target_update == "hard":
            super().sync_target()

    # --- diagnostics ---------------------------------------------------------------------------
    @torch.no_grad()
    def q_estimate(self, batch: EpisodeBatch) -> float:
        """Mean target Q_tot of the first step's taken actions (Fig. 5b diagnostic)."""
        q = self.target["agent"](batch.obs[:, 0], self.box.normalise(batch.actions[:, 0]))
        return float(self.target["mixer"](q, batch.state[:, 0]).mean())

    @torch.no_grad()
    def policy_distance(self, batch: EpisodeBatch) -> float:
        """RLx2's policy distance for continuous actions: the fraction of stored agent actions
        whose RMS distance per real dim (normalised units) from the current CEM greedy action
        exceeds `algo.policy_distance_tol`, on ≤ `policy_distance_max_rows` evenly spaced real
        steps (CEM is costly). CEM draws from a fixed-seed generator: no training RNG is used."""
        obs, acts = batch.obs[:, :-1][batch.mask.bool()], batch.actions[batch.mask.bool()]
        keep = torch.linspace(0, len(obs) - 1, min(len(obs), self.cfg.algo.policy_distance_max_rows))
        obs, acts = obs[keep.long()], acts[keep.long()]
        greedy = self.greedy(self.agent, obs, torch.Generator().manual_seed(0)).best
        sq = ((self.box.normalise(acts) - greedy) ** 2).sum(-1) / self.box.dim_mask.sum(-1)
        return float((sq.sqrt() > self.cfg.algo.policy_distance_tol).float().mean())
