"""The firmware (firmware/): byte-identical to TFLM on >= 200 real inputs per model in three places (host
build, QEMU with the reference kernels, QEMU with the optimised kernels), bad models refused with named
errors, an arena no larger than TFLM's, and an image that fits the STM32F407.

The models come from `make models` (build/kws/); KWS_MODEL_DIR points elsewhere.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IN_CI, ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402

MODEL_DIR = Path(os.environ.get("KWS_MODEL_DIR", ROOT / "build" / "kws"))
MODELS = {"cnn": MODEL_DIR / "kws_cnn_int8.tflite", "dscnn": MODEL_DIR / "kws_dscnn_int8.tflite"}
TEST_SET = MODEL_DIR / "test_set.npz"
N_INPUTS = 200
KERNELS = ("reference", "optimized")


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    missing = [str(p) for p in (*MODELS.values(), TEST_SET) if not p.exists()]
    if missing:
        message = f"KWS models missing ({', '.join(missing)}): run `make models` first"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    x = np.load(TEST_SET)["x"][:N_INPUTS]
    assert len(x) >= N_INPUTS, f"{TEST_SET} holds {len(x)} inputs, the tests need {N_INPUTS}"
    return x


_tflm_cache: dict = {}


def tflm(name: str, x: np.ndarray) -> np.ndarray:
    if name not in _tflm_cache:
        _tflm_cache[name] = fw.tflm_outputs(MODELS[name], x)
    return _tflm_cache[name]


def check_against_tflm(out: fw.Output, ref: np.ndarray, where: str) -> None:
    assert out.error == "", f"{where}: the firmware refused the model: {out.error}"
    assert out.raw.shape == ref.shape, f"{where}: {out.raw.shape[0]} results for {ref.shape[0]} inputs"
    differ = np.flatnonzero((out.raw != ref).any(axis=1))
    assert differ.size == 0, (
        f"{where}: {differ.size} of {len(ref)} outputs differ from TFLM, first at input {differ[0]}: "
        f"ours {out.raw[differ[0]].tolist()} TFLM {ref[differ[0]].tolist()}"
    )
    # the application's own reading of the bytes: argmax class, dequantised confidence in per mille
    assert out.classes == ref.argmax(axis=1).tolist()
    expected_conf = np.floor(((ref.max(axis=1).astype(np.float32) + 128) / 256) * 1000 + 0.5).astype(int)
    assert np.abs(np.array(out.confidence) - expected_conf).max() <= 1


@pytest.fixture(scope="module")
def host_tools() -> Path:
    need_tool("cc")
    return fw.build_host()


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", MODELS)
def test_host_build_matches_tflm(features, host_tools, name, kernels):
    run = fw.run_host(MODELS[name], features, kernels)
    assert run.returncode == 0, run.text[-2000:]
    check_against_tflm(fw.parse(run.text), tflm(name, features), f"host/{kernels}/{name}")


_qemu_cache: dict = {}


def qemu_outputs(name: str, kernels: str, x: np.ndarray) -> list[fw.Output]:
    """All N_INPUTS inputs through QEMU, in as many firmware images as the flash needs."""
    key = (name, kernels)
    if key not in _qemu_cache:
        need_tool("arm-none-eabi-gcc")
        need_tool("qemu-system-arm")
        outs = []
        for start, count in fw.batches(MODELS[name], len(x), x[0].size * 4):
            elf = fw.build_elf(MODELS[name], TEST_SET, start, count, kernels)
            run = fw.run_qemu(elf)
            out = fw.parse(run.text)
            assert run.returncode == 0 and out.done == count, (
                f"{elf.name} exited {run.returncode}:\n{run.text[-1500:]}"
            )
            outs.append(out)
        _qemu_cache[key] = outs
    return _qemu_cache[key]


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", MODELS)
def test_qemu_matches_tflm(features, name, kernels):
    outs = qemu_outputs(name, kernels, features)
    merged = fw.Output(
        raw=np.concatenate([o.raw for o in outs]),
        classes=sum((o.classes for o in outs), []),
        confidence=sum((o.confidence for o in outs), []),
    )
    check_against_tflm(merged, tflm(name, features), f"qemu/{kernels}/{name}")
    first = outs[0]
    assert first.kernels == kernels
    assert len(first.layer_instr) == len(first.layers) > 0
    assert all(n > 0 for o in outs for n in o.instr), "TIM2 did not count: is QEMU running with -icount?"
    # the per-layer counts (hook overhead excluded) add up to within 1% of the whole inference
    assert abs(sum(first.layer_instr) - first.instr[0]) <= 0.01 * first.instr[0]


@pytest.mark.parametrize("name", MODELS)
def test_optimized_kernels_need_fewer_instructions(features, name):
    ref, opt = (qemu_outputs(name, k, features)[0] for k in KERNELS)
    assert opt.instr[0] < ref.instr[0], f"optimised {opt.instr[0]} vs reference {ref.instr[0]} instructions"


@pytest.mark.parametrize("name", MODELS)
def test_arena_not_larger_than_tflm(features, name):
    ours = max(qemu_outputs(name, k, features)[0].arena_used for k in KERNELS)
    assert ours <= fw.tflm_arena_bytes(MODELS[name])


@pytest.mark.parametrize("name", MODELS)
def test_firmware_fits_the_stm32f407(features, name):
    qemu_outputs(name, "optimized", features)  # builds the images
    for elf in fw.gen_dir(MODELS[name], 0, 0).parent.glob("inputs-*/kws_*.elf"):
        size = fw.elf_size(elf)
        assert size["flash"] <= fw.FLASH_BYTES and size["ram"] <= fw.RAM_BYTES, f"{elf.name}: {size}"


# ---- bad input: every refusal has a name, and none crashes ----


BAD = {
    "magic": "BAD_MAGIC",
    "version": "SCHEMA_VERSION",
    "truncated": "OUT_OF_BOUNDS",
    "offset": "OUT_OF_BOUNDS",
    "operator": "UNSUPPORTED_OP",
}


@pytest.mark.parametrize("how", BAD)
def test_bad_model_gets_a_named_error(features, host_tools, tmp_path, how):
    path = tmp_path / f"{how}.tflite"
    path.write_bytes(fw.corrupt_model(MODELS["dscnn"].read_bytes(), how))
    run = fw.run_host(path, features[:1], "reference", asan=True)
    out = fw.parse(run.text)
    assert out.error.startswith(f"error {BAD[how]}"), run.text
    assert fw.STATUS[run.returncode] == BAD[how], run.text
    if how == "operator":
        assert "op 0 code 18 MUL" in out.error  # which operator, its builtin code and TFLite's name for it


def test_exit_codes_are_distinct_and_named():
    """One exit status per error kind (a hard fault once shared OUT_OF_BOUNDS's), each in runtime/errors.h."""
    header = (fw.FIRMWARE / "runtime" / "errors.h").read_text()
    enum = ["OK", *re.findall(r"^\s+KWS_ERR_(\w+),", header, re.M)]  # in order: the value is the exit status
    assert dict(enumerate(enum)) == fw.STATUS and "HARD_FAULT" in enum


def test_host_refuses_optimized_without_packed_weights(features, host_tools, tmp_path):
    f32 = tmp_path / "x.f32"
    features[:1].astype("float32").tofile(f32)
    exe = fw.build_host() / "kws_host"
    proc = subprocess.run(
        [str(exe), str(MODELS["cnn"]), str(f32), "optimized"], capture_output=True, text=True
    )
    assert fw.STATUS[proc.returncode] == "NO_PACKED_WEIGHTS" and "error NO_PACKED_WEIGHTS" in proc.stdout


def test_arena_too_small_reports_the_exact_need(features, host_tools):
    used = fw.parse(fw.run_host(MODELS["cnn"], features[:1], "optimized").text).arena_used
    short = fw.parse(fw.run_host(MODELS["cnn"], features[:1], "optimized", arena=used - 16).text)
    assert short.error == f"error ARENA_TOO_SMALL need {used} have {used - 16}"
    exact = fw.run_host(MODELS["cnn"], features[:1], "optimized", arena=used)
    assert exact.returncode == 0 and fw.parse(exact.text).done == 1


def test_errors_reach_the_uart_in_qemu(features, tmp_path):
    """The same named errors on USART1, and QEMU's exit status carries the code (semihosting)."""
    need_tool("arm-none-eabi-gcc")
    need_tool("qemu-system-arm")
    bad = tmp_path / "kws_bad_operator.tflite"
    bad.write_bytes(fw.corrupt_model(MODELS["dscnn"].read_bytes(), "operator"))
    run = fw.run_qemu(fw.build_elf(bad, TEST_SET, 0, 1, "reference"), timeout=60)
    assert "error UNSUPPORTED_OP op 0 code 18" in run.text and fw.STATUS[run.returncode] == "UNSUPPORTED_OP"
    run = fw.run_qemu(fw.build_elf(MODELS["cnn"], TEST_SET, 0, 1, "optimized", arena=8192), timeout=60)
    assert "error ARENA_TOO_SMALL need" in run.text and fw.STATUS[run.returncode] == "ARENA_TOO_SMALL"


def test_renode_robot(features):
    """Renode cannot be installed on these machines: this is the one test allowed to skip, also in CI."""
    renode_test = shutil.which("renode-test")
    if not renode_test:
        pytest.skip(
            "renode-test is not on PATH (Renode is not installable here): see firmware/README.md, 'Renode'"
        )
    elf = fw.build_elf(MODELS["cnn"], TEST_SET, 0, 3, "optimized")
    robot = ROOT / "firmware" / "renode" / "kws.robot"
    args = [
        renode_test,
        str(robot),
        "--variable",
        f"ELF:{elf}",
        "--variable",
        f"REPL:{robot.parent / 'board.repl'}",
    ]
    # the values the UART lines must carry: class and raw bytes from TFLM for the three embedded inputs
    for i, line in enumerate(fw.renode_expectations(MODELS["cnn"], TEST_SET, 3)):
        args += ["--variable", f"RESULT{i}:{line}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
