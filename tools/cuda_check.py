"""Run the CUDA-only paths of lessons 01-07 on a GPU machine and print one PASS/FAIL line per check.

    python tools/cuda_check.py              # on a machine with a CUDA GPU; exit code 1 if any check fails
    python tools/cuda_check.py --cpu-smoke  # the device-independent checks on the CPU (tests the script)

Needs only torch (+ numpy) and the repository's snippets/ folder, which it puts on sys.path itself.
On a machine without CUDA it prints "no CUDA device" and exits 0. Covered: float16 autocast + GradScaler
training steps (and a skipped step on overflow), cudnn.deterministic/benchmark, two seeded GPU runs giving
identical weights, pin_memory + non_blocking copies, what empty_cache does to memory_reserved, the number
of GPU->CPU syncs per epoch, SyncBatchNorm under DDP, and a GPU checkpoint loaded on the CPU.
The SyncBatchNorm check uses one process (DDP accepts SyncBatchNorm only on GPUs); exchanging statistics
between processes needs two GPUs and is not exercised here.
"""

import argparse
import copy
import datetime
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from snippets.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from snippets.models import ConvNet  # noqa: E402
from snippets.reproducibility import seed_everything  # noqa: E402
from snippets.training import evaluate, train_one_epoch  # noqa: E402

RESULTS: list[tuple[str, bool, str]] = []


def check(name):
    """Decorator: run the check, record PASS/FAIL with a one-line detail; an exception is a FAIL."""

    def wrap(fn):
        def run(*args):
            try:
                ok, detail = fn(*args)
            except Exception as e:  # a crash is a failed check, not the end of the report
                ok, detail = False, f"{type(e).__name__}: {e}".splitlines()[0]
                traceback.print_exc(file=sys.stderr)
            RESULTS.append((name, bool(ok), detail))
            print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

        return run

    return wrap


