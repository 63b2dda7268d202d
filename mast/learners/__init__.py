"""Learners: one Q-learning base (QMIX/VDN) with small WQMIX and RES variants (registry LEARNERS)."""

from mast.learners import comix, facmac, res, wqmix  # noqa: F401  (register variants)
from mast.learners.base import QLearner, build_learner

__all__ = ["QLearner", "build_learner"]
