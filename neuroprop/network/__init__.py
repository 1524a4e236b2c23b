"""The network description (spec), its torch layers with local learning, and the network."""

from neuroprop.network.network import Network
from neuroprop.network.spec import FeedbackOptions, NetworkSpec, parse_network

__all__ = ["FeedbackOptions", "Network", "NetworkSpec", "parse_network"]
