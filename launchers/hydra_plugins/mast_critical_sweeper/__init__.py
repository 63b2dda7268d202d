"""``hydra/sweeper=critical``: automatic critical-sparsity search (see ``critical_sweeper``)."""
