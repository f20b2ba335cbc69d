"""The source's keyword-spotting CNN and a depthwise-separable (DS-CNN) variant, in PyTorch, plus training.

Taught in: lessons/31_pytorch_to_int8_tflite.ipynb. Needs: torch, numpy.
Input is (N, 1, 13, 50): 13 MFCCs x 50 frames. Both nets end in `torch.ops.aten._softmax`, the form the
PT2E quantiser annotates (F.softmax exports as aten.softmax.int, which stays float).
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

NUM_CLASSES = 11


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, written so that torch.export keeps a node the int8 quantiser recognises."""
    return torch.ops.aten._softmax(x, 1, False)


class KwsCNN(nn.Module):
    """The source's CNN: Conv32 - MaxPool - Conv64 - MaxPool - Dense256 - Dense128 - Dense11 - Softmax."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)  # padding=1 on a 3x3 kernel is Keras' padding='same'
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 3 * 12, 256)  # 13x50 -> 6x25 -> 3x12 after two 2x2 max pools
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, num_classes)

    def logits(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten in NHWC order, as Keras does
        x = F.dropout(F.relu(self.fc1(F.dropout(x, 0.25, self.training))), 0.25, self.training)
        return self.fc3(F.relu(self.fc2(x)))

    def forward(self, x):
        return softmax(self.logits(x))


class KwsDSCNN(nn.Module):
    """Conv32 -> MaxPool -> 2 x (depthwise 3x3 + pointwise 1x1, batch-normed) -> global AvgPool -> Dense11.

    Batch norm speeds up training; `fused()` folds it into the convolutions before conversion, so the
    int8 model has no batch-norm op at all.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.dw1 = nn.Conv2d(32, 32, 3, padding=1, groups=32)  # groups=channels: depthwise
        self.bn2 = nn.BatchNorm2d(32)
        self.pw1 = nn.Conv2d(32, width, 1)
        self.bn3 = nn.BatchNorm2d(width)
        self.dw2 = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.bn4 = nn.BatchNorm2d(width)
        self.pw2 = nn.Conv2d(width, width, 1)
        self.bn5 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def logits(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 13x50 -> 6x25
        x = F.relu(self.bn3(self.pw1(F.relu(self.bn2(self.dw1(x))))))
        x = F.relu(self.bn5(self.pw2(F.relu(self.bn4(self.dw2(x))))))
        x = F.avg_pool2d(x, kernel_size=x.shape[2:])  # global average: AVERAGE_POOL_2D, not MEAN
        return self.fc(x.reshape(x.shape[0], -1))

    def forward(self, x):
        return softmax(self.logits(x))

    def fused(self) -> "KwsDSCNN":
        """An eval-mode copy with every batch norm folded into its convolution (and replaced by Identity)."""
        net = copy.deepcopy(self).eval()
        for conv, bn in (("conv1", "bn1"), ("dw1", "bn2"), ("pw1", "bn3"), ("dw2", "bn4"), ("pw2", "bn5")):
            setattr(net, conv, fuse_conv_bn_eval(getattr(net, conv), getattr(net, bn)))
            setattr(net, bn, nn.Identity())
        return net


def train(net: nn.Module, X: np.ndarray, y: np.ndarray, *, num_epochs: int = 12, lr: float = 2e-3,
          batch_size: int = 64, seed: int = 0) -> nn.Module:  # fmt: skip
    """Adam + cross-entropy on the logits; X is (N, 13, 50, 1) NHWC float32 as stored, y int64 labels."""
    if X.ndim != 4 or X.shape[1:] != (13, 50, 1) or len(X) != len(y):
        raise ValueError(f"expected X of shape (N, 13, 50, 1) and N labels, got {X.shape} and {len(y)}")
    generator = torch.Generator().manual_seed(seed)
    # NHWC -> NCHW tensors, stored channels-last in memory: faster depthwise convolutions on CPU
    X = torch.from_numpy(X.astype(np.float32).transpose(0, 3, 1, 2)).contiguous(
        memory_format=torch.channels_last
    )
    net = net.to(memory_format=torch.channels_last)
    y = torch.from_numpy(y)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=num_epochs * ((len(X) + batch_size - 1) // batch_size)
    )
    net.train()
    for _ in range(num_epochs):
        for batch in torch.randperm(len(X), generator=generator).split(batch_size):
            shift = int(torch.randint(-3, 4, (1,), generator=generator))  # time shift: +-60 ms
            loss = F.cross_entropy(net.logits(X[batch].roll(shift, dims=3)), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def accuracy(net: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a float net on NHWC features."""
    logits = net.eval().logits(
        torch.from_numpy(np.ascontiguousarray(X.astype(np.float32).transpose(0, 3, 1, 2)))
    )
    return float((logits.argmax(1).numpy() == y).mean())


def _self_check():
    for net in (KwsCNN(), KwsDSCNN()):
        out = net(torch.zeros(2, 1, 13, 50))
        assert out.shape == (2, NUM_CLASSES) and torch.allclose(out.sum(1), torch.ones(2))
