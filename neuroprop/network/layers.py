"""Torch layers that expose BrainProp's local signals (no autograd in the learning rule).

A weight layer is a *synapse* (dense, conv2d, loccon2d: a = W * pre, no bias) composed with
a *neuron* (``neuroprop.neurons``). What a layer exposes to a learning rule:

- ``pre``: the presynaptic factor of the last cached trial: the input y_pre (rate), or the
  neuron's eligibility of the presynaptic trace (spiking: its trial mean for lif, its
  final value / T for li; ``neuroprop.neurons.lif``);
- ``gate_(phi)``: phi times the post-synaptic gate g, in place: 1[a > 0] for relu, the trial
  mean of psi c (surrogate times integration window) for lif, 1 for linear and li;
- ``propagate(post)``: the attention feedback to the layer below, B^T post through the
  feedback weights B (routing for dropout, max-pooling, flatten; the gain for batch norm);
- ``weight_update(post, scale)``: the synapse type's local update
  sum_b scale_b * post_b (outer) pre_b, in the weight's layout (and ``gamma`` for batch norm).

``neuroprop.rules.brainprop`` combines them; the update math of each synapse type lives here
once, and rate and spiking nets use it alike.

Forward passes: ``forward(x, cache)`` for rate nets (one step); for spiking nets the
network calls ``start_trial()``, then ``step(x, cache)`` T times, then ``end_trial(T)``.
With ``cache`` the layer keeps what the rule needs: references to y_pre and y (rate; no
copies but y_pre's bfloat16 cast under ``network.precision: bfloat16``, no layer modifies
its input in place), the eligibility trace and gate sums (spiking,
O(neurons) memory whatever T), dropout masks, max-pool indices, batch-norm gains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroprop.errors import NeuropropError
from neuroprop.network.spec import (
    BatchNormSpec,
    Conv2dSpec,
    DropoutSpec,
    FeedbackOptions,
    InitSpec,
    LayerSpec,
    LocCon2dSpec,
    MaxPool2dSpec,
    WeightLayerSpec,
)
from neuroprop.neurons import State, Trace, build_neuron

CHANNELS_LAST = torch.channels_last
OPERAND_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}
"""``network.precision`` -> the dtype products take their operands in (None: as stored)."""
NO_FEEDBACK_WEIGHTS = ("this network has no feedback weights; build it with FeedbackOptions "
                       "(rule brainprop) to use the feedback pass")


def init_weight_(weight: Tensor, init: InitSpec) -> Tensor:
    """Fill ``weight`` in place from N(0, std^2) or U(-limit, limit) (global torch RNG)."""
    with torch.no_grad():
        if init.distribution == "normal":
            return weight.normal_(0.0, init.scale)
        return weight.uniform_(-init.scale, init.scale)


def batch_view(scale: Tensor, like: Tensor) -> Tensor:
    """``scale`` (B,) shaped to broadcast over ``like`` (B, ...)."""
    return scale.view(-1, *([1] * (like.dim() - 1)))


def _positions_first(x: Tensor) -> Tensor:
    """(B, C, L) -> (L, B, C), contiguous. Without autograd, one 2-d transpose of the
    (B*C, L) matrix: torch copies that in cache-sized blocks, 1.2-5 times faster than the
    equivalent 3-d permute (measured on the MNIST loccon net's layers). Under autograd the
    permute, whose backward measured faster (EBP's path)."""
    if _records(x):
        return x.permute(2, 0, 1).contiguous()
    batch, channels, positions = x.shape
    return x.reshape(batch * channels, positions).t().contiguous().view(
        positions, batch, channels)


def _positions_last(x: Tensor) -> Tensor:
    """(L, B, C) -> (B, C, L), contiguous: the inverse of ``_positions_first``."""
    if _records(x):
        return x.permute(1, 2, 0).contiguous()
    positions, batch, channels = x.shape
    return x.reshape(positions, batch * channels).t().contiguous().view(
        batch, channels, positions)


def _records(x: Tensor) -> bool:
    """Whether autograd records an operation on ``x``."""
    return torch.is_grad_enabled() and x.requires_grad


class LocalLayer(nn.Module):
    """A layer with local signals (see the module docstring). Shape layers route feedback
    and have no gate and no update."""

    cache_names: tuple[str, ...] = ()  # attributes that hold the cached forward pass

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec
        self._memo: tuple[Tensor, Tensor] | None = None  # (input, output) of the last step

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        raise NotImplementedError

    def start_trial(self) -> None:
        """Forget the state of the previous trial (spiking nets)."""
        self.clear_cache()
        self._memo = None

    def step(self, x: Tensor, cache: bool) -> Tensor:
        """One time step of a spiking net. Shape layers are the same at every step; an
        input that is the same tensor as the last step's (a constant-current input) gives
        the same output without computing it again."""
        return self._memoised(x, lambda: self(x, cache))

    def _memoised(self, x: Tensor, compute: Callable[[], Tensor]) -> Tensor:
        if self._memo is not None and self._memo[0] is x:
            return self._memo[1]
        out = compute()
        self._memo = (x, out)
        return out

    def end_trial(self, steps: int, cache: bool) -> None:
        """Close a trial of ``steps`` steps: turn the sums into the rule's signals."""
        self._memo = None

    @property
    def learns(self) -> bool:
        return any(parameter.requires_grad for parameter in self.parameters())

    def gate_(self, phi: Tensor) -> Tensor:
        return phi

    def propagate(self, post: Tensor) -> Tensor:
        raise NotImplementedError

    def weight_update(self, post: Tensor, scale: Tensor) -> dict[str, Tensor]:
        """The local update of each trainable parameter, by name; none for shape layers."""
        return {}

    def clear_cache(self) -> None:
        for name in self.cache_names:
            setattr(self, name, None)

    def _missing_cache(self) -> NeuropropError:
        return NeuropropError(
            f"{self.spec.type} layer has no cached forward pass; run the network forward in "
            "train mode (or with cache=True) right before the rule's feedback pass"
        )


class WeightLayer(LocalLayer):
    """A synapse a = W * y_pre (bias-free) and its neuron.

    Holds the forward weight ``weight`` and, unless ``feedback`` is None, a feedback weight
    ``feedback_weight`` of the same shape (tied: starts as a copy of ``weight``; random: an
    independent draw; frozen when ``feedback.learn`` is False). Tied feedback that learns
    gets exactly the forward weight's update from the same optimizer, so it equals
    ``weight`` bit for bit at every step: it is held as the same Parameter (one copy in
    memory, one optimizer step), not simulated twice.

    Subclasses give the synapse type's three linear maps: ``current`` (forward), ``_outer``
    (the outer product with the presynaptic factor, for ``weight_update``) and
    ``_transpose`` (through the feedback weights, for ``propagate``). Dense and locally
    connected updates are written into a buffer reused every step (no allocation on the
    hot path): clone a ``.grad`` to keep it.

    ``precision`` bfloat16 (``network.precision``) gives those three maps bfloat16
    operands (activations, feedback, weights; rounded to 8 significant bits) and returns
    their results in float32: the kernels accumulate in float32 and, on CPUs with
    bfloat16 dot-product instructions (AVX512-BF16, AMX), run 2-3 times faster than
    float32 products. Weights, updates, optimizer state, neurons and every element-wise
    step stay float32. The output layer always computes in float32: the
    reward-prediction error r - Q must resolve Q near the reward, where bfloat16 rounds
    by up to 0.4 %. Each forward pass casts the weight afresh (optimizers update weights
    in place, torch's fused Adam without bumping their version) and keeps the cast with
    the trial, for tied feedback in the feedback pass that follows.
    """

    cache_names = ("pre", "_post", "_gate", "_state", "_trace", "_window", "_weight_cast")

    def __init__(self, spec: WeightLayerSpec, init: InitSpec,
                 feedback: FeedbackOptions | None, precision: str = "float32") -> None:
        super().__init__(spec)
        self.neuron = build_neuron(spec.neuron)
        self.operand_dtype = None if spec.type == "output" else OPERAND_DTYPES[precision]
        self._weight_cast: Tensor | None = None
        self.weight = nn.Parameter(init_weight_(torch.empty(spec.weight_shape), init))
        self.feedback_weight: nn.Parameter | None = None
        if feedback is not None and feedback.init == "tied" and feedback.learn:
            self.feedback_weight = self.weight
        elif feedback is not None:
            if feedback.init == "tied":
                start = self.weight.detach().clone()
            else:
                start = init_weight_(torch.empty(spec.weight_shape), init)
            self.feedback_weight = nn.Parameter(start, requires_grad=feedback.learn)
        self.pre: Tensor | None = None
        self._post: Tensor | None = None
        self._gate: Tensor | None = None
        self._state: State | None = None
        self._trace: Trace | None = None
        self._window: Trace | None = None
        self._kept: dict[tuple[str, torch.dtype], Tensor] = {}

    # -- operands and results of the products (``precision``) ------------------------------
    def _operand(self, x: Tensor) -> Tensor:
        """An activation or feedback signal as a product's operand."""
        return x if self.operand_dtype is None else x.to(self.operand_dtype)

    def _weight_operand(self) -> Tensor:
        """The forward weight as a product's operand (its cast kept for ``propagate``)."""
        if self.operand_dtype is None:
            return self.weight
        if _records(self.weight):
            cast = self.weight.to(self.operand_dtype)
        else:
            cast = self._reused_buffer("cast").copy_(self.weight)
        self._weight_cast = cast.detach()
        return cast

    def _feedback_operand(self) -> Tensor:
        """The feedback weight as a product's operand: tied feedback that learns reuses the
        cast of the forward pass it follows."""
        weight = self.feedback_weight
        if self.operand_dtype is None:
            return weight
        if weight is self.weight and self._weight_cast is not None:
            return self._weight_cast
        return weight.to(self.operand_dtype)

    def _result(self, x: Tensor) -> Tensor:
        """A product's result in the weights' dtype (float32)."""
        return x.to(self.weight.dtype)

    # -- the synapse type (subclasses) ---------------------------------------------------
    def current(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _outer(self, post: Tensor) -> Tensor:
        """sum_b post_b (outer) pre_b in the weight's layout (``post`` already scaled)."""
        raise NotImplementedError

    def _transpose(self, post: Tensor, weight: Tensor) -> Tensor:
        """W^T post: what ``post`` at the outputs sends to the inputs through ``weight``
        (the feedback weight, already a product's operand)."""
        raise NotImplementedError

    # -- forward passes --------------------------------------------------------------------
    def forward(self, x: Tensor, cache: bool) -> Tensor:
        """Rate nets: y = f(W x); ``pre`` is x as the products' operand (cast once)."""
        x = self._operand(x)
        y = self.neuron.rate(self.current(x))
        self.pre, self._post = (x, y) if cache else (None, None)
        return y

    def step(self, x: Tensor, cache: bool) -> Tensor:
        """Spiking nets: one step of the synapse and the neuron; with ``cache`` the
        presynaptic trace and the neuron's gate are accumulated over the trial."""
        a = self._memoised(x, lambda: self.current(x))
        if self._state is None:
            self._state = State(torch.zeros_like(a), torch.zeros_like(a))
        out, self._state, v = self.neuron.step(a, self._state)
        if cache:
            with torch.no_grad():
                if self._trace is None:
                    self._trace = Trace(torch.zeros_like(x), torch.zeros_like(x))
                self._trace = self.neuron.trace_step(self._trace, x)
                if self.neuron.has_gate:
                    if self._window is None:
                        self._window = Trace(torch.zeros_like(a), torch.zeros_like(a))
                    self._window = self.neuron.gate_step(self._window, v, out)
        return out

    def end_trial(self, steps: int, cache: bool) -> None:
        super().end_trial(steps, cache)
        self._state = None
        if cache and self._trace is not None:
            self.pre = self.neuron.eligibility(self._trace, steps)
            self._gate = None if self._window is None else self.neuron.gate(self._window, steps)
        self._trace = self._window = None

    # -- the local signals -----------------------------------------------------------------
    def gate_(self, phi: Tensor) -> Tensor:
        if self.pre is None:
            raise self._missing_cache()
        if self._post is not None:
            return self.neuron.gate_(phi, self._post)
        return phi if self._gate is None else phi.mul_(self._gate)

    def propagate(self, post: Tensor) -> Tensor:
        if self.feedback_weight is None:
            raise NeuropropError(NO_FEEDBACK_WEIGHTS)
        return self._transpose(post, self._feedback_operand())

    def weight_update(self, post: Tensor, scale: Tensor) -> dict[str, Tensor]:
        """W.grad = sum_b scale_b post_b (outer) pre_b (``post`` is scaled in place)."""
        if self.pre is None:
            raise self._missing_cache()
        update = self._outer(post.mul_(batch_view(scale, post)))
        if update.dtype != self.weight.dtype:
            update = self._reused_buffer("update", self.weight.dtype).copy_(update)
        return {"weight": update}

    def _reused_buffer(self, role: str, dtype: torch.dtype | None = None) -> Tensor:
        """A weight-shaped buffer kept from step to step, one per ``role`` (the product, the
        update in the weight's dtype, the weight's cast), in ``dtype`` (default: the
        operands'): no weight-sized allocation on the hot path."""
        dtype = dtype or self.operand_dtype or self.weight.dtype
        buffer = self._kept.get((role, dtype))
        if buffer is None or buffer.device != self.weight.device:
            buffer = self._kept[role, dtype] = torch.empty_like(self.weight, dtype=dtype)
        return buffer


class Dense(WeightLayer):
    """a = y_pre W^T, W (out, in). Also the output layer."""

    def current(self, x: Tensor) -> Tensor:
        return self._result(self._operand(x).matmul(self._weight_operand().t()))

    def _outer(self, post: Tensor) -> Tensor:
        return torch.mm(self._operand(post).t(), self._operand(self.pre),
                        out=self._reused_buffer("product"))

    def _transpose(self, post: Tensor, weight: Tensor) -> Tensor:
        return self._result(torch.mm(self._operand(post), weight))


class Conv2d(WeightLayer):
    """a = conv2d(y_pre, W), W (O, C, kh, kw), zero padding.

    Weight update: ``torch.nn.grad.conv2d_weight`` (one ``convolution_backward`` kernel
    with only the weight output requested: the oneDNN kernel autograd uses, with no
    im2col buffer of the whole batch, which unfold+matmul would need). Feedback:
    conv_transpose2d(post, B), computed by ``torch.nn.grad.conv2d_input`` (the same
    transposed convolution with the input size given; on this CPU it measured 26 ms
    against 33 ms for ``F.conv_transpose2d`` on a 128x32x14x14 -> 28x28 stride-2 case).

    Activations, feedback and weights enter oneDNN in channels-last memory format (same
    values, NHWC strides): its kernels are several times faster so, e.g. 8.5 against
    38 ms for that transposed convolution.
    """

    def __init__(self, spec: Conv2dSpec, init: InitSpec, feedback: FeedbackOptions | None,
                 precision: str = "float32") -> None:
        super().__init__(spec, init, feedback, precision)
        self.stride = spec.stride
        self.padding = spec.padding
        self._layout: tuple[Tensor, Tensor] | None = None  # (input, channels-last input)

    def current(self, x: Tensor) -> Tensor:
        x = self._operand(x).contiguous(memory_format=CHANNELS_LAST)
        weight = self._weight_operand().contiguous(memory_format=CHANNELS_LAST)
        a = F.conv2d(x, weight, None, self.stride, self.padding)
        # oneDNN returns NCHW when C = 1 makes the layouts ambiguous: keep one layout,
        # mixed layouts make every elementwise op downstream several times slower
        return self._result(a).contiguous(memory_format=CHANNELS_LAST)

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        return super().forward(x.contiguous(memory_format=CHANNELS_LAST), cache)

    def step(self, x: Tensor, cache: bool) -> Tensor:
        """One layout for the current, the trace and the update; a constant input is
        converted once per trial (so that it stays the same tensor, see ``_memoised``)."""
        if self._layout is None or self._layout[0] is not x:
            self._layout = (x, x.contiguous(memory_format=CHANNELS_LAST))
        return super().step(self._layout[1], cache)

    def start_trial(self) -> None:
        super().start_trial()
        self._layout = None

    def gate_(self, phi: Tensor) -> Tensor:
        return super().gate_(phi.contiguous(memory_format=CHANNELS_LAST))

    def _outer(self, post: Tensor) -> Tensor:
        return torch.nn.grad.conv2d_weight(
            self._operand(self.pre), self.weight.shape, self._operand(post), self.stride,
            self.padding).contiguous()

    def _transpose(self, post: Tensor, weight: Tensor) -> Tensor:
        return self._result(torch.nn.grad.conv2d_input(
            (post.shape[0], *self.spec.in_shape),
            weight.contiguous(memory_format=CHANNELS_LAST),
            self._operand(post), self.stride, self.padding,
        ))


class LocallyConnected2d(WeightLayer):
    """Unshared 2d filters: a[b, o, l] = sum_k W[l, o, k] * cols[b, k, l].

    cols = unfold(y_pre) (B, K, L), K = C*kh*kw in unfold order, L = out_h*out_w
    positions row-major; W is (L, O, K). Forward, update and feedback are each one
    batched matmul over the L positions (no Python loop):

        a_l = cols_l W_l^T,   W.grad_l = (scale * post)_l^T cols_l,   pcols_l = post_l B_l

    and the feedback columns go back to (B, C, H, W) by ``F.fold`` (which sums
    overlapping windows). The cached presynaptic factor is kept as columns (L, B, K).
    """

    def __init__(self, spec: LocCon2dSpec, init: InitSpec, feedback: FeedbackOptions | None,
                 precision: str = "float32") -> None:
        super().__init__(spec, init, feedback, precision)
        self.kernel = spec.kernel
        self.stride = spec.stride
        self.in_hw = spec.in_shape[1:]
        self.out_shape = spec.out_shape

    def _columns(self, x: Tensor) -> Tensor:
        """(L, B, K), contiguous: both batched matmuls that use it run faster."""
        return _positions_first(F.unfold(self._operand(x), self.kernel, stride=self.stride))

    def _from_columns(self, cols: Tensor) -> Tensor:
        out = torch.bmm(cols, self._weight_operand().transpose(1, 2))  # (L, B, O)
        return self._result(_positions_last(out).view(cols.shape[1], *self.out_shape))

    def current(self, x: Tensor) -> Tensor:
        return self._from_columns(self._columns(x))

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        cols = self._columns(x)
        y = self.neuron.rate(self._from_columns(cols))
        self.pre, self._post = (cols, y) if cache else (None, None)
        return y

    def end_trial(self, steps: int, cache: bool) -> None:
        super().end_trial(steps, cache)
        if cache and self.pre is not None:
            self.pre = self._columns(self.pre)

    def _by_position(self, post: Tensor) -> Tensor:
        """(B, O, out_h, out_w) -> (L, B, O), contiguous, as a product's operand."""
        return _positions_first(self._operand(post).reshape(post.shape[0],
                                                             self.out_shape[0], -1))

    def _outer(self, post: Tensor) -> Tensor:
        return torch.bmm(self._by_position(post).transpose(1, 2), self.pre,
                         out=self._reused_buffer("product"))

    def _transpose(self, post: Tensor, weight: Tensor) -> Tensor:
        pcols = torch.bmm(self._by_position(post), weight)  # (L, B, K)
        return self._result(F.fold(_positions_last(pcols), self.in_hw, self.kernel,
                                   stride=self.stride))


class LocalGainNorm(LocalLayer):
    """Batch norm as a local per-unit gain (no mean subtraction, no shift):

        y = gamma * x / sqrt(m2 + eps),   m2 = mean of x^2 over the batch (and positions)

    per unit (dense) or per channel (conv, loccon). Train mode uses the batch's m2 and
    updates ``running_m2`` with ``momentum``; eval mode uses ``running_m2``. ReLU nets
    stay positively homogeneous and the gain folds into the next weights for hardware.

    The learning rule treats gain = gamma / sqrt(m2 + eps) as a constant of the unit:
    the feedback passes as post * gain, and gamma learns like a synapse from a unit of
    activity x_hat = x / sqrt(m2 + eps): gamma.grad = sum_b scale_b sum_positions post_b x_hat_b.
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

    def propagate(self, post: Tensor) -> Tensor:
        if self._gain is None:
            raise self._missing_cache()
        return post * self._gain

    def weight_update(self, post: Tensor, scale: Tensor) -> dict[str, Tensor]:
        if self._input is None:
            raise self._missing_cache()
        per_trial = post * self._input
        if per_trial.dim() > 2:
            per_trial = per_trial.sum((2, 3))
        return {"gamma": torch.mv(per_trial.t(), scale).mul_(self._inv_rms)}


class Dropout(LocalLayer):
    """Inverted dropout: y = x * m, m_i = 1[u_i >= p] / (1 - p), u_i ~ U[0, 1), in train mode
    (one mask per trial, the same at every step of a spiking trial); identity in eval mode.
    Feedback is gated by the same mask: phi_pre = phi * m."""

    cache_names = ("_mask",)

    def __init__(self, spec: DropoutSpec) -> None:
        super().__init__(spec)
        self.p = spec.p
        self._mask: Tensor | None = None

    @property
    def mask(self) -> Tensor | None:
        """The mask of the last train-mode trial (None in eval mode)."""
        return self._mask

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        self._mask = None
        return self._masked(x)

    def step(self, x: Tensor, cache: bool) -> Tensor:
        return self._memoised(x, lambda: self._masked(x))

    def _masked(self, x: Tensor) -> Tensor:
        """x * m, drawing m on the first call of a trial."""
        if not self.training or self.p == 0.0:
            return x
        if self._mask is None:  # 3x faster than bernoulli_ here
            self._mask = torch.rand_like(x).ge_(self.p).div_(1.0 - self.p)
        return x * self._mask

    def propagate(self, post: Tensor) -> Tensor:
        return post if self._mask is None else post.mul_(self._mask)


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

    def propagate(self, post: Tensor) -> Tensor:
        if self._indices is None:
            raise self._missing_cache()
        batch, channels = post.shape[:2]
        routed = post.new_zeros(batch, channels, self.in_shape[1] * self.in_shape[2])
        routed.scatter_add_(2, self._indices.flatten(2), post.flatten(2))
        return routed.view(batch, *self.in_shape)


class Flatten(LocalLayer):
    """(C, H, W) -> C*H*W in C,H,W order; feedback is reshaped back."""

    def forward(self, x: Tensor, cache: bool) -> Tensor:
        return x.flatten(1)

    def propagate(self, post: Tensor) -> Tensor:
        return post.reshape(post.shape[0], *self.spec.in_shape)


LAYER_CLASSES: dict[str, Any] = {
    "dense": Dense, "output": Dense, "conv2d": Conv2d, "loccon2d": LocallyConnected2d,
    "batchnorm": LocalGainNorm, "dropout": Dropout, "maxpool2d": MaxPool2d, "flatten": Flatten,
}


def build_layer(
    spec: LayerSpec, init: InitSpec, feedback: FeedbackOptions | None,
    precision: str = "float32",
) -> LocalLayer:
    """The torch layer for one layer spec (``precision``: ``network.precision``)."""
    layer_class = LAYER_CLASSES[spec.type]
    if isinstance(spec, WeightLayerSpec):
        return layer_class(spec, init, feedback, precision)
    return layer_class(spec)

