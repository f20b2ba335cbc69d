"""A classification training epoch and an evaluation pass, with optional clipping, AMP and scheduler.

Taught in: lessons/05_training.ipynb. Needs: torch.
`train_one_epoch` returns the mean loss; `evaluate` returns (accuracy, mean loss). Losses are summed
on the device and read once per epoch: one GPU->CPU sync instead of one per batch.
"""

import contextlib

import torch
from torch import nn


def train_one_epoch(net: nn.Module, loader, loss_fn, optimizer, *, device="cpu", scheduler=None,
                    max_grad_norm=None, autocast_dtype=None, scaler=None) -> float:  # fmt: skip
    """One pass over `loader`. autocast_dtype (torch.bfloat16 on CPU, torch.float16 on CUDA) turns on
    mixed precision; with float16 pass a torch.amp.GradScaler. `scheduler.step()` runs once per batch."""
    device = torch.device(device)
    net.train()  # BatchNorm uses batch statistics, Dropout drops
    total, count = torch.zeros((), device=device), 0
    for X, y in loader:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)  # before backward: gradients accumulate otherwise
        amp = (
            torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
        )
        with amp:
            loss = loss_fn(net(X), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        else:
            loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach() * len(y)
        count += len(y)
    if count == 0:
        raise ValueError("the loader yielded no batches")
    return total.item() / count


@torch.inference_mode()
def evaluate(net: nn.Module, loader, *, device="cpu", loss_fn=None) -> tuple[float, float]:
    """Accuracy and mean loss (nan without loss_fn) in eval mode, with autograd fully off."""
    net.eval()  # BatchNorm uses running statistics, Dropout is off
    correct = total_loss = torch.zeros((), device=device)
    count = 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        logits = net(X)
        correct = correct + (logits.argmax(dim=1) == y).sum()
        if loss_fn is not None:
            total_loss = total_loss + loss_fn(logits, y) * len(y)
        count += len(y)
    if count == 0:
        raise ValueError("the loader yielded no batches")
    mean_loss = total_loss.item() / count if loss_fn is not None else float("nan")
    return correct.item() / count, mean_loss


def _self_check():
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    X, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    net = nn.Linear(4, 2)
    train_one_epoch(net, loader, nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.1))
    assert 0.0 <= evaluate(net, loader)[0] <= 1.0
