"""The hardware layer of neuroprop: torch-free (numpy; lava-nc only in its Lava backend).

It reads and writes the export format, quantises float networks to Loihi fixed
point, emulates Loihi's integer arithmetic in numpy, reports resources, and runs
exports on Lava's Loihi simulator: rate nets (graded neurons) and spiking nets (LIF
neurons, T steps per sample; ``hardware.spiking``, ``hardware.quantize_spiking``). It
runs in both environments: the main one (numpy parts only) and ``.venv-lava`` (Python
3.10, lava-nc 0.10.0).

Each layer type is one entry of ``hardware.layers.LAYER_KINDS`` and each neuron kind
one entry of ``hardware.neurons.NEURON_KINDS``; ``hardware.loihi`` states Lava's
fixed-point arithmetic (LIF included).
"""

__version__ = "0.1.0"
