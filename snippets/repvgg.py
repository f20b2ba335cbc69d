"""Structural re-parameterisation: fold BatchNorm into a conv and merge RepVGG branches into one 3x3 conv.

Taught in: lessons/20_reparameterisation.ipynb. Needs: torch.
Train with `RepVGGBlock` (3x3 + 1x1 + identity branches, each with BatchNorm); before export call
`reparameterize_model(net)` (in eval mode): every block becomes a single 3x3 conv + ReLU with equal outputs.
"""

import torch
from torch import nn


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d (with bias) that computes bn(conv(x)) using BN's running statistics (eval-mode BN)."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(
            f"expected (nn.Conv2d, nn.BatchNorm2d), got ({type(conv).__name__}, {type(bn).__name__})"
        )
    if conv.out_channels != bn.num_features:
        raise ValueError(
            f"conv has {conv.out_channels} output channels but BN has {bn.num_features} features"
        )
    # bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta  ->  a per-output-channel scale and shift.
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    )
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Conv (no bias) followed by BatchNorm: one branch of a RepVGG block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class RepVGGBlock(nn.Module):
    """relu(bn(conv3x3(x)) + bn(conv1x1(x)) + bn(x)) while training; relu(conv3x3'(x)) after reparameterize().

    The identity branch exists only when the block keeps shape (in == out channels, stride 1).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.branch_3x3 = conv_bn(in_channels, out_channels, 3, stride)
        self.branch_1x1 = conv_bn(in_channels, out_channels, 1, stride)
        keeps_shape = in_channels == out_channels and stride == 1
        self.branch_identity = nn.BatchNorm2d(out_channels) if keeps_shape else None
        self.fused = None  # set by reparameterize()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.act(self.fused(x))
        out = self.branch_3x3(x) + self.branch_1x1(x)
        if self.branch_identity is not None:
            out = out + self.branch_identity(x)
        return self.act(out)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the three branches by one 3x3 conv with equal output (uses BN running statistics)."""
        if self.fused is not None:
            return
        if self.training:
            raise RuntimeError("call net.eval() before reparameterize(): BN must use its running statistics")
        k3 = fuse_conv_bn(*self.branch_3x3)
        k1 = fuse_conv_bn(*self.branch_1x1)
        weight = k3.weight + nn.functional.pad(k1.weight, [1, 1, 1, 1])  # 1x1 sits at the 3x3 centre
        bias = k3.bias + k1.bias
        if self.branch_identity is not None:
            # The identity is a 3x3 conv whose kernel is 1 at the centre of channel i -> i.
            eye = torch.zeros_like(weight)
            eye[range(self.out_channels), range(self.in_channels), 1, 1] = 1.0
            identity = nn.Conv2d(self.in_channels, self.out_channels, 3, 1, 1, bias=False)
            identity.weight.copy_(eye)
            k_id = fuse_conv_bn(identity, self.branch_identity)
            weight, bias = weight + k_id.weight, bias + k_id.bias
        self.fused = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True)
        self.fused.weight.copy_(weight)
        self.fused.bias.copy_(bias)
        del self.branch_3x3, self.branch_1x1, self.branch_identity
        self.branch_3x3 = self.branch_1x1 = self.branch_identity = None


class ConvBNReLU(nn.Module):
    """relu(bn(conv(x))); reparameterize() folds the BN into the conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1):
        super().__init__()
        self.conv_bn = conv_bn(in_channels, out_channels, kernel_size, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_bn(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        if isinstance(self.conv_bn, nn.Sequential):
            self.conv_bn = fuse_conv_bn(*self.conv_bn)


class RepBlock(nn.Sequential):
    """YOLOv6's RepBlock: a first block that may change channels, then n-1 shape-keeping blocks."""

    def __init__(self, in_channels: int, out_channels: int, n: int = 2):
        blocks = [RepVGGBlock(in_channels, out_channels)]
        blocks += [RepVGGBlock(out_channels, out_channels) for _ in range(n - 1)]
        super().__init__(*blocks)


class BottleRep(nn.Module):
    """Two RepVGG blocks with a residual connection: the unit CSPStackRep stacks."""

    def __init__(self, channels: int):
        super().__init__()
        self.block1, self.block2 = RepVGGBlock(channels, channels), RepVGGBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block2(self.block1(x))


class CSPStackRep(nn.Module):
    """Cross-stage partial block: half the channels pass n BottleRep units, the rest skip; then merge."""

    def __init__(self, in_channels: int, out_channels: int, n: int = 1):
        super().__init__()
        hidden = out_channels // 2
        self.cv1, self.cv2 = ConvBNReLU(in_channels, hidden), ConvBNReLU(in_channels, hidden)
        self.stack = nn.Sequential(*[BottleRep(hidden) for _ in range(n)])
        self.cv3 = ConvBNReLU(2 * hidden, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.stack(self.cv1(x)), self.cv2(x)], dim=1))


@torch.no_grad()
def reparameterize_model(net: nn.Module) -> nn.Module:
    """Call reparameterize() on every module that has one (in place) and return the net, in eval mode."""
    net.eval()
    for module in list(net.modules()):
        if hasattr(module, "reparameterize") and module is not net:
            module.reparameterize()
    return net


def _self_check():
    torch.manual_seed(0)
    block = RepVGGBlock(4, 4).eval()
    for bn in (block.branch_3x3[1], block.branch_1x1[1], block.branch_identity):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 4, 8, 8)
    before = block(x)
    block.reparameterize()
    assert torch.allclose(before, block(x), atol=1e-5)
