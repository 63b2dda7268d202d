"""What ManySegmentSwimmer 10x2's reward allows without learning: open-loop travelling waves.

    python scripts/swimmer_wave.py            # return of each (frequency, phase lag) over 1000 steps

Joint k = 0…19 (agent k // 2, its dim k % 2) gets torque sin(2π f t − φ k); one episode per
setting from the same initial state. Checks the sign of "forward" and how far above the
issue-14 bar (+4.5) a coordinated gait gets at this physics (README, COMIX on a CPU budget).
"""

from __future__ import annotations

import argparse

import numpy as np

from mast.envs.mamujoco import MaMuJoCoVecEnv

DT = 0.04  # Swimmer's control step (s)


def wave_return(f: float, phi: float, seed: int) -> float:
    env = MaMuJoCoVecEnv("ManySegmentSwimmer", "10x2", n_envs=1, seed=seed)
    env.reset()
    k, total = np.arange(20), 0.0
    for t in range(env.spec.episode_limit):
        u = np.sin(2 * np.pi * f * t * DT - phi * k).astype(np.float32)
        out = env.step(u.reshape(1, 10, 2))
        total += float(out.reward[0])
        if env.done.all():
            break
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--freqs", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--phases", type=float, nargs="+", default=[-1.2, -0.8, -0.4, 0.4, 0.8, 1.2])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for f in args.freqs:
        for phi in args.phases:
            print(f"f={f} Hz, phase lag {phi} rad/joint: return {wave_return(f, phi, args.seed):.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
