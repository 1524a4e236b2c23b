"""Training: the epoch loop, checkpoints, metrics logs and learning-curve plots."""
