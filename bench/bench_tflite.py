"""Keyword-spotting models: file sizes, float vs int8 accuracy on the test set, and TFLM arena bytes."""

import subprocess
from pathlib import Path

import numpy as np
import torch

from snippets import kws_nets
from snippets.tflite_inspect import inspect_tflite
from snippets.tflm_runner import arena_bytes, run_tflm

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "build" / "kws"
NETS = {"cnn": kws_nets.KwsCNN, "dscnn": kws_nets.KwsDSCNN}


def rows():
    subprocess.run(["make", "-s", "models"], cwd=ROOT, check=True, capture_output=True)
    test = np.load(KWS / "test_set.npz")
    out = []
    for kind, make_net in NETS.items():
        path = KWS / f"kws_{kind}_int8.tflite"
        net = make_net()
        net.load_state_dict(torch.load(KWS / f"kws_{kind}_float.pt"))
        float_bytes = 4 * sum(p.numel() for p in net.parameters())
        float_acc = kws_nets.accuracy(net, test["x"], test["y"])
        x_in = inspect_tflite(path).inputs[0]
        q = np.clip(np.round(test["x"] / x_in.scale[0]) + x_in.zero_point[0], -128, 127).astype(np.int8)
        int8_acc = float((run_tflm(path, q).argmax(1) == test["y"]).mean())
        n, size = len(test["y"]), path.stat().st_size
        out += [
            {"benchmark": f"kws_{kind} float32 weights (bytes)", "value": float_bytes, "target": "",
             "note": "4 bytes per parameter"},
            {"benchmark": f"kws_{kind}_int8.tflite (bytes)", "value": size, "target": "<= 1 MB flash",
             "note": f"{size / float_bytes:.2f} of float"},
            {"benchmark": f"kws_{kind} accuracy float (%)", "value": f"{100 * float_acc:.1f}", "target": "",
             "note": f"PyTorch, {n} held-out-speaker clips"},
            {"benchmark": f"kws_{kind} accuracy int8 TFLM (%)", "value": f"{100 * int8_acc:.1f}",
             "target": f">= {100 * float_acc - 2:.1f}", "note": "drop <= 2 points (source checklist)"},
            {"benchmark": f"kws_{kind} TFLM arena (bytes)", "value": arena_bytes(path), "target": "<= 131072",
             "note": "print_allocations total; STM32F407 has 128 KB SRAM"},
        ]  # fmt: skip
    return out
