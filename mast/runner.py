"""Vectorised episode runner: ε-greedy (train) or greedy (test) rollouts of N environments at
once, returned as trimmed `Episode`s. One env call and one batched agent forward per step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mast.envs.base import EnvSpec
from mast.modules.agents import RNNAgent
from mast.replay.episodes import Episode


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
    """Runs `env.n_envs` episodes per call with the online agent (no gradients)."""

    def __init__(self, env, agent: RNNAgent, spec: EnvSpec, device: torch.device, seed: int):
        self.env, self.agent, self.spec, self.device = env, agent, spec, device
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def run(self, epsilon: float, gamma: float = 0.99) -> tuple[list[Episode], RolloutStats]:
        env, spec = self.env, self.spec
        n_envs = env.n_envs
        out = env.reset()
        obs, states, avails = [out.obs], [out.state], [out.avail]
        acts, rews, terms = [], [], []
        done = np.zeros(n_envs, bool)
        length = np.full(n_envs, spec.episode_limit, np.int64)
        won = np.zeros(n_envs, bool)
        h = self.agent.initial_hidden(n_envs, self.device)
        last = torch.full((n_envs, spec.n_agents), -1, dtype=torch.long)
        for t in range(spec.episode_limit):
            o = torch.from_numpy(out.obs).to(self.device)
            q, h = self.agent(agent_inputs(o, last.to(self.device), spec.n_actions), h)
            a = epsilon_greedy(q.cpu(), torch.from_numpy(out.avail), epsilon, self.gen)
            out = self.env.step(a.numpy())
            acts.append(a.numpy())
            rews.append(out.reward)
            terms.append(out.terminated)
            obs.append(out.obs), states.append(out.state), avails.append(out.avail)
            won |= out.won
            newly = (out.terminated | out.truncated) & ~done
            length[newly] = t + 1
            done |= newly
            last = a
            if done.all():
                break
        return self._split(obs, states, avails, acts, rews, terms, length, won, gamma)

    def _split(self, obs, states, avails, acts, rews, terms, length, won, gamma):
        obs, states, avails = np.stack(obs, 1), np.stack(states, 1), np.stack(avails, 1)
        acts, rews, terms = np.stack(acts, 1), np.stack(rews, 1), np.stack(terms, 1)
        episodes = []
        for i, L in enumerate(length):
            episodes.append(Episode(obs[i, : L + 1].astype(np.float32), states[i, : L + 1].astype(np.float32),
                                    avails[i, : L + 1].astype(bool), acts[i, :L].astype(np.int64),
                                    rews[i, :L].astype(np.float32), terms[i, :L].astype(bool)))
        returns = np.array([ep.reward.sum() for ep in episodes])
        disc = np.array([(ep.reward * gamma ** np.arange(ep.length)).sum() for ep in episodes])
        stats = RolloutStats(len(episodes), int(length.sum()), float(won.mean()),
                             float(returns.mean()), float(disc.mean()))
        return episodes, stats
