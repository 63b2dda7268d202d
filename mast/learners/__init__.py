"""Learners: one Q-learning base (QMIX/VDN) with small WQMIX and RES variants (registry LEARNERS)."""

from mast.learners.base import QLearner, build_learner
from mast.learners import res, wqmix  # noqa: F401  (register variants)

__all__ = ["QLearner", "build_learner"]
