"""Seeded index selection: the stratified validation hold-out and the ``limit`` subsets."""

from __future__ import annotations

import numpy as np


def stratified_holdout(labels: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the indices 0..N-1 into sorted ``(kept, held_out)``; held_out keeps class shares.

    The hold-out has n_held = round(fraction * N) samples. Class c with n_c samples
    gives floor(fraction * n_c) of them, and the n_held - sum_c floor(fraction * n_c)
    places left go one each to the classes with the largest remainders
    fraction * n_c - floor(fraction * n_c) (ties: smaller label first). Which samples
    of a class are held out is a permutation drawn from ``numpy.random.default_rng(seed)``,
    so the same labels, fraction and seed give the same split.
    """
    labels = np.asarray(labels)
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = fraction * counts
    take = np.floor(quotas).astype(np.int64)
    leftover = int(round(fraction * n)) - int(take.sum())
    if leftover > 0:
        by_remainder = np.argsort(-(quotas - take), kind="stable")
        take[by_remainder[:leftover]] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:k]
            for c, k in zip(classes, take, strict=True)]
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(n), held_out, assume_unique=True)
    return kept, held_out


def random_subset(indices: np.ndarray, limit: int | None, seed: tuple[int, ...]) -> np.ndarray:
    """At most ``limit`` of ``indices``, a seeded random choice kept in their original order.

    Random rather than the first ``limit``: some files are sorted by class.
    """
    if limit is None or len(indices) <= limit:
        return indices
    chosen = np.random.default_rng(seed).choice(len(indices), size=limit, replace=False)
    return indices[np.sort(chosen)]
