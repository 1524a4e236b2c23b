"""The 8x8 handwritten digits that ship inside scikit-learn (1797 samples, 10 classes).

Pixel values are integers 0..16 (so scale = 1/16). The set has no official test
split; a fixed stratified 20 % (seed 0, whatever the run's seed) serves as one, so
every run is tested on the same samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprop.data.dataset import RawArrays
from neuroprop.data.holdout import stratified_holdout

TEST_FRACTION = 0.2
TEST_SEED = 0


def load_digits(folder: Path | None = None, download: bool = True) -> RawArrays:
    """The digits as uint8 (N, 1, 8, 8) arrays; ``folder``/``download`` are unused (embedded)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = stratified_holdout(labels, TEST_FRACTION, TEST_SEED)
    return RawArrays(images[train], labels[train], images[test], labels[test])
