"""Torch layers that learn with an explicit, local feedback pass (no autograd).

Every layer maps ``forward(x, cache)`` and, top-down, ``feedback(phi, scale, pass_down)``:

- ``phi`` (B, *out_shape) is the attention feedback arriving at the layer's output.
- ``scale`` (B,) is ``-delta_b / B``: the per-trial reward-prediction error delta_b, with
  the sign that turns the update into a gradient for a descending optimizer, and the
  batch mean.
- Each layer gates phi by its own gate g (ReLU: 1[a > 0]; dropout: its mask; max-pool:
  argmax routing; batch norm: its gain), a weight layer writes the local update

      W.grad = sum_b scale_b * (phi * g)_b (outer) y_pre_b
             = -(1/B) sum_b delta_b * (phi * g)_b (outer) y_pre_b

  into its forward (and, when learning, feedback) weights, and returns
  ``phi_pre = B^T (phi * g)`` through its feedback weights B (None when ``pass_down`` is
  False: nothing below learns).

The forward pass caches what the rule needs (only when ``cache`` is True): references to
the presynaptic input and the layer's output (no copies: the gate 1[a > 0] is read off
the output y = relu(a) as sign(y)), dropout masks, max-pool indices, batch-norm gains.
No layer modifies its input in place, so the cached references stay valid. The feedback
pass owns its phi tensors: a weight layer sends phi * g down first, then scales phi * g
by scale_b in place to form its update (no extra copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroprop.errors import NeuropropError
from neuroprop.network.spec import (
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    FeedbackOptions,
    InitSpec,
    LayerSpec,
    LocCon2dSpec,
    MaxPool2dSpec,
    OutputSpec,
)

CHANNELS_LAST = torch.channels_last


def init_weight_(weight: Tensor, init: InitSpec) -> Tensor:
    """Fill ``weight`` in place from N(0, std^2) or U(-limit, limit) (global torch RNG)."""
    with torch.no_grad():
        if init.distribution == "normal":
            return weight.normal_(0.0, init.scale)
        return weight.uniform_(-init.scale, init.scale)


class LocalLayer(nn.Module):
    """A layer with a local feedback pass (see the module docstring)."""

    cache_names: tuple[str, ...] = ()  # attributes that hold the cached forward pass

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        raise NotImplementedError

    def clear_cache(self) -> None:
        for name in self.cache_names:
            setattr(self, name, None)

    def _missing_cache(self) -> NeuropropError:
        return NeuropropError(
            f"{self.spec.type} layer has no cached forward pass; run the network forward in "
            "train mode (or with cache=True) right before Network.feedback"
        )


class WeightLayer(LocalLayer):
    """A bias-free layer a = W * y_pre with activation relu or linear.

    Holds the forward weight ``weight`` and, unless ``feedback`` is None, a separate
    feedback weight ``feedback_weight`` of the same shape (tied: a copy of ``weight``;
    random: an independent draw; frozen when ``feedback.learn`` is False).

    The local update is written into gradient buffers the layer reuses every step (no
    allocation on the hot path): clone a ``.grad`` to keep it past the next step.
    """

    cache_names = ("_pre", "_post")

    def __init__(
        self, spec: DenseSpec | OutputSpec | Conv2dSpec | LocCon2dSpec, init: InitSpec,
        feedback: FeedbackOptions | None,
    ) -> None:
        super().__init__(spec)
        self.relu = spec.activation == "relu"
        self.weight = nn.Parameter(init_weight_(torch.empty(spec.weight_shape), init))
        self.feedback_weight: nn.Parameter | None = None
        if feedback is not None:
            if feedback.init == "tied":
                start = self.weight.detach().clone()
            else:
                start = init_weight_(torch.empty(spec.weight_shape), init)
            self.feedback_weight = nn.Parameter(start, requires_grad=feedback.learn)
        self._pre: Tensor | None = None
        self._post: Tensor | None = None
        self._weight_grad: Tensor | None = None
        self._feedback_grad: Tensor | None = None

    def _activate(self, a: Tensor, x: Tensor, cache: bool) -> Tensor:
        y = a.relu_() if self.relu else a
        self._pre, self._post = (x, y) if cache else (None, None)
        return y

    def _gated(self, phi: Tensor) -> Tensor:
        """phi * g with g = f'(a): 1[a > 0] = sign(y) for y = relu(a); 1 for linear units.

        (Multiplying by sign(y) in place is one fast float pass; a bool mask is several
        times slower on CPU.)
        """
        if self._post is None:
            raise self._missing_cache()
        return phi.mul_(torch.sign(self._post)) if self.relu else phi

    def _grad_buffer(self) -> Tensor:
        """The reused buffer for the forward weight's update (same dtype/device as it)."""
        buffer = self._weight_grad
        if buffer is None or buffer.dtype != self.weight.dtype or (
            buffer.device != self.weight.device
        ):
            buffer = self._weight_grad = torch.empty_like(self.weight)
        return buffer

    def _write_grads(self, grad: Tensor) -> None:
        """Set .grad of the forward weight, and of the feedback weight (a copy in its own
        buffer, so in-place gradient transforms stay per parameter) when it learns."""
        self.weight.grad = grad
        feedback_weight = self.feedback_weight
        if feedback_weight is not None and feedback_weight.requires_grad:
            buffer = self._feedback_grad
            if buffer is None or buffer.dtype != grad.dtype or buffer.device != grad.device:
                buffer = self._feedback_grad = torch.empty_like(grad)
            feedback_weight.grad = buffer.copy_(grad)

    def _feedback_weight(self) -> Tensor:
        if self.feedback_weight is None:
            raise NeuropropError(
                "this network has no feedback weights; build it with FeedbackOptions "
                "(rule brainprop) to use Network.feedback"
            )
        return self.feedback_weight


