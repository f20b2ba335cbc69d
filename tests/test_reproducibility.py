"""seed_everything: two seeded runs give identical results, DataLoader workers included."""

import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from snippets.reproducibility import make_generator, seed_everything, seed_worker


class NoisyDataset(Dataset):
    """Draws from numpy, python random and torch in __getitem__, as augmentations do."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(
            [i, np.random.rand(), random.random(), torch.rand(()).item()], dtype=torch.float64
        )


def _run(seed, num_workers):
    generator = seed_everything(seed)
    loader = DataLoader(NoisyDataset(), batch_size=4, shuffle=True, num_workers=num_workers,
                        worker_init_fn=seed_worker, generator=generator)  # fmt: skip
    net = torch.nn.Linear(4, 2)
    return torch.cat([b for b in loader]), net.weight.detach().clone()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_two_runs_identical(num_workers):
    data1, w1 = _run(0, num_workers)
    data2, w2 = _run(0, num_workers)
    assert torch.equal(data1, data2) and torch.equal(w1, w2)
    data3, _ = _run(1, num_workers)
    assert not torch.equal(data1, data3)


def test_workers_get_different_streams():
    data, _ = _run(0, 2)
    numpy_draws = data[:, 1]
    assert len(set(numpy_draws.tolist())) == len(numpy_draws)  # no two workers repeat the same numbers


def test_flags_and_bad_seed():
    seed_everything(0)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(False)
    with pytest.raises(ValueError, match="seed must be an int"):
        seed_everything(-1)
    assert torch.equal(
        torch.randperm(10, generator=make_generator(3)), torch.randperm(10, generator=make_generator(3))
    )
