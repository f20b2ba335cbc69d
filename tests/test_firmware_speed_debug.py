"""A debug build (-O0) of the optimised kernels must compile: at -O0 GCC keeps r7 as the frame pointer and
cannot give the inline assembly its registers ("'asm' operand has impossible constraints"), so the kernels
run their C twins there (KWS_ASM in kernels/optimized/simd.h). Compiled at the two debug levels with the
Cortex-M4 flags of the firmware Makefile. (An -O0 image of the KWS DS-CNN, both kernel sets, matched TFLM
on 3 inputs in QEMU when this was written; the QEMU tests run the -O2 build.)"""

import subprocess

import pytest

from tests.conftest import ROOT, need_tool

FIRMWARE = ROOT / "firmware"
ARCH = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-std=c11", "-Wall", "-Wextra"]


@pytest.mark.parametrize("level", ["-O0", "-Og"])  # -O2 is every other build; -O1, -Os, -O3 also pass
def test_optimized_kernels_compile_at(level, tmp_path):
    need_tool("arm-none-eabi-gcc")
    sources = sorted((FIRMWARE / "kernels" / "optimized").glob("*.c"))
    for src in sources:
        cmd = ["arm-none-eabi-gcc", *ARCH, level, "-Iruntime", "-c", str(src), "-o", str(tmp_path / "x.o")]
        proc = subprocess.run(cmd, cwd=FIRMWARE, capture_output=True, text=True)
        assert proc.returncode == 0 and "warning" not in proc.stderr, f"{level} {src.name}:\n{proc.stderr}"
    print(f"{len(sources)} optimised kernel files compile at {level} without a warning")
