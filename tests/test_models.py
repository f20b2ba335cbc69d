"""ConvNet, bilinear pooling, parameter counts, summary and init, checked against torch's own numbers."""

import torch
from torch import nn

from snippets.models import ConvNet, bilinear_pool, count_parameters, init_weights, summary


def test_convnet_shapes_and_parameter_count():
    net = ConvNet(num_classes=10, image_size=28)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # by hand: conv1 16*1*5*5+16, bn1 2*16, conv2 32*16*5*5+32, bn2 2*32, fc 32*7*7*10+10
    expected = (16 * 25 + 16) + 32 + (32 * 16 * 25 + 32) + 64 + (32 * 49 * 10 + 10)
    assert count_parameters(net) == expected == sum(p.numel() for p in net.parameters())


def test_trainable_only_and_buffers():
    net = ConvNet(image_size=8)
    for p in net.layer1.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in net.layer1.parameters())
    assert count_parameters(net, trainable_only=True) == count_parameters(net) - frozen
    buffers = sum(b.numel() for b in net.buffers())  # running mean/var and num_batches_tracked
    assert buffers == 2 * 16 + 1 + 2 * 32 + 1


def test_bilinear_pool_against_einsum():
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    outer = torch.einsum("ndp,nep->nde", x.flatten(2), x.flatten(2)) / 20
    ref = (torch.sign(outer) * torch.sqrt(outer.abs() + 1e-5)).flatten(1)
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(bilinear_pool(x), ref)


def test_summary_matches_forward_shapes_and_keeps_mode():
    net = ConvNet(image_size=8).train()
    before = net.layer1[1].running_mean.clone()
    text = summary(net, torch.zeros(3, 1, 8, 8))
    assert net.training and torch.equal(net.layer1[1].running_mean, before)
    assert "(3, 16, 4, 4)" in text and "(3, 10)" in text
    assert f"total params: {sum(p.numel() for p in net.parameters()):,}" in text


def test_init_weights():
    torch.manual_seed(0)
    net = init_weights(ConvNet(image_size=8))
    assert torch.equal(net.layer1[1].weight, torch.ones(16))
    assert all(m.bias.abs().sum() == 0 for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    std = net.layer2[0].weight.std().item()  # kaiming fan_out: std = sqrt(2 / (32 * 5 * 5))
    assert abs(std - (2 / 800) ** 0.5) < 0.1 * (2 / 800) ** 0.5
