"""Replay: FIFO eviction, MAST's dual buffer (every episode in both, b_offline + b_online per
batch, recent data from the online FIFO), RLx2's shrinking buffer, padding in `collate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast.replay import Episode, collate
from mast.replay.buffers import DualReplayBuffer, FIFOBuffer, RLx2Buffer


def episode(tag: int, length: int = 3, n: int = 2, u: int = 4) -> Episode:
    """An episode whose reward array carries `tag`, so samples can be traced back."""
    return Episode(obs=np.full((length + 1, n, 5), tag, np.float32),
                   state=np.zeros((length + 1, 7), np.float32),
                   avail=np.ones((length + 1, n, u), bool),
                   actions=np.zeros((length, n), np.int64),
                   reward=np.full(length, tag, np.float32),
                   terminated=np.eye(1, length, length - 1, dtype=bool)[0])


def tags(episodes: list[Episode]) -> list[int]:
    return [int(e.reward[0]) for e in episodes]


def test_fifo_keeps_newest_and_samples_without_replacement():
    buf = FIFOBuffer(capacity=5)
    buf.insert([episode(i) for i in range(8)])
    assert tags(list(buf.episodes)) == [3, 4, 5, 6, 7]
    drawn = tags(buf.sample(5, np.random.default_rng(0)))
    assert sorted(drawn) == [3, 4, 5, 6, 7]
    assert not buf.can_sample(6)


def test_sampling_with_replacement_is_ready_after_one_episode_and_repeats():
    """`train.sample_with_replacement`: FACMAC-style uniform draws; a batch larger than the
    buffer repeats episodes, every stored episode is drawn, none outside it."""
    buf = FIFOBuffer(capacity=4, replace=True)
    assert not buf.can_sample(100)
    buf.insert([episode(0)])
    assert buf.can_sample(100)
    assert tags(buf.sample(100, np.random.default_rng(0))) == [0] * 100
    buf.insert([episode(i) for i in range(1, 7)])
    drawn = tags(buf.sample(400, np.random.default_rng(0)))
    assert set(drawn) == {3, 4, 5, 6} and max(np.bincount(drawn)) < 200
    dual = DualReplayBuffer(capacity=10, online_capacity=2, batch_offline=6, batch_online=4,
                            replace=True)
    dual.insert([episode(0)])
    assert dual.ready() and tags(dual.sample_batch(np.random.default_rng(0))) == [0] * 10


def test_dual_buffer_draws_offline_plus_recent_online():
    buf = DualReplayBuffer(capacity=100, online_capacity=4, batch_offline=3, batch_online=2)
    buf.insert([episode(i) for i in range(2)])
    assert not buf.ready()  # b_offline = 3 episodes not there yet
    buf.insert([episode(2)])
    assert buf.ready()
    buf.insert([episode(i) for i in range(3, 50)])
    assert len(buf.offline) == 50 and tags(list(buf.online.episodes)) == [46, 47, 48, 49]
    rng = np.random.default_rng(1)
    for _ in range(20):
        batch = tags(buf.sample_batch(rng))
        assert len(batch) == 5
        assert set(batch[3:]) <= {46, 47, 48, 49}  # the b_online part is always recent
        assert len(set(batch[:3])) == 3  # without replacement within each buffer


def test_dual_buffer_state_round_trip():
    buf = DualReplayBuffer(capacity=10, online_capacity=3, batch_offline=2, batch_online=1)
    buf.insert([episode(i) for i in range(12)])
    other = DualReplayBuffer(capacity=10, online_capacity=3, batch_offline=2, batch_online=1)
    other.load_state_dict(buf.state_dict())
    assert tags(list(other.offline.episodes)) == list(range(2, 12))
    assert tags(list(other.online.episodes)) == [9, 10, 11]


@pytest.mark.parametrize("distance,shrinks", [(0.9, True), (0.1, False)])
def test_rlx2_buffer_shrinks_only_when_stale(distance, shrinks):
    seen: list[int] = []

    def policy_distance(oldest: list[Episode]) -> float:
        seen.extend(tags(oldest))
        return distance

    buf = RLx2Buffer(capacity=100, batch_size=4, threshold=0.5, min_capacity=10, check_interval=20)
    buf.policy_distance_fn = policy_distance
    buf.insert([episode(i) for i in range(40)])  # one check, after 40 ≥ 20 inserted
    assert seen == [0, 1, 2, 3]  # measured on the oldest batch
    assert buf.capacity == (30 if shrinks else 100) and len(buf) == (30 if shrinks else 40)
    if shrinks:
        assert tags(list(buf.episodes))[0] == 10  # the oldest quarter went
        for _ in range(10):
            buf.insert([episode(99)] * 20)
        assert buf.capacity == buf.min_capacity == len(buf)  # never below the floor


def test_collate_pads_and_masks():
    batch = collate([episode(1, length=2), episode(2, length=4)])
    assert batch.obs.shape == (2, 5, 2, 5) and batch.reward.shape == (2, 4)
    torch.testing.assert_close(batch.mask, torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]]))
    assert not batch.avail[0, 3:].any()  # padded steps have no available action
    assert batch.terminated[0, 1] == 1 and batch.terminated[0, 2:].sum() == 0
    assert not batch.obs.requires_grad
