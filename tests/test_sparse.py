"""Sparse engine invariants on tiny layers: distributions, masks, drop-and-grow, optimiser state,
schedule and the Tiny width solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mast.sparse import (
    MaskSet,
    TopologySchedule,
    TopologyUpdater,
    drop_and_grow,
    layer_active_counts,
    layer_densities,
    solve_width_scale,
    sparsifiable_shapes,
    target_param_count,
)


class Stacked(nn.Module):
    """Per-agent weights [n_agents, out, in] with stacked biases [n_agents, out]."""

    def __init__(self, groups: int = 3, out_dim: int = 8, in_dim: int = 5):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(groups, out_dim, in_dim))
        self.bias = nn.Parameter(torch.randn(groups, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, G, in]
        return torch.einsum("bgi,goi->bgo", x, self.weight) + self.bias


def make_nets(seed: int = 0) -> nn.ModuleDict:
    torch.manual_seed(seed)
    return nn.ModuleDict({
        "agent": nn.ModuleDict({"fc1": nn.Linear(5, 8), "rnn": nn.GRUCell(8, 8),
                                "fc2": nn.Linear(8, 4)}),
        "mixer": Stacked(3, 8, 5),
    })


def loss_of(nets: nn.ModuleDict, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, generator=g)
    h = nets["agent"]["rnn"](torch.tanh(nets["agent"]["fc1"](x)), torch.randn(6, 8, generator=g))
    y = nets["mixer"](torch.randn(2, 3, 5, generator=g))
    return nets["agent"]["fc2"](h).pow(2).mean() + y.pow(2).mean()


def dense_grads(nets: nn.ModuleDict) -> dict[str, torch.Tensor]:
    nets.zero_grad()
    loss_of(nets).backward()
    return {n: p.grad.clone() for n, p in nets.named_parameters()}


EXPECTED_LAYERS = {"agent.fc1.weight", "agent.rnn.weight_ih", "agent.rnn.weight_hh",
                   "agent.fc2.weight", "mixer.weight"}


# ---------------------------------------------------------------- what: distribution and masks

def test_sparsifiable_are_weight_matrices_only():
    assert set(sparsifiable_shapes(make_nets())) == EXPECTED_LAYERS  # stacked bias stays dense


@pytest.mark.parametrize("kind", ["uniform", "erk"])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0])
def test_distribution_hits_target_exactly(kind, sparsity):
    shapes = sparsifiable_shapes(make_nets())
    counts = layer_active_counts(shapes, sparsity, kind)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == round((1 - sparsity) * total)
    dens = layer_densities(shapes, sparsity, kind)
    assert all(0.0 <= d <= 1.0 for d in dens.values())
    assert all(round(dens[k] * math.prod(shapes[k])) == counts[k] for k in counts)
    if kind == "uniform":  # every layer within one weight of 1 - s
        assert all(abs(counts[k] - (1 - sparsity) * math.prod(shapes[k])) < 1 for k in counts)


def test_erk_favours_thin_layers_and_caps_at_one():
    shapes = {"big": (64, 64), "thin": (64, 2), "mid": (32, 32)}
    dens = layer_densities(shapes, 0.8, "erk")
    assert dens["thin"] == 1.0  # capped, its surplus redistributed
    assert dens["mid"] > dens["big"]
    total = sum(math.prod(s) for s in shapes.values())
    active = sum(dens[k] * math.prod(s) for k, s in shapes.items())
    assert round(active) == round(0.2 * total)
    # uncapped layers keep the ERK ratio (64/32²)/(128/64²) = 2, to within rounding
    ratio = (dens["mid"] / dens["big"]) / 2
    assert ratio == pytest.approx(1.0, rel=0.02)


def test_exempt_and_unknown_kind():
    shapes = sparsifiable_shapes(make_nets())
    dens = layer_densities(shapes, 0.5, exempt=["mixer.*"])
    assert set(dens) == EXPECTED_LAYERS - {"mixer.weight"}
    with pytest.raises(ValueError, match="method.distribution"):
        layer_densities(shapes, 0.5, kind="gaussian")
    with pytest.raises(ValueError, match="method.exempt"):
        layer_densities(shapes, 0.5, exempt=["mixr.*"])


def test_random_masks_global_budget_over_stacked_agents():
    nets = make_nets()
    masks = MaskSet.random(nets, 0.5, generator=torch.Generator().manual_seed(3))
    assert masks.density() == 0.5
    per_agent = masks.per_agent_densities("mixer.weight")
    assert len(per_agent) == 3 and len(set(per_agent)) > 1  # agents differ (paper Fig. 12)
    assert np.mean(per_agent) == pytest.approx(0.5)  # equal-sized slices: plain mean = target
    again = MaskSet.random(nets, 0.5, generator=torch.Generator().manual_seed(3))
    assert masks.change_fraction(again) == 0.0


def test_masked_weights_stay_zero_after_optimizer_steps():
    nets, target = make_nets(), make_nets(seed=9)
    masks = MaskSet.random(nets, 0.7, generator=torch.Generator().manual_seed(0))
    masks.apply_(nets)
    opt = torch.optim.Adam(nets.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss_of(nets).backward()
        masks.mask_grads_(nets)
        opt.step()
        masks.apply_(nets)
    params = dict(nets.named_parameters())
    for name, m in masks.masks.items():
        assert (params[name][~m] == 0).all()
        assert (params[name][m] != 0).all()
    masks.apply_(target)  # same names: the target copy takes the same masks
    for name, p in target.named_parameters():
        if name in masks.masks:
            assert (p[~masks.masks[name]] == 0).all()


def test_state_dict_numpy_and_change_fraction(tmp_path):
    masks = MaskSet.random(make_nets(), 0.6, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "m.pt"
    torch.save(masks.state_dict(), path)
    other = MaskSet.random(make_nets(), 0.6, generator=torch.Generator().manual_seed(2))
    assert 0.0 < masks.change_fraction(other) <= 1.0
    other.load_state_dict(torch.load(path, weights_only=True))
    assert masks.change_fraction(other) == 0.0
    arrays = masks.to_numpy()
    assert set(arrays) == EXPECTED_LAYERS and all(a.dtype == np.bool_ for a in arrays.values())
    np.savez_compressed(tmp_path / "mask.npz", **arrays)
    assert masks.to("cpu") is masks


# ---------------------------------------------------------------- how: drop and grow

def test_drop_by_magnitude_and_grow_by_gradient_exact():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 7, generator=g)
    mask = torch.rand(6, 7, generator=g) < 0.5
    w = w * mask
    grad = torch.randn(6, 7, generator=g)
    n = 5
    new, grown = drop_and_grow(w, mask, grad.abs(), n)
    active = mask.flatten().nonzero().squeeze(1)
    inactive = (~mask).flatten().nonzero().squeeze(1)
    expect_drop = set(active[w.flatten()[active].abs().argsort()[:n]].tolist())
    by_grad = grad.flatten()[inactive].abs().argsort(descending=True)
    expect_grow = set(inactive[by_grad[:n]].tolist())
    dropped = set((mask & ~new).flatten().nonzero().squeeze(1).tolist())
    assert dropped == expect_drop
    assert set(grown.flatten().nonzero().squeeze(1).tolist()) == expect_grow
    assert not (grown & mask).any()  # grown ⊂ previously inactive ⇒ disjoint from dropped
    assert int(new.sum()) == int(mask.sum())


def test_drop_and_grow_clips_to_available_positions():
    mask = torch.tensor([True, True, True, False])
    new, grown = drop_and_grow(torch.ones(4), mask, torch.ones(4), 3)
    assert int(grown.sum()) == 1 and int(new.sum()) == 3


def _trained(optimizer_fn, steps: int = 3):
    """Nets + optimiser after dense steps, so every state entry is non-zero everywhere."""
    nets = make_nets()
    opt = optimizer_fn(nets.parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss_of(nets).backward()
        opt.step()
    return nets, opt


@pytest.mark.parametrize("grow", ["gradient", "random"])
def test_updater_swaps_zero_inits_and_keeps_count(grow):
    nets, opt = _trained(lambda p: torch.optim.RMSprop(p, lr=1e-2))
    masks = MaskSet.random(nets, 0.6, generator=torch.Generator().manual_seed(5))
    masks.apply_(nets)
    before = masks.clone()
    grads = dense_grads(nets)
    stats = TopologyUpdater(grow).update(nets, masks, grads, opt, 0.3,
                                         torch.Generator().manual_seed(7))
    params = dict(nets.named_parameters())
    for name, old in before.masks.items():
        new = masks.masks[name]
        k = math.floor(0.3 * int(old.sum()))
        grown, dropped = new & ~old, old & ~new
        assert stats["swapped"][name] == k == int(grown.sum()) == int(dropped.sum())
        assert int(new.sum()) == int(old.sum())
        assert (params[name][grown] == 0).all() and (params[name][~new] == 0).all()
        if grow == "gradient":  # grown = top-k |g| among previously inactive (ties allowed)
            score = grads[name].abs()
            assert score[grown].min() >= score[~old & ~grown].max()
    assert stats["total"] == sum(stats["swapped"].values()) > 0
    assert 0 < masks.change_fraction(before) < 1


def test_set_grow_is_seeded_reproducible():
    outs = []
    for _ in range(2):
        nets, opt = _trained(lambda p: torch.optim.SGD(p, lr=1e-2))
        masks = MaskSet.random(nets, 0.5, generator=torch.Generator().manual_seed(1))
        masks.apply_(nets)
        TopologyUpdater("random").update(nets, masks, {}, opt, 0.5,
                                         torch.Generator().manual_seed(11))
        outs.append(masks)
    assert outs[0].change_fraction(outs[1]) == 0.0


OPTIMIZERS = {
    "rmsprop": (lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.9, centered=True),
                {"square_avg", "momentum_buffer", "grad_avg"}),
    "adam": (lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),
             {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    "sgd": (lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9), {"momentum_buffer"}),
}


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_optimizer_state_reset_at_grown_positions(opt_name):
    make_opt, keys = OPTIMIZERS[opt_name]
    nets, opt = _trained(make_opt)
    masks = MaskSet.random(nets, 0.5, generator=torch.Generator().manual_seed(2))
    masks.apply_(nets)
    params = dict(nets.named_parameters())
    old_state = {n: {k: v.clone() for k, v in opt.state[params[n]].items()} for n in masks.masks}
    before = masks.clone()
    TopologyUpdater("gradient").update(nets, masks, dense_grads(nets), opt, 0.5, None)
    for name, old in before.masks.items():
        grown = masks.masks[name] & ~old
        state = opt.state[params[name]]
        assert keys <= set(state)
        for key in keys:
            assert (old_state[name][key][grown] != 0).any()  # was live before the reset
            assert (state[key][grown] == 0).all()
            assert torch.equal(state[key][~grown], old_state[name][key][~grown])
    opt.zero_grad()  # the optimiser still steps with the reset state
    loss_of(nets).backward()
    masks.mask_grads_(nets)
    opt.step()
    masks.apply_(nets)
    assert all((params[n][~m] == 0).all() for n, m in masks.masks.items())


def test_unknown_grow_rule():
    with pytest.raises(ValueError, match="grow"):
        TopologyUpdater("magnitude")


# ---------------------------------------------------------------- when: schedule

def test_cosine_schedule():
    s = TopologySchedule(update_interval_updates=200, init_drop_fraction=0.5, end_t_env=1000)
    assert s.drop_fraction(0) == pytest.approx(0.5)
    assert s.drop_fraction(500) == pytest.approx(0.25)
    assert s.drop_fraction(250) == pytest.approx(0.25 * (1 + math.cos(math.pi / 4)))
    assert s.drop_fraction(1000) == 0.0 and s.drop_fraction(5000) == 0.0
    assert s.should_update(400, 999) and not s.should_update(400, 1000)
    assert not s.should_update(0, 0) and not s.should_update(401, 10)


# ---------------------------------------------------------------- Tiny

def build_rnn_mlp(scale: float) -> nn.ModuleDict:
    """Agent (fc → GRU → fc) + QMIX-like hypernet mixer with hidden widths scaled by `scale`."""
    def w(width: int) -> int:
        return max(1, round(scale * width))

    hidden, embed, hyper = w(64), w(32), w(64)
    n_agents, obs, state, actions = 3, 30, 40, 9
    return nn.ModuleDict({
        "agent": nn.ModuleDict({"fc1": nn.Linear(obs, hidden), "rnn": nn.GRUCell(hidden, hidden),
                                "fc2": nn.Linear(hidden, actions)}),
        "mixer": nn.ModuleDict({
            "hyper_w1": nn.Sequential(nn.Linear(state, hyper), nn.Linear(hyper, n_agents * embed)),
            "hyper_w2": nn.Sequential(nn.Linear(state, hyper), nn.Linear(hyper, embed)),
            "hyper_b1": nn.Linear(state, embed),
            "v": nn.Sequential(nn.Linear(state, embed), nn.Linear(embed, 1)),
        }),
    })


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9])
def test_tiny_width_matches_sparse_param_count(sparsity):
    dense = build_rnn_mlp(1.0)
    target = target_param_count(dense, sparsity)
    n_bias = sum(p.numel() for n, p in dense.named_parameters() if p.dim() == 1)
    n_weight = n_params(dense) - n_bias
    assert target == round((1 - sparsity) * n_weight) + n_bias
    scale = solve_width_scale(lambda c: n_params(build_rnn_mlp(c)), target)
    got = n_params(build_rnn_mlp(scale))
    assert abs(got - target) <= 0.02 * target
    grid = [n_params(build_rnn_mlp(c)) for c in np.linspace(0.05, 1.0, 96)]
    assert abs(got - target) <= min(abs(n - target) for n in grid)  # no coarse scale does better


def test_width_solver_edges():
    assert solve_width_scale(lambda c: 10, 100) == 1.0
    assert solve_width_scale(lambda c: 1000, 100, lo=0.05) == 0.05
    step = solve_width_scale(lambda c: 90 if c < 0.5 else 120, 100)  # 90 is closer than 120
    assert step < 0.5 and abs(step - 0.5) < 1e-5
    step = solve_width_scale(lambda c: 90 if c < 0.5 else 105, 100)  # 105 is closer
    assert step >= 0.5 and abs(step - 0.5) < 1e-5
