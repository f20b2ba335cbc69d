"""Parameter groups and layer features against torch.optim by hand and torchvision's feature extraction."""

import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

from snippets.finetuning import LayerFeatures, param_groups
from snippets.models import ConvNet


def test_layer_features_equal_torchvision():
    torch.manual_seed(0)
    net = ConvNet(image_size=8).eval()
    X = torch.randn(4, 1, 8, 8)
    names = ["layer1", "layer2.1", "fc"]
    ref = create_feature_extractor(net, return_nodes=names)(X)
    with LayerFeatures(net, names) as feats:
        net(X)
    for n in names:
        torch.testing.assert_close(feats[n], ref[n])
    assert not net.layer1._forward_hooks  # hooks removed on exit


def test_layer_features_unknown_name():
    with pytest.raises(KeyError, match="no module named \\['layer9'\\]"):
        LayerFeatures(ConvNet(image_size=8), ["layer9"])


def test_param_groups_step_like_separate_optimizers():
    torch.manual_seed(0)
    net = ConvNet(image_size=8)
    for p in net.layer1.parameters():
        p.requires_grad_(False)
    groups = param_groups(net, {"fc": 0.1}, base_lr=0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert sorted(ids) == sorted(id(p) for p in trainable) and len(set(ids)) == len(ids)
    before = {k: v.clone() for k, v in net.named_parameters()}
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    torch.optim.SGD(groups, lr=123.0).step()  # the group lrs win over the default
    for name, p in net.named_parameters():
        lr = 0.0 if name.startswith("layer1") else 0.1 if name.startswith("fc") else 0.01
        expected = before[name] - lr * p.grad if p.grad is not None else before[name]
        torch.testing.assert_close(p.detach(), expected)


def test_param_groups_bad_prefix():
    with pytest.raises(ValueError, match="prefix 'head' matches no trainable parameter"):
        param_groups(ConvNet(image_size=8), {"head": 0.1}, base_lr=0.01)
