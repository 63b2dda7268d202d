"""The fused, packed GRU unroll (the learner's fast path) is the plain step-by-step unroll:
exact gradients (gradcheck), the same Qs on real steps, and learner updates that give the same
losses and the same parameters, masks included, for every algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast.envs.base import EnvSpec
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.modules import fused_gru
from mast.modules.agents import (
    EpisodeInputs,
    Packing,
    RNNAgent,
    gru_sequence,
    unroll,
    unroll_reference,
)
from mast.replay import Episode, collate

from .conftest import compose_cfg

SPEC = EnvSpec(n_agents=3, obs_dim=10, state_dim=12, n_actions=5, episode_limit=12)


def random_episode(rng: np.random.Generator, length: int, terminated: bool) -> Episode:
    n, u = SPEC.n_agents, SPEC.n_actions
    avail = rng.random((length + 1, n, u)) < 0.7
    avail[..., 0] = True
    actions = np.array([[rng.choice(np.flatnonzero(a)) for a in step] for step in avail[:-1]])
    term = np.zeros(length, bool)
    term[-1] = terminated
    return Episode(obs=rng.normal(size=(length + 1, n, SPEC.obs_dim)).astype(np.float32),
                   state=rng.normal(size=(length + 1, SPEC.state_dim)).astype(np.float32),
                   avail=avail, actions=actions.reshape(length, n).astype(np.int64),
                   reward=rng.normal(size=length).astype(np.float32), terminated=term)


def random_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = [12, 3, 7, 1, 12, 5]
    return collate([random_episode(rng, L, terminated=i % 2 == 0) for i, L in enumerate(lengths)])


@pytest.fixture(params=["cpp", "python"])
def recurrence(request, monkeypatch):
    """Run a test on the C++ recurrence and on the Python one (the GPU's, and the fallback)."""
    if request.param == "python":
        monkeypatch.setattr(fused_gru, "usable", lambda *tensors: False)
    return request.param


def test_cpp_recurrence_builds():
    """CI has a compiler: the C++ recurrence must build there, not silently fall back."""
    assert fused_gru.extension() is not None


def test_cpp_build_folder_is_keyed_by_content_not_checkout(tmp_path, monkeypatch):
    """Two checkouts with the same source share one build (no rebuild ping-pong between a sweep
    worktree and a development tree); a changed source or flag, or another torch install (whose
    include and library paths change ninja's command), gets its own folder."""
    monkeypatch.setenv("MAST_EXTENSIONS_DIR", str(tmp_path))
    code = fused_gru.SOURCE.read_text()
    a = fused_gru._build_dir(code, ["-O3"])
    monkeypatch.setattr(fused_gru, "SOURCE", tmp_path / "elsewhere" / "csrc" / "gru.cpp")
    assert fused_gru._build_dir(code, ["-O3"]) == a
    assert (a / "gru.cpp").read_text() == code
    assert fused_gru._build_dir(code + "\n// edited", ["-O3"]) != a
    assert fused_gru._build_dir(code, ["-O2"]) != a
    # the same torch installed in another virtual environment (a fresh clone's `make test`)
    monkeypatch.setattr(torch, "__file__", str(tmp_path / "venv2" / "torch" / "__init__.py"))
    assert fused_gru._build_dir(code, ["-O3"]) != a


def test_cpp_recurrence_is_as_accurate_as_python_in_float32(monkeypatch):
    """Hidden states and gradients of both float32 recurrences against the float64 result, with
    gate pre-activations large enough to saturate (the C++ exp clamps its input): the C++ loop
    (own exp, fused arithmetic) is within a small factor of the Python one's rounding error."""
    torch.manual_seed(1)
    h = 16
    pk = Packing.from_lengths(torch.tensor([7, 2, 9, 9, 1, 4]), 3, 9)
    gi = torch.randn(sum(pk.batch_sizes), 3 * h, dtype=torch.double) * 4
    gi[::7, ::5] = 120.0
    gi[3::11, 1::7] = -120.0
    w, b = torch.randn(3 * h, h, dtype=torch.double) * 0.5, torch.randn(3 * h, dtype=torch.double)
    d_out = torch.randn(gi.shape[0], h, dtype=torch.double)

    def run(dtype):
        args = [t.to(dtype, copy=True).requires_grad_() for t in (gi, w, b)]
        hs = gru_sequence(args[0], pk, args[1], args[2])
        hs.backward(d_out.to(dtype))
        with torch.no_grad():
            hs_nograd = gru_sequence(gi.to(dtype), pk, w.to(dtype), b.to(dtype))
        return [t.double() for t in (hs.detach(), hs_nograd, *(a.grad for a in args))]

    exact, cpp = run(torch.double), run(torch.float32)
    monkeypatch.setattr(fused_gru, "usable", lambda *tensors: False)
    python = run(torch.float32)
    for e, c, p in zip(exact, cpp, python, strict=True):
        scale = e.abs().max()
        err_cpp, err_py = (c - e).abs().max() / scale, (p - e).abs().max() / scale
        assert err_cpp < 1e-5 and err_cpp <= 4 * err_py + 1e-7, (float(err_cpp), float(err_py))


@pytest.mark.parametrize("lengths", [None, [3, 5, 1, 4]])
def test_gru_sequence_gradients_are_exact(lengths, recurrence):
    torch.manual_seed(0)
    steps, h = 5, 3
    if lengths is None:
        pk = Packing(None, [4] * steps, None, steps, 4)
    else:
        pk = Packing.from_lengths(torch.tensor(lengths), 2, steps)
    rows = sum(pk.batch_sizes)
    args = (torch.randn(rows, 3 * h, dtype=torch.double, requires_grad=True),
            torch.randn(3 * h, h, dtype=torch.double, requires_grad=True),
            torch.randn(3 * h, dtype=torch.double, requires_grad=True))
    assert torch.autograd.gradcheck(lambda gi, w, b: gru_sequence(gi, pk, w, b), args)


def test_packing_layout():
    pk = Packing.from_lengths(torch.tensor([3, 5, 1, 4]), 2, 6)
    assert pk.batch_sizes == [8, 6, 6, 4, 2]
    assert pk.index[:8].tolist() == [2, 3, 6, 7, 0, 1, 4, 5]  # step 0, longest rows first
    assert pk.index[-2:].tolist() == [34, 35]  # step 4: only the length-5 episode's agents
    # one row per episode: the same grid as a packing of the episodes themselves
    ep, direct = pk.per_episode(2), Packing.from_lengths(torch.tensor([3, 5, 1, 4]), 1, 6)
    assert ep.batch_sizes == direct.batch_sizes and torch.equal(ep.prev, direct.prev)


@pytest.mark.parametrize("share_params", [True, False], ids=["shared", "per_agent"])
def test_packed_unroll_equals_reference_on_real_steps(recurrence, share_params):
    """Packed (and unpacked) fast unroll = the step-by-step one on real steps, q and gradients;
    per-agent stacked weights run one recurrence per agent column of the packed rows."""
    torch.manual_seed(0)
    agent = RNNAgent(6, 4, 3, hidden=8, share_params=share_params)
    lengths = torch.tensor([3, 6, 1, 4, 3, 6])  # ties: the stable sort keeps agents together
    x = torch.randn(6, 6, 3, 6)
    real = (torch.arange(6)[None, :] < lengths[:, None])[..., None, None].float()
    grads = []
    for q in (unroll(agent, EpisodeInputs(x, Packing.from_lengths(lengths, 3, 6))),
              unroll(agent, x), unroll_reference(agent, x)):
        torch.testing.assert_close(q * real, unroll_reference(agent, x) * real)
        agent.zero_grad()
        (q * real).square().sum().backward()
        grads.append({k: p.grad.clone() for k, p in agent.named_parameters()})
    for g in grads[:2]:
        for k, v in g.items():
            torch.testing.assert_close(v, grads[2][k], rtol=1e-4, atol=1e-6)


CASES = [
    ("algo=qmix", "method=dense"),
    ("algo=qmix", "method=rigl"),
    ("algo=qmix", "method=mast"),
    ("algo=qmix", "method=dense", "agent.share_params=false"),
    ("algo=qmix", "method=mast", "agent.share_params=false"),
    ("algo=wqmix", "method=dense"),
    ("algo=wqmix", "method=rigl", "algo.weighting=cw"),
    ("algo=res", "method=mast"),
    ("algo=vdn", "method=set"),
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: ",".join(o))
def test_fast_update_equals_step_by_step_reference(overrides):
    """Same batch, same initial weights and masks → same losses and parameters after updates
    that include RigL/SET topology updates (Δm = 2) and TD(λ) targets (t_env past T0)."""
    cfg = compose_cfg([*overrides, "sparsity=0.8", "method.update_interval_episodes=2"])
    learners = []
    for fused in (True, False):
        torch.manual_seed(0)
        learner = build_learner(cfg, SPEC, torch.device("cpu"), Widths.from_config(cfg), 0.8)
        learner.fast_path = fused
        learners.append(learner)
    fast, ref = learners
    for k in range(4):
        batch = random_batch(seed=k % 2)
        s_fast, s_ref = fast.update(batch, t_env=200), ref.update(batch, t_env=200)
        assert s_fast["train/loss"] == pytest.approx(s_ref["train/loss"], rel=1e-5, abs=1e-6)
    for (name, p), q in zip(fast.nets.named_parameters(), ref.nets.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    if fast.sparse is not None:
        for name, m in fast.sparse.masks.masks.items():
            assert torch.equal(m, ref.sparse.masks.masks[name]), name
