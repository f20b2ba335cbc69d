"""Quantisation-aware training by fake quantisation: convs that train through the rounding they will meet.

Taught in: lessons/23_qat_and_distillation.ipynb. Needs: torch.
`prepare_qat(net, weight_bits=4)` swaps every nn.Conv2d for a `FakeQuantConv` that rounds its weights like
ONNX Runtime's symmetric per-channel QDQ weights (int8: [-127, 127], int4: [-8, 7], scale = max|w| / qmax)
and its input like uint8 MinMax activations (range tracked by an exponential moving average). Gradients pass
the rounding unchanged (straight-through estimator). `strip_qat(net)` puts plain convs back for export.
"""

import torch
import torch.nn.functional as F
from torch import nn


def weight_qrange(bits: int) -> tuple[int, int, float]:
    """(quant_min, quant_max, levels from 0 to max|w|) as ONNX Runtime uses them for symmetric weights."""
    if bits == 8:
        return -127, 127, 127.0
    if bits == 4:
        return -8, 7, 7.5  # full int4 range: scale = 2 * max|w| / 15
    raise ValueError(f"weight bits must be 8 or 4, got {bits!r}")


def fake_quantize_weight(weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round each output channel of a conv weight to `bits` symmetric levels and back to float."""
    qmin, qmax, levels = weight_qrange(bits)
    scale = (weight.detach().abs().amax(dim=(1, 2, 3)) / levels).clamp(min=1e-12)
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, qmin, qmax)


class FakeQuantConv(nn.Module):
    """A conv whose input passes uint8 fake quantisation and whose weight int-`bits` fake quantisation."""

    def __init__(self, conv: nn.Conv2d, weight_bits: int = 8, momentum: float = 0.1):
        super().__init__()
        weight_qrange(weight_bits)  # validates
        self.conv, self.weight_bits, self.momentum = conv, weight_bits, momentum
        self.register_buffer("act_min", torch.tensor(float("inf")))
        self.register_buffer("act_max", torch.tensor(float("-inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not torch.isfinite(self.act_min):
            lo, hi = x.detach().min(), x.detach().max()
            first = not torch.isfinite(self.act_min)
            self.act_min.copy_(lo if first else (1 - self.momentum) * self.act_min + self.momentum * lo)
            self.act_max.copy_(hi if first else (1 - self.momentum) * self.act_max + self.momentum * hi)
        lo, hi = self.act_min.clamp(max=0.0), self.act_max.clamp(min=0.0)  # the range must contain 0
        scale = float((hi - lo).clamp(min=1e-8) / 255)
        zero_point = int(torch.round(-lo / scale).clamp(0, 255))
        x = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)
        w = fake_quantize_weight(self.conv.weight, self.weight_bits)
        return F.conv2d(
            x, w, self.conv.bias, self.conv.stride, self.conv.padding, self.conv.dilation, self.conv.groups
        )


def prepare_qat(net: nn.Module, weight_bits: int = 8) -> nn.Module:
    """Replace every nn.Conv2d in net (in place) by a FakeQuantConv; returns net."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.Conv2d):
            setattr(net, name, FakeQuantConv(child, weight_bits))
        elif not isinstance(child, FakeQuantConv):
            prepare_qat(child, weight_bits)
    return net


def strip_qat(net: nn.Module) -> nn.Module:
    """Put the plain (trained) convs back in place of every FakeQuantConv; returns net."""
    for name, child in list(net.named_children()):
        if isinstance(child, FakeQuantConv):
            setattr(net, name, child.conv)
        else:
            strip_qat(child)
    return net


def _self_check():
    w = torch.randn(4, 3, 3, 3)
    q = fake_quantize_weight(w, 4)
    assert len(torch.unique(q[0])) <= 16 and torch.allclose(
        q.abs().amax((1, 2, 3)), w.abs().amax((1, 2, 3)), rtol=0.07
    )