class Dense(WeightLayer):
    """a = y_pre W^T, W (out, in). Also the linear output layer."""

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        return self._activate(x.matmul(self.weight.t()), x, cache)

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        feedback_weight = self._feedback_weight()
        gated = self._gated(phi)
        phi_pre = torch.mm(gated, feedback_weight) if pass_down else None
        scaled = gated.mul_(scale[:, None])  # in place: phi * g is not needed any more
        self._write_grads(torch.mm(scaled.t(), self._pre, out=self._grad_buffer()))
        return phi_pre


class Conv2d(WeightLayer):
    """a = conv2d(y_pre, W), W (O, C, kh, kw), zero padding.

    Weight update: ``torch.nn.grad.conv2d_weight`` (one ``convolution_backward`` kernel
    with only the weight output requested: the oneDNN kernel autograd uses, with no
    im2col buffer of the whole batch, which unfold+matmul would need). Feedback:
    phi_pre = conv_transpose2d(phi * g, B), computed by ``torch.nn.grad.conv2d_input``
    (the same transposed convolution with the input size given; on this CPU it measured
    26 ms against 33 ms for ``F.conv_transpose2d`` on a 128x32x14x14 -> 28x28 stride-2
    case).

    Activations, feedback and weights enter oneDNN in channels-last memory format (same
    values, NHWC strides): its kernels are several times faster so, e.g. 8.5 against
    38 ms for that transposed convolution.
    """

    def __init__(self, spec: Conv2dSpec, init: InitSpec, feedback: FeedbackOptions | None
                 ) -> None:
        super().__init__(spec, init, feedback)
        self.stride = spec.stride
        self.padding = spec.padding

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        x = x.contiguous(memory_format=CHANNELS_LAST)
        a = F.conv2d(x, self.weight.contiguous(memory_format=CHANNELS_LAST), None,
                     self.stride, self.padding)
        # oneDNN returns NCHW when C = 1 makes the layouts ambiguous: keep one layout,
        # mixed layouts make every elementwise op downstream several times slower
        return self._activate(a.contiguous(memory_format=CHANNELS_LAST), x, cache)

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        feedback_weight = self._feedback_weight()
        gated = self._gated(phi.contiguous(memory_format=CHANNELS_LAST))
        phi_pre = None
        if pass_down:
            phi_pre = torch.nn.grad.conv2d_input(
                self._pre.shape, feedback_weight.contiguous(memory_format=CHANNELS_LAST),
                gated, self.stride, self.padding,
            )
        scaled = gated.mul_(scale[:, None, None, None])
        self._write_grads(torch.nn.grad.conv2d_weight(
            self._pre, self.weight.shape, scaled, self.stride, self.padding
        ).contiguous())
        return phi_pre