def toy_data(n=512):
    """Two classes of 8x8 images that differ in mean brightness: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.randn(n, 1, 8, 8, generator=g) * 0.5 + (y[:, None, None, None] * 2 - 1) * 0.5
    return TensorDataset(X, y)


def train_run(device, seed=0, epochs=2, **kwargs):
    generator = seed_everything(seed)
    net = ConvNet(num_classes=2, image_size=8).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loader = DataLoader(toy_data(), batch_size=64, shuffle=True, generator=generator)
    losses = [train_one_epoch(net, loader, nn.CrossEntropyLoss(), optimizer, device=device, **kwargs)
              for _ in range(epochs)]  # fmt: skip
    return net, losses, loader


@check("two seeded runs identical (cudnn.deterministic=True, benchmark=False)")
def check_determinism(device):
    net1, _, _ = train_run(device)
    net2, _, _ = train_run(device)
    same = all(
        torch.equal(a, b) for a, b in zip(net1.state_dict().values(), net2.state_dict().values(), strict=True)
    )
    flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    return same and flags == (True, False), f"torch.equal on all weights: {same}; flags {flags}"


@check("cudnn.benchmark=True runs and agrees with the deterministic kernels")
def check_benchmark(device):
    seed_everything(0)
    conv = nn.Conv2d(16, 32, 5, padding=2).to(device)
    X = torch.randn(64, 16, 32, 32, device=device)
    reference = conv(X)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    torch.use_deterministic_algorithms(False)
    try:
        out = conv(X)
        out = conv(X)  # the second call uses the algorithm benchmarking picked
    finally:
        seed_everything(0)  # restores deterministic=True, benchmark=False
    diff = (out - reference).abs().max().item()
    return diff < 1e-3, f"max difference {diff:.1e} (TF32/algorithm choice may differ in the last bits)"


@check("float16 autocast + GradScaler training (train_one_epoch)")
def check_amp(device):
    scaler = torch.amp.GradScaler(device.type)
    net, losses, loader = train_run(device, epochs=3, autocast_dtype=torch.float16, scaler=scaler,
                                    max_grad_norm=5.0)  # fmt: skip
    acc, _ = evaluate(net, loader, device=device)
    with torch.autocast(device.type, dtype=torch.float16):
        out_dtype = net(next(iter(loader))[0].to(device)).dtype
    weights_fp32 = all(p.dtype == torch.float32 for p in net.parameters())
    ok = losses[-1] < losses[0] and acc > 0.9 and out_dtype == torch.float16 and weights_fp32
    ok = ok and scaler.get_scale() > 0
    return ok, (f"losses {[round(v, 3) for v in losses]}, accuracy {acc:.2f}, autocast output {out_dtype}, "
                f"weights float32 {weights_fp32}, scale {scaler.get_scale():g}")  # fmt: skip


@check("GradScaler skips the step and lowers the scale when gradients overflow")
def check_scaler_overflow(device):
    seed_everything(0)
    net = nn.Linear(4, 1).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(device.type, init_scale=2.0**16)
    before = [p.detach().clone() for p in net.parameters()]
    with torch.autocast(device.type, dtype=torch.float16):
        loss = net(torch.full((2, 4), 60000.0, device=device)).float().pow(2).sum()  # inf in float16 backward
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    unchanged = all(torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))
    return (
        unchanged and scaler.get_scale() < 2.0**16,
        f"weights unchanged {unchanged}, scale now {scaler.get_scale():g}",
    )


@check("pin_memory=True DataLoader + non_blocking copies")
def check_pinned(device):
    loader = DataLoader(toy_data(), batch_size=256, pin_memory=True)
    X, y = next(iter(loader))
    pinned = X.is_pinned() and y.is_pinned()
    X_gpu = X.to(device, non_blocking=True)
    torch.cuda.synchronize()
    same = torch.equal(X_gpu.cpu(), X)
    big = torch.randn(64, 1024, 1024)  # 256 MiB
    timings = {}
    for name, src in (("pageable", big), ("pinned", big.pin_memory())):
        src.to(device)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            src.to(device, non_blocking=True)
        torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / 5
    ratio = timings["pageable"] / timings["pinned"]
    return (
        pinned and same,
        f"batches pinned {pinned}, copy exact {same}, pinned copies {ratio:.1f}x faster (256 MiB)",
    )


@check("empty_cache releases reserved memory, not live tensors")
def check_empty_cache(device):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base_alloc, base_res = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    keep = torch.empty(128, 1024, 1024, device=device)  # 512 MiB stays alive
    tmp = torch.empty(256, 1024, 1024, device=device)  # 1 GiB freed below
    del tmp
    mib = 2**20
    reserved_after_del = torch.cuda.memory_reserved() - base_res
    torch.cuda.empty_cache()
    reserved_after_empty = torch.cuda.memory_reserved() - base_res
    allocated = torch.cuda.memory_allocated() - base_alloc
    ok = (
        reserved_after_del >= 1536 * mib
        and 512 * mib <= reserved_after_empty < 1536 * mib
        and allocated == 512 * mib
    )
    del keep
    detail = f"after del: reserved +{reserved_after_del // mib} MiB; after empty_cache: reserved "
    detail += f"+{reserved_after_empty // mib} MiB, allocated +{allocated // mib} MiB (the live tensor)"
    return ok, detail


@check("train_one_epoch syncs less than a loop calling .item() every batch")
def check_syncs(device):
    net, _, loader = train_run(device, epochs=0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def count_syncs(fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fn()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    def naive():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(net(X), y)
            loss.backward()
            optimizer.step()
            loss.item()  # one GPU->CPU sync per batch

    ours = count_syncs(lambda: train_one_epoch(net, loader, loss_fn, optimizer, device=device))
    theirs = count_syncs(naive)
    return ours < theirs, f"synchronising calls per epoch: train_one_epoch {ours}, .item() per batch {theirs}"


@check("SyncBatchNorm accepted by DDP on the GPU (world size 1: equals BatchNorm)")
def check_syncbn(device):
    import torch.distributed as dist

    seed_everything(0)
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).to(device)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain)).to(device)
    X = torch.randn(16, 3, 12, 12, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        backend = "nccl" if dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend, init_method=f"file://{tmp}/store", rank=0, world_size=1,
                                timeout=datetime.timedelta(seconds=60))  # fmt: skip
        try:
            ddp = nn.parallel.DistributedDataParallel(sync, device_ids=[device.index or 0])
            out_sync = ddp(X)
            out_sync.sum().backward()
        finally:
            dist.destroy_process_group()
    out_plain = plain(X)
    out_plain.sum().backward()
    same_out = torch.allclose(out_sync, out_plain, atol=1e-5)
    same_grad = torch.allclose(sync[0].weight.grad, plain[0].weight.grad, atol=1e-4)
    return same_out and same_grad, f"backend {backend}: outputs equal {same_out}, gradients equal {same_grad}"


@check("checkpoint saved from the GPU loads on the CPU (map_location)")
def check_checkpoint(device):
    net = ConvNet(num_classes=2, image_size=8).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / "gpu.pt", net=net, epoch=1)
        raw = torch.load(path, weights_only=True)
        on_gpu = raw["model"]["fc.weight"].device.type == device.type
        cpu_net = ConvNet(num_classes=2, image_size=8)
        load_checkpoint(path, cpu_net, map_location="cpu")
    same = torch.equal(cpu_net.fc.weight, net.fc.weight.cpu())
    return on_gpu and same, f"stored on {device.type}: {on_gpu}; loaded on CPU equal: {same}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="run the device-independent checks on the CPU"
    )
    args = parser.parse_args(argv)
    cudnn = torch.backends.cudnn.version()
    print(f"torch {torch.__version__} | CUDA build {torch.version.cuda} | cuDNN {cudnn}")
    if args.cpu_smoke:
        device = torch.device("cpu")
        for fn in (check_determinism, check_benchmark, check_amp, check_scaler_overflow, check_checkpoint):
            fn(device)
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (run this on a GPU machine)")
        return 0
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before the first cuBLAS call
        device = torch.device("cuda", 0)
        print(f"GPU: {torch.cuda.get_device_name(device)}")
        for fn in (check_determinism, check_benchmark, check_amp, check_scaler_overflow, check_pinned,
                   check_empty_cache, check_syncs, check_syncbn, check_checkpoint):  # fmt: skip
            fn(device)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
