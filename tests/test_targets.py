"""mast.targets against plain-loop / NumPy references on random batches with terminations,
truncations (time-limit and batch-end) and padding holding garbage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mast import targets as tg

GAMMA = 0.97


# ---------------------------------------------------------------------------------------------
# Random episode batches
# ---------------------------------------------------------------------------------------------
def make_batch(seed: int, batch: int = 12, horizon: int = 23, dtype=torch.float64):
    """Episodes of random length; each ends by termination or truncation. Padded steps and the
    state after a terminal step hold garbage (NaN in next_values, huge rewards, random flags)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, horizon + 1, (batch,), generator=g)
    lengths[0], lengths[1] = horizon, 1                       # run to batch end; single step
    ends_terminated = torch.rand(batch, generator=g) < 0.5
    ends_terminated[0] = False                                # truncated exactly at the batch end
    steps = torch.arange(horizon)
    mask = steps[None, :] < lengths[:, None]
    terminated = torch.zeros(batch, horizon, dtype=torch.bool)
    terminated[torch.arange(batch), lengths - 1] = ends_terminated
    garbage_flags = torch.rand(batch, horizon, generator=g) < 0.5
    terminated = torch.where(mask, terminated, garbage_flags)
    rewards = torch.randn(batch, horizon, generator=g, dtype=dtype)
    rewards = torch.where(mask, rewards, torch.full_like(rewards, 1e6))
    next_values = 3.0 * torch.randn(batch, horizon, generator=g, dtype=dtype)
    bad = ~mask | (terminated & mask)
    next_values = torch.where(bad, torch.full_like(next_values, float("nan")), next_values)
    return rewards, terminated, mask.to(dtype), next_values


def episodes(rewards, terminated, mask, next_values):
    """Per-episode Python lists (valid prefix only)."""
    for b in range(rewards.shape[0]):
        length = int(mask[b].sum().item())
        yield (b, length, rewards[b, :length].tolist(), terminated[b, :length].tolist(),
               next_values[b, :length].tolist())


# ---------------------------------------------------------------------------------------------
# Plain-loop references
# ---------------------------------------------------------------------------------------------
def ref_td_lambda(rewards, terminated, mask, next_values, gamma, lam):
    out = np.zeros(tuple(rewards.shape))
    for b, length, r, term, v in episodes(rewards, terminated, mask, next_values):
        g_next = 0.0
        for t in reversed(range(length)):
            boot = 0.0 if term[t] else v[t]
            if t == length - 1:
                g = r[t] + gamma * boot
            else:
                g = r[t] + gamma * (0.0 if term[t] else (1 - lam) * boot + lam * g_next)
            out[b, t] = g_next = g
    return out


def ref_nstep(rewards, terminated, mask, next_values, gamma, n):
    out = np.zeros(tuple(rewards.shape))
    for b, length, r, term, v in episodes(rewards, terminated, mask, next_values):
        for t in range(length):
            total, disc = 0.0, 1.0
            for k in range(n):
                s = t + k
                total += disc * r[s]
                if term[s]:
                    break
                if k == n - 1 or s == length - 1:
                    total += disc * gamma * v[s]
                    break
                disc *= gamma
            out[b, t] = total
    return out


def ref_discounted(rewards, mask, gamma):
    out = np.zeros(tuple(rewards.shape))
    for b in range(rewards.shape[0]):
        length = int(mask[b].sum().item())
        for t in range(length):
            out[b, t] = sum(gamma ** k * rewards[b, t + k].item() for k in range(length - t))
    return out


def ref_soft_mellowmax(q, alpha, omega, avail):
    q, avail = np.asarray(q, dtype=np.float64), np.asarray(avail, dtype=bool)
    out = np.zeros(q.shape[:-1])
    for idx in np.ndindex(*q.shape[:-1]):
        x = q[idx][avail[idx]]
        if x.size == 0:
            continue
        p = np.exp(alpha * x) / np.exp(alpha * x).sum()
        out[idx] = np.log((p * np.exp(omega * x)).sum()) / omega
    return out


def finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


