"""Model building blocks: the two-layer ConvNet, bilinear pooling, parameter counts, a summary, init.

Taught in: lessons/03_models.ipynb. Needs: torch.
`summary(net, X)` runs one forward pass with hooks and returns a text table (no extra package).
"""

import torch
from torch import nn


class ConvNet(nn.Module):
    """Two conv blocks (conv-BN-ReLU-pool) and a linear classifier, for 1-channel square images."""

    def __init__(self, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2x2 poolings), got {image_size}")
        self.layer1 = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(16, 32, kernel_size=5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.fc = nn.Linear(32 * (image_size // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(x))
        return self.fc(x.flatten(1))  # flatten(1) keeps the batch dimension, whatever its size


def bilinear_pool(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(N, D, H, W) features -> (N, D*D): averaged outer products, signed square root, L2 normalised."""
    if x.dim() != 4:
        raise ValueError(f"expected an (N, D, H, W) tensor, got shape {tuple(x.shape)}")
    n, d, h, w = x.shape
    x = x.reshape(n, d, h * w)
    x = torch.bmm(x, x.transpose(1, 2)) / (h * w)  # (N, D, D)
    x = x.reshape(n, d * d)
    x = torch.sign(x) * torch.sqrt(torch.abs(x) + eps)
    return nn.functional.normalize(x)


def count_parameters(net: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements; trainable_only counts those with requires_grad. Buffers never count."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def summary(net: nn.Module, *inputs: torch.Tensor) -> str:
    """One forward pass with hooks on every leaf module: name, type, output shape, parameters."""
    rows, handles = [], []

    def hook(name):
        def record(module, args, output):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            rows.append((name, type(module).__name__, str(shape), count_parameters(module)))

        return record

    for name, module in net.named_modules():
        if not list(module.children()):  # leaves only: containers would count their children twice
            handles.append(module.register_forward_hook(hook(name)))
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(*inputs)  # eval: a summary must not move BatchNorm's running statistics
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    header = ("layer", "type", "output shape", "params")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(str(v).ljust(wd) for v, wd in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    total, trainable = count_parameters(net), count_parameters(net, trainable_only=True)
    return "\n".join([*lines, f"total params: {total:,}  trainable: {trainable:,}"])


def init_weights(net: nn.Module) -> nn.Module:
    """Kaiming-normal convs (fan_out, ReLU), BN weight 1 / bias 0, Xavier-normal linears, zero biases."""
    for m in net.modules():  # modules() walks every depth; children() only the first level
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
        if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d | nn.BatchNorm1d) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return net


def _self_check():
    net = ConvNet(num_classes=10, image_size=8)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert "total params" in summary(net, torch.zeros(1, 1, 8, 8))
