"""Run an exported sparse policy (`python -m mast.export`) with NumPy only.

This file imports nothing but NumPy and the standard library: copy it next to `model.npz` and

    from sparse_policy import SparsePolicy
    policy = SparsePolicy.load("model.npz")
    h = policy.initial_hidden(n_envs)
    actions, h = policy.act(obs, last_actions, avail, h)   # obs [N, n_agents, obs_dim] ...

File format (`mast-sparse-v1`, one `np.savez_compressed` archive):
- `__meta__`: JSON with the run's config, the env spec and, per layer, its shape and storage;
- a masked weight `W` is stored as `W.bits` (np.packbits of the C-order mask) and `W.values`
  (float32 active weights in C order): 1 bit per position + 4 bytes per connection;
- biases and unmasked weights are stored dense under their own name.
The agent is PyMARL's RNN agent (fc1 → ReLU → GRU → fc2), weights `[out, in]` shared by all
agents or stacked `[n_agents, out, in]`: Q-values for the value-based algorithms, the actor's
logits for FACMAC (greedy = argmax over available actions either way). The mixer, when exported
(`meta["mixer"]` not null), is QMIX's (hypernetworks) or VDN's sum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "mast-sparse-v1"


def _dense(z, name: str, info: dict) -> np.ndarray:
    shape = tuple(info["shape"])
    if info["storage"] == "dense":
        return np.asarray(z[name], dtype=np.float32).reshape(shape)
    numel = int(np.prod(shape))
    mask = np.unpackbits(z[name + ".bits"], count=numel).astype(bool)
    w = np.zeros(numel, dtype=np.float32)
    w[mask] = z[name + ".values"]
    return w.reshape(shape)


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x [..., G, in] with w [out, in] (shared) or [G, out, in] (per agent) → [..., G, out]."""
    if w.ndim == 2:
        return x @ w.T + b
    return np.einsum("...gi,goi->...go", x, w) + b


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SparsePolicy:
    """Greedy decentralised agents (and the mixer) of an exported run."""

    def __init__(self, meta: dict, params: dict[str, np.ndarray]):
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format={meta.get('format')!r})")
        self.meta, self.p = meta, params
        spec = meta["spec"]
        self.n_agents, self.n_actions = spec["n_agents"], spec["n_actions"]
        self.hidden = int(params["agent.rnn.weight_hh"].shape[-1])

    @classmethod
    def load(cls, path: str | Path) -> SparsePolicy:
        with np.load(path) as z:
            meta = json.loads(str(z["__meta__"]))
            params = {name: _dense(z, name, info) for name, info in meta["layers"].items()}
        return cls(meta, params)

    def initial_hidden(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.n_agents, self.hidden), dtype=np.float32)

    def agent_inputs(self, obs: np.ndarray, last_actions: np.ndarray) -> np.ndarray:
        """obs [B, n, obs], last_actions [B, n] int (−1 = none) → [B, n, obs + U + n]."""
        b = obs.shape[0]
        last = np.zeros((b, self.n_agents, self.n_actions), dtype=np.float32)
        idx = np.nonzero(last_actions >= 0)
        last[idx[0], idx[1], last_actions[idx]] = 1.0
        ids = np.broadcast_to(np.eye(self.n_agents, dtype=np.float32), (b, self.n_agents,
                                                                         self.n_agents))
        return np.concatenate([obs.astype(np.float32), last, ids], axis=-1)

    def forward(self, inputs: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Agent inputs [B, n, in], h [B, n, hidden] → (Q [B, n, U], h')."""
        p = self.p
        x = np.maximum(_linear(inputs, p["agent.fc1.weight"], p["agent.fc1.bias"]), 0.0)
        gi = _linear(x, p["agent.rnn.weight_ih"], p["agent.rnn.bias_ih"])
        gh = _linear(h, p["agent.rnn.weight_hh"], p["agent.rnn.bias_hh"])
        i_r, i_z, i_n = np.split(gi, 3, axis=-1)
        h_r, h_z, h_n = np.split(gh, 3, axis=-1)
        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        h = n + z * (h - n)
        return _linear(h, p["agent.fc2.weight"], p["agent.fc2.bias"]), h

    def act(self, obs: np.ndarray, last_actions: np.ndarray, avail: np.ndarray,
            h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy actions over available ones: obs [B, n, obs], last_actions [B, n],
        avail [B, n, U] bool → (actions [B, n], h')."""
        q, h = self.forward(self.agent_inputs(obs, last_actions), h)
        return np.where(avail, q, -np.inf).argmax(-1), h

    def q_tot(self, qs: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Mixer: agent Qs [B, n], state [B, state_dim] → Q_tot [B] (QMIX or VDN)."""
        if self.meta["mixer"] is None:
            raise ValueError(f"{self.meta['run_id']} was exported without a mixer (FACMAC's mixes "
                             "critic values, not the actor's outputs)")
        if self.meta["mixer"] == "vdn":
            return qs.sum(-1)
        p = self.p

        def lin(x, name):
            return x @ p[f"mixer.{name}.weight"].T + p[f"mixer.{name}.bias"]

        def mlp(x, name):
            return lin(np.maximum(lin(x, f"{name}.0"), 0.0), f"{name}.2")

        b, n = qs.shape
        w1 = np.abs(mlp(state, "hyper_w1")).reshape(b, n, -1)
        b1 = lin(state, "hyper_b1")[:, None, :]
        hid = qs[:, None, :] @ w1 + b1
        hid = np.where(hid > 0, hid, np.expm1(np.minimum(hid, 0.0)))  # ELU
        w_final = np.abs(mlp(state, "hyper_w_final"))[:, :, None]
        return (hid @ w_final)[:, 0, 0] + mlp(state, "V")[:, 0]
