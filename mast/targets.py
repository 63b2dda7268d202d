"""Learning targets: per-agent value operators, RES candidates and multi-step TD returns.

Everything here is a pure, stateless torch function over batch-first tensors (B episodes, T steps,
N agents, U actions), so learners compose them and tests check them against plain loops.

Masking convention: unavailable actions get a large *finite* negative logit, written *after* any
scaling (with α = 0 a pre-filled -1e9 would become 0 and leak into the average), and rows with no
available action at all (padded time steps) return 0 — never NaN, in values or gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

TARGET_MODES = ("one_step", "td_lambda", "nstep")


# ---------------------------------------------------------------------------------------------
# Masking helpers
# ---------------------------------------------------------------------------------------------
def _neg_fill(dtype: torch.dtype) -> float:
    """-1e9, or less in magnitude where the dtype cannot hold it (float16)."""
    return max(-1e9, torch.finfo(dtype).min / 4)


def _prepare(q: torch.Tensor, avail: torch.Tensor | None):
    """q [..., U], avail [..., U] (bool or 0/1) → (q with unavailable entries zeroed, bool avail,
    any-available [...]). Zeroing first keeps stray -inf/NaN at unavailable entries (PyMARL fills
    them with -9999999) out of the arithmetic and its gradients."""
    if avail is None:
        avail = torch.ones_like(q, dtype=torch.bool)
    else:
        avail = avail.bool().expand_as(q)
    return q.masked_fill(~avail, 0.0), avail, avail.any(-1)


def _row_max(q: torch.Tensor, avail: torch.Tensor, has_any: torch.Tensor) -> torch.Tensor:
    """Max over available entries [..., U] → [...], 0 for empty rows."""
    m = q.masked_fill(~avail, _neg_fill(q.dtype)).amax(-1)
    return torch.where(has_any, m, torch.zeros_like(m))


# ---------------------------------------------------------------------------------------------
# Per-agent value operators (replace max_u Q_i in the target)
# ---------------------------------------------------------------------------------------------
def soft_mellowmax(q: torch.Tensor, alpha: float, omega: float,
                   avail: torch.Tensor | None = None) -> torch.Tensor:
    """Soft Mellowmax (paper eq. 3): sm_ω(Q) = (1/ω)[LSE((α+ω)Q) − LSE(αQ)] over available actions.

    q [..., U], avail [..., U] → [...]. Equals (1/ω) log Σ_u softmax(αQ)_u exp(ωQ_u): a
    softmax-weighted mellowmax that lies in [E_softmax(αQ)[Q], max Q], damping overestimation.
    Computed on Q − max Q (the operator is shift-equivariant) so large Q·(α+ω) loses no precision.
    """
    if omega <= 0:
        raise ValueError(f"soft_mellowmax needs omega > 0, got {omega}")
    q, avail, has_any = _prepare(q, avail)
    m = _row_max(q, avail, has_any).detach()  # shift only; the exact gradient needs no dm/dq
    shifted = q - m.unsqueeze(-1)
    fill = _neg_fill(q.dtype)
    lse_hi = torch.logsumexp(((alpha + omega) * shifted).masked_fill(~avail, fill), dim=-1)
    lse_lo = torch.logsumexp((alpha * shifted).masked_fill(~avail, fill), dim=-1)
    out = m + (lse_hi - lse_lo) / omega
    return torch.where(has_any, out, torch.zeros_like(out))


def mellowmax(q: torch.Tensor, omega: float, avail: torch.Tensor | None = None) -> torch.Tensor:
    """Mellowmax mm_ω(Q) = (1/ω) log mean_u exp(ωQ_u) over available actions; q [..., U] → [...].

    It is Soft Mellowmax with α = 0 (uniform weights), which is exactly why the fill must come
    after the α-scaling.
    """
    return soft_mellowmax(q, 0.0, omega, avail)


def max_operator(q: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
    """Standard Q-learning max over available actions; q [..., U] → [...], 0 for empty rows."""
    q, avail, has_any = _prepare(q, avail)
    return _row_max(q, avail, has_any)


def _softmax_weighted(values: torch.Tensor, logits: torch.Tensor, valid: torch.Tensor,
                      has_any: torch.Tensor) -> torch.Tensor:
    """Σ_k softmax(logits over valid k)·values_k; [..., K] → [...], 0 for rows with no valid k."""
    w = torch.softmax(logits.masked_fill(~valid, _neg_fill(logits.dtype)), dim=-1)
    out = (w * values.masked_fill(~valid, 0.0)).sum(-1)
    return torch.where(has_any, out, torch.zeros_like(out))


def softmax_operator(q: torch.Tensor, beta: float,
                     avail: torch.Tensor | None = None) -> torch.Tensor:
    """Boltzmann softmax Σ_u softmax(βQ)_u Q_u over available actions; q [..., U] → [...].

    Per-agent operator of the `operator_softmax` ablation (β = 0 is the mean, β → ∞ the max).
    """
    q, avail, has_any = _prepare(q, avail)
    return _softmax_weighted(q, beta * q, avail, has_any)


def _op_max(q: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
    return max_operator(q, avail)


def _op_soft_mellowmax(q: torch.Tensor, avail: torch.Tensor | None = None, *, alpha: float,
                       omega: float) -> torch.Tensor:
    return soft_mellowmax(q, alpha, omega, avail)


def _op_mellowmax(q: torch.Tensor, avail: torch.Tensor | None = None, *,
                  omega: float) -> torch.Tensor:
    return mellowmax(q, omega, avail)


def _op_softmax(q: torch.Tensor, avail: torch.Tensor | None = None, *,
                beta: float) -> torch.Tensor:
    return softmax_operator(q, beta, avail)


# Uniform signature `op(q [..., U], avail [..., U] | None, **params) → [...]`; params are
# keyword-only and required (max: none; soft_mellowmax: alpha, omega; mellowmax: omega;
# softmax: beta), so a misspelt config key fails loudly instead of silently using a default.
OPERATORS: dict[str, Callable[..., torch.Tensor]] = {
    "max": _op_max,
    "soft_mellowmax": _op_soft_mellowmax,
    "mellowmax": _op_mellowmax,
    "softmax": _op_softmax,
}


def operator_params(method, operator: str | None = None) -> dict:
    """The keyword parameters `OPERATORS[operator]` (default `method.operator`) takes, from the
    `method` config."""
    return {"max": {}, "soft_mellowmax": {"alpha": method.sm_alpha, "omega": method.sm_omega},
            "mellowmax": {"omega": method.sm_omega},
            "softmax": {"beta": method.softmax_beta}}[operator or method.operator]


def operator_in_units(op: str, q: torch.Tensor, avail: torch.Tensor | None, unit: torch.Tensor,
                      **params) -> torch.Tensor:
    """`OPERATORS[op]` applied to q [..., U] measured in `unit` [...] (> 0) and returned in q's
    units: op(unit·q)/unit. The soft operators' temperatures (α, ω, β) are not scale-free (Soft
    Mellowmax with α = 1, ω = 10 is close to max on values spread by ≫ 0.1 and close to the mean
    on values spread by ≪ 0.1), so this fixes the scale they see. Max is unaffected."""
    u = unit.unsqueeze(-1)
    return OPERATORS[op](q * u, avail, **params) / unit


# ---------------------------------------------------------------------------------------------
# RES (Pan et al. 2021): approximate softmax over joint actions one deviation from greedy
# ---------------------------------------------------------------------------------------------
def one_agent_deviation_actions(greedy: torch.Tensor,
                                avail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate joint actions for RES's approximate softmax.

    greedy [B, T, N] long, avail [B, T, N, U] → (candidates [B, T, K, N] long, valid [B, T, K]
    bool), K = N·U. Candidate k = i·U + u is the greedy joint action with agent i's action
    replaced by u; it is valid iff u is available to agent i. Searching only one-agent deviations
    keeps the softmax linear in N instead of exponential (|U|^N joint actions).
    """
    *lead, n_agents, n_actions = avail.shape
    eye = torch.eye(n_agents, dtype=torch.bool, device=greedy.device)  # [i, j]
    actions = torch.arange(n_actions, dtype=greedy.dtype, device=greedy.device)
    cand = torch.where(eye[:, None, :],                    # [N(i), 1, N(j)]: j is the deviator
                       actions[None, :, None],             # [1, U, 1]
                       greedy[..., None, None, :])         # [B, T, 1, 1, N]
    cand = cand.reshape(*lead, n_agents * n_actions, n_agents)
    valid = avail.bool().reshape(*lead, n_agents * n_actions)
    return cand, valid


