"""Data helpers: the offline digits data set as tensors, streaming per-channel mean/std, TSN frame sampling.

Taught in: lessons/04_data.ipynb. Needs: torch, numpy, scikit-learn (digits only).
`StreamingMeanStd` sees each batch once and keeps float64 sums, so it handles data sets that do not
fit in memory and gives the same mean/std as computing over everything at once.
"""

import numpy as np
import torch


def load_digits_tensors(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 digits (1,797 images, shipped with the package) as float tensors in [0, 1].

    Returns X_train (N, 1, 8, 8), y_train (N,), X_test, y_test; a stratified split fixed by `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.images.astype(np.float32)[:, None] / 16.0  # pixel values are 0..16
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (X_tr, y_tr, X_te, y_te))


class StreamingMeanStd:
    """Per-channel mean and (population) std over batches shaped (N, C, ...), one pass, float64."""

    def __init__(self):
        self.count, self.sum, self.sum_sq = 0, None, None

    def update(self, X: torch.Tensor) -> "StreamingMeanStd":
        if X.dim() < 2:
            raise ValueError(f"expected a batch (N, C, ...), got shape {tuple(X.shape)}")
        x = X.detach().to(torch.float64).transpose(0, 1).reshape(X.shape[1], -1)  # (C, everything else)
        if self.sum is not None and x.shape[0] != self.sum.shape[0]:
            raise ValueError(f"batch has {x.shape[0]} channels, earlier batches had {self.sum.shape[0]}")
        # Shift by the first batch's mean: sum((x - shift)^2) avoids the cancellation of E[x^2] - E[x]^2.
        if self.sum is None:
            self.shift = x.mean(dim=1)
            self.sum, self.sum_sq = torch.zeros_like(self.shift), torch.zeros_like(self.shift)
        d = x - self.shift[:, None]
        self.sum += d.sum(dim=1)
        self.sum_sq += (d * d).sum(dim=1)
        self.count += x.shape[1]
        return self

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), each a float64 tensor with one value per channel."""
        if self.count == 0:
            raise ValueError("no data seen: call update() with at least one batch")
        mean_d = self.sum / self.count
        var = (self.sum_sq / self.count - mean_d**2).clamp_min(0)
        return self.shift + mean_d, var.sqrt()


def tsn_sample_indices(num_frames: int, num_segments: int, *, train: bool, generator=None) -> list[int]:
    """TSN sampling: split the video into `num_segments` equal spans and take one frame from each.

    train=True picks a random frame inside each span; train=False takes each span's middle frame.
    Videos shorter than num_segments repeat frames (sorted), so the result always has num_segments items.
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames}, {num_segments}")
    k, n = num_segments, num_frames
    if n < k:
        if not train:  # evenly repeated frames
            return [int((i + 0.5) * n / k) for i in range(k)]
        extra = torch.randint(n, (k - n,), generator=generator)
        return sorted(torch.cat([torch.arange(n), extra]).tolist())
    starts = [i * n // k for i in range(k)]
    ends = [(i + 1) * n // k for i in range(k)]  # spans cover every frame, the last one included
    if not train:
        return [int((i + 0.5) * n / k) for i in range(k)]
    offsets = torch.rand(k, generator=generator)
    return [
        s + min(int(o * (e - s)), e - s - 1) for s, e, o in zip(starts, ends, offsets.tolist(), strict=True)
    ]


def _self_check():
    assert tsn_sample_indices(10, 5, train=False) == [1, 3, 5, 7, 9]
    mean, std = StreamingMeanStd().update(torch.ones(2, 3, 4)).result()
    assert torch.equal(mean, torch.ones(3, dtype=torch.float64)) and torch.equal(
        std, torch.zeros(3, dtype=torch.float64)
    )
