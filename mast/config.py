"""Typed config schemas (registered in Hydra's ConfigStore) and the one validation pass.

YAML files under `conf/` only set values; every key must exist here, so a typo fails in Hydra's
struct mode. `validate()` runs the cross-field checks once, before any environment or Ray worker
starts, and raises `ConfigError` with one line that names the key and the allowed values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """Bad user input; the message is one line naming the key and the allowed values."""


@dataclass
class AlgoConfig:
    """Keys every algorithm has. Each algorithm extends it with its own dataclass below and is
    registered per option (`ALGO_SCHEMAS`), so a key of another algorithm fails in struct mode
    (e.g. `algo=qmix algo.weighting=cw`)."""

    # action spaces its learner can act in (EnvSpec.action_kind); FACMAC-style learners list both
    action_kinds: ClassVar[tuple[str, ...]] = ("discrete",)

    name: str = MISSING
    learner: str = "q"  # registry LEARNERS
    mixer: str = "qmix"  # qmix | vdn       (registry MIXERS)
    mixing_embed_dim: int = 32
    hypernet_hidden_dim: int = 64
    central_hidden_dim: int = 256  # width of unrestricted/central networks (WQMIX's Q*)
    td_lambda: float = 0.8  # λ of TD(λ) once multi-step targets are on (0.6 for WQMIX)


@dataclass
class DiscreteQConfig(AlgoConfig):
    """Value-based learners over discrete actions with ε-greedy exploration."""

    epsilon_anneal_env_steps: int = 50_000


@dataclass
class QMIXConfig(DiscreteQConfig):
    pass


@dataclass
class VDNConfig(DiscreteQConfig):
    mixer: str = "vdn"


@dataclass
class WQMIXConfig(DiscreteQConfig):
    """OW (optimistic) or CW (centrally) weighting, weight α on the down-weighted samples."""

    learner: str = "wqmix"
    weighting: str = "ow"
    wqmix_alpha: float = 0.1
    central_loss_weight: float = 1.0
    td_lambda: float = 0.6
    epsilon_anneal_env_steps: int = 100_000


@dataclass
class RESConfig(DiscreteQConfig):
    """Softmax temperature over one-agent deviations and Monte-Carlo regulariser weight."""

    learner: str = "res"
    res_beta: float = 5.0
    res_lambda: float = 0.05


@dataclass
class COMIXConfig(AlgoConfig):
    """COMIX (FACMAC paper): per-agent Q_i(o_i, a_i) MLPs, QMIX mixer, greedy actions by the
    cross-entropy method (CEM), Gaussian exploration noise; defaults are FACMAC's."""

    action_kinds: ClassVar[tuple[str, ...]] = ("continuous",)

    learner: str = "comix"
    mixing_embed_dim: int = 64
    hidden_dim: int = 400  # two hidden layers of this width (paper B.2)
    cem_samples: int = 64  # N actions sampled per CEM iteration
    cem_elites: int = 6  # top-N_e samples refit the Gaussian
    cem_iterations: int = 2
    act_noise: float = 0.1  # Gaussian exploration σ, in units of the half action range
    # env steps of uniform random actions before the policy acts (FACMAC on MA-MuJoCo: 10000;
    # 0 here so runs stored before the key keep their ids; presets set it)
    start_steps: int = 0
    lr: float = 1e-3  # Adam (FACMAC), replaces train.lr / train.optimizer for this algorithm
    optim_eps: float = 0.01
    grad_norm_clip: float = 0.5
    target_update: str = "soft"  # soft (Polyak τ every update, FACMAC) | hard (train.target_update_interval_episodes)
    target_tau: float = 0.001
    # who picks the bootstrap action by CEM at o_{t+1}: the target agent (FACMAC) or the online
    # agent, with the target agent valuing its candidates (double Q, van Hasselt et al. 2016)
    bootstrap_actions: str = "target"
    # TD3's clipped double Q (Fujimoto et al. 2018): a second critic (agent2 + mixer2), both fit
    # to min over the two target critics' Q_tot at the bootstrap action (off: FACMAC's one critic;
    # `mast.accounting` counts the second critic as `--algo comix-twin`)
    twin_critics: bool = False
    # TD3's target policy smoothing: the target critics value the bootstrap action (and, for
    # operators other than max, each candidate) plus N(0, σ²) noise clipped to ±clip, in
    # half-range units, so the target cannot ride a sharp peak of Q in the action (0: off, FACMAC)
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    seq_window_steps: int | None = None  # train on a random window of each episode (None: whole)
    policy_distance_tol: float = 0.2  # RLx2: an action is stale when RMS |Δa| (half-range units) > tol
    policy_distance_max_rows: int = 2048  # RLx2: (episode, step) rows scored per check


