"""``neuroprop train --init-from SOURCE``: start a run from the weights of another net.

SOURCE is a run directory or an import folder (``neuroprop import``), whose ``best.pt``
is read (the trainer resolves it), or a checkpoint file. Every forward parameter and
buffer of the new network (weights, batch-norm gains and statistics) is copied from the
source's entry of the same name and shape. Feedback weights follow the config's
``rule.feedback``: tied ones are copied from the loaded forward weights, random ones
keep their fresh draw. A missing entry, another shape, or a source entry the new net
does not have is refused with one line naming it. Neuron parameters, T and the
training settings come from the config: only weights are loaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from neuroprop.errors import NeuropropError
from neuroprop.network import Network
from neuroprop.training.checkpoint import load_checkpoint

FEEDBACK = "feedback_weight"


def init_from(network: Network, path: Path) -> None:
    """Load the forward weights of checkpoint ``path`` into ``network`` (see the module
    docstring)."""
    stored = {name: value for name, value in load_checkpoint(path)["model"].items()
              if not name.endswith(FEEDBACK)}
    target = {name: value for name, value in network.state_dict().items()
              if not name.endswith(FEEDBACK)}
    for name, value in target.items():
        if name not in stored:
            raise NeuropropError(f"{path} has no {name} (another architecture); start from "
                                 "a net with the same layers as the config")
        if tuple(stored[name].shape) != tuple(value.shape):
            raise NeuropropError(f"{path}: {name} has shape {list(stored[name].shape)}, the "
                                 f"config's network needs {list(value.shape)}")
    extra = sorted(set(stored) - set(target))
    if extra:
        raise NeuropropError(f"{path} holds {extra[0]}, which the config's network lacks "
                             "(another architecture)")
    with torch.no_grad():
        for name, value in target.items():
            value.copy_(stored[name])
        options = network.feedback_options
        if options is not None and options.init == "tied":
            for layer in network.layers:
                if getattr(layer, FEEDBACK, None) is not None:
                    layer.feedback_weight.copy_(layer.weight)
