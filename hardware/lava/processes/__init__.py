"""Custom Lava Processes and ProcessModels of the backend.

Lava's compiler executes every ``.py`` file in this folder to find ProcessModels, so it
holds only Processes and their models: no scripts, no imports of torch or neuroprop.
"""
