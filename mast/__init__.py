"""MAST: sparse training for value-based multi-agent RL."""

from mast import _quiet

_quiet.install()
