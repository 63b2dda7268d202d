"""Model size and FLOPs of sparse value-based MARL models (paper appendix B.4, DESIGN §5).

Pure functions, no torch: the networks are described by their weight-matrix shapes (PyMARL
defaults, `NetworkSizes`; a run's own widths from its config, `config_sizes`), and each algorithm
by which networks it trains and how often each one runs per update (paper Table 4, eqs. (16),
(21), (24)).

Conventions (they reproduce the resource columns of the paper's Table 1 within 0.001):

- a sparsity `s` (or a per-layer density `d = 1 - s`) applies to weight matrices only; biases are
  dense, counted in model size, not in FLOPs;
- agent input = obs + one-hot last action + one-hot agent id (`EnvSpec.agent_input_dim`);
  one shared agent network, so its size counts once while its FLOPs count every agent;
- the QMIX mixing arithmetic (monotonic combination of the agent Qs) stays dense;
- model size counts online and target networks as in Table 4; test FLOPs = FLOPs_Agent.

Layer names (keys of the optional per-layer `densities` mapping) are `<network>.<layer>`, e.g.
`agent.fc1`, `agent.rnn`, `mixer.hyper_w1.0`, `central_mixer.V.1`; `layer_names()` lists them.

CLI: `python -m mast.accounting --algo qmix --env smac --map 3m --sparsity 0.95` prints one JSON
object with `total_size`, `flops_train`, `flops_test` as ratios to the dense model;
`--distribution erk` gives the layer budget of `method.distribution=erk` (`budget_densities`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from mast._quiet import stdout_to_devnull
from mast.envs.base import EnvSpec
from mast.envs.mamujoco_maps import mamujoco_map_spec
from mast.envs.smac_maps import smac_env_spec

DEFAULT_BATCH_SIZE = 32  # episodes per update (paper Table 3)

Densities = Mapping[str, float] | None


@dataclass(frozen=True)
class NetworkSizes:
    """What a run's config sets that changes the counts: hidden widths (PyMARL defaults, paper
    Table 3) and COMIX's CEM search budget (FACMAC's)."""

    rnn_hidden: int = 64  # agent fc1 width and GRU hidden size
    mixing_embed: int = 32  # QMIX mixing embedding E
    hypernet_hidden: int = 64  # hidden width of the 2-layer hypernetworks
    central_hidden: int = 256  # WQMIX unrestricted mixer width (3 ReLU layers) and its V(s)
    mlp_hidden: int = 400  # Q(o, a) MLPs (COMIX, FACMAC's critic): two hidden layers
    cem_samples: int = 64  # COMIX: K actions scored per CEM iteration
    cem_iterations: int = 2  # COMIX: I iterations, so K·I Q_i passes per greedy step


COMIX_SIZES = NetworkSizes(mixing_embed=64, hypernet_hidden=64)  # FACMAC's COMIX mixer


def config_sizes(cfg) -> NetworkSizes:
    """The widths and CEM budget a run's config builds its networks with (`agent.rnn_hidden_dim`,
    `algo.mixing_embed_dim`, `algo.hypernet_hidden_dim`, `algo.central_hidden_dim`,
    `algo.hidden_dim`, `algo.cem_samples`, `algo.cem_iterations`), so a run with overridden widths
    is counted, and normalised to its dense model, at its own widths. Tiny's shrunk widths are
    not these: Tiny is counted as the sparse model it matches."""
    a, base = cfg.algo, NetworkSizes()
    return NetworkSizes(
        rnn_hidden=cfg.agent.rnn_hidden_dim, mixing_embed=a.mixing_embed_dim,
        hypernet_hidden=a.hypernet_hidden_dim, central_hidden=a.central_hidden_dim,
        mlp_hidden=a.get("hidden_dim", base.mlp_hidden),
        cem_samples=a.get("cem_samples", base.cem_samples),
        cem_iterations=a.get("cem_iterations", base.cem_iterations))


# ---------------------------------------------------------------------------------------------
# Single layers: eqs. (8)-(11). `density` = 1 - S_l.


def linear_size(in_dim: int, out_dim: int, density: float = 1.0) -> float:
    """Eq. (8) plus the dense bias: d·I·O + O parameters."""
    return density * in_dim * out_dim + out_dim


def linear_flops(in_dim: int, out_dim: int, density: float = 1.0) -> float:
    """Eq. (10): forward FLOPs d·(2I − 1)·O of one input row (bias additions not counted)."""
    return density * (2 * in_dim - 1) * out_dim


def gru_size(in_dim: int, hidden: int, density: float = 1.0) -> float:
    """Eq. (9) plus dense biases: d·3h(h + I) + 6h (torch GRUCell has `bias_ih` and `bias_hh`)."""
    return density * 3 * hidden * (hidden + in_dim) + 6 * hidden


def gru_flops(in_dim: int, hidden: int, density: float = 1.0) -> float:
    """Eq. (11): forward FLOPs d·3h(2(h + I) − 1) of one step of one sequence."""
    return density * 3 * hidden * (2 * (hidden + in_dim) - 1)


@dataclass(frozen=True)
class Linear:
    name: str
    in_dim: int
    out_dim: int

    def size(self, density: float) -> float:
        return linear_size(self.in_dim, self.out_dim, density)

    def flops(self, density: float) -> float:
        return linear_flops(self.in_dim, self.out_dim, density)

    def weight_shapes(self) -> dict[str, tuple[int, int]]:
        """The torch weight this layer stands for (`nn.Linear.weight` is [out, in])."""
        return {"weight": (self.out_dim, self.in_dim)}


@dataclass(frozen=True)
class GRU:
    name: str
    in_dim: int
    hidden: int

    def size(self, density: float) -> float:
        return gru_size(self.in_dim, self.hidden, density)

    def flops(self, density: float) -> float:
        return gru_flops(self.in_dim, self.hidden, density)

    def weight_shapes(self) -> dict[str, tuple[int, int]]:
        """`nn.GRUCell`'s two weights: a layer budget (ERK) scores each matrix on its own."""
        return {"weight_ih": (3 * self.hidden, self.in_dim),
                "weight_hh": (3 * self.hidden, self.hidden)}


