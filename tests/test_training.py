"""train_one_epoch/evaluate against a hand-written loop with plain torch calls."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snippets.training import evaluate, train_one_epoch


def _setup():
    torch.manual_seed(0)
    X, y = torch.randn(96, 6), torch.randint(0, 3, (96,))
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    return X, y, net


@pytest.mark.parametrize("clip", [None, 0.05])
def test_epoch_equals_reference_loop(clip):
    X, y, net = _setup()
    ref = copy.deepcopy(net)
    loader = DataLoader(TensorDataset(X, y), batch_size=32)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    torch.manual_seed(1)
    mean_loss = train_one_epoch(net, loader, nn.CrossEntropyLoss(), opt, scheduler=sched, max_grad_norm=clip)

    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=2, gamma=0.5)
    torch.manual_seed(1)  # same dropout masks
    ref.train()
    losses = []
    for Xb, yb in loader:
        ref_opt.zero_grad()
        loss = nn.functional.cross_entropy(ref(Xb), yb)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(ref.parameters(), clip)
        ref_opt.step()
        ref_sched.step()
        losses.append(loss.item())
    assert mean_loss == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(net.state_dict()[k], v)
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] == 0.05


def test_evaluate_equals_reference():
    X, y, net = _setup()
    loader = DataLoader(TensorDataset(X, y), batch_size=40)
    acc, loss = evaluate(net, loader, loss_fn=nn.CrossEntropyLoss())
    net.eval()
    with torch.no_grad():
        logits = net(X)
    assert acc == (logits.argmax(1) == y).float().mean().item()
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert not net.training


def test_bfloat16_autocast_runs_and_learns():
    X, y, net = _setup()
    loader = DataLoader(TensorDataset(X, y), batch_size=32)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = [train_one_epoch(net, loader, nn.CrossEntropyLoss(), opt, autocast_dtype=torch.bfloat16)
              for _ in range(5)]  # fmt: skip
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in net.parameters())  # autocast leaves the weights float32


def test_empty_loader():
    X, y, net = _setup()
    empty = DataLoader(TensorDataset(X[:0], y[:0]), batch_size=4)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(net, empty)
