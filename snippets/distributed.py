"""DistributedDataParallel on CPU (gloo, several processes on one machine) and its single-process twin.

Taught in: lessons/07_distributed.ipynb. Needs: torch.
`run_ddp(X, y, configs)` trains one model per config in `world_size` processes with DistributedSampler;
`train_single(X, y, **config)` trains the same model in one process on the same global batches. With
no BatchNorm their weights agree to float rounding; plain BatchNorm normalises each process's half
batch, so they drift apart. SyncBatchNorm fixes that, but only on GPUs (it refuses CPU tensors).
"""

import datetime
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

DEFAULTS = {"local_batch": 32, "num_epochs": 2, "lr": 0.1, "batchnorm": False, "sync_bn": False, "seed": 0}


def make_mlp(num_inputs: int, num_classes: int, *, batchnorm: bool = False, seed: int = 0) -> nn.Module:
    """A small classifier; the same seed gives the same initial weights in every process."""
    torch.manual_seed(seed)
    norm = [nn.BatchNorm1d(32)] if batchnorm else []
    return nn.Sequential(
        nn.Flatten(), nn.Linear(num_inputs, 32), *norm, nn.ReLU(), nn.Linear(32, num_classes)
    )


def _net_for(X, y, cfg):
    return make_mlp(X[0].numel(), int(y.max()) + 1, batchnorm=cfg["batchnorm"], seed=cfg["seed"])


def global_batches(num_samples: int, world_size: int, local_batch: int, epoch: int, seed: int):
    """The sample indices of each optimizer step, all ranks together, as DistributedSampler deals them."""
    dataset = range(num_samples)
    shards = []
    for rank in range(world_size):
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)  # forget this and every epoch repeats the same order
        shards.append(list(sampler))
    steps = len(shards[0]) // local_batch
    return [sum((s[i * local_batch : (i + 1) * local_batch] for s in shards), []) for i in range(steps)]


def train_single(X: torch.Tensor, y: torch.Tensor, *, world_size: int = 2, **config) -> dict:
    """Reference: one process, each step on the union of what the ranks would see in that step."""
    cfg = {**DEFAULTS, **config}
    net = _net_for(X, y, cfg)
    optimizer = torch.optim.SGD(net.parameters(), lr=cfg["lr"])
    for epoch in range(cfg["num_epochs"]):
        for idx in global_batches(len(X), world_size, cfg["local_batch"], epoch, cfg["seed"]):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            optimizer.step()
    return net.state_dict()


def _train_rank(X, y, rank, world_size, cfg) -> dict:
    net = _net_for(X, y, cfg)
    if cfg["sync_bn"]:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ddp = nn.parallel.DistributedDataParallel(net)  # averages gradients over processes in backward()
    dataset = TensorDataset(X, y)
    sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=cfg["seed"], drop_last=True)
    loader = DataLoader(dataset, batch_size=cfg["local_batch"], sampler=sampler, drop_last=True)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=cfg["lr"])
    for epoch in range(cfg["num_epochs"]):
        sampler.set_epoch(epoch)
        for Xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(ddp(Xb), yb).backward()
            optimizer.step()
    return net.state_dict()


def _worker(rank, world_size, init_file, X, y, configs, out_file):
    torch.set_num_threads(1)  # the processes share the machine's cores
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=120))  # fmt: skip
    try:
        results = []
        for config in configs:
            try:
                results.append({"state": _train_rank(X, y, rank, world_size, {**DEFAULTS, **config})})
            except (ValueError, RuntimeError) as e:  # every rank fails the same way, so none waits forever
                results.append({"error": f"{type(e).__name__}: {e}"})
        if rank == 0:
            torch.save(results, out_file)
    finally:
        dist.destroy_process_group()


def run_ddp(X: torch.Tensor, y: torch.Tensor, configs: list[dict], *, world_size: int = 2) -> list[dict]:
    """Spawn `world_size` gloo processes, train one model per config; per config {"state"} or {"error"}."""
    if len(X) != len(y):
        raise ValueError(f"X and y differ in length: {len(X)} vs {len(y)}")
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "results.pt"
        mp.spawn(_worker, args=(world_size, Path(tmp) / "store", X, y, configs, out_file), nprocs=world_size)
        return torch.load(out_file, weights_only=True)


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest element difference between two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise ValueError(f"state dicts have different keys: {sorted(a.keys() ^ b.keys())}")
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _self_check():
    torch.manual_seed(0)  # a self-check must not depend on the caller's random state
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    state = train_single(X, y, local_batch=8, num_epochs=1)
    assert state["3.weight"].shape == (3, 32)  # Flatten, Linear, ReLU, Linear