@dataclass(frozen=True)
class Network:
    """Weight layers of one network plus how its forward FLOPs are counted.

    `forwards` = forward passes per sample (n_agents for a shared agent network);
    `dense_flops` = arithmetic outside the weight matrices that stays dense (QMIX mixing).
    """

    name: str
    layers: tuple[Linear | GRU, ...]
    forwards: int = 1
    dense_flops: float = 0.0

    def _density(self, layer: Linear | GRU, sparsity: float, densities: Densities) -> float:
        key = f"{self.name}.{layer.name}"
        return densities[key] if densities is not None and key in densities else 1.0 - sparsity

    def size(self, sparsity: float, densities: Densities = None) -> float:
        """M_<network>: parameters of one copy (no target network)."""
        return sum(layer.size(self._density(layer, sparsity, densities)) for layer in self.layers)

    def flops(self, sparsity: float, densities: Densities = None) -> float:
        """FLOPs_<network>: one forward pass for one sample (every agent for agent networks)."""
        per_pass = sum(
            layer.flops(self._density(layer, sparsity, densities)) for layer in self.layers
        )
        return self.forwards * per_pass + self.dense_flops


# ---------------------------------------------------------------------------------------------
# Networks (PyMARL shapes).


def agent_network(spec: EnvSpec, sizes: NetworkSizes, name: str = "agent") -> Network:
    """RNN agent: fc1 (input→h), GRUCell(h), fc2 (h→actions); shared by all agents."""
    h = sizes.rnn_hidden
    layers = (
        Linear("fc1", spec.agent_input_dim, h),
        GRU("rnn", h, h),
        Linear("fc2", h, spec.n_actions),
    )
    return Network(name, layers, forwards=spec.n_agents)


