"""Label-smoothing cross-entropy written out, equal to nn.CrossEntropyLoss(label_smoothing=eps).

Taught in: lessons/05_training.ipynb. Needs: torch.
The target puts 1 - eps + eps/K on the true class and eps/K on every class (K classes); the loss
takes raw logits, like nn.CrossEntropyLoss: no softmax before it.
"""

import torch
from torch import nn


class LabelSmoothingCrossEntropy(nn.Module):
    """(1 - eps) * NLL(true class) + eps * mean over classes of -log p."""

    def __init__(self, eps: float = 0.1, reduction: str = "mean"):
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.eps, self.reduction = eps, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2 or target.shape != logits.shape[:1]:
            raise ValueError(
                f"expected logits (N, K) and integer targets (N,), got {tuple(logits.shape)} and "
                f"{tuple(target.shape)}"
            )
        log_p = logits.log_softmax(dim=1)
        nll = -log_p.gather(1, target[:, None]).squeeze(1)
        smooth = -log_p.mean(dim=1)
        loss = (1.0 - self.eps) * nll + self.eps * smooth
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss


def _self_check():
    torch.manual_seed(0)  # a self-check must not depend on the caller's random state
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    ref = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target)
    assert torch.allclose(LabelSmoothingCrossEntropy(0.1)(logits, target), ref, atol=1e-6)
