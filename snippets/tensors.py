"""Pairwise Euclidean distances between two sets of row vectors, two ways that agree.

Taught in: lessons/02_tensors.ipynb. Needs: torch.
`pairwise_distances(x1, x2)` uses `torch.cdist`; method="broadcast" is the textbook
`x1[:, None, :] - x2[None, :, :]` form, which builds an (n, m, d) intermediate.
"""

import torch


def pairwise_distances(x1: torch.Tensor, x2: torch.Tensor, *, method: str = "cdist") -> torch.Tensor:
    """Distances between every row of x1 (n, d) and every row of x2 (m, d): an (n, m) tensor."""
    if x1.dim() != 2 or x2.dim() != 2:
        shapes = f"{tuple(x1.shape)} and {tuple(x2.shape)}"
        raise ValueError(f"expected two 2-D tensors (n, d) and (m, d), got shapes {shapes}")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature sizes differ: x1 has d={x1.shape[1]}, x2 has d={x2.shape[1]}")
    if method == "cdist":
        # For more than 25 rows cdist uses ||a||^2 + ||b||^2 - 2ab (a matrix product): fast, tiny error.
        return torch.cdist(x1, x2)
    if method == "broadcast":
        # (n, 1, d) - (1, m, d) -> (n, m, d): memory grows with n * m * d.
        return (x1[:, None, :] - x2[None, :, :]).pow(2).sum(dim=2).sqrt()
    raise ValueError(f"method must be 'cdist' or 'broadcast', got {method!r}")


def _self_check():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert pairwise_distances(a, b).item() == 5.0 == pairwise_distances(a, b, method="broadcast").item()
