"""Soft pooling (params key `last_pool soft`): a log-mean-exp over each window whose sharpness
every channel learns, between the window's mean and its max.

    out = log(mean_i exp(s * x_i)) / s,   s = exp(log_sharpness) > 0 per channel

As s grows it tends to max pooling, as s falls to average pooling; in between it grows with how
many positions of a window are high, which is what lets a network count a motif's sites.

The gradient is written out (SoftPoolFunction) because autograd's logsumexp backward is several
times slower on the CPU than the forward: d out / d x_i is the window's softmax weight p_i, and
d out / d s = (sum_i p_i x_i - out) / s, both kept from the forward pass.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class SoftPoolFunction(torch.autograd.Function):
    """(x (N, C, L), sharpness (C,), window width) -> (N, C, ceil(L / width))."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)  # exp needs fp32
    def forward(ctx: Any, x: torch.Tensor, sharpness: torch.Tensor, width: int) -> torch.Tensor:
        length = x.shape[-1]
        windows = math.ceil(length / width)
        short = windows * width - length  # the last window is short by this much (ceil_mode)
        x_padded = nn.functional.pad(x, (0, short)) if short else x
        scaled = x_padded * sharpness[:, None]
        # fill_ with Python numbers throughout: an element assignment (`t[-1] = v`) copies a
        # host tensor to the device, which a CUDA graph capture refuses
        if short:
            scaled[..., length:].fill_(-math.inf)  # outside the sequence: weight 0
        scaled = scaled.unflatten(-1, (windows, width))
        top = scaled.amax(-1, keepdim=True)
        weights = scaled.sub_(top).exp_()
        total = weights.sum(-1, keepdim=True)
        weights /= total  # each window's softmax
        counts = torch.full((windows,), float(width), device=x.device, dtype=x.dtype)
        counts[-1:].fill_(width - short)
        s = sharpness[:, None]
        out = (top.squeeze(-1) + total.squeeze(-1).log() - counts.log()) / s
        weighted_x = (weights * x_padded.unflatten(-1, (windows, width))).sum(-1)
        ctx.save_for_backward(weights, weighted_x, out, sharpness)
        ctx.length = length
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        weights, weighted_x, out, sharpness = ctx.saved_tensors
        grad_x = (grad.unsqueeze(-1) * weights).flatten(-2)[..., :ctx.length]
        grad_s = (grad * (weighted_x - out)).sum((0, 2)) / sharpness
        return grad_x, grad_s, None


class SoftPool1d(nn.Module):
    """Soft pooling over windows of `width`, the last one short as MaxPool1d(ceil_mode=True)
    keeps it; the sharpness starts at 1 for every channel."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.width = width
        # A vector, so that max-norm (dim >= 2 weights) leaves it alone.
        self.log_sharpness = nn.Parameter(torch.zeros(channels))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_sharpness.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = SoftPoolFunction.apply(x, self.log_sharpness.exp(), self.width)
        return out
