"""MLPerf Tiny-shaped int8 models (tools/build_mlperf.py, `make mlperf-models`) on the firmware: KWS DS-CNN,
VWW MobileNetV1 0.25, IC ResNet-8 (residual ADD, MEAN), AD autoencoder. Each is byte-identical to TFLM on
64 seeded inputs on the host build and in QEMU, with both kernel sets, and its images fit the STM32F407.
The QEMU runs go through the one-command path (`make -C firmware run` = tools/run_model.py) with the inputs
quantised on the host (int8 .npy: four times less flash per input than floats).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IN_CI, ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402
import run_model  # noqa: E402

MLPERF_DIR = Path(os.environ.get("MLPERF_MODEL_DIR", ROOT / "build" / "mlperf"))
NAMES = ("kws_dscnn", "vww_mobilenet", "ic_resnet8", "ad_autoencoder")
KERNELS = ("reference", "optimized")
N_INPUTS = 64


def paths(name: str) -> tuple[Path, Path]:
    model, inputs = MLPERF_DIR / f"{name}_int8.tflite", MLPERF_DIR / f"{name}_inputs.npy"
    missing = [str(p) for p in (model, inputs) if not p.exists()]
    if missing:
        message = f"MLPerf-shaped models missing ({', '.join(missing)}): run `make mlperf-models` first"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return model, inputs


_tflm: dict = {}


def tflm(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Float inputs, TFLM's raw outputs for them (quantised exactly as the firmware does)."""
    if name not in _tflm:
        model, inputs = paths(name)
        x = np.load(inputs)[:N_INPUTS]
        assert len(x) == N_INPUTS, f"{inputs} holds {len(x)} inputs, the tests need {N_INPUTS}"
        _tflm[name] = x, fw.tflm_outputs(model, x)
    return _tflm[name]


def assert_same(ours: np.ndarray, ref: np.ndarray, where: str) -> None:
    assert ours.shape == ref.shape, f"{where}: {ours.shape} outputs for {ref.shape}"
    differ = np.flatnonzero((ours != ref).any(axis=1))
    assert differ.size == 0, f"{where}: {differ.size}/{len(ref)} inputs differ from TFLM, first {differ[0]}"
    # the inputs must give different answers, or the comparison proves little
    assert len({row.tobytes() for row in ref}) >= 4, f"{where}: TFLM gives nearly one answer to every input"


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", NAMES)
def test_host_build_matches_tflm(name, kernels):
    need_tool("cc")
    model, _ = paths(name)
    x, ref = tflm(name)
    run = fw.run_host(model, x, kernels, arena=400_000)
    out = fw.parse(run.text)
    assert run.returncode == 0 and not out.error, run.text[-2000:]
    assert_same(out.raw, ref, f"host/{kernels}/{name}")
    print(f"{name} host {kernels}: {N_INPUTS} inputs identical to TFLM, {len(out.layers)} operators")


_qemu: dict = {}


def qemu(name: str, kernels: str, tmp_path_factory) -> dict:
    key = (name, kernels)
    if key not in _qemu:
        need_tool("arm-none-eabi-gcc")
        need_tool("qemu-system-arm")
        model, _ = paths(name)
        x, _ = tflm(name)
        q = fw.input_quantization(model)
        npy = tmp_path_factory.mktemp(name) / "inputs_int8.npy"
        np.save(npy, fw.quantize(x, *q))
        _qemu[key] = run_model.run(model, npy, kernels, quiet=True)
    return _qemu[key]


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", NAMES)
def test_qemu_matches_tflm(name, kernels, tmp_path_factory):
    r = qemu(name, kernels, tmp_path_factory)
    assert not r["errors"], r["errors"]
    _, ref = tflm(name)
    assert_same(r["raw"], ref, f"qemu/{kernels}/{name}")
    assert r["tflm_match"] == N_INPUTS  # the script's own last line agrees
    assert all(n > 0 for n in r["instr"]), "TIM2 did not count: is QEMU running with -icount?"
    print(f"{name} qemu {kernels}: {N_INPUTS} inputs identical to TFLM in {r['images']} image(s), "
          f"{r['instr'][0]} emulated instructions per inference, arena {r['arena']} B")  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_images_fit_the_stm32f407(name, tmp_path_factory):
    for kernels in KERNELS:
        r = qemu(name, kernels, tmp_path_factory)
        elves = list(r["folder"].glob(f"inputs-*/kws_{kernels}-{r['arena']}.elf"))
        assert len(elves) == r["images"] > 0
        for elf in elves:
            size = fw.elf_size(elf)
            assert size["flash"] <= fw.FLASH_BYTES and size["ram"] <= fw.RAM_BYTES, f"{elf.name}: {size}"


@pytest.mark.parametrize("name", NAMES)
def test_arena_not_larger_than_tflm_host(name, tmp_path_factory):
    """Our planner's bytes on the M4 (what the firmware printed) against what the x86-64 tflite-micro package
    reports for the same model. A weak bar (its records hold 8-byte pointers), but the only TFLM figure
    these machines can measure for these models."""
    ours = max(qemu(name, k, tmp_path_factory)["outputs"][0].arena_used for k in KERNELS)
    tflm_host = fw.tflm_arena_bytes(paths(name)[0])
    print(f"{name}: arena ours {ours} B, TFLM host package {tflm_host} B")
    assert ours <= tflm_host


def test_run_command_keys_builds_by_content(tmp_path):
    """`make -C firmware run`: two different models under the same file name get their own builds, and
    with no INPUTS one input of zero points runs and is checked against TFLM."""
    need_tool("arm-none-eabi-gcc")
    need_tool("qemu-system-arm")
    mine = tmp_path / "model.tflite"
    outputs = []
    for name in ("ic_resnet8", "kws_dscnn"):
        shutil.copyfile(paths(name)[0], mine)
        make = [
            "make",
            "-s",
            "-C",
            str(ROOT / "firmware"),
            "run",
            f"MODEL={mine}",
            f"PYTHON={sys.executable}",
        ]
        proc = subprocess.run(make, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        lines = proc.stdout.splitlines()
        assert lines[-1] == "match TFLM: 1/1 inputs", proc.stdout[-2000:]
        outputs.append(next(line for line in lines if line.startswith("input 0 class")))
    assert outputs[0] != outputs[1], "the second model.tflite reused the first one's build"


def test_run_command_names_bad_inputs(tmp_path):
    model, _ = paths("kws_dscnn")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 10, 49, 1), np.float32))  # H and W swapped
    with pytest.raises(SystemExit, match=r"expected N x \(49, 10, 1\)"):
        run_model.run(model, bad, "optimized", quiet=True)
