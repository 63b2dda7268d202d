"""The CUDA-graph update path (`cuda_graphs=true`, mast.learners.graphs) has the packed fast
path's maths: batches padded to a shape bucket, static input buffers reused per bucket, no
packing, mixers on every step, topology updates run eagerly with masks changed in place. Capture
needs CUDA; here the same static update runs eagerly (capture=False)."""

from __future__ import annotations

import pytest
import torch

from mast.config import ConfigError, validate
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.learners.graphs import pad_steps

from .conftest import compose_cfg
from .test_fast_path import SPEC, random_batch

CASES = [
    ("algo=qmix", "method=mast"),
    ("algo=qmix", "method=dense", "agent.share_params=false"),
    ("algo=wqmix", "method=rigl", "algo.weighting=cw"),
    ("algo=res", "method=mast"),
    ("algo=vdn", "method=set"),
]


def learner_pair(overrides, device: str = "cpu"):
    cfg = compose_cfg([*overrides, "sparsity=0.8", "method.update_interval_episodes=3"])
    pair = []
    for graphs in (False, True):
        torch.manual_seed(0)
        learner = build_learner(cfg, SPEC, torch.device(device), Widths.from_config(cfg), 0.8)
        if graphs:
            learner.enable_graphs(capture=device == "cuda", bucket_steps=8)
        pair.append(learner)
    return pair


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="CUDA graphs need a GPU"))])
@pytest.mark.parametrize("overrides", CASES, ids=lambda o: ",".join(o))
def test_static_bucketed_update_equals_packed_fast_path(overrides, device):
    """Same batches, weights and masks → same statistics and parameters over 7 updates that mix
    one-step and TD(λ) targets (t_env either side of T0) and topology updates (Δm = 3). On CUDA
    the static update is captured and replayed; on the CPU it runs eagerly on the same buffers."""
    fast, static = learner_pair(overrides, device)
    pointers = ({n: m.data_ptr() for n, m in static.sparse.masks.masks.items()}
                if static.sparse is not None else {})
    for k in range(7):
        batch, t_env = random_batch(seed=k % 3).map(lambda t: t.to(device)), (0 if k < 4 else 10 ** 9)
        s_fast, s_static = fast.update(batch, t_env), static.update(batch, t_env)
        assert s_static.keys() == s_fast.keys()
        for key, v in s_fast.items():
            assert s_static[key] == pytest.approx(v, rel=1e-5, abs=1e-6), (k, key)
    for (name, p), q in zip(fast.nets.named_parameters(), static.nets.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    if fast.sparse is not None:
        for name, m in fast.sparse.masks.masks.items():
            assert torch.equal(m, static.sparse.masks.masks[name]), name
            assert static.sparse.masks.masks[name].data_ptr() == pointers[name], name  # in place
    # one static batch per (batch size, padded length, target kind): 12 steps pad to 16
    assert set(static.graphs.recorded) <= {(6, 16, False), (6, 16, True)}
    assert (6, 16, True) in static.graphs.recorded
    assert static.graphs.recorded[(6, 16, True)].inputs.mask.shape == (6, 16)


def test_padding_adds_masked_steps_only():
    batch = random_batch(seed=0)
    padded = pad_steps(batch, 16)
    assert padded.obs.shape[1] == padded.state.shape[1] == padded.avail.shape[1] == 17
    assert padded.reward.shape[1] == padded.mask.shape[1] == padded.actions.shape[1] == 16
    assert torch.equal(padded.mask[:, :12], batch.mask) and not padded.mask[:, 12:].any()
    assert not padded.avail[:, 13:].any() and not padded.terminated[:, 12:].any()
    with pytest.raises(ValueError, match="shorter than the batch's 12"):
        pad_steps(batch, 8)


@pytest.mark.parametrize("overrides, message", [
    (["cuda_graphs=true", "device=cpu"], "cuda_graphs=true needs a GPU; allowed with device=cpu"),
    (["cuda_graphs=true", "algo=comix", "env=mamujoco"],
     "cuda_graphs=true is not implemented for algo=comix; allowed with it: algo=qmix"),
])
def test_cuda_graphs_refused_where_it_cannot_run(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg(overrides))


def test_cuda_graphs_on_a_cpu_device_keeps_the_packed_path():
    """device=auto on a machine without CUDA: the flag is accepted and does nothing."""
    cfg = compose_cfg(["cuda_graphs=true", "device=auto"])
    validate(cfg)
    learner = build_learner(cfg, SPEC, torch.device("cpu"), Widths.from_config(cfg), 0.0)
    assert learner.graphs is None and not learner.static_shapes
