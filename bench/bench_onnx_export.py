"""ONNX Runtime vs PyTorch eager: CPU latency of torchvision ResNet-18 at batch 1 and 8, in one run.

The model (random weights: nothing is downloaded) is exported once with the dynamo exporter and a
dynamic batch. Both runtimes use their default thread count on the same machine; the ratio is the
median PyTorch latency divided by the median ONNX Runtime latency, so > 1 means ONNX Runtime is faster.
"""

import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
import torchvision

from snippets.onnx_export import export_onnx

BATCHES = (1, 8)
IMAGE = 224
WARMUP, REPEATS = 3, 15


def _median_ms(fn) -> float:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def rows():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet18.onnx"
        export_onnx(net, (torch.rand(1, 3, IMAGE, IMAGE),), path, dynamic_batch=True)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for batch in BATCHES:
        X = torch.rand(batch, 3, IMAGE, IMAGE)
        feed = {name: X.numpy()}
        with torch.inference_mode():
            torch_ms = _median_ms(lambda X=X: net(X))
        ort_ms = _median_ms(lambda feed=feed: session.run(None, feed))
        out.append(
            {
                "benchmark": f"resnet18 b{batch} CPU: PyTorch eager / ONNX Runtime latency",
                "value": f"{torch_ms / ort_ms:.2f}x",
                "target": "> 1",
                "note": f"median of {REPEATS}: torch {torch_ms:.1f} ms, ORT {ort_ms:.1f} ms, "
                f"{IMAGE}x{IMAGE}, {torch.get_num_threads()} torch threads",
            }
        )
    return out


if __name__ == "__main__":
    for row in rows():
        print(row)