def res_softmax(candidate_values: torch.Tensor, candidate_logits: torch.Tensor, beta: float,
                valid: torch.Tensor) -> torch.Tensor:
    """RES target value Σ_k softmax(β·logits over valid k)·values_k.

    candidate_values [B, T, K] (target mixer), candidate_logits [B, T, K] (online mixer; RES
    weights by the online net to curb the target net's overestimation), valid [B, T, K] → [B, T];
    0 where no candidate is valid (padded steps).
    """
    valid = valid.bool()
    return _softmax_weighted(candidate_values, beta * candidate_logits, valid, valid.any(-1))


# ---------------------------------------------------------------------------------------------
# Multi-step returns. Inputs [B, T]; next_values[:, t] is the (target-net, operator, mixer)
# value of the state after step t. "continues_t" = step t+1 is a valid step of the same episode.
# ---------------------------------------------------------------------------------------------
def _episode_flags(terminated: torch.Tensor, mask: torch.Tensor,
                   ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """terminated, mask [B, T] (bool or 0/1) → (terminated, valid, continues), bool [B, T]."""
    term = torch.as_tensor(terminated, device=ref.device).bool()
    valid = torch.as_tensor(mask, device=ref.device).bool()
    cont = F.pad(valid[:, 1:], (0, 1), value=False) & valid
    return term, valid, cont


def _bootstrap(terminated: torch.Tensor, next_values: torch.Tensor,
               valid: torch.Tensor | None = None) -> torch.Tensor:
    """(1 − term)·V, 0 at padded steps, without 0·NaN: the state after a terminal step (or a
    padded one) may hold garbage."""
    keep = ~terminated if valid is None else ~terminated & valid
    return torch.where(keep, next_values, torch.zeros_like(next_values))


def _linear_recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve G_t = a_t + b_t·G_{t+1} backwards with G_T = 0; a, b [B, T] → G [B, T].

    Hillis–Steele scan over affine maps: ⌈log2 T⌉ vectorised steps instead of a T-long Python loop
    (T ≤ 400 → 9 steps), with no division by running products (which may hit 0).
    """
    horizon, d = a.shape[-1], 1
    while d < horizon:
        a = a + b * F.pad(a[..., d:], (0, d))
        b = b * F.pad(b[..., d:], (0, d))
        d *= 2
    return a


def one_step_targets(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor,
                     gamma: float) -> torch.Tensor:
    """T_1 = r_t + γ(1 − term_t)·V_{t+1}; all [B, T] → [B, T] (padding is the caller's business)."""
    term = torch.as_tensor(terminated, device=rewards.device).bool()
    return rewards + gamma * _bootstrap(term, next_values)


def td_lambda_targets(rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                      next_values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """TD(λ) return G_t = r_t + γ(1−term_t)((1−λ)V_{t+1} + λG_{t+1}); all [B, T] → [B, T].

    At the last valid step of an episode the λ-term is dropped (G_t = r_t + γ(1−term_t)V_{t+1}),
    so episodes cut at the time limit (term = 0) still bootstrap and terminated ones do not.
    λ = 0 is the one-step target; λ = 1 the Monte-Carlo return bootstrapped at truncation.
    Padded steps (mask 0) return 0.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"td_lambda_targets needs lam in [0, 1], got {lam}")
    term, valid, cont = _episode_flags(terminated, mask, rewards)
    boot = _bootstrap(term, next_values, valid)
    lam_t = lam * cont.to(rewards.dtype)                       # λ where G_{t+1} exists, else 0
    a = rewards + gamma * (1.0 - lam_t) * boot
    b = gamma * lam_t * (~term).to(rewards.dtype)
    zero = torch.zeros_like(a)
    return _linear_recurrence(torch.where(valid, a, zero), torch.where(valid, b, zero))


def nstep_targets(rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                  next_values: torch.Tensor, gamma: float, n: int) -> torch.Tensor:
    """n-step return Σ_{k<m} γ^k r_{t+k} + γ^m (1−term_{t+m−1}) V_{t+m}; all [B, T] → [B, T].

    m = n, or fewer when the episode terminates (no bootstrap) or ends by truncation / the end of
    the batch (bootstrap from next_values at that last valid step). n = 1 is the one-step target.
    Built as G^(j)_t = r_t + γ(1−term_t)·(G^(j−1)_{t+1} if t continues else V_{t+1}), so it costs n
    vectorised steps. Padded steps (mask 0) return 0.
    """
    if n < 1:
        raise ValueError(f"nstep_targets needs n >= 1, got {n}")
    term, valid, cont = _episode_flags(terminated, mask, rewards)
    boot = _bootstrap(term, next_values, valid)
    zero = torch.zeros_like(rewards)
    rewards = torch.where(valid, rewards, zero)
    cont = cont & ~term
    g = rewards + gamma * boot                                   # G^(1)
    for _ in range(n - 1):
        ahead = F.pad(g[:, 1:], (0, 1))
        g = rewards + gamma * torch.where(cont, ahead, boot)
    return torch.where(valid, g, zero)


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo return Σ_{k≥0} γ^k r_{t+k} to the end of the episode (no bootstrap).

    rewards, mask [B, T] → [B, T]; 0 at padded steps. Used by RES's regulariser and the
    q-estimate diagnostic.
    """
    valid = torch.as_tensor(mask, device=rewards.device).bool()
    cont = F.pad(valid[:, 1:], (0, 1), value=False) & valid
    zero = torch.zeros_like(rewards)
    return _linear_recurrence(torch.where(valid, rewards, zero), gamma * cont.to(rewards.dtype))


# ---------------------------------------------------------------------------------------------
# Hybrid schedule (paper eq. 6): one-step targets while the policy still moves fast, then
# multi-step targets to offset the sparse network's fitting error.
# ---------------------------------------------------------------------------------------------
def use_multistep(t_env: int, t0_env_steps: int) -> bool:
    """True once t_env (environment steps) has reached the burn-in T0."""
    return t_env >= t0_env_steps


def hybrid_targets(rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                   next_values: torch.Tensor, gamma: float, *, t_env: int, t0_env_steps: int,
                   mode: str, lam: float, n: int) -> torch.Tensor:
    """One-step targets before T0, then the `mode` targets; all [B, T] → [B, T], 0 at padding.

    mode ∈ {"one_step", "td_lambda", "nstep"} (uses lam, resp. n).
    """
    if mode not in TARGET_MODES:
        raise ValueError(f"unknown target mode {mode!r}; allowed: {list(TARGET_MODES)}")
    if mode == "td_lambda" and use_multistep(t_env, t0_env_steps):
        return td_lambda_targets(rewards, terminated, mask, next_values, gamma, lam)
    if mode == "nstep" and use_multistep(t_env, t0_env_steps):
        return nstep_targets(rewards, terminated, mask, next_values, gamma, n)
    valid = torch.as_tensor(mask, device=rewards.device).bool()
    out = one_step_targets(rewards, terminated, next_values, gamma)
    return torch.where(valid, out, torch.zeros_like(out))
