"""Deployment: from a trained run to the hardware layer (``hardware/``) and back."""
