"""Datasets as raw 8-bit splits: digits, MNIST, Fashion-MNIST, CIFAR-10/100, Tiny ImageNet.

See docs/datasets.md for folder layouts, downloads and the validation-split policy.
"""

from neuroprop.data.dataset import Dataset, Split
from neuroprop.data.registry import DATASETS, dataset_shape, load_dataset, resolve_data_dir

__all__ = ["DATASETS", "Dataset", "Split", "dataset_shape", "load_dataset", "resolve_data_dir"]
