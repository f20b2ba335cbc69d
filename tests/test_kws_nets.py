"""kws_nets: the source's layer shapes, and batch-norm folding that leaves the outputs unchanged."""

import numpy as np
import pytest
import torch

from snippets import kws_nets


def test_cnn_has_the_source_layers():
    net = kws_nets.KwsCNN().eval()
    assert [p.shape for p in net.parameters() if p.ndim > 1] == [
        (32, 1, 3, 3), (64, 32, 3, 3), (256, 2304), (128, 256), (11, 128)]  # fmt: skip
    out = net(torch.zeros(1, 1, 13, 50))
    assert out.shape == (1, 11) and torch.allclose(
        out, torch.softmax(net.logits(torch.zeros(1, 1, 13, 50)), 1)
    )


def test_fused_dscnn_matches_unfused():
    torch.manual_seed(0)
    net = kws_nets.KwsDSCNN()
    net.train()
    net(torch.randn(16, 1, 13, 50))  # give the batch norms non-trivial running statistics
    net.eval()
    x = torch.randn(4, 1, 13, 50)
    fused = net.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    torch.testing.assert_close(fused.logits(x), net.logits(x), atol=1e-5, rtol=1e-4)


def test_training_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 128)
    X = rng.standard_normal((128, 13, 50, 1)).astype(np.float32) + 2.0 * y[:, None, None, None]
    net = kws_nets.train(kws_nets.KwsDSCNN(num_classes=2), X, y, num_epochs=3, batch_size=32)
    assert kws_nets.accuracy(net, X, y) > 0.9


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match=r"expected X of shape \(N, 13, 50, 1\)"):
        kws_nets.train(kws_nets.KwsCNN(), np.zeros((4, 1, 13, 50), np.float32), np.zeros(4, np.int64))
