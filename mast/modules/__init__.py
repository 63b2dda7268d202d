"""Networks: recurrent agents and mixers. Every weight matrix is a plain parameter with dim ≥ 2,
so the sparse engine can mask it by name."""
