"""PyMARL's RNN agent (fc → GRU → fc), shared across agents or one network per agent.

Per-agent networks are stored as stacked weights `[n_agents, out, in]` and applied with one
batched matmul, so "10 agents" costs one kernel, and a sparse mask over the stacked tensor gives
the global per-layer budget of paper Fig. 12 for free.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mast.modules import fused_gru


def _init_uniform(*tensors: torch.Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in)  # torch's nn.Linear / nn.GRU default init
    for t in tensors:
        nn.init.uniform_(t, -bound, bound)


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x [..., G, in] with weight [out, in] (shared) or [G, out, in] (one per agent) → [..., G, out]."""
    if weight.dim() == 2:
        return F.linear(x, weight, bias)
    lead = x.shape[:-2]
    y = torch.einsum("bgi,goi->bgo", x.reshape(-1, *x.shape[-2:]), weight) + bias
    return y.reshape(*lead, *y.shape[-2:])


class AgentLinear(nn.Module):
    """Linear layer with weight [out, in] (shared) or [G, out, in] (one per agent group)."""

    def __init__(self, in_dim: int, out_dim: int, groups: int | None = None):
        super().__init__()
        lead = () if groups is None else (groups,)
        self.weight = nn.Parameter(torch.empty(*lead, out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(*lead, out_dim))
        _init_uniform(self.weight, self.bias, fan_in=in_dim)
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., G, in] (agent axis second-to-last) → [..., G, out]."""
        return grouped_linear(x, self.weight, self.bias)


class AgentGRU(nn.Module):
    """GRU cell with torch's parameter names and gate order (r, z, n), so masks are keyed
    `agent.rnn.weight_ih` / `weight_hh` (all three gates); optional per-agent stacked weights."""

    def __init__(self, in_dim: int, hidden: int, groups: int | None = None):
        super().__init__()
        lead = () if groups is None else (groups,)
        self.weight_ih = nn.Parameter(torch.empty(*lead, 3 * hidden, in_dim))
        self.weight_hh = nn.Parameter(torch.empty(*lead, 3 * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(*lead, 3 * hidden))
        self.bias_hh = nn.Parameter(torch.empty(*lead, 3 * hidden))
        _init_uniform(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, fan_in=hidden)
        self.hidden = hidden

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., G, in] → [..., G, 3h]; independent of h, so an unroll does it for all steps at once."""
        return grouped_linear(x, self.weight_ih, self.bias_ih)

    def cell(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step from precomputed input gates gi [B, G, 3h] and h [B, G, h] → h' [B, G, h]."""
        gh = grouped_linear(h, self.weight_hh, self.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(self.input_gates(x), h)


class RNNAgent(nn.Module):
    """Q_i(τ_i, ·): input = obs ⊕ one-hot last action ⊕ one-hot agent id."""

    def __init__(self, input_dim: int, n_actions: int, n_agents: int, hidden: int = 64,
                 share_params: bool = True):
        super().__init__()
        groups = None if share_params else n_agents
        self.fc1 = AgentLinear(input_dim, hidden, groups)
        self.rnn = AgentGRU(hidden, hidden, groups)
        self.fc2 = AgentLinear(hidden, n_actions, groups)
        self.hidden, self.n_agents = hidden, n_agents

    def initial_hidden(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.n_agents, self.hidden, device=device)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, n_agents, input_dim], h [B, n_agents, hidden] → (q [B, n_agents, U], h')."""
        h = self.rnn(F.relu(self.fc1(inputs)), h)
        return self.fc2(h), h



def unroll_reference(agent: RNNAgent, inputs: torch.Tensor) -> torch.Tensor:
    """Plain step-by-step unroll (the path before the fused GRU; the equivalence reference).
    inputs [B, T, n_agents, in] → q [B, T, n_agents, U]. Works for shared and per-agent weights.

    fc1, the GRU input gates and fc2 run once over all T steps; the cell runs step by step and
    autograd records every gate op of every step."""
    gi = agent.rnn.input_gates(F.relu(agent.fc1(inputs)))  # [B, T, n, 3h]
    h = agent.initial_hidden(inputs.shape[0], inputs.device)
    hs = []
    for g in gi.unbind(1):  # unbind, not gi[:, k]: one backward node instead of T full-size ones
        h = agent.rnn.cell(g, h)
        hs.append(h)
    return agent.fc2(torch.stack(hs, dim=1))


class Packing(NamedTuple):
    """Which (step, row) pairs of a time-major [T, N] unroll are real, rows sorted by length
    (longest first) so the rows alive at step t are a prefix: PackedSequence's layout.

    index [P] positions t·N + row in the flattened [T, N] grid, step-major; batch_sizes [T]
    Python ints (rows alive per step, non-increasing, all > 0); prev [P − batch_sizes[0]] packed
    position of the same row one step earlier; bf_index [P] the same (step, row) pairs as
    positions b·T·n + t·n + agent of the batch-first grid, so inputs are gathered and q scattered
    without a time-major copy."""

    index: torch.Tensor
    batch_sizes: list[int]
    prev: torch.Tensor
    steps: int
    rows: int
    bf_index: torch.Tensor | None = None  # the same positions in the batch-first [B, T, n] grid

    @classmethod
    def from_lengths(cls, lengths: torch.Tensor, repeat: int, steps: int) -> Packing:
        """lengths [B] (steps ≥ 1 each, ≤ steps), every episode repeated `repeat` times as
        consecutive rows (the agents) → packing of the [steps, B·repeat] grid."""
        lens = lengths.long().repeat_interleave(repeat)  # [N]
        order = torch.argsort(lens, descending=True, stable=True)
        alive = torch.arange(steps, device=lens.device)[:, None] < lens[order][None, :]  # [T, N]
        t, j = alive.nonzero(as_tuple=True)
        sizes = alive.sum(1)
        batch_sizes = [int(s) for s in sizes[sizes > 0].tolist()]
        prev_sizes = torch.tensor(batch_sizes[:-1], device=lens.device)
        prev = torch.arange(batch_sizes[0], len(t), device=lens.device) - prev_sizes.repeat_interleave(
            torch.tensor(batch_sizes[1:], device=lens.device))
        row = order[j]
        bf = (row // repeat) * (steps * repeat) + t * repeat + row % repeat
        return cls(t * len(lens) + row, batch_sizes, prev, steps, len(lens), bf)

    def per_episode(self, repeat: int) -> Packing:
        """The same grid with one row per episode, for a packing built with `repeat` rows (agents)
        per episode: an episode's rows are consecutive and alive together (the sort is stable),
        so the packed rows [P] are [P / repeat, repeat] and each agent's rows are one column."""
        if any(s % repeat for s in self.batch_sizes):
            raise ValueError(f"per_episode({repeat}): batch sizes {self.batch_sizes} are not "
                             f"multiples of {repeat} (not a packing of {repeat} rows per episode)")
        prev = None if self.prev is None else self.prev[::repeat] // repeat
        return Packing(None, [s // repeat for s in self.batch_sizes], prev, self.steps,
                       self.rows // repeat)


class EpisodeInputs(NamedTuple):
    """Agent inputs of an episode batch, x [B, T, n_agents, in], and the packing of its real
    steps (None: every step is real)."""

    x: torch.Tensor
    packing: Packing | None = None


def unroll(agent: RNNAgent, inputs: torch.Tensor | EpisodeInputs) -> torch.Tensor:
    """Run the agent over an episode batch. inputs [B, T, n_agents, in] → q [B, T, n_agents, U].

    Shared weights: time-major and packed (with `EpisodeInputs.packing`, padded steps are never
    computed and their q is 0), every matmul that does not depend on h runs once over all steps,
    and the recurrence is `gru_sequence`. Per-agent stacked weights ([n, out, in]) take the same
    path with the packed rows viewed as [P / n, n] (agents consecutive): the layers that do not
    depend on h are grouped matmuls, and the recurrence runs once per agent over its column."""
    x, pk = inputs if isinstance(inputs, EpisodeInputs) else (inputs, None)
    b, t, n, _ = x.shape
    if pk is None or pk.bf_index is None:
        pk = Packing(None, [b * n] * t, None, t, b * n) if pk is None else pk
        flat = x.transpose(0, 1).reshape(t * b * n, -1)  # time-major [T·B·n, in]
        if pk.index is not None:
            flat = flat.index_select(0, pk.index)
    else:
        flat = x.reshape(b * t * n, -1).index_select(0, pk.bf_index)  # [P, in], one copy
    rnn = agent.rnn
    if rnn.weight_hh.dim() == 2:
        gi = F.linear(F.relu(agent.fc1(flat)), rnn.weight_ih, rnn.bias_ih)
        q = agent.fc2(gru_sequence(gi, pk, rnn.weight_hh, rnn.bias_hh))  # [P, U]
    else:  # per-agent weights: [P / n, n, ·], one recurrence per agent column
        gi = rnn.input_gates(F.relu(agent.fc1(flat.view(-1, n, flat.shape[-1]))))
        ep = pk.per_episode(n)
        hs = torch.stack([gru_sequence(gi[:, a], ep, rnn.weight_hh[a], rnn.bias_hh[a])
                          for a in range(n)], dim=1)  # [P / n, n, h]
        q = agent.fc2(hs).reshape(-1, agent.fc2.weight.shape[-2])  # [P, U]
    if pk.bf_index is not None:
        return q.new_zeros(b * t * n, q.shape[-1]).index_copy(0, pk.bf_index, q).view(b, t, n, -1)
    if pk.index is not None:
        q = q.new_zeros(t * b * n, q.shape[-1]).index_copy(0, pk.index, q)
    return q.view(t, b, n, -1).transpose(0, 1)


def gru_sequence(gi: torch.Tensor, packing: Packing, weight_hh: torch.Tensor,
                 bias_hh: torch.Tensor) -> torch.Tensor:
    """GRU over packed sequences from h_0 = 0, gate order (r, z, n) as torch's GRUCell.

    gi [P, 3h] input gates (x W_ihᵀ + b_ih, any autograd history) in `packing`'s order,
    weight_hh [3h, h], bias_hh [3h] → hidden states [P, h]. Gradients (dense, also for weights a
    mask zeroes) come from `_GRUSequence`'s hand-written backward when autograd needs them. On
    the CPU the recurrence is the C++ loop of `fused_gru` when it builds, else the Python one."""
    if torch.is_grad_enabled() and (gi.requires_grad or weight_hh.requires_grad
                                    or bias_hh.requires_grad):
        return _GRUSequence.apply(gi, weight_hh, bias_hh, packing)
    with torch.no_grad():
        if fused_gru.select(gi, weight_hh, bias_hh):
            return fused_gru.extension().forward(gi.contiguous(), weight_hh.contiguous(),
                                                 bias_hh.contiguous(), packing.batch_sizes)
        return _gru_forward(gi, packing.batch_sizes, weight_hh, bias_hh)[0]


def _gru_forward(gi: torch.Tensor, sizes: list[int], w_hh: torch.Tensor, b_hh: torch.Tensor):
    """The recurrence in Python (GPU, or no C++ build), every step writing into preallocated
    packed buffers (6 ops per step). gi [P, 3h] → (hs [P, h], rz [P, 2h] (sigmoid r|z), n [P, h],
    gh_n [P, h] = (h_{t-1} W_hhᵀ + b_hh)_n), the last three saved for the backward."""
    h = gi.shape[-1] // 3
    hs, n = gi.new_empty(gi.shape[0], h), gi.new_empty(gi.shape[0], h)
    rz, gh = gi.new_empty(gi.shape[0], 2 * h), torch.empty_like(gi)
    w_t = w_hh.t()
    girz_, gin_, gh_ = gi[:, : 2 * h].split(sizes), gi[:, 2 * h:].split(sizes), gh.split(sizes)
    ghrz_, ghn_, rz_ = gh[:, : 2 * h].split(sizes), gh[:, 2 * h:].split(sizes), rz.split(sizes)
    r_, z_ = rz[:, :h].split(sizes), rz[:, h:].split(sizes)
    hs_, n_ = hs.split(sizes), n.split(sizes)
    hid = gi.new_zeros(sizes[0], h)
    for k, rows in enumerate(sizes):
        if k and rows != sizes[k - 1]:
            hid = hid[:rows]
        torch.addmm(b_hh, hid, w_t, out=gh_[k])
        torch.add(girz_[k], ghrz_[k], out=rz_[k]).sigmoid_()
        torch.addcmul(gin_[k], r_[k], ghn_[k], out=n_[k]).tanh_()
        hid = torch.lerp(n_[k], hid, z_[k], out=hs_[k])  # n + z·(h − n)
    return hs, rz, n, gh[:, 2 * h:]


class _GRUSequence(torch.autograd.Function):
    """Backprop through time with the elementwise gate derivatives computed for all steps at
    once (they depend only on saved activations): the loop keeps 3–4 ops per step, and the
    weight gradients are one matmul over all steps."""

    @staticmethod
    def forward(ctx, gi, w_hh, b_hh, packing):
        ctx.fused = fused_gru.select(gi, w_hh, b_hh)
        if ctx.fused:
            hs, rz, n, ghn = fused_gru.extension().forward_saving(
                gi.contiguous(), w_hh.contiguous(), b_hh.contiguous(), packing.batch_sizes)
        else:
            hs, rz, n, ghn = _gru_forward(gi, packing.batch_sizes, w_hh, b_hh)
        ctx.save_for_backward(hs, rz, n, ghn, w_hh)
        ctx.packing = packing
        return hs

    @staticmethod
    def backward(ctx, d_hs):
        hs, rz, n, ghn, w_hh = ctx.saved_tensors
        if ctx.fused:
            d_gi, d_w, d_b = fused_gru.extension().backward(
                d_hs.contiguous(), hs, rz, n, ghn, w_hh.contiguous(), ctx.packing.batch_sizes)
            return d_gi, d_w, d_b, None
        sizes, h = ctx.packing.batch_sizes, hs.shape[-1]
        h_prev = _previous_hidden(hs, ctx.packing)
        r, z = rz[:, :h], rz[:, h:]
        a = (1 - z) * (1 - n * n)                              # ∂h'/∂(n pre-activation)
        coef = hs.new_empty(hs.shape[0], 3, h)                 # written in place, no stack copy
        c_r, c_z, c_n = coef.unbind(1)
        torch.mul(a, r, out=c_n)                               # ∂h'/∂ghn
        torch.mul(c_n, ghn, out=c_r).mul_(1 - r)               # ∂h'/∂(r pre-activation)
        torch.sub(h_prev, n, out=c_z).mul_(z).mul_(1 - z)      # ∂h'/∂(z pre-activation)
        g = d_hs.clone(memory_format=torch.contiguous_format)  # becomes the total ∂L/∂h_t
        d_gh = torch.empty_like(coef)                          # ∂L/∂(h_{t-1} W_hhᵀ + b_hh)
        g_, g3_, z_, coef_ = g.split(sizes), g.unsqueeze(1).split(sizes), z.split(sizes), coef.split(sizes)
        dgh3_, dgh_ = d_gh.split(sizes), d_gh.view(-1, 3 * h).split(sizes)
        for k in range(len(sizes) - 1, -1, -1):
            torch.mul(g3_[k], coef_[k], out=dgh3_[k])
            if k:
                back = g_[k - 1] if sizes[k] == sizes[k - 1] else g_[k - 1][: sizes[k]]
                back.addcmul_(g_[k], z_[k]).addmm_(dgh_[k], w_hh)
        d_gh = d_gh.view(-1, 3 * h)
        d_w, d_b = d_gh.t().mm(h_prev), d_gh.sum(0)
        torch.mul(g, a, out=d_gh[:, 2 * h:])  # ∂L/∂gi: the r, z columns equal ∂L/∂gh's
        return d_gh, d_w, d_b, None


def _previous_hidden(hs: torch.Tensor, pk: Packing) -> torch.Tensor:
    """h_{t-1} for every packed position [P, h] (0 at the first step)."""
    out, first = torch.empty_like(hs), pk.batch_sizes[0]
    out[:first].zero_()
    if pk.prev is None:  # unpacked: every row alive at every step
        out[first:].copy_(hs[:-first])
    else:
        torch.index_select(hs, 0, pk.prev, out=out[first:])
    return out