@dataclass
class FACMACConfig(AlgoConfig):
    """FACMAC (Peng et al. 2021): actors trained through a factored critic (per-agent Q_i(o_i, a_i)
    MLPs + mixer). Defaults are FACMAC's SMAC settings (facmac_smac.yaml);
    `+experiment=facmac_mamujoco` sets its Multi-Agent MuJoCo ones. Discrete: RNN actor
    (agent.rnn_hidden_dim), Gumbel-Softmax policy gradient, ε-mixed softmax exploration;
    continuous: MLP actor, Gaussian noise."""

    action_kinds: ClassVar[tuple[str, ...]] = ("discrete", "continuous")

    learner: str = "facmac"
    hidden_dim: int = 64  # critic MLP width (two hidden layers); also the continuous actor's
    actor_lr: float = 0.0025  # Adam, actor parameter group
    critic_lr: float = 0.0005  # Adam, critic + mixer parameter group
    optim_eps: float = 1e-7
    grad_norm_clip: float = 10.0  # clipped separately for actor and critic + mixer
    actor_reg: float = 0.0  # weight of mean(a^2) in the actor loss (FACMAC continuous: 1e-3)
    gumbel_temperature: float = 1.0  # discrete: straight-through Gumbel-Softmax temperature
    epsilon_start: float = 0.5  # discrete exploration: ε-mixture of softmax policy and uniform
    epsilon_finish: float = 0.05
    epsilon_anneal_env_steps: int = 50_000
    act_noise: float = 0.1  # continuous exploration σ (units of the half action range)
    start_steps: int = 0  # continuous: uniform random env steps first (FACMAC MA-MuJoCo: 10000)
    operator_samples: int = 16  # continuous: candidate actions K for operators other than max
    operator_noise: float = 0.1  # continuous: σ of the K - 1 perturbed candidates
    target_update: str = "hard"  # hard (train.target_update_interval_episodes) | soft (τ each update)
    target_tau: float = 0.001
    seq_window_steps: int | None = None  # train on a random window of each episode (None: whole)
    policy_distance_tol: float = 0.2  # RLx2, continuous: stale when RMS |Δa| > tol


@dataclass
class EnvConfig:
    name: str = MISSING  # registry ENVS
    map: str = "3m"
    n_envs: int = 8  # environments stepped per jitted call while training
    episode_limit: int | None = None  # None: SMAC's limit for the map
    reward_scale: float = 10.0  # SMAX reward ×10 = SMAC's 0..20 range


@dataclass
class MaMuJoCoConfig(EnvConfig):
    """Multi-Agent MuJoCo (gymnasium-robotics mamujoco_v1); `map` is `<scenario>-<agent_conf>`."""

    map: str = "${.scenario}-${.agent_conf}"
    scenario: str = "ManySegmentSwimmer"
    agent_conf: str = "10x2"
    agent_obsk: int = 0  # observation distance k (paper: 0)
    reward_scale: float = 1.0


ENV_SCHEMAS: dict[str, type[EnvConfig]] = {"smax": EnvConfig, "smac": EnvConfig,
                                           "mamujoco": MaMuJoCoConfig}

ALGO_SCHEMAS: dict[str, type[AlgoConfig]] = {
    "qmix": QMIXConfig, "vdn": VDNConfig, "wqmix": WQMIXConfig, "res": RESConfig,
    "comix": COMIXConfig, "facmac": FACMACConfig,
}


