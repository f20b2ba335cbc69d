"""pairwise_distances against a float64 NumPy reference."""

import numpy as np
import pytest
import torch

from snippets.tensors import pairwise_distances


@pytest.mark.parametrize("method", ["cdist", "broadcast"])
@pytest.mark.parametrize("n, m", [(3, 5), (40, 30)])  # cdist switches to the matmul form above 25 rows
def test_matches_numpy_reference(method, n, m):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(n, 7, generator=g), torch.randn(m, 7, generator=g)
    a, b = x1.double().numpy(), x2.double().numpy()
    ref = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(pairwise_distances(x1, x2, method=method).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="feature sizes differ"):
        pairwise_distances(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"got shapes \(3,\)"):
        pairwise_distances(torch.zeros(3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="method must be"):
        pairwise_distances(torch.zeros(2, 3), torch.zeros(2, 3), method="fast")
