"""neuroprop: BrainProp (Q-AGREL) from PyTorch to Lava's Loihi simulator."""

__version__ = "0.1.0"