@dataclass
class MethodConfig:
    name: str = MISSING
    sparse: bool = True  # masks on every weight matrix
    topology: str = "static"  # static | set | rigl   (ignored when sparse is false)
    tiny: bool = False  # dense nets with widths shrunk to the sparse model's parameter count
    distribution: str = "uniform"  # uniform | erk
    exempt: list[str] = field(default_factory=list)  # fnmatch patterns of params kept dense
    update_interval_episodes: int = 200  # Δm, in episodes' updates (one update per episode)
    init_drop_fraction: float = 0.5  # ζ0
    end_fraction: float = 0.75  # stop topology updates at this fraction of t_max
    multistep: str = "none"  # none | td_lambda | nstep (used once t_env ≥ T0)
    nstep: int = 3
    t0_env_steps: int | None = None  # T0; None: 3/8 of t_max (≈ the paper's 0.75M of 2.05M)
    operator: str = "max"  # max | soft_mellowmax | mellowmax | softmax
    # Units a non-max operator's α/ω/β act in: "none" = the per-agent utilities (the paper's
    # MAST-QMIX); "mixer_slope" = utilities × ∂Q_tot/∂Q_i at the greedy (target actor's) action,
    # i.e. Q_tot units, whatever scale the mixer gives the utilities (qmix, vdn, facmac)
    operator_scale: str = "none"
    sm_alpha: float = 1.0
    sm_omega: float = 10.0
    softmax_beta: float = 5.0
    buffer: str = "single"  # single | dual | rlx2  (registry BUFFERS)
    online_capacity_episodes: int = 128
    batch_offline: int = 20
    batch_online: int = 12
    rlx2_distance_threshold: float = 0.5  # shrink when stale-action fraction of oldest exceeds this
    rlx2_min_capacity_episodes: int = 128
    rlx2_check_interval_episodes: int = 100
    # Tickets (Fig. 10): a finished run's folder, a mask .npz, or "random"; see mast.sparse.tickets
    mask_from: str | None = None
    # Manual per-unit-type agent densities (Fig. 12b), e.g. {stalker: 0.08, zealot: 0.12}; None:
    # MAST's adaptive allocation. Typed Any: Hydra cannot merge a dict override into a None or
    # typed-dict node in struct mode; mast.sparse.unit_density checks it is {type: float}.
    unit_density: Any = None


@dataclass
class AblationConfig:
    name: str = "none"


@dataclass
class AgentConfig:
    rnn_hidden_dim: int = 64
    share_params: bool = True  # one network for all agents (PyMARL); false: stacked per agent


@dataclass
class TrainConfig:
    lr: float = 5e-4
    optimizer: str = "rmsprop"  # rmsprop | adam
    rms_alpha: float = 0.99
    optim_eps: float = 1e-5
    gamma: float = 0.99
    grad_norm_clip: float = 10.0
    batch_size_episodes: int = 32
    buffer_capacity_episodes: int = 5000
    target_update_interval_episodes: int = 200
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    double_q: bool = True
    updates_per_episode: float = 1.0
    # Draw a batch's episodes with replacement: with `algo.seq_window_steps=1` on episodes of
    # equal length, FACMAC's uniform sampling of transitions, ready after the first episode
    # (without replacement, a batch of 100 one-step windows waits for 100 stored episodes)
    sample_with_replacement: bool = False


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline | online | disabled
    project: str = "mast"
    entity: str | None = None
    group: str | None = None  # defaults to the sweep name (or the run id)


@dataclass
class Config:
    algo: AlgoConfig = MISSING
    env: EnvConfig = MISSING
    method: MethodConfig = MISSING
    ablation: AblationConfig = MISSING
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    sparsity: float = 0.9
    seed: int = 0
    t_max: int = 2_050_000  # environment steps
    test_interval: int = 10_000  # env steps between evaluations
    test_nepisode: int = 32
    test_n_envs: int = 32  # environments per evaluation call
    checkpoint_interval: int = 200_000  # env steps
    save_buffer: bool = False  # include the replay buffer in checkpoints
    final_window: int = 20  # evaluations averaged into final_win_rate
    results_dir: str = "results"
    lock_stale_s: float = 600.0  # a run lock whose heartbeat is older is taken over
    device: str = "auto"  # auto | cpu | cuda
    # replay each learner update from a CUDA graph (mast.learners.graphs): on a GPU only, for
    # the discrete Q-learners; same maths, so not part of the run id
    cuda_graphs: bool = False
    fail_at_t_env: int | None = None  # test hook: raise inside training at this step
    progress: str = "auto"  # auto | bar | log | none


