"""Firmware measurements in QEMU (-icount shift=0, TIM2 counts emulated instructions, not cycles):
per model and kernel set, instructions per inference and per layer, MACs per instruction, the optimised
set's advantage, arena bytes against TFLM's, flash and RAM of the image (arm-none-eabi-size)."""

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402

MODEL_DIR = Path(os.environ.get("KWS_MODEL_DIR", ROOT / "build" / "kws"))  # as in tests/test_firmware.py
MODELS = {"kws_cnn": MODEL_DIR / "kws_cnn_int8.tflite", "kws_dscnn": MODEL_DIR / "kws_dscnn_int8.tflite"}
TEST_SET = MODEL_DIR / "test_set.npz"
HOW = "our TFLite-compatible kernels; conv weights pre-extended to int16 at build time"


def model_rows(name: str, model: Path) -> list[dict]:
    m = fw.measure(model, TEST_SET)
    ref, opt = m["reference"], m["optimized"]
    macs = sum(n for _, n in ref.layers)
    # whole-model counts: the mean over the measured inputs (they differ by a few hundred instructions)
    ref_instr, opt_instr = round(sum(ref.instr) / len(ref.instr)), round(sum(opt.instr) / len(opt.instr))
    cnn = name == "kws_cnn"  # the targets are set on the KWS CNN
    rows = [
        {"benchmark": f"{name} MACs per inference", "value": macs, "target": "", "note": ""},
        {
            "benchmark": f"{name} reference: emulated instr/inference",
            "value": ref_instr,
            "target": "",
            "note": "straightforward TFLite-style loops",
        },
        {
            "benchmark": f"{name} optimized: emulated instr/inference",
            "value": opt_instr,
            "target": "",
            "note": HOW,
        },
        {
            "benchmark": f"{name} optimized: MACs per emulated instr",
            "value": f"{macs / opt_instr:.3f}",
            "target": ">= 1.0" if cnn else "",
            "note": f"SMLAD bound is 2; reference {macs / ref_instr:.3f}",
        },
        {
            "benchmark": f"{name} reference/optimized instructions",
            "value": f"{ref_instr / opt_instr:.2f}x",
            "target": ">= 4x" if cnn else "",
            "note": "whole model",
        },
    ]
    for r in fw.layer_table(m):
        if r["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            rows.append(
                {
                    "benchmark": f"{name} layer {r['layer']} {r['op']} ({r['macs']} MACs)",
                    "value": f"{r['speedup']:.2f}x",
                    "target": ">= 4x" if cnn and r["macs"] > 100_000 else "",
                    "note": f"instr ref {r['ref_instr']} opt {r['opt_instr']}, "
                    f"MAC/instr {r['ref_mac_per_instr']:.3f} -> {r['opt_mac_per_instr']:.3f}",
                }
            )
    ours = max(ref.arena_used, opt.arena_used)
    size = m["optimized_size"]
    rows += [
        {
            "benchmark": f"{name} arena bytes (ours, max of both sets)",
            "value": ours,
            "target": f"<= {m['tflm_arena']}",
            "note": "TFLM's print_allocations() total",
        },
        {
            "benchmark": f"{name} flash bytes (optimized image)",
            "value": size["flash_without_inputs"],
            "target": f"<= {fw.FLASH_BYTES}",
            "note": f"without the test inputs; reference image {m['reference_size']['flash_without_inputs']}",
        },
        {
            "benchmark": f"{name} static RAM bytes",
            "value": size["ram"],
            "target": f"<= {fw.RAM_BYTES}",
            "note": "data + bss (48 KB arena buffer) + 4 KB stack reserve checked by the linker",
        },
    ]
    return rows


def rows() -> list[dict]:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing or not TEST_SET.exists():
        why = f"missing {', '.join(missing)}" if missing else "run `make models` first"
        return [{"benchmark": "firmware", "value": "n/a", "target": "", "note": why}]
    return [row for name, model in MODELS.items() for row in model_rows(name, model)]