class LocallyConnected2d(WeightLayer):
    """Unshared 2d filters: a[b, o, l] = sum_k W[l, o, k] * cols[b, k, l].

    cols = unfold(y_pre) (B, K, L), K = C*kh*kw in unfold order, L = out_h*out_w
    positions row-major; W is (L, O, K). Forward, update and feedback are each one
    batched matmul over the L positions (no Python loop):

        a_l = cols_l W_l^T,   W.grad_l = (scale * phi_g)_l^T cols_l,   pcols_l = phi_g,l B_l

    and the feedback columns go back to (B, C, H, W) by ``F.fold`` (which sums
    overlapping windows).
    """

    def __init__(self, spec: LocCon2dSpec, init: InitSpec, feedback: FeedbackOptions | None
                 ) -> None:
        super().__init__(spec, init, feedback)
        self.kernel = spec.kernel
        self.stride = spec.stride
        self.in_hw = spec.in_shape[1:]
        self.out_shape = spec.out_shape

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        # (L, B, K), made contiguous once: both batched matmuls that use it run faster
        cols = F.unfold(x, self.kernel, stride=self.stride).permute(2, 0, 1).contiguous()
        out = torch.bmm(cols, self.weight.transpose(1, 2))  # (L, B, O)
        a = out.permute(1, 2, 0).reshape(x.shape[0], *self.out_shape)
        return self._activate(a, cols, cache)

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        feedback_weight = self._feedback_weight()
        batch = phi.shape[0]
        gated = self._gated(phi).reshape(batch, self.out_shape[0], -1)
        gated = gated.permute(2, 0, 1).contiguous()  # (L, B, O)
        phi_pre = None
        if pass_down:
            pcols = torch.bmm(gated, feedback_weight)  # (L, B, K)
            phi_pre = F.fold(pcols.permute(1, 2, 0), self.in_hw, self.kernel,
                             stride=self.stride)
        scaled = gated.mul_(scale[None, :, None])
        self._write_grads(
            torch.bmm(scaled.transpose(1, 2), self._pre, out=self._grad_buffer())
        )
        return phi_pre


class LocalGainNorm(LocalLayer):
    """Batch norm as a local per-unit gain (no mean subtraction, no shift):

        y = gamma * x / sqrt(m2 + eps),   m2 = mean of x^2 over the batch (and positions)

    per unit (dense) or per channel (conv, loccon). Train mode uses the batch's m2 and
    updates ``running_m2`` with ``momentum``; eval mode uses ``running_m2``. ReLU nets
    stay positively homogeneous and the gain folds into the next weights for hardware.

    The learning rule treats gain = gamma / sqrt(m2 + eps) as a constant of the unit:
    phi_pre = phi * gain, and gamma learns like a synapse from a unit of activity
    x_hat = x / sqrt(m2 + eps): gamma.grad = sum_b scale_b * sum_positions phi_b * x_hat_b.
    Autograd through the batch statistic would add batch-coupled terms (dm2/dx); the
    local rule leaves them out (EBP, which uses autograd, keeps them).
    """

    cache_names = ("_input", "_inv_rms", "_gain")

    def __init__(self, spec: BatchNormSpec) -> None:
        super().__init__(spec)
        channels = spec.in_shape[0]
        self.eps = spec.eps
        self.momentum = spec.momentum
        self.gamma = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_m2", torch.ones(channels))
        self.reduce_dims = (0,) if len(spec.in_shape) == 1 else (0, 2, 3)
        self.unit_view = (1, channels) + (1,) * (len(spec.in_shape) - 1)
        self._input: Tensor | None = None
        self._inv_rms: Tensor | None = None
        self._gain: Tensor | None = None

    def gain(self) -> Tensor:
        """The eval-mode gain gamma / sqrt(running_m2 + eps), one per unit or channel."""
        return self.gamma * torch.rsqrt(self.running_m2 + self.eps)

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        if self.training:
            m2 = x.square().mean(self.reduce_dims)
            with torch.no_grad():
                self.running_m2.lerp_(m2.detach(), self.momentum)
        else:
            m2 = self.running_m2
        inv_rms = torch.rsqrt(m2 + self.eps)
        gain = (self.gamma * inv_rms).view(self.unit_view)
        if cache:
            self._input, self._inv_rms, self._gain = x, inv_rms.detach(), gain.detach()
        else:
            self._input = self._inv_rms = self._gain = None
        return x * gain

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        if self._input is None:
            raise self._missing_cache()
        per_trial = phi * self._input
        if per_trial.dim() > 2:
            per_trial = per_trial.sum((2, 3))
        self.gamma.grad = torch.mv(per_trial.t(), scale).mul_(self._inv_rms)
        return phi.mul_(self._gain) if pass_down else None


