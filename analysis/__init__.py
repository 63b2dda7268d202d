"""Analysis of MAST results: tables, figures and W&B export.

Reads the results store described in ``docs/contracts.md`` (or W&B runs with the same keys)
and never imports the training code, torch, jax or ray.  Entry point: ``python -m analysis``.
"""
