"""Sparse export: `python -m mast.export results/<run_id> --out model.npz [--verify-episodes N]`.

Writes the greedy agent and the mixer of a run's last checkpoint in the compressed sparse format
of `mast.sparse_policy` (bitmask + active values per masked weight, dense biases, the run's config
and env spec as JSON), which `mast.sparse_policy.SparsePolicy` runs with NumPy only. Prints one
JSON object: sizes in bytes (the export; the same agent + mixer as dense float32 arrays, i.e.
what the dense model's weights take; that dense copy compressed, where the pruned zeros compress
well; the training checkpoint with targets and optimiser state) and,
with `--verify-episodes`, the win rates of the exported policy and of the checkpoint's torch agent
on the same evaluation environments (same seeds), which must be equal.

What is exported: for the value-based algorithms (QMIX, VDN, WQMIX, RES) the agent, whose argmax
is the greedy policy, and the mixer; for discrete FACMAC the actor, whose argmax over available
actions is its greedy policy and which has the same RNN structure, stored as `agent` — without a
mixer, since FACMAC's mixes critic values, not the actor's logits. Continuous-action policies
(COMIX's CEM over Q, FACMAC's MLP actor on MA-MuJoCo) are refused: the NumPy loader runs the
recurrent discrete agent only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from mast import checkpoint  # noqa: E402
from mast.sparse_policy import FORMAT, SparsePolicy  # noqa: E402


class ExportError(ValueError):
    """The run cannot be exported (one line: what and what is supported)."""


def exported_nets(cfg) -> dict[str, str]:
    """Checkpoint network → its name in the archive: what the greedy policy (and Q_tot) needs."""
    from mast.envs.env_maps import action_kind

    algo = cfg.algo.name
    if action_kind(cfg.env.name) != "discrete":
        raise ExportError(f"algo={algo} on env={cfg.env.name} acts in a continuous action space; "
                          "mast.export supports discrete-action runs: qmix, vdn, wqmix, res, "
                          "facmac (on smax/smac)")
    return {"actor": "agent"} if algo == "facmac" else {"agent": "agent", "mixer": "mixer"}


def _checkpoint_path(run_dir: Path) -> Path:
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt} not found (run not started or checkpoints removed)")
    return ckpt


def export_arrays(run_dir: Path, dense: bool = False) -> dict[str, np.ndarray]:
    """Arrays of the archive; `dense=True` stores every weight dense (for size comparison)."""
    ckpt = _checkpoint_path(run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    rename = exported_nets(cfg)
    state = checkpoint.load(ckpt)
    nets = state["learner"]["nets"]
    masks = state["learner"].get("sparse", {}).get("masks", {})
    arrays: dict[str, np.ndarray] = {}
    layers: dict[str, dict] = {}
    for source, t in nets.items():
        net, _, rest = source.partition(".")
        if net not in rename:
            continue
        name = f"{rename[net]}.{rest}"
        w = t.detach().cpu().float().numpy()
        m = masks.get(source)
        if m is None or dense:
            arrays[name] = w
            layers[name] = {"shape": list(w.shape), "storage": "dense"}
            continue
        m = m.cpu().numpy().astype(bool)
        arrays[name + ".bits"] = np.packbits(m.reshape(-1))
        arrays[name + ".values"] = w[m]
        layers[name] = {"shape": list(w.shape), "storage": "bitmask", "nnz": int(m.sum())}
    arrays["__meta__"] = np.array(json.dumps(_meta(run_dir, cfg, state, layers)))
    return arrays


def _meta(run_dir: Path, cfg, state: dict, layers: dict) -> dict:
    from mast.envs import make_env

    spec = make_env(cfg, 1, 0).spec
    return {"format": FORMAT, "run_id": run_dir.name, "t_env": int(state["counters"]["t_env"]),
            "mixer": cfg.algo.mixer if any(n.startswith("mixer.") for n in layers) else None,
            "share_params": bool(cfg.agent.share_params),
            "spec": {"n_agents": spec.n_agents, "obs_dim": spec.obs_dim,
                     "state_dim": spec.state_dim, "n_actions": spec.n_actions,
                     "episode_limit": spec.episode_limit},
            "layers": layers, "config": OmegaConf.to_container(cfg, resolve=True)}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


class ExportedPolicy:
    """The runner's `Policy` interface over a SparsePolicy (greedy only), so the exported policy
    is evaluated by exactly the code and env seeds that evaluate runs."""

    def __init__(self, policy: SparsePolicy):
        self.policy = policy

    def initial_policy_state(self, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
        return self.policy.initial_hidden(n_envs), np.full((n_envs, self.policy.n_agents), -1)

    def act(self, obs: torch.Tensor, avail: torch.Tensor, state, explore: float,
            gen: torch.Generator) -> tuple[torch.Tensor, tuple]:
        if explore:
            raise ValueError("an exported policy is greedy: explore must be 0")
        h, last = state
        a, h = self.policy.act(obs.numpy(), last, avail.numpy(), h)
        return torch.from_numpy(a), (h, a)


def verify(run_dir: Path, model: Path, episodes: int, n_envs: int = 32) -> dict:
    """Win rate of the exported policy vs the checkpoint's agent, same evaluation seeds."""
    from mast.envs import make_env
    from mast.evaluate import EVAL_SEED_OFFSET, evaluate
    from mast.runner import EpisodeRunner

    cfg = OmegaConf.load(run_dir / "config.yaml")
    run = evaluate(run_dir, episodes, n_envs)
    env = make_env(cfg, n_envs, cfg.seed + EVAL_SEED_OFFSET)
    runner = EpisodeRunner(env, ExportedPolicy(SparsePolicy.load(model)), env.spec,
                           torch.device("cpu"), cfg.seed)
    n = wins = 0.0
    while n < episodes:
        _, st = runner.run(0.0, cfg.train.gamma)
        n, wins = n + st.episodes, wins + st.win_rate * st.episodes
    return {"episodes": int(n), "win_rate_export": wins / n, "win_rate_run": run["win_rate"],
            "equal": abs(wins / n - run["win_rate"]) < 1e-12}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mast.export", description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="results/<run_id> folder")
    ap.add_argument("--out", type=Path, required=True, help="output .npz file")
    ap.add_argument("--verify-episodes", type=int, default=0,
                    help="evaluate export and checkpoint on the same N episodes (0: skip)")
    args = ap.parse_args(argv)
    if args.verify_episodes < 0:
        print(f"--verify-episodes={args.verify_episodes} must be >= 0", file=sys.stderr)
        return 2
    try:
        arrays = export_arrays(args.run)
    except (FileNotFoundError, ExportError) as e:
        print(f"mast.export: {e}", file=sys.stderr)
        return 1
    data = npz_bytes(arrays)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, args.out)
    dense = export_arrays(args.run, dense=True)
    out = {"run_id": args.run.name, "out": str(args.out), "bytes_export": len(data),
           "bytes_dense_float32": sum(a.nbytes for k, a in dense.items() if k != "__meta__"),
           "bytes_dense_export": len(npz_bytes(dense)),
           "bytes_checkpoint": (args.run / "checkpoints" / "last.pt").stat().st_size}
    if args.verify_episodes:
        out |= verify(args.run, args.out, args.verify_episodes)
    print(json.dumps(out))
    return 0 if out.get("equal", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