def qmix_mixer(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """QMIX hypernetworks; the mixing itself costs (2n − 1)E + (2E − 1) dense FLOPs."""
    n, e, hh, s = spec.n_agents, sizes.mixing_embed, sizes.hypernet_hidden, spec.state_dim
    layers = (
        Linear("hyper_w1.0", s, hh), Linear("hyper_w1.1", hh, e * n),
        Linear("hyper_w_final.0", s, hh), Linear("hyper_w_final.1", hh, e),
        Linear("hyper_b1", s, e),
        Linear("V.0", s, e), Linear("V.1", e, 1),
    )  # fmt: skip
    return Network("mixer", layers, dense_flops=(2 * n - 1) * e + (2 * e - 1))


def vdn_mixer(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """VDN: Q_tot = Σ Q_i, no parameters, n − 1 additions."""
    return Network("mixer", (), dense_flops=spec.n_agents - 1)


def central_mixer(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """WQMIX unrestricted mixer: [state, n utilities]→c→c→c→1 plus V: state→c→1."""
    c, s = sizes.central_hidden, spec.state_dim
    layers = (
        Linear("net.0", s + spec.n_agents, c), Linear("net.1", c, c),
        Linear("net.2", c, c), Linear("net.3", c, 1),
        Linear("V.0", s, c), Linear("V.1", c, 1),
    )  # fmt: skip
    return Network("central_mixer", layers)


# ---------------------------------------------------------------------------------------------
# Algorithms: which networks, Table 4 model size, eqs. (16), (21), (24) training FLOPs.
# `m` and `f` map network name → M_<network> and FLOPs_<network>.


def _online_and_target(m: Mapping[str, float]) -> float:
    """QMIX / RES / VDN: 2 M_Agent + 2 M_Mix."""
    return 2 * (m["agent"] + m["mixer"])


def _wqmix_size(m: Mapping[str, float]) -> float:
    """WQMIX: M_Agent + M_Mix + 2 M_UA + 2 M_UM (targets only for the unrestricted networks)."""
    return m["agent"] + m["mixer"] + 2 * (m["central_agent"] + m["central_mixer"])


def _qmix_train(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
                sizes: NetworkSizes) -> float:
    """Eq. (16): 4B(FLOPs_Agent + FLOPs_Mix)."""
    return 4 * batch_size * (f["agent"] + f["mixer"])


def _wqmix_train(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
                 sizes: NetworkSizes) -> float:
    """Eq. (21): B(3 FLOPs_Agent + 3 FLOPs_Mix + 4 FLOPs_UA + 4 FLOPs_UM)."""
    restricted = 3 * (f["agent"] + f["mixer"])
    return batch_size * (restricted + 4 * (f["central_agent"] + f["central_mixer"]))


def _res_train(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
               sizes: NetworkSizes) -> float:
    """Eq. (24): B(4 FLOPs_Agent + (3 + 2nm) FLOPs_Mix), n agents, m actions.

    Table 4 prints (5 + nm) for the mixer factor; eq. (24) is the one that reproduces Table 1.
    """
    nm = spec.n_agents * spec.n_actions
    return batch_size * (4 * f["agent"] + (3 + 2 * nm) * f["mixer"])


def comix_agent(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """COMIX Q_i(o_i, a_i): [obs ⊕ agent id ⊕ action dims] → h → h → 1, shared by all agents
    (observations and actions padded to the largest agent's, as the network sees them)."""
    h = sizes.mlp_hidden
    layers = (Linear("fc1", spec.obs_dim + spec.n_agents + spec.n_actions, h),
              Linear("fc2", h, h), Linear("fc3", h, 1))
    return Network("agent", layers, forwards=spec.n_agents)


def _cem_passes(sizes: NetworkSizes) -> int:
    """Q_i forward passes of one CEM search: K samples × I iterations."""
    return sizes.cem_samples * sizes.cem_iterations


def _comix_train(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
                 sizes: NetworkSizes) -> float:
    """B(3 FLOPs_Agent + K·I FLOPs_Agent + 4 FLOPs_Mix): online Q(o, a) forward and backward
    (3), the target's CEM (K samples × I iterations forward passes), mixer as eq. (16) (4)."""
    return batch_size * ((3 + _cem_passes(sizes)) * f["agent"] + 4 * f["mixer"])


def _renamed(build: Callable[[EnvSpec, NetworkSizes], Network], name: str):
    """`build` with its network named `name` (a second copy with its own layer keys)."""
    return lambda spec, sizes: replace(build(spec, sizes), name=name)


def _comix_twin_size(m: Mapping[str, float]) -> float:
    """Two critics, online and target copies of each: 2(M_Agent + M_Mix + M_Agent2 + M_Mix2)."""
    return 2 * (m["agent"] + m["mixer"] + m["agent2"] + m["mixer2"])


def _comix_twin_train(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
                      sizes: NetworkSizes) -> float:
    """COMIX's B((3 + K·I) FLOPs_Agent + 4 FLOPs_Mix) plus the second critic's B(4 FLOPs_Agent2 +
    4 FLOPs_Mix2): its online forward and backward (3 each) and its target valuing the first
    target agent's CEM action once (1 each; `algo.twin_critics`, TD3's clipped double Q)."""
    return (_comix_train(f, spec, batch_size, sizes)
            + batch_size * 4 * (f["agent2"] + f["mixer2"]))


def _agent_test(f: Mapping[str, float], sizes: NetworkSizes) -> float:
    """FLOPs_Agent: one greedy step of every agent."""
    return f["agent"]


def _comix_test(f: Mapping[str, float], sizes: NetworkSizes) -> float:
    """A greedy COMIX step runs CEM: K·I forward passes of every agent."""
    return _cem_passes(sizes) * f["agent"]


NetworkBuilder = Callable[[EnvSpec, NetworkSizes], Network]


@dataclass(frozen=True)
class AlgoAccounting:
    networks: tuple[NetworkBuilder, ...]
    model_size: Callable[[Mapping[str, float]], float]
    train_flops: Callable[[Mapping[str, float], EnvSpec, int, NetworkSizes], float]
    test_flops: Callable[[Mapping[str, float], NetworkSizes], float] = _agent_test
    # the algorithm's default widths (its config's defaults) for an env spec
    default_sizes: Callable[[EnvSpec], NetworkSizes] = lambda spec: NetworkSizes()


def _central_agent(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """WQMIX unrestricted agent: same RNN as the agent network."""
    return agent_network(spec, sizes, name="central_agent")


ALGOS: dict[str, AlgoAccounting] = {
    "qmix": AlgoAccounting((agent_network, qmix_mixer), _online_and_target, _qmix_train),
    "vdn": AlgoAccounting((agent_network, vdn_mixer), _online_and_target, _qmix_train),
    "res": AlgoAccounting((agent_network, qmix_mixer), _online_and_target, _res_train),
    "wqmix": AlgoAccounting(
        (agent_network, qmix_mixer, _central_agent, central_mixer), _wqmix_size, _wqmix_train
    ),
    "comix": AlgoAccounting((comix_agent, qmix_mixer), _online_and_target, _comix_train,
                            _comix_test, lambda spec: COMIX_SIZES),
    # `algo=comix algo.twin_critics=true`: the second critic trains but never acts
    "comix-twin": AlgoAccounting(
        (comix_agent, qmix_mixer, _renamed(comix_agent, "agent2"), _renamed(qmix_mixer, "mixer2")),
        _comix_twin_size, _comix_twin_train, _comix_test, lambda spec: COMIX_SIZES),
}


def _register_extensions() -> None:
    """Algorithms whose accounting lives in its own module (they import this one lazily)."""
    from mast.accounting_facmac import facmac_accounting

    ALGOS["facmac"] = facmac_accounting()


_register_extensions()


def accounting_name(algo_cfg) -> str:
    """The `ALGOS` entry of a run's `algo` config: COMIX with twin critics has its own."""
    if algo_cfg.name == "comix" and algo_cfg.get("twin_critics", False):
        return "comix-twin"
    return algo_cfg.name


def _algo(algo: str) -> AlgoAccounting:
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r} is not supported by accounting; allowed: {sorted(ALGOS)}")
    return ALGOS[algo]


def networks(algo: str, spec: EnvSpec, sizes: NetworkSizes | None = None) -> tuple[Network, ...]:
    """The networks whose weights `algo` trains (one copy each, no targets); `sizes` defaults to
    the algorithm's own widths."""
    accounting = _algo(algo)
    sizes = sizes or accounting.default_sizes(spec)
    return tuple(build(spec, sizes) for build in accounting.networks)


def layer_names(algo: str, spec: EnvSpec, sizes: NetworkSizes | None = None) -> list[str]:
    """Allowed keys of the per-layer `densities` mapping, `<network>.<layer>`."""
    return [
        f"{net.name}.{layer.name}" for net in networks(algo, spec, sizes) for layer in net.layers
    ]


def mask_densities(
    algo: str, spec: EnvSpec, counts: Mapping[str, tuple[int, int]],
    sizes: NetworkSizes | None = None,
) -> dict[str, float]:
    """Per-layer `densities` of a run's masks, for runs whose layers are not all at 1 − sparsity
    (ERK, `method.exempt`, `method.unit_density`).

    `counts`: (active, total) weights of every sparsifiable parameter, in module order, keyed by
    parameter name (`agent.rnn.weight_ih`, `mixer.hyper_w1.2.weight`; an exempt one is fully
    active). A layer is its module path with Sequential indices renumbered among the weight layers
    (`mixer.hyper_w1.2` → `mixer.hyper_w1.1`); a GRU's weight_ih and weight_hh are one layer.
    """
    paths = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in counts))
    siblings: dict[str, list[str]] = {}
    for path in paths:
        parent, _, last = path.rpartition(".")
        if last.isdigit():
            siblings.setdefault(parent, []).append(last)

    def layer(name: str) -> str:
        parent, _, last = name.rsplit(".", 1)[0].rpartition(".")
        return f"{parent}.{siblings[parent].index(last)}" if last.isdigit() else f"{parent}.{last}"

    totals: dict[str, list[int]] = {}
    for name, (active, total) in counts.items():
        acc = totals.setdefault(layer(name), [0, 0])
        acc[0] += active
        acc[1] += total
    densities = {k: a / n for k, (a, n) in totals.items()}
    _check(algo, spec, 0.0, sizes, densities)
    return densities


def budget_densities(
    algo: str, spec: EnvSpec, sparsity: float, distribution: str,
    sizes: NetworkSizes | None = None,
) -> dict[str, float] | None:
    """Per-layer `densities` that `method.distribution` gives a run's masks at `sparsity`, from
    the weight shapes alone (no network is built); None for uniform, whose exact accounting is
    1 − sparsity per layer. One budget over every trained network, as a run allocates it."""
    from mast.sparse.distribution import DISTRIBUTIONS, layer_active_counts

    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution={distribution!r} is not known; allowed: {list(DISTRIBUTIONS)}")
    _check(algo, spec, sparsity, sizes, None)
    if distribution == "uniform":
        return None
    shapes = {f"{net.name}.{layer.name}.{param}": shape
              for net in networks(algo, spec, sizes) for layer in net.layers
              for param, shape in layer.weight_shapes().items()}
    active = layer_active_counts(shapes, sparsity, distribution)
    counts = {name: (active[name], shape[0] * shape[1]) for name, shape in shapes.items()}
    return mask_densities(algo, spec, counts, sizes)


def _check(
    algo: str, spec: EnvSpec, sparsity: float, sizes: NetworkSizes | None, densities: Densities
) -> None:
    if not 0.0 <= sparsity < 1.0:  # also rejects NaN
        raise ValueError(f"sparsity={sparsity!r} is out of range; allowed: 0 <= sparsity < 1")
    if densities is None:
        return
    allowed = layer_names(algo, spec, sizes)
    for key, density in densities.items():
        if key not in allowed:
            raise ValueError(f"densities key {key!r} is not a layer of {algo}; allowed: {allowed}")
        if not 0.0 < density <= 1.0:
            raise ValueError(f"densities[{key!r}]={density!r} is out of range; allowed: 0 < d <= 1")


def resource_usage(
    algo: str,
    spec: EnvSpec,
    sparsity: float,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sizes: NetworkSizes | None = None,
    densities: Densities = None,
) -> dict[str, float]:
    """Absolute `total_size` (parameters, Table 4), `flops_train` (per update of `batch_size`
    samples, eqs. (16)/(21)/(24)) and `flops_test` (FLOPs_Agent, one step of all agents).

    `sparsity` applies to every weight matrix unless `densities` gives that layer's density.
    """
    accounting = _algo(algo)
    _check(algo, spec, sparsity, sizes, densities)
    sizes = sizes or accounting.default_sizes(spec)
    nets = networks(algo, spec, sizes)
    m = {net.name: net.size(sparsity, densities) for net in nets}
    f = {net.name: net.flops(sparsity, densities) for net in nets}
    return {
        "total_size": accounting.model_size(m),
        "flops_train": accounting.train_flops(f, spec, batch_size, sizes),
        "flops_test": accounting.test_flops(f, sizes),
    }


def resource_ratios(
    algo: str,
    spec: EnvSpec,
    sparsity: float,
    sizes: NetworkSizes | None = None,
    densities: Densities = None,
) -> dict[str, float]:
    """`resource_usage` divided by that of the dense model of the same algo and spec (Table 1)."""
    sparse = resource_usage(algo, spec, sparsity, sizes=sizes, densities=densities)
    dense = resource_usage(algo, spec, 0.0, sizes=sizes)
    return {key: sparse[key] / dense[key] for key in sparse}


def train_flops_per_update(
    algo: str,
    spec: EnvSpec,
    sparsity: float,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sizes: NetworkSizes | None = None,
    densities: Densities = None,
) -> float:
    """Absolute training FLOPs of one gradient update (for cumulative FLOPs logging)."""
    return resource_usage(algo, spec, sparsity, batch_size, sizes, densities)["flops_train"]


# ---------------------------------------------------------------------------------------------
# Environment specs and CLI.


def _smax_spec(map_name: str) -> EnvSpec:
    try:
        from mast.envs.smax import smax_env_spec  # lazy: imports JAX
    except ImportError as err:
        raise ImportError(
            f"env=smax needs mast.envs.smax and jaxmarl ({err}); use env=smac"
        ) from err
    return smax_env_spec(map_name)


ENV_SPECS: dict[str, Callable[[str], EnvSpec]] = {
    "smac": smac_env_spec, "smax": _smax_spec, "mamujoco": mamujoco_map_spec}


def env_spec(env: str, map_name: str) -> EnvSpec:
    """`EnvSpec` of `map_name` in `env` (SMAC from the static table, SMAX from JaxMARL)."""
    if env not in ENV_SPECS:
        raise ValueError(
            f"env={env!r} is not supported by accounting; allowed: {sorted(ENV_SPECS)}"
        )
    return ENV_SPECS[env](map_name)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m mast.accounting", description=__doc__.splitlines()[0])
    parser.add_argument("--algo", required=True, choices=sorted(ALGOS))
    parser.add_argument("--env", required=True, choices=sorted(ENV_SPECS))
    parser.add_argument("--map", required=True, help="map name, e.g. 3m, 2s3z, 3s5z, 2c_vs_64zg; "
                        "mamujoco: <scenario>-<agent_conf>, e.g. 'Humanoid-9|8'")
    parser.add_argument("--sparsity", required=True, type=float, help="0 <= S < 1")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="episodes")
    parser.add_argument("--distribution", default="uniform",
                        help="layer budget, as method.distribution: uniform (default) or erk")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        if args.batch_size < 1:
            raise ValueError(f"batch_size={args.batch_size} is out of range; allowed: >= 1")
        with stdout_to_devnull():  # stdout carries only the JSON
            spec = env_spec(args.env, args.map)
        densities = budget_densities(args.algo, spec, args.sparsity, args.distribution)
        ratios = resource_ratios(args.algo, spec, args.sparsity, densities=densities)
        per_update = train_flops_per_update(args.algo, spec, args.sparsity, args.batch_size,
                                            densities=densities)
    except (ValueError, ImportError) as err:
        message = " ".join(str(err).split())  # exactly one line
        sys.stderr.write(f"python -m mast.accounting: error: {message}\n")
        return 2
    record = {"algo": args.algo, "env": args.env, "map": args.map, "sparsity": args.sparsity,
              "distribution": args.distribution}
    record |= {key: round(value, 4) for key, value in ratios.items()}
    record |= {"batch_size": args.batch_size, "train_flops_per_update": per_update}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
