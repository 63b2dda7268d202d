"""FACMAC's model size and FLOPs (DESIGN §5 conventions), registered into `mast.accounting`.

Networks (FACMAC defaults; a run's own widths come from `accounting.config_sizes`: the actor's
`agent.rnn_hidden_dim` (discrete) or `algo.hidden_dim` (continuous), the critic's `algo.hidden_dim`,
the mixer's `algo.mixing_embed_dim`):
- discrete actions (SMAC): actor = PyMARL RNN agent (input obs ⊕ last action ⊕ id → 64, GRU 64,
  → U logits); critic Q_i(o_i, a_i) = [obs ⊕ id ⊕ one-hot action] → 64 → 64 → 1; QMIX mixer,
  embed 32, hypernetworks 64;
- continuous actions (MA-MuJoCo): actor μ_i = [obs ⊕ id] → 400 → 400 → U; critic as above with
  400; QMIX mixer, embed 64, hypernetworks 64.
Actor and critic are shared by all agents: size counted once, FLOPs for every agent.

Model size: 2(M_Actor + M_Critic + M_Mix) (online and target copies of each).

Training FLOPs per update of B samples (backward = 2 × forward, as eqs. (16)–(24)):
- critic update: online critic and mixer forward + backward on the taken actions (3F_C + 3F_M),
  target actor forward to pick the bootstrap actions (F_A), target critic and target mixer
  forward at those actions (F_C + F_M);
- actor update: actor forward + backward (3F_A); critic and mixer forward and backward to their
  inputs only — no weight gradients, so one backward pass each (2F_C + 2F_M).
Total B(4F_A + 6F_C + 6F_M). That is FACMAC's own target (operator max). MAST's Soft Mellowmax
scores a candidate set at o' with the target critic (`mast.learners.facmac`): U actions
(discrete) or K samples (continuous) instead of one, i.e. (support − 1)·B·F_C more per update;
`facmac_train_flops(..., operator_support=...)` gives that figure, the registered formula (one
per algorithm, the same for every method row) keeps FACMAC's one pass.
Test FLOPs = F_Actor (one greedy step of every agent).

`mast.accounting` registers `ALGOS["facmac"] = facmac_accounting()` at import; this module imports
`mast.accounting` lazily so `python -m mast.accounting` (which runs that file as `__main__`)
works. Layer names: `actor.fc1`, `actor.rnn`, `critic.fc2`, `mixer.hyper_w1.0`, ….
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mast.accounting import AlgoAccounting, Network, NetworkSizes
    from mast.envs.base import EnvSpec


def facmac_default_sizes(spec: EnvSpec) -> NetworkSizes:
    """FACMAC's widths per action kind (`FACMACConfig` on SMAC, `+experiment=facmac_mamujoco`
    on MA-MuJoCo): discrete, critic 64 and the PyMARL agent and mixer; continuous, actor and
    critic 400 and a mixer embedding of 64."""
    from mast.accounting import NetworkSizes

    if spec.continuous is None:
        return NetworkSizes(mlp_hidden=64)
    return NetworkSizes(mlp_hidden=400, mixing_embed=64)


def facmac_actor(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """RNN agent (discrete) or [obs ⊕ id] → h → h → U MLP (continuous), named `actor`."""
    from mast.accounting import Linear, Network, agent_network

    if spec.continuous is None:
        return agent_network(spec, sizes, name="actor")
    h = sizes.mlp_hidden
    layers = (Linear("fc1", spec.obs_dim + spec.n_agents, h), Linear("fc2", h, h),
              Linear("fc3", h, spec.n_actions))
    return Network("actor", layers, forwards=spec.n_agents)


def facmac_critic(spec: EnvSpec, sizes: NetworkSizes) -> Network:
    """Q_i(o_i, a_i): [obs ⊕ id ⊕ action] → h → h → 1, shared by all agents."""
    from mast.accounting import Linear, Network

    h = sizes.mlp_hidden
    layers = (Linear("fc1", spec.obs_dim + spec.n_agents + spec.n_actions, h),
              Linear("fc2", h, h), Linear("fc3", h, 1))
    return Network("critic", layers, forwards=spec.n_agents)


def facmac_model_size(m: Mapping[str, float]) -> float:
    """2(M_Actor + M_Critic + M_Mix): online and target copies."""
    return 2 * (m["actor"] + m["critic"] + m["mixer"])


def facmac_train_flops(f: Mapping[str, float], spec: EnvSpec, batch_size: int,
                       sizes: NetworkSizes | None = None, operator_support: int = 1) -> float:
    """B(4F_A + (5 + support)F_C + 6F_M); support = target-critic passes per sample (1: FACMAC's
    target at the target actor's action)."""
    return batch_size * (4 * f["actor"] + (5 + operator_support) * f["critic"] + 6 * f["mixer"])


def facmac_test_flops(f: Mapping[str, float], sizes: NetworkSizes) -> float:
    """F_Actor: one greedy step of every agent."""
    return f["actor"]


def facmac_accounting() -> AlgoAccounting:
    from mast.accounting import AlgoAccounting, qmix_mixer

    return AlgoAccounting((facmac_actor, facmac_critic, qmix_mixer), facmac_model_size,
                          facmac_train_flops, facmac_test_flops, facmac_default_sizes)