def register_configs() -> None:
    """`base_config` plus one schema per algorithm option: `conf/algo/<name>.yaml` starts with
    `defaults: [<name>_schema, _self_]`, so the option's keys are exactly its dataclass's."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for name, schema in ALGO_SCHEMAS.items():
        cs.store(group="algo", name=f"{name}_schema", node=schema(name=name))
    for name, schema in ENV_SCHEMAS.items():
        cs.store(group="env", name=f"{name}_schema", node=schema(name=name))


register_configs()

# --- validation -------------------------------------------------------------------------------

CHOICES: dict[str, tuple[str, ...]] = {
    "algo.learner": ("q", "wqmix", "res", "comix", "facmac"),
    "algo.mixer": ("qmix", "vdn"),
    "algo.weighting": ("ow", "cw"),
    "algo.target_update": ("soft", "hard"),
    "algo.bootstrap_actions": ("target", "online"),
    "method.topology": ("static", "set", "rigl"),
    "method.distribution": ("uniform", "erk"),
    "method.multistep": ("none", "td_lambda", "nstep"),
    "method.operator_scale": ("none", "mixer_slope"),
    "method.operator": ("max", "soft_mellowmax", "mellowmax", "softmax"),
    "method.buffer": ("single", "dual", "rlx2"),
    "train.optimizer": ("rmsprop", "adam"),
    "wandb.mode": ("offline", "online", "disabled"),
    "device": ("auto", "cpu", "cuda"),
    "progress": ("auto", "bar", "log", "none"),
}
POSITIVE_INT = ("t_max", "test_interval", "test_nepisode", "test_n_envs", "checkpoint_interval",
                "final_window", "env.n_envs", "agent.rnn_hidden_dim", "algo.mixing_embed_dim",
                "algo.hypernet_hidden_dim", "algo.central_hidden_dim", "train.batch_size_episodes",
                "train.buffer_capacity_episodes", "train.target_update_interval_episodes",
                "method.update_interval_episodes", "method.online_capacity_episodes",
                "method.nstep", "algo.epsilon_anneal_env_steps", "algo.hidden_dim",
                "algo.cem_samples", "algo.cem_elites", "algo.cem_iterations",
                "algo.policy_distance_max_rows")
UNIT_INTERVAL = ("algo.td_lambda", "train.gamma", "method.init_drop_fraction",
                 "method.end_fraction", "train.epsilon_start", "train.epsilon_finish",
                 "algo.wqmix_alpha", "algo.target_tau")
_ABSENT = object()


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key)


def _present(cfg: DictConfig, keys) -> list[str]:
    """The keys this config has: algorithm-specific keys exist only in their algorithm's schema."""
    return [k for k in keys if OmegaConf.select(cfg, k, default=_ABSENT) is not _ABSENT]


SCALED_OPERATOR_LEARNERS = ("q", "facmac", "comix")  # learners that implement method.operator_scale


def validate(cfg: DictConfig) -> None:
    """Cross-field checks; raise ConfigError naming the key and the allowed values."""
    for key in _present(cfg, CHOICES):
        allowed = CHOICES[key]
        if _get(cfg, key) not in allowed:
            raise ConfigError(f"{key}={_get(cfg, key)!r} is not allowed; allowed values: "
                              f"{', '.join(allowed)}")
    s = cfg.sparsity
    if not 0.0 <= s < 1.0:
        raise ConfigError(f"sparsity={s} is out of range; allowed: 0 <= sparsity < 1")
    if s == 0.0 and (cfg.method.sparse or cfg.method.tiny):
        raise ConfigError(f"sparsity=0 with method={cfg.method.name} is a dense network; use "
                          f"method=dense, or allowed for method={cfg.method.name}: 0 < sparsity < 1")
    for key in _present(cfg, POSITIVE_INT):
        if _get(cfg, key) <= 0:
            raise ConfigError(f"{key}={_get(cfg, key)} must be a positive integer")
    for key in _present(cfg, UNIT_INTERVAL):
        if not 0.0 <= _get(cfg, key) <= 1.0:
            raise ConfigError(f"{key}={_get(cfg, key)} is out of range; allowed: 0 <= {key} <= 1")
    if cfg.train.lr <= 0:
        raise ConfigError(f"train.lr={cfg.train.lr} must be > 0")
    if cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} must be >= 0")
    stale_s = cfg.get("lock_stale_s", Config.lock_stale_s)  # absent from configs stored before it
    if stale_s <= 0:
        raise ConfigError(f"lock_stale_s={stale_s} must be > 0 (seconds)")
    _validate_cuda_graphs(cfg)
    m = cfg.method
    if m.buffer == "dual" and (m.batch_offline < 0 or m.batch_online < 0
                               or m.batch_offline + m.batch_online <= 0):
        raise ConfigError("method.batch_offline + method.batch_online must be > 0 "
                          f"(got {m.batch_offline} + {m.batch_online})")
    if m.t0_env_steps is not None and m.t0_env_steps < 0:
        raise ConfigError(f"method.t0_env_steps={m.t0_env_steps} must be >= 0 or null")
    if m.sm_omega <= 0:
        raise ConfigError(f"method.sm_omega={m.sm_omega} must be > 0")
    scale = operator_scale(m)
    if scale != "none" and cfg.algo.learner not in SCALED_OPERATOR_LEARNERS:
        raise ConfigError(f"method.operator_scale={scale} is not implemented for "
                          f"algo={cfg.algo.name}; allowed with it: algo=qmix, vdn, facmac, comix "
                          "(or method.operator_scale=none)")
    if cfg.algo.learner == "wqmix" and cfg.algo.mixer != "qmix":
        raise ConfigError(f"algo.mixer={cfg.algo.mixer!r} with algo.learner=wqmix; allowed: qmix")
    _validate_comix(cfg)
    _validate_facmac(cfg)
    _validate_env(cfg)


