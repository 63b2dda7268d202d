"""FIFO episode buffers. Every buffer exposes insert / can_sample / sample / state_dict, so the
experiment loop never knows which one it has (registry BUFFERS, chosen by `method.buffer`)."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from mast.registry import BUFFERS
from mast.replay.episodes import Episode


class FIFOBuffer:
    """Keeps the newest `capacity` episodes; uniform sampling, without replacement unless
    `replace` (`train.sample_with_replacement`): then a batch may repeat an episode, so it is
    ready once one episode is stored instead of a batch's worth."""

    def __init__(self, capacity: int, replace: bool = False):
        self.capacity, self.replace = capacity, replace
        self.episodes: deque[Episode] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self.episodes)

    def insert(self, episodes: list[Episode]) -> None:
        self.episodes.extend(episodes)

    def can_sample(self, n: int) -> bool:
        return len(self.episodes) >= (min(n, 1) if self.replace else n)

    def sample(self, n: int, rng: np.random.Generator) -> list[Episode]:
        idx = rng.choice(len(self.episodes), size=n, replace=self.replace)
        return [self.episodes[i] for i in idx]

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "episodes": [e.to_tensors() for e in self.episodes]}

    def load_state_dict(self, d: dict) -> None:
        self.episodes = deque((Episode.from_tensors(e) for e in d["episodes"]), maxlen=self.capacity)


@BUFFERS.register("single")
class SingleBuffer(FIFOBuffer):
    """PyMARL's replay: one FIFO of `train.buffer_capacity_episodes`, batches of `batch_size`."""

    def __init__(self, capacity: int, batch_size: int, replace: bool = False, **_):
        super().__init__(capacity, replace)
        self.batch_size = batch_size

    def ready(self) -> bool:
        return self.can_sample(self.batch_size)

    def sample_batch(self, rng: np.random.Generator) -> list[Episode]:
        return self.sample(self.batch_size, rng)


@BUFFERS.register("dual")
class DualReplayBuffer:
    """MAST §3.2: a large off-policy FIFO B1 and a small on-policy FIFO B2 (every episode goes to
    both); each update draws b1 episodes from B1 and b2 from B2 so recent data is over-weighted."""

    def __init__(self, capacity: int, online_capacity: int, batch_offline: int, batch_online: int,
                 replace: bool = False, **_):
        self.offline = FIFOBuffer(capacity, replace)
        self.online = FIFOBuffer(online_capacity, replace)
        self.b_off, self.b_on = batch_offline, batch_online

    def __len__(self) -> int:
        return len(self.offline)

    def insert(self, episodes: list[Episode]) -> None:
        self.offline.insert(episodes)
        self.online.insert(episodes)

    def ready(self) -> bool:
        return self.offline.can_sample(self.b_off) and self.online.can_sample(self.b_on)

    def sample_batch(self, rng: np.random.Generator) -> list[Episode]:
        return self.offline.sample(self.b_off, rng) + self.online.sample(self.b_on, rng)

    def state_dict(self) -> dict:
        # online ⊂ offline when online capacity ≤ offline capacity: store the tail count only
        return {"offline": self.offline.state_dict(), "online_n": len(self.online)}

    def load_state_dict(self, d: dict) -> None:
        self.offline.load_state_dict(d["offline"])
        tail = list(self.offline.episodes)[len(self.offline) - d["online_n"]:]
        self.online.episodes = deque(tail, maxlen=self.online.capacity)


@BUFFERS.register("rlx2")
class RLx2Buffer(SingleBuffer):
    """RLx2's dynamic-capacity buffer, adapted to episodes: every `check_interval` inserted
    episodes, measure the policy distance of the oldest stored episodes as the fraction of their
    actions that differ from the current greedy actions; above `threshold`, drop the oldest
    quarter (never below `min_capacity`). `policy_fn(batch_of_episodes) -> greedy actions` is set
    by the experiment so the buffer stays free of network code."""

    def __init__(self, capacity: int, batch_size: int, threshold: float, min_capacity: int,
                 check_interval: int, replace: bool = False, **_):
        super().__init__(capacity, batch_size, replace)
        self.threshold, self.min_capacity, self.check_interval = threshold, min_capacity, check_interval
        self.policy_distance_fn = None
        self._since_check = 0
        self.last_distance = float("nan")

    def insert(self, episodes: list[Episode]) -> None:
        super().insert(episodes)
        self._since_check += len(episodes)
        if self.policy_distance_fn is not None and self._since_check >= self.check_interval:
            self._since_check = 0
            self._maybe_shrink()

    def _maybe_shrink(self) -> None:
        oldest = [self.episodes[i] for i in range(min(self.batch_size, len(self.episodes)))]
        self.last_distance = float(self.policy_distance_fn(oldest))
        if self.last_distance > self.threshold and len(self.episodes) > self.min_capacity:
            new_cap = max(self.min_capacity, len(self.episodes) * 3 // 4)
            self.capacity = new_cap
            self.episodes = deque(list(self.episodes)[-new_cap:], maxlen=new_cap)

    def state_dict(self) -> dict:
        return super().state_dict() | {"since_check": torch.tensor(self._since_check)}

    def load_state_dict(self, d: dict) -> None:
        self.capacity = d["capacity"]
        super().load_state_dict(d)
        self._since_check = int(d["since_check"])


def make_buffer(method, train) -> object:
    """Build the buffer named by `method.buffer` from the typed configs."""
    cls = BUFFERS.get(method.buffer)
    return cls(capacity=train.buffer_capacity_episodes, batch_size=train.batch_size_episodes,
               replace=train.sample_with_replacement,
               online_capacity=method.online_capacity_episodes,
               batch_offline=method.batch_offline, batch_online=method.batch_online,
               threshold=method.rlx2_distance_threshold,
               min_capacity=method.rlx2_min_capacity_episodes,
               check_interval=method.rlx2_check_interval_episodes)
