"""Make PyTorch runs repeatable: one call seeds every generator and pins the nondeterministic kernels.

Taught in: lessons/01_configuration_and_reproducibility.ipynb. Needs: torch, numpy.
`seed_everything(0)` at the top of a script; `seed_worker` + `make_generator` for DataLoader workers.
"""

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed python, numpy and torch (CPU and every GPU) and, if asked, force deterministic kernels.

    Returns a torch.Generator seeded the same way, for a DataLoader's `generator=` argument.
    """
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing, which varies
        torch.use_deterministic_algorithms(True, warn_only=True)
    return make_generator(seed)


def make_generator(seed: int = 0) -> torch.Generator:
    """A CPU generator for DataLoader(shuffle=True, generator=...): the shuffle order then repeats."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """DataLoader(worker_init_fn=seed_worker): give numpy/random in each worker torch's per-worker seed.

    PyTorch >= 1.9 already seeds numpy and random in each worker; this makes it explicit (and works the
    same on older versions). Seed any other library your Dataset draws from here too.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
