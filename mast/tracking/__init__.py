"""Where results go: the local results store first (analysis reads only it), W&B second, and a
console progress view."""