GRAPHED_LEARNERS = ("q", "wqmix", "res")  # learners whose update `mast.learners.graphs` captures


def _validate_cuda_graphs(cfg: DictConfig) -> None:
    if not cfg.get("cuda_graphs", False):  # absent from configs stored before it
        return
    if cfg.device == "cpu":
        raise ConfigError("cuda_graphs=true needs a GPU; allowed with device=cpu: false "
                          "(device=auto uses graphs only when CUDA is there)")
    if cfg.algo.learner not in GRAPHED_LEARNERS:
        raise ConfigError(f"cuda_graphs=true is not implemented for algo={cfg.algo.name}; "
                          "allowed with it: algo=qmix, vdn, wqmix, res (or cuda_graphs=false)")


def _validate_comix(cfg: DictConfig) -> None:
    a = cfg.algo
    if "cem_elites" in a and not 2 <= a.cem_elites <= a.cem_samples:
        raise ConfigError(f"algo.cem_elites={a.cem_elites} is out of range; allowed: "
                          f"2 <= algo.cem_elites <= algo.cem_samples ({a.cem_samples})")
    for key in ("act_noise", "policy_distance_tol", "start_steps", "target_noise"):
        if key in a and a[key] < 0:
            raise ConfigError(f"algo.{key}={a[key]} must be >= 0")
    for key in ("lr", "target_noise_clip"):
        if key in a and a[key] <= 0:
            raise ConfigError(f"algo.{key}={a[key]} must be > 0")
    if a.get("seq_window_steps") is not None and a.seq_window_steps <= 0:
        raise ConfigError(f"algo.seq_window_steps={a.seq_window_steps} must be > 0 or null")
    _validate_sparse_analyses(cfg)


def _validate_facmac(cfg: DictConfig) -> None:
    a = cfg.algo
    for key in ("actor_lr", "critic_lr", "gumbel_temperature", "operator_samples"):
        if key in a and a[key] <= 0:
            raise ConfigError(f"algo.{key}={a[key]} must be > 0")
    for key in ("actor_reg", "operator_noise", "epsilon_start", "epsilon_finish"):
        if key in a and a[key] < 0:
            raise ConfigError(f"algo.{key}={a[key]} must be >= 0")
    if cfg.algo.name != "facmac":
        return
    from mast.envs.env_maps import action_kind

    if a.get("start_steps", 0) > 0 and action_kind(cfg.env.name) == "discrete":
        raise ConfigError(f"algo.start_steps={a.start_steps} with algo=facmac on env={cfg.env.name}:"
                          " the uniform warm-up is for continuous actions (discrete FACMAC "
                          "explores by algo.epsilon_start); allowed: 0")
    # the RNN actor needs whole histories
    if a.get("seq_window_steps") is not None and action_kind(cfg.env.name) == "discrete":
        raise ConfigError(f"algo.seq_window_steps={a.seq_window_steps} with algo=facmac on "
                          f"env={cfg.env.name}: windows would restart the recurrent actor "
                          "mid-episode; allowed: null (whole episodes)")


