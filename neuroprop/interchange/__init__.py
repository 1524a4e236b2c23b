"""Interchange with the SNN ecosystem through NIR (the Neuromorphic Intermediate Representation).

- ``neurons``: the parameter mapping between neuroprop's discrete-time LIF / LI and NIR's
  continuous-time CubaLIF, LIF, IF, LI and CubaLI nodes (both directions, one place);
- ``nir_file``: reading a ``.nir`` file safely (one-line errors naming the node) and
  writing one atomically;
- ``nir_export``: a trained network as a NIR graph (``neuroprop export --target nir``);
- ``nir_import``: a NIR graph as a neuroprop network description and weights
  (``neuroprop import``).

See docs/interchange.md.
"""
