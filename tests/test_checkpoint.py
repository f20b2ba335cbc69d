"""Checkpoints: round trip, atomic writes, clear errors, prefixes and partial loading."""

import pickle

import pytest
import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from snippets.checkpoint import (
    load_checkpoint,
    load_matching_state_dict,
    save_checkpoint,
    strip_module_prefix,
)


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))


def test_round_trip_resumes_exactly(tmp_path):
    net = _net(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    save_checkpoint(tmp_path / "ck.pt", net=net, optimizer=opt, epoch=3, best_acc=0.75)
    net2 = _net(1)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.01)
    state = load_checkpoint(tmp_path / "ck.pt", net2, opt2)
    assert (state["epoch"], state["best_acc"]) == (3, 0.75)
    for a, b in ((net, opt), (net2, opt2)):  # one more identical step on both: Adam moments were restored
        b.zero_grad()
        nn.functional.cross_entropy(a(X), y).backward()
        b.step()
    for k, v in net.state_dict().items():
        assert torch.equal(v, net2.state_dict()[k]), k
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary file left


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", net=_net(0), epoch=1)
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint(path, net=_net(0), epoch=2, bad=lambda: None)  # lambdas cannot be pickled
    assert load_checkpoint(path, _net(0))["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt", _net(0))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt is corrupt"):
        load_checkpoint(bad, _net(0))
    truncated = tmp_path / "trunc.pt"
    save_checkpoint(truncated, net=_net(0))
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ValueError, match="trunc.pt is corrupt"):
        load_checkpoint(truncated, _net(0))
    plain = tmp_path / "plain.pt"
    torch.save(_net(0).state_dict(), plain)
    with pytest.raises(ValueError, match="has no 'model' entry"):
        load_checkpoint(plain, _net(0))


def test_code_in_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": print}, path)  # a pickled callable: weights_only refuses it
    with pytest.raises(ValueError, match="corrupt or not a torch checkpoint"):
        load_checkpoint(path, _net(0))


def test_strip_module_prefix_matches_ddp_names_and_torch_helper():
    net = _net(0)
    wrapped = nn.DataParallel(net)  # DataParallel on CPU just wraps: its keys carry "module."
    assert all(k.startswith("module.") for k in wrapped.state_dict())
    assert list(strip_module_prefix(wrapped.state_dict())) == list(net.state_dict())
    reference = dict(wrapped.state_dict())
    consume_prefix_in_state_dict_if_present(reference, "module.")  # PyTorch's own, in place
    assert list(strip_module_prefix(wrapped.state_dict())) == list(reference)


def test_load_matching_reports_and_loads():
    src = _net(0)
    dst = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 5))  # new head: 5 classes
    loaded, skipped = load_matching_state_dict(dst, {"module." + k: v for k, v in src.state_dict().items()})
    assert skipped == ["2.weight", "2.bias"]
    assert set(loaded) == set(src.state_dict()) - {"2.weight", "2.bias"}
    for k in loaded:
        assert torch.equal(dst.state_dict()[k], src.state_dict()[k])


def test_load_matching_nothing_names_both_sides():
    with pytest.raises(ValueError, match=r"(?s)state dict keys: \['encoder.w'\].*model keys:\s+\['0.weight'"):
        load_matching_state_dict(_net(0), {"encoder.w": torch.zeros(1)})