def _validate_env(cfg: DictConfig) -> None:
    from mast.envs import env_maps

    names = env_maps.backends()
    if cfg.env.name not in names:
        raise ConfigError(f"env.name={cfg.env.name!r} is unknown; allowed values: {', '.join(names)}")
    problem = env_maps.check(cfg.env)
    if problem:
        raise ConfigError(problem)
    kind = env_maps.action_kind(cfg.env.name)
    algo_kinds = ALGO_SCHEMAS.get(cfg.algo.name, AlgoConfig).action_kinds
    if kind not in algo_kinds:
        fits = ", ".join(n for n, sc in ALGO_SCHEMAS.items() if kind in sc.action_kinds)
        raise ConfigError(f"algo={cfg.algo.name} acts in {'/'.join(algo_kinds)} action spaces but "
                          f"env={cfg.env.name} has {kind} actions; allowed algo values: {fits}")


def _validate_sparse_analyses(cfg: DictConfig) -> None:
    """Tickets (`method.mask_from`) and manual per-unit-type densities (`method.unit_density`)."""
    from mast.sparse import tickets, unit_density

    try:
        tickets.check_config(cfg)
        unit_density.check_config(cfg)
    except (tickets.TicketError, unit_density.UnitDensityError) as e:
        raise ConfigError(str(e)) from None


# --- derived values ---------------------------------------------------------------------------

# Keys that do not change what is learned: excluded from the run id.
NON_SEMANTIC = ("results_dir", "wandb", "device", "checkpoint_interval", "save_buffer",
                "progress", "test_n_envs", "fail_at_t_env", "lock_stale_s", "cuda_graphs")
# Keys added after runs were stored, with the value that reproduces the earlier behaviour: left
# out of the run id at that value, so a new knob does not orphan a store of finished runs.
LATER_KEYS = {("method", "operator_scale"): "none", ("algo", "start_steps"): 0,
              ("algo", "bootstrap_actions"): "target", ("train", "sample_with_replacement"): False,
              ("algo", "twin_critics"): False, ("algo", "target_noise"): 0.0,
              ("algo", "target_noise_clip"): 0.5}


def later_key(group_cfg, group: str, key: str) -> Any:
    """`<group>.<key>`, or its LATER_KEYS default for a config stored before the key."""
    return group_cfg.get(key, LATER_KEYS[(group, key)])


def moot_method_keys(method) -> tuple[str, ...]:
    """Method keys that choose nothing in this method config: the max operator has no units
    (`operator_scale`). Left out of run ids, and never split an analysis cell."""
    return ("operator_scale",) if method.get("operator") == "max" else ()


def operator_scale(method) -> str:
    """`method.operator_scale`, or its LATER_KEYS default for configs stored before the key."""
    return later_key(method, "method", "operator_scale")


def slope_scaled(method) -> bool:
    """Whether the bootstrap takes a soft operator in Q_tot units (`operator_scale=mixer_slope`;
    the max operator has no units to choose)."""
    return method.operator != "max" and operator_scale(method) == "mixer_slope"


def effective_sparsity(cfg: DictConfig) -> float:
    """Dense runs have no sparsity whatever the top-level value is (so sweeps dedupe them)."""
    return float(cfg.sparsity) if (cfg.method.sparse or cfg.method.tiny) else 0.0


def semantic_dict(cfg: DictConfig) -> dict[str, Any]:
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    for k in NON_SEMANTIC:
        d.pop(k, None)
    for (group, key), default in LATER_KEYS.items():
        if isinstance(d.get(group), dict) and d[group].get(key, default) == default:
            d[group].pop(key, None)
    method = d.get("method")
    if isinstance(method, dict):
        for key in moot_method_keys(method):
            method.pop(key, None)
    d["sparsity"] = effective_sparsity(cfg)
    return d


def run_id(cfg: DictConfig) -> str:
    """Readable and deterministic: the same semantic config always maps to the same folder."""
    d = semantic_dict(cfg)
    if isinstance(d.get("method"), dict) and d["method"].get("mask_from") is not None:
        from mast.sparse.tickets import identity  # lazy: mast.sparse imports this module

        d["method"]["mask_from"] = identity(d["method"]["mask_from"])  # the mask, not its path
    blob = json.dumps(d, sort_keys=True, default=str)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:8]
    sp = f"{effective_sparsity(cfg):.3f}".rstrip("0").rstrip(".")
    return (f"{cfg.algo.name}_{cfg.env.name}-{cfg.env.map}_{cfg.method.name}_sp{sp}_"
            f"{cfg.ablation.name}_seed{cfg.seed}_{digest}")


def t0_env_steps(cfg: DictConfig) -> int:
    t0 = cfg.method.t0_env_steps
    return int(t0) if t0 is not None else int(0.375 * cfg.t_max)
