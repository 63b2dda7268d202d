"""Vectorised episode runner: exploring (train) or greedy (test) rollouts of N environments at
once, returned as trimmed `Episode`s. One env call and one batched policy call per step.

Action selection belongs to the learner (DESIGN §2.1): the runner holds a `Policy` (QMIX's
ε-greedy over Q values, COMIX's CEM + Gaussian noise, …) and only passes it the observations,
the available actions, its recurrent state, the exploration level and the runner's RNG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from mast.envs.base import EnvSpec
from mast.replay.episodes import Episode


class Policy(Protocol):
    """What a learner gives the runner. `explore` is the learner's exploration level
    (`exploration(t_env)`: ε for discrete Q-learners, the Gaussian σ for COMIX); 0 = greedy,
    ∞ = uniform over the action box (continuous learners' warm-up, `algo.start_steps`)."""

    def initial_policy_state(self, n_envs: int) -> Any:
        """Recurrent state at the start of n_envs episodes (hidden states, last actions…)."""
        ...

    def act(self, obs: torch.Tensor, avail: torch.Tensor, state: Any, explore: float,
            gen: torch.Generator) -> tuple[torch.Tensor, Any]:
        """obs [N, n, obs] (cpu), avail [N, n, U] bool → (actions on cpu: [N, n] long for
        discrete or [N, n, U] float in env units for continuous, next state). Random draws
        come from `gen` only, so a rollout is reproducible from the runner's RNG state."""
        ...


def agent_inputs(obs: torch.Tensor, last_actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """obs [..., n, obs], last_actions [..., n] long (−1 = none) → [..., n, obs + U + n]."""
    n = obs.shape[-2]
    last = F.one_hot(last_actions.clamp(min=0), n_actions).to(obs.dtype)
    last = last * (last_actions >= 0).unsqueeze(-1).to(obs.dtype)
    ids = torch.eye(n, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-2], n, n)
    return torch.cat([obs, last, ids], dim=-1)


def batch_agent_inputs(obs: torch.Tensor, actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Learner side: obs [B, T+1, n, o], actions [B, T, n] → inputs [B, T+1, n, in]."""
    b, _, n = actions.shape
    none = torch.full((b, 1, n), -1, dtype=actions.dtype, device=actions.device)
    return agent_inputs(obs, torch.cat([none, actions], dim=1), n_actions)


def epsilon_greedy(q: torch.Tensor, avail: torch.Tensor, epsilon: float,
                   gen: torch.Generator) -> torch.Tensor:
    """q [N, n, U], avail [N, n, U] bool → actions [N, n]; random actions uniform over avail."""
    greedy = q.masked_fill(~avail, -float("inf")).argmax(-1)
    if epsilon <= 0:
        return greedy
    rand = torch.rand(avail.shape, generator=gen).masked_fill(~avail, -1.0).argmax(-1)
    explore = torch.rand(greedy.shape, generator=gen) < epsilon
    return torch.where(explore, rand, greedy)


@dataclass
class RolloutStats:
    episodes: int
    env_steps: int
    win_rate: float
    return_mean: float
    return_discounted_mean: float


class EpisodeRunner:
    """Runs `env.n_envs` episodes per call with the learner's policy (no gradients)."""

    def __init__(self, env, policy: Policy, spec: EnvSpec, device: torch.device, seed: int):
        self.env, self.policy, self.spec, self.device = env, policy, spec, device
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def run(self, explore: float, gamma: float = 0.99) -> tuple[list[Episode], RolloutStats]:
        """One batch of episodes; `explore` = 0 is the greedy (test) policy."""
        env, spec = self.env, self.spec
        n_envs = env.n_envs
        out = env.reset()
        obs, states, avails = [out.obs], [out.state], [out.avail]
        acts, rews, terms = [], [], []
        done = np.zeros(n_envs, bool)
        length = np.full(n_envs, spec.episode_limit, np.int64)
        won = np.zeros(n_envs, bool)
        h = self.policy.initial_policy_state(n_envs)
        for t in range(spec.episode_limit):
            a, h = self.policy.act(torch.from_numpy(out.obs), torch.from_numpy(out.avail), h,
                                   explore, self.gen)
            out = self.env.step(a.numpy())
            acts.append(a.numpy())
            rews.append(out.reward)
            terms.append(out.terminated)
            obs.append(out.obs), states.append(out.state), avails.append(out.avail)
            won |= out.won
            newly = (out.terminated | out.truncated) & ~done
            length[newly] = t + 1
            done |= newly
            if done.all():
                break
        return self._split(obs, states, avails, acts, rews, terms, length, won, gamma)

    def _split(self, obs, states, avails, acts, rews, terms, length, won, gamma):
        obs, states, avails = np.stack(obs, 1), np.stack(states, 1), np.stack(avails, 1)
        acts, rews, terms = np.stack(acts, 1), np.stack(rews, 1), np.stack(terms, 1)
        acts = acts.astype(np.int64 if self.spec.continuous is None else np.float32)
        episodes = []
        for i, L in enumerate(length):
            episodes.append(Episode(obs[i, : L + 1].astype(np.float32), states[i, : L + 1].astype(np.float32),
                                    avails[i, : L + 1].astype(bool), acts[i, :L].copy(),
                                    rews[i, :L].astype(np.float32), terms[i, :L].astype(bool)))
        returns = np.array([ep.reward.sum() for ep in episodes])
        disc = np.array([(ep.reward * gamma ** np.arange(ep.length)).sum() for ep in episodes])
        stats = RolloutStats(len(episodes), int(length.sum()), float(won.mean()),
                             float(returns.mean()), float(disc.mean()))
        return episodes, stats
