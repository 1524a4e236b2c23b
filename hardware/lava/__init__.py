"""The Lava backend: runs exports on lava-nc 0.10's Loihi 2 simulator (``.venv-lava`` only).

``run_on_lava`` streams a data split through one compiled process graph;
``run_on_lava_per_sample`` is the slow per-sample reference. Custom Lava Processes
live in ``hardware.lava.processes`` (a folder that holds nothing else).
"""

from hardware.lava.backend import LavaResult, run_on_lava, run_on_lava_per_sample
from hardware.layers.maxpool2d import MAXPOOL_REFUSAL

__all__ = ["MAXPOOL_REFUSAL", "LavaResult", "run_on_lava", "run_on_lava_per_sample"]
