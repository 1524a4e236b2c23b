"""Plain differentiable reference operations for the rule-versus-autograd tests."""

import torch
import torch.nn.functional as F


def synapse(x: torch.Tensor, layer: torch.nn.Module) -> torch.Tensor:
    """a = W * x of a dense, conv2d or loccon2d layer, written independently of the layer
    (loccon2d as an explicit loop over the output positions)."""
    spec = layer.spec
    if spec.type in ("dense", "output"):
        return x @ layer.weight.T
    if spec.type == "conv2d":
        return F.conv2d(x, layer.weight, stride=spec.stride, padding=spec.padding)
    (kh, kw), (sh, sw) = spec.kernel, spec.stride
    _, out_h, out_w = spec.out_shape
    positions = []
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(len(x), -1)
            positions.append(patch @ layer.weight[i * out_w + j].T)
    return torch.stack(positions, dim=2).reshape(len(x), *spec.out_shape)
