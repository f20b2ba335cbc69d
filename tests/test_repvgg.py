"""repvgg: re-parameterised blocks must compute what the training-time blocks compute (torch reference)."""

import copy

import pytest
import torch
from torch import nn

from snippets.repvgg import CSPStackRep, RepBlock, RepVGGBlock, fuse_conv_bn, reparameterize_model


def randomise_bn(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.3, 3)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("stride,bias", [(1, False), (2, True)])
def test_fuse_conv_bn_matches_conv_then_bn(stride, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, stride, 1, bias=bias)
    bn = randomise_bn(nn.BatchNorm2d(7))
    X = torch.randn(3, 5, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(fuse_conv_bn(conv, bn)(X), bn(conv(X)), atol=1e-5, rtol=1e-5)


def test_fuse_conv_bn_names_mismatch():
    with pytest.raises(ValueError, match="4 output channels but BN has 5"):
        fuse_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5))
    with pytest.raises(TypeError, match="expected"):
        fuse_conv_bn(nn.Linear(3, 4), nn.BatchNorm2d(4))


@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (4, 8, 1), (8, 8, 2), (6, 12, 2)])
def test_repvgg_block_reparameterisation_is_exact(cin, cout, stride):
    torch.manual_seed(1)
    block = randomise_bn(RepVGGBlock(cin, cout, stride))
    assert (block.branch_identity is not None) == (cin == cout and stride == 1)
    X = torch.randn(2, cin, 16, 16)
    with torch.no_grad():
        expected = block(X)
        block.reparameterize()
        assert isinstance(block.fused, nn.Conv2d) and block.fused.kernel_size == (3, 3)
        torch.testing.assert_close(block(X), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", [lambda: RepBlock(8, 16, n=3), lambda: CSPStackRep(8, 16, n=2)])
def test_whole_nets_reparameterise_and_lose_every_bn(make):
    torch.manual_seed(2)
    net = randomise_bn(make())
    X = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        expected = net(X)
        fused = reparameterize_model(copy.deepcopy(net))
        torch.testing.assert_close(fused(X), expected, atol=1e-5, rtol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_reparameterize_refuses_training_mode():
    with pytest.raises(RuntimeError, match="eval"):
        RepVGGBlock(4, 4).train().reparameterize()
