"""The label-smoothing loss equals nn.CrossEntropyLoss(label_smoothing=eps), value and gradient."""

import pytest
import torch
from torch import nn

from snippets.losses import LabelSmoothingCrossEntropy


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_equals_torch(eps, reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=g, requires_grad=True)
    target = torch.randint(0, 5, (16,), generator=g)
    ours = LabelSmoothingCrossEntropy(eps, reduction)(logits, target)
    ref = nn.CrossEntropyLoss(label_smoothing=eps, reduction=reduction)(logits, target)
    torch.testing.assert_close(ours, ref)
    (g1,) = torch.autograd.grad(ours.sum(), logits)
    (g2,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g1, g2)


def test_bad_input():
    with pytest.raises(ValueError, match="eps must be"):
        LabelSmoothingCrossEntropy(1.0)
    with pytest.raises(ValueError, match=r"expected logits \(N, K\)"):
        LabelSmoothingCrossEntropy()(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