# ---------------------------------------------------------------------------------------------
# Multi-step targets
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.6, 0.8, 1.0])
def test_td_lambda_matches_loop(seed, lam):
    batch = make_batch(seed)
    got = tg.td_lambda_targets(*batch, GAMMA, lam)
    assert finite(got)
    np.testing.assert_allclose(got.numpy(), ref_td_lambda(*batch, GAMMA, lam), rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_nstep_matches_loop(seed, n):
    batch = make_batch(seed)
    got = tg.nstep_targets(*batch, GAMMA, n)
    assert finite(got)
    np.testing.assert_allclose(got.numpy(), ref_nstep(*batch, GAMMA, n), rtol=1e-10, atol=1e-10)


def test_one_step_equals_lambda0_and_n1():
    rewards, terminated, mask, next_values = make_batch(3)
    one = tg.one_step_targets(rewards, terminated, next_values, GAMMA)
    valid = mask.bool()
    for other in (tg.td_lambda_targets(rewards, terminated, mask, next_values, GAMMA, 0.0),
                  tg.nstep_targets(rewards, terminated, mask, next_values, GAMMA, 1)):
        torch.testing.assert_close(other[valid], one[valid], rtol=1e-12, atol=1e-12)
    # and by hand on a single step: truncated bootstraps, terminated does not
    r = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    v = torch.tensor([[10.0], [10.0]], dtype=torch.float64)
    term = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    got = tg.td_lambda_targets(r, term, torch.ones_like(r), v, 0.5, 0.8)
    torch.testing.assert_close(got, torch.tensor([[6.0], [1.0]], dtype=torch.float64))


def test_termination_flag_stops_return_even_if_mask_continues():
    """The formulas multiply by (1 − term_t): a terminal step never looks past itself."""
    rewards, terminated, mask, next_values = make_batch(10)
    terminated = terminated.clone()
    terminated[0, 5] = True                                   # mid-episode, mask stays 1 after it
    terminated[0, 12] = True
    next_values = torch.where(terminated, torch.full_like(next_values, float("nan")), next_values)
    batch = (rewards, terminated, mask, next_values)
    np.testing.assert_allclose(tg.td_lambda_targets(*batch, GAMMA, 0.8).numpy(),
                               ref_td_lambda(*batch, GAMMA, 0.8), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(tg.nstep_targets(*batch, GAMMA, 4).numpy(),
                               ref_nstep(*batch, GAMMA, 4), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("lam", [0.0, 0.6, 0.8, 1.0])
def test_td_lambda_is_weighted_average_of_nstep(lam):
    """Paper definition: T_λ = (1−λ) Σ_n λ^{n−1} T_n, the tail weight going to the longest return."""
    batch = make_batch(4, batch=6, horizon=9)
    mask = batch[2]
    horizon = mask.shape[1]
    nsteps = [tg.nstep_targets(*batch, GAMMA, n) for n in range(1, horizon + 1)]
    expected = torch.zeros_like(batch[0])
    lengths = mask.sum(1).long()
    for b in range(mask.shape[0]):
        for t in range(int(lengths[b])):
            remaining = int(lengths[b]) - t
            val = sum((1 - lam) * lam ** (n - 1) * nsteps[n - 1][b, t] for n in range(1, remaining))
            expected[b, t] = val + lam ** (remaining - 1) * nsteps[remaining - 1][b, t]
    torch.testing.assert_close(tg.td_lambda_targets(*batch, GAMMA, lam), expected)


def test_long_horizon_float32_and_gradients():
    rewards, terminated, mask, next_values = make_batch(5, batch=4, horizon=400,
                                                        dtype=torch.float32)
    next_values = next_values.clone().requires_grad_(True)
    got = tg.td_lambda_targets(rewards, terminated, mask, next_values, 0.99, 0.8)
    expected = ref_td_lambda(rewards.double(), terminated, mask, next_values.detach().double(),
                             0.99, 0.8)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    got.sum().backward()
    assert finite(next_values.grad)
    nstep = tg.nstep_targets(rewards, terminated, mask, next_values.detach(), 0.99, 5)
    np.testing.assert_allclose(nstep.numpy(), ref_nstep(rewards.double(), terminated, mask,
                                                        next_values.detach().double(), 0.99, 5),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 6])
def test_discounted_returns_matches_loop(seed):
    rewards, _, mask, _ = make_batch(seed)
    got = tg.discounted_returns(rewards, mask, GAMMA)
    assert finite(got)
    np.testing.assert_allclose(got.numpy(), ref_discounted(rewards, mask, GAMMA), rtol=1e-10,
                               atol=1e-10)


def test_invalid_arguments_raise():
    batch = make_batch(0, batch=2, horizon=3)
    with pytest.raises(ValueError, match="lam"):
        tg.td_lambda_targets(*batch, GAMMA, 1.5)
    with pytest.raises(ValueError, match="n >= 1"):
        tg.nstep_targets(*batch, GAMMA, 0)
    with pytest.raises(ValueError, match="allowed"):
        tg.hybrid_targets(*batch, GAMMA, t_env=0, t0_env_steps=1, mode="td", lam=0.8, n=3)
    with pytest.raises(ValueError, match="omega"):
        tg.soft_mellowmax(torch.zeros(3), 1.0, 0.0)


def test_hybrid_schedule():
    assert not tg.use_multistep(749_999, 750_000)
    assert tg.use_multistep(750_000, 750_000)
    batch = make_batch(7)
    valid = batch[2].bool()
    one = tg.one_step_targets(batch[0], batch[1], batch[3], GAMMA)
    kw = dict(t0_env_steps=100, lam=0.8, n=3)
    for mode in tg.TARGET_MODES:
        before = tg.hybrid_targets(*batch, GAMMA, t_env=99, mode=mode, **kw)
        assert finite(before) and bool((before[~valid] == 0).all())
        torch.testing.assert_close(before[valid], one[valid])
    after = {m: tg.hybrid_targets(*batch, GAMMA, t_env=100, mode=m, **kw) for m in tg.TARGET_MODES}
    torch.testing.assert_close(after["one_step"][valid], one[valid])
    torch.testing.assert_close(after["td_lambda"], tg.td_lambda_targets(*batch, GAMMA, 0.8))
    torch.testing.assert_close(after["nstep"], tg.nstep_targets(*batch, GAMMA, 3))
    assert not torch.allclose(after["td_lambda"][valid], one[valid])


# ---------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------
def random_q(seed: int, shape=(5, 7, 3, 6), p_avail=0.6):
    """Q-values with unavailable entries set to large positives so any leak shows up; one row
    with no available action (a padded step) and one fully available row."""
    g = torch.Generator().manual_seed(seed)
    q = 2.0 * torch.randn(*shape, generator=g, dtype=torch.float64)
    avail = torch.rand(*shape, generator=g) < p_avail
    avail[0, 0, 0] = False
    avail[0, 0, 1] = True
    q = torch.where(avail, q, torch.full_like(q, 50.0))
    return q, avail


@pytest.mark.parametrize("alpha,omega", [(1.0, 10.0), (0.0, 10.0), (-2.0, 3.0), (5.0, 0.5),
                                         (-15.0, 10.0)])
def test_soft_mellowmax_matches_numpy(alpha, omega):
    q, avail = random_q(0)
    got = tg.soft_mellowmax(q, alpha, omega, avail)
    assert got.shape == q.shape[:-1] and finite(got)
    expected = ref_soft_mellowmax(q.numpy(), alpha, omega, avail.numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-9)
    assert got[0, 0, 0].item() == 0.0
    full = tg.soft_mellowmax(q[0, 0, 1], alpha, omega)        # avail=None → all actions
    np.testing.assert_allclose(full.item(), ref_soft_mellowmax(q[0, 0, 1].numpy(), alpha, omega,
                                                               np.ones(6, bool)), rtol=1e-9)


def test_soft_mellowmax_alpha0_ignores_prefilled_unavailable():
    """PyMARL pre-fills unavailable Qs with -9999999; with α = 0 that must not leak either."""
    q, avail = random_q(1)
    prefilled = torch.where(avail, q, torch.full_like(q, -9999999.0))
    got = tg.soft_mellowmax(prefilled, 0.0, 10.0, avail)
    np.testing.assert_allclose(got.numpy(), ref_soft_mellowmax(q.numpy(), 0.0, 10.0,
                                                               avail.numpy()), rtol=1e-9)
    torch.testing.assert_close(tg.mellowmax(prefilled, 10.0, avail), got)
    q_inf = torch.where(avail, q, torch.full_like(q, -math.inf))
    assert finite(tg.soft_mellowmax(q_inf, 0.0, 10.0, avail))


def test_mellowmax_matches_numpy_and_limits():
    q, avail = random_q(2)
    got = tg.mellowmax(q, 4.0, avail)
    expected = np.zeros(q.shape[:-1])
    for idx in np.ndindex(*q.shape[:-1]):
        x = q.numpy()[idx][avail.numpy()[idx]]
        if x.size:
            expected[idx] = np.log(np.mean(np.exp(4.0 * x))) / 4.0
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-9)
    mean = (q * avail).sum(-1) / avail.sum(-1).clamp(min=1)
    torch.testing.assert_close(tg.mellowmax(q, 1e-6, avail), mean, rtol=1e-4, atol=1e-4)


def test_soft_mellowmax_bounds_and_max_limit():
    q, avail = random_q(3)
    has_any = avail.any(-1)
    mx = tg.max_operator(q, avail)
    for alpha, omega in [(1.0, 10.0), (0.0, 1.0), (3.0, 0.1)]:
        sm = tg.soft_mellowmax(q, alpha, omega, avail)
        weighted_mean = tg.softmax_operator(q, alpha, avail)
        assert bool((sm <= mx + 1e-9).all())
        assert bool((sm >= weighted_mean - 1e-9).all())
        assert bool((sm[has_any] < mx[has_any]).any())          # strictly below somewhere
    # large ω → max within log(|U|)/ω; large α → max
    big = tg.soft_mellowmax(q, 0.0, 1e4, avail)
    assert float((mx - big).max()) <= math.log(6) / 1e4 + 1e-12
    torch.testing.assert_close(tg.soft_mellowmax(q, 1e4, 1.0, avail), mx, rtol=0, atol=1e-6)


def test_soft_mellowmax_large_q_float32():
    """Shift-equivariance keeps float32 accurate even when (α+ω)·Q is in the thousands."""
    q, avail = random_q(4)
    got = tg.soft_mellowmax((q + 500.0).float(), 1.0, 10.0, avail)
    expected = ref_soft_mellowmax(q.numpy(), 1.0, 10.0, avail.numpy()) + 500.0
    expected[~avail.any(-1).numpy()] = 0.0
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("op,params", [("soft_mellowmax", dict(alpha=0.0, omega=10.0)),
                                       ("soft_mellowmax", dict(alpha=1.0, omega=10.0)),
                                       ("mellowmax", dict(omega=10.0)),
                                       ("softmax", dict(beta=5.0)), ("max", {})])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_empty_rows_finite_values_and_gradients(op, params, dtype):
    q = torch.randn(4, 3, 5).to(dtype).requires_grad_(True)
    avail = torch.ones(4, 3, 5, dtype=torch.bool)
    avail[1] = False                                            # a padded time step
    avail[2, :, 3:] = False
    out = tg.OPERATORS[op](q, avail, **params)
    assert out.dtype == dtype and finite(out)
    assert bool((out[1] == 0).all())
    (out.float() ** 2).sum().backward()
    assert finite(q.grad)
    assert bool((q.grad[1] == 0).all()) and bool((q.grad[2, :, 3:] == 0).all())
    assert bool((q.grad[0] != 0).any())


def test_softmax_and_max_operators():
    q, avail = random_q(5)
    qn, an = q.numpy(), avail.numpy()
    expected_sm, expected_mx = np.zeros(q.shape[:-1]), np.zeros(q.shape[:-1])
    for idx in np.ndindex(*q.shape[:-1]):
        x = qn[idx][an[idx]]
        if x.size:
            w = np.exp(2.0 * x) / np.exp(2.0 * x).sum()
            expected_sm[idx], expected_mx[idx] = (w * x).sum(), x.max()
    np.testing.assert_allclose(tg.softmax_operator(q, 2.0, avail).numpy(), expected_sm, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(tg.max_operator(q, avail).numpy(), expected_mx)
    mean = (q * avail).sum(-1) / avail.sum(-1).clamp(min=1)
    torch.testing.assert_close(tg.softmax_operator(q, 0.0, avail), mean)


def test_operators_registry_uniform_signature():
    assert set(tg.OPERATORS) == {"max", "soft_mellowmax", "mellowmax", "softmax"}
    q, avail = random_q(6)
    torch.testing.assert_close(tg.OPERATORS["soft_mellowmax"](q, avail, alpha=1.0, omega=10.0),
                               tg.soft_mellowmax(q, 1.0, 10.0, avail))
    torch.testing.assert_close(tg.OPERATORS["max"](q, avail), tg.max_operator(q, avail))
    with pytest.raises(TypeError):
        tg.OPERATORS["soft_mellowmax"](q, avail, alpha=1.0, omgea=10.0)


# ---------------------------------------------------------------------------------------------
# RES
# ---------------------------------------------------------------------------------------------
def test_one_agent_deviation_actions_matches_loop():
    g = torch.Generator().manual_seed(8)
    batch, horizon, n_agents, n_actions = 3, 4, 3, 5
    avail = torch.rand(batch, horizon, n_agents, n_actions, generator=g) < 0.7
    greedy = torch.randint(0, n_actions, (batch, horizon, n_agents), generator=g)
    cand, valid = tg.one_agent_deviation_actions(greedy, avail)
    k_total = n_agents * n_actions
    assert cand.shape == (batch, horizon, k_total, n_agents) and cand.dtype == torch.long
    assert valid.shape == (batch, horizon, k_total) and valid.dtype == torch.bool
    for b in range(batch):
        for t in range(horizon):
            for i in range(n_agents):
                for u in range(n_actions):
                    k = i * n_actions + u
                    joint = greedy[b, t].tolist()
                    joint[i] = u
                    assert cand[b, t, k].tolist() == joint
                    assert bool(valid[b, t, k]) == bool(avail[b, t, i, u])


def test_res_softmax_matches_loop():
    g = torch.Generator().manual_seed(9)
    values = torch.randn(4, 6, 10, generator=g, dtype=torch.float64)
    logits = torch.randn(4, 6, 10, generator=g, dtype=torch.float64)
    valid = torch.rand(4, 6, 10, generator=g) < 0.5
    valid[0, 0] = False
    values = torch.where(valid, values, torch.full_like(values, 1e3))
    got = tg.res_softmax(values, logits, 5.0, valid)
    assert got.shape == (4, 6) and finite(got)
    for b in range(4):
        for t in range(6):
            ks = [k for k in range(10) if valid[b, t, k]]
            if not ks:
                assert got[b, t].item() == 0.0
                continue
            w = [math.exp(5.0 * logits[b, t, k].item()) for k in ks]
            exp = sum(wi * values[b, t, k].item() for wi, k in zip(w, ks, strict=True)) / sum(w)
            assert got[b, t].item() == pytest.approx(exp, rel=1e-9, abs=1e-12)
    # β → ∞ picks the value of the valid candidate the online mixer rates highest
    hard = tg.res_softmax(values, logits, 1e6, valid)
    best = logits.masked_fill(~valid, -math.inf).argmax(-1, keepdim=True)
    pick = values.gather(-1, best).squeeze(-1)
    has_any = valid.any(-1)
    torch.testing.assert_close(hard[has_any], pick[has_any])


def test_operator_in_units_matches_a_plain_loop_and_is_scale_free():
    """op(unit·q)/unit: a Soft Mellowmax whose α and ω act in `unit`s (plain-loop reference), and
    the value it returns in those units does not depend on how q and unit split the scale."""
    g = torch.Generator().manual_seed(0)
    q = 0.05 * torch.randn(6, 3, 5, generator=g)  # small utilities, as FACMAC's critic has
    avail = torch.rand(6, 3, 5, generator=g) > 0.3
    avail[..., 0] = True
    unit = 50 * torch.rand(6, 3, generator=g) + 1
    got = tg.operator_in_units("soft_mellowmax", q, avail, unit, alpha=1.0, omega=10.0)
    for i in range(6):
        for j in range(3):
            xs = [unit[i, j].item() * q[i, j, a].item() for a in range(5) if avail[i, j, a]]
            z = sum(math.exp(x) for x in xs)
            ref = math.log(sum(math.exp(x) / z * math.exp(10 * x) for x in xs)) / 10
            assert got[i, j].item() * unit[i, j].item() == pytest.approx(ref, rel=1e-4, abs=1e-5)
    c = 7.0
    again = tg.operator_in_units("soft_mellowmax", q / c, avail, unit * c, alpha=1.0, omega=10.0)
    torch.testing.assert_close(again * unit * c, got * unit)
    plain = tg.OPERATORS["soft_mellowmax"](q, avail, alpha=1.0, omega=10.0)
    assert not torch.allclose(plain, got, atol=1e-4)  # the units matter for small utilities
    torch.testing.assert_close(tg.operator_in_units("max", q, avail, unit),
                               tg.OPERATORS["max"](q, avail))
