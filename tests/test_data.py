"""Streaming mean/std against the exact whole-data value; TSN indices against the original formula."""

import numpy as np
import pytest
import torch

from snippets.data import StreamingMeanStd, load_digits_tensors, tsn_sample_indices


def test_streaming_equals_exact():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(103, 3, 5, 4, generator=g) * 255 + 1000  # large offset: naive E[x^2]-E[x]^2 loses digits
    stats = StreamingMeanStd()
    for batch in X.split(10):
        stats.update(batch)
    mean, std = stats.result()
    ref = X.double().numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(mean.numpy(), ref.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(std.numpy(), ref.std(axis=1), rtol=1e-9)


def test_streaming_errors():
    with pytest.raises(ValueError, match="no data seen"):
        StreamingMeanStd().result()
    with pytest.raises(ValueError, match="channels"):
        StreamingMeanStd().update(torch.zeros(2, 3)).update(torch.zeros(2, 4))


def test_digits_split():
    X_train, y_train, X_test, y_test = load_digits_tensors()
    assert X_train.shape == (1437, 1, 8, 8) and X_test.shape == (360, 1, 8, 8)
    assert X_train.min() >= 0 and X_train.max() <= 1 and set(y_test.tolist()) == set(range(10))


@pytest.mark.parametrize("n, k", [(10, 3), (100, 8), (5, 4), (7, 7)])
def test_tsn_eval_equals_original(n, k):
    tick = n / k  # the original TSN code: int(tick / 2.0 + tick * x) for x in range(k)
    assert tsn_sample_indices(n, k, train=False) == [int(tick / 2.0 + tick * x) for x in range(k)]


@pytest.mark.parametrize("n, k", [(10, 3), (100, 8), (9, 9), (3, 5), (1, 4)])
def test_tsn_train_properties(n, k):
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        idx = tsn_sample_indices(n, k, train=True, generator=g)
        assert len(idx) == k and idx == sorted(idx) and 0 <= idx[0] and idx[-1] < n
        if n >= k:  # one frame inside each span [i*n//k, (i+1)*n//k)
            assert all(i * n // k <= j < (i + 1) * n // k for i, j in enumerate(idx))
        else:
            assert set(idx) == set(range(n))  # every frame used, some repeated
        seen.update(idx)
    assert seen == set(range(n))  # the tail frames are reachable too


def test_tsn_bad_input():
    with pytest.raises(ValueError, match="num_frames >= 1"):
        tsn_sample_indices(0, 3, train=True)