class Dropout(LocalLayer):
    """Inverted dropout: y = x * m, m_i = 1[u_i >= p] / (1 - p), u_i ~ U[0, 1), in train mode;
    identity in eval mode. Feedback is gated by the same mask: phi_pre = phi * m."""

    cache_names = ("_mask",)

    def __init__(self, spec: DropoutSpec) -> None:
        super().__init__(spec)
        self.p = spec.p
        self._mask: Tensor | None = None

    @property
    def mask(self) -> Tensor | None:
        """The mask of the last cached train-mode forward pass (None in eval mode)."""
        return self._mask

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = 1.0 - self.p
        mask = torch.rand_like(x).ge_(self.p).div_(keep)  # 3x faster than bernoulli_ here
        self._mask = mask if cache else None
        return x * mask

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        if not pass_down:
            return None
        return phi if self._mask is None else phi.mul_(self._mask)


class MaxPool2d(LocalLayer):
    """y = max over each window; feedback goes to the argmax of each window only
    (scatter-add, so overlapping windows that share an argmax sum correctly)."""

    cache_names = ("_indices",)

    def __init__(self, spec: MaxPool2dSpec) -> None:
        super().__init__(spec)
        self.kernel = spec.kernel
        self.stride = spec.stride
        self.in_shape = spec.in_shape
        self._indices: Tensor | None = None

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        if not cache:
            self._indices = None
            return F.max_pool2d(x, self.kernel, self.stride)
        y, self._indices = F.max_pool2d(x, self.kernel, self.stride, return_indices=True)
        return y

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        if not pass_down:
            return None
        if self._indices is None:
            raise self._missing_cache()
        batch, channels = phi.shape[:2]
        routed = phi.new_zeros(batch, channels, self.in_shape[1] * self.in_shape[2])
        routed.scatter_add_(2, self._indices.flatten(2), phi.flatten(2))
        return routed.view(batch, *self.in_shape)


class Flatten(LocalLayer):
    """(C, H, W) -> C*H*W in C,H,W order; feedback is reshaped back."""

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        return x.flatten(1)

    def feedback(self, phi: Tensor, scale: Tensor, pass_down: bool) -> Tensor | None:
        return phi.reshape(phi.shape[0], *self.spec.in_shape) if pass_down else None


def build_layer(
    spec: LayerSpec, init: InitSpec, feedback: FeedbackOptions | None
) -> LocalLayer:
    """The torch layer for one layer spec."""
    if isinstance(spec, DenseSpec | OutputSpec):
        return Dense(spec, init, feedback)
    if isinstance(spec, Conv2dSpec):
        return Conv2d(spec, init, feedback)
    if isinstance(spec, LocCon2dSpec):
        return LocallyConnected2d(spec, init, feedback)
    if isinstance(spec, BatchNormSpec):
        return LocalGainNorm(spec)
    if isinstance(spec, DropoutSpec):
        return Dropout(spec)
    if isinstance(spec, MaxPool2dSpec):
        return MaxPool2d(spec)
    return Flatten(spec)
