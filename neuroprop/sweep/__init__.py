"""Sweeps: every combination of seeds and grid values as an ordinary run directory, on Ray.

``plan`` turns the command line into validated runs, ``task`` trains one of them (inside a
Ray worker), ``pool`` connects to Ray and dispatches the runs, ``report`` writes the
summary table, JSON and learning curves, and ``sweep.run_sweep`` ties them together.
Only ``pool`` imports Ray, and only when a sweep has runs to train.
"""
