"""Differential test of the firmware's kernels against TFLM on random valid int8 models it was not tuned to
(firmware/tools/random_model.py): the host build with both kernel sets (reference, optimised with build-time
weights; ASan + UBSan), byte for byte, and a sample in QEMU, where the optimised kernels' assembly runs.

A mismatch prints its seed and keeps the model under firmware/build/random/ (one-line reproducer:
`.venv/bin/python firmware/tools/differential.py SEED 1`).
More models: FIRMWARE_RANDOM_MODELS=3000 (`make fuzz`).
"""

import os
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import differential  # noqa: E402
import emulator as fw  # noqa: E402
from random_model import random_model  # noqa: E402

MODELS = int(os.environ.get("FIRMWARE_RANDOM_MODELS", "300"))  # about 30 s on the CI machine
QEMU_SAMPLE = 6


def test_random_models_match_tflm_on_host():
    need_tool("cc")
    s = differential.run(0, MODELS)
    print(s.line())
    assert not s.mismatches, "\n".join(s.mismatches)
    assert s.models == MODELS and s.inputs == MODELS * differential.INPUTS_PER_MODEL
    # the generator really reached what it promises: nearly dead channels (right shifts near 31), left shifts,
    # zero points at both ends, and every operator
    assert s.shifts[0] <= -30 and s.shifts[1] >= 1, s.shifts
    assert s.zero_points == [-128, 127], s.zero_points
    assert set(s.ops) >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D",
                          "RESHAPE", "SOFTMAX"}, s.ops  # fmt: skip


def qemu_seeds() -> list[int]:
    """The first seeds whose models hold a convolution with a right shift of 24 or more (where the folded
    zero point of the assembly's requantisation stops fitting), so the sample checks that path in QEMU."""
    seeds = []
    for seed in range(10_000):
        _, info = random_model(seed)
        if {"CONV_2D", "DEPTHWISE_CONV_2D"} & set(info["ops"]) and min(info["shifts"] or [0]) <= -24:
            seeds.append(seed)
        if len(seeds) == QEMU_SAMPLE:
            return seeds
    raise AssertionError("the generator no longer makes models with large right shifts")


@pytest.mark.parametrize("seed", qemu_seeds())
def test_random_models_match_tflm_in_qemu(seed, tmp_path):
    for tool in fw.tools_missing():
        need_tool(tool)
    model, _ = random_model(seed)
    path = tmp_path / f"random_{seed}.tflite"
    path.write_bytes(model)
    det = fw._tflm(path).get_input_details(0)
    scale, zp = (float(det["quantization_parameters"][k][0]) for k in ("scales", "zero_points"))
    q = np.random.default_rng(seed).integers(-128, 128, (4, *det["shape"][1:]))
    x = ((q - zp) * scale).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x)
    ref = differential.tflm_raw(model, fw.quantize(x, scale, int(zp)).reshape(len(x), *det["shape"]))
    for kernels in ("reference", "optimized"):
        out = fw.parse(fw.run_qemu(fw.build_elf(path, tmp_path / "inputs.npz", 0, len(x), kernels)).text)
        assert out.error == "" and out.raw.shape == ref.shape, f"seed {seed} {kernels}: {out.error}"
        assert (out.raw == ref).all(), f"seed {seed} {kernels}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
