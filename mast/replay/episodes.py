"""Episodes stored trimmed to their true length (memory grows with data, never allocated up
front) and collated into padded batch-first tensors for the learner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Episode:
    """One episode of L steps. obs [L+1, n, obs], state [L+1, S], avail [L+1, n, U] bool,
    actions as the env's action space says: [L, n] int (discrete) or [L, n, U] float32
    (continuous, env units, padded dims 0), reward [L], terminated [L] bool (only the last step
    can be True; a truncated episode ends with False and bootstraps)."""

    obs: np.ndarray
    state: np.ndarray
    avail: np.ndarray
    actions: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray

    @property
    def length(self) -> int:
        return len(self.reward)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: torch.from_numpy(np.ascontiguousarray(getattr(self, f.name)))
                for f in fields(self)}

    @classmethod
    def from_tensors(cls, d: dict[str, torch.Tensor]) -> Episode:
        return cls(**{k: v.numpy() for k, v in d.items()})


@dataclass
class EpisodeBatch:
    """Padded batch, all [B, T(+1), ...]: obs/state/avail have T+1 steps, the rest T.
    mask [B, T] is 1 on real steps; padded steps have avail all False.
    actions [B, T, n] long (discrete) or [B, T, n, U] float (continuous)."""

    obs: torch.Tensor
    state: torch.Tensor
    avail: torch.Tensor
    actions: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    mask: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.reward.shape[0]

    @property
    def max_t(self) -> int:
        return self.reward.shape[1]

    def tensors(self) -> list[torch.Tensor]:
        """The fields in declaration order."""
        return [getattr(self, f.name) for f in fields(self)]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> EpisodeBatch:
        """The batch with `fn` applied to every tensor (a device move, a clone)."""
        return EpisodeBatch(*map(fn, self.tensors()))


def collate(episodes: list[Episode], device: torch.device | str = "cpu") -> EpisodeBatch:
    b = len(episodes)
    t = max(ep.length for ep in episodes)
    e0 = episodes[0]
    n, o = e0.obs.shape[1:]
    obs = np.zeros((b, t + 1, n, o), np.float32)
    state = np.zeros((b, t + 1, e0.state.shape[1]), np.float32)
    avail = np.zeros((b, t + 1, n, e0.avail.shape[2]), bool)
    actions = np.zeros((b, t, *e0.actions.shape[1:]), e0.actions.dtype)
    reward = np.zeros((b, t), np.float32)
    term = np.zeros((b, t), np.float32)
    mask = np.zeros((b, t), np.float32)
    for i, ep in enumerate(episodes):
        L = ep.length
        obs[i, : L + 1], state[i, : L + 1], avail[i, : L + 1] = ep.obs, ep.state, ep.avail
        actions[i, :L], reward[i, :L], term[i, :L], mask[i, :L] = ep.actions, ep.reward, ep.terminated, 1
    to = lambda x: torch.from_numpy(x).to(device)  # noqa: E731
    return EpisodeBatch(to(obs), to(state), to(avail), to(actions), to(reward), to(term), to(mask))


def window_episodes(episodes: list[Episode], steps: int, gen: torch.Generator | None = None
                    ) -> list[Episode]:
    """A random window of `steps` steps from each episode (obs/state/avail get steps + 1), cut
    before padding: a batch of 100 one-step windows of 1000-step episodes would otherwise spend
    more than a third of a COMIX update padding whole episodes. Episodes shorter than the window
    keep their start; the window's last step bootstraps from the next observation (a
    truncation), so TD(λ) stays correct on windows. Returns the episodes unchanged, with no
    draw, when none is longer than the window."""
    lengths = torch.tensor([ep.length for ep in episodes])
    if steps >= int(lengths.max()):
        return episodes
    room = (lengths - steps).clamp(min=0) + 1
    starts = (torch.rand(len(lengths), generator=gen) * room).long().tolist()
    return [Episode(ep.obs[s:s + steps + 1], ep.state[s:s + steps + 1], ep.avail[s:s + steps + 1],
                    ep.actions[s:s + steps], ep.reward[s:s + steps], ep.terminated[s:s + steps])
            for ep, s in zip(episodes, starts, strict=True)]
