"""The cycle estimator (firmware/tools/cycles.py) on hand-written loops whose Cortex-M4 cycle counts the
Technical Reference Manual fixes (table 3-1 and the load/store pipelining rules of section 3.3), and on our
firmware, where its per-layer instruction counts must equal what TIM2 (QEMU's icount) measured.

The expected figures below are written out by hand from the TRM, instruction by instruction, as
base cycles + refills * P (P = pipeline refill, 1-3): they are not produced by the code under test."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import cycles  # noqa: E402
import emulator as fw  # noqa: E402

# Each case runs between two calls of `mark`; a segment starts at mark's `bx lr` (1 + P) and ends with the
# next `bl mark` (1 + P). (instructions, base cycles, refills) are counted by hand.
CASES = {
    # 100 iterations: SMLAD 1, MLA 1 (M4; 2 on the M3), SUBS 1, BNE taken 1 + P (99x) / not taken 1
    "mac_loop": (
        "movs r2, #100\n1: smlad r4, r5, r6, r4\nmla r7, r5, r6, r7\nsubs r2, #1\nbne 1b",
        1 + 1 + 400 + 1,
        1 + 1 + 100 * 3 + 100 + 1,
        1 + 99 + 1,
    ),
    # TRM 3.3.2: 'LDR R0,[R1]; LDR R1,[R2] - normally three cycles total' and
    # 'LDR R0,[R1,R5]; LDR R1,[R2]; LDR R2,[R3,#4] - normally four cycles total'; the MOVs (1 each) set the
    # bases; the first LDR after a MOV is not pipelined.
    "pipelined_loads": (
        "mov r1, sp\nmov r2, sp\nmov r3, sp\nmovs r5, #0\n"
        "ldr r0, [r1]\nldr r1, [r2]\n"
        "mov r1, sp\nmov r2, sp\n"
        "ldr r0, [r1, r5]\nldr r1, [r2]\nldr r2, [r3, #4]",
        1 + 4 + 2 + 2 + 3 + 1,
        1 + 4 + 3 + 2 + 4 + 1,
        2,
    ),
    # a load whose base is the previous load's destination is not pipelined: 2 + 2; STR imm after LDR 1
    "dependent_load": (
        "mov r0, sp\nldr r3, [r0]\nmov r3, sp\nldr r4, [r3]\nldr r4, [r4]\nstr r4, [r3, #4]",
        1 + 6 + 1,
        1 + 1 + 2 + 1 + 2 + 2 + 1 + 1,
        2,
    ),  # fmt: skip
    # LDM/STM/PUSH/POP 1 + N, LDRD/STRD 1 + N (N = 2)
    "multiple": (
        "push {r4-r7}\nldmia sp, {r0-r3}\nldrd r0, r1, [sp]\nstrd r0, r1, [sp]\npop {r4-r7}",
        1 + 5 + 1,
        1 + 5 + 5 + 3 + 3 + 5 + 1,
        2,
    ),
    # BL 1 + P, PUSH {r4, lr} 1 + 2, POP {r4, pc} 1 + 2 + P; IT 1 (not folded) and both conditional MOVs 1;
    # CMP 1, BEQ not taken 1, SDIV 12 (the worst of 2-12)
    "call_it_div": (
        "movs r2, #7\nmovs r3, #2\nbl leaf\ncmp r2, #0\nite eq\nmoveq r3, #1\nmovne r3, #2\nbeq 2f\n"
        "sdiv r4, r2, r3\n2:",
        1 + 2 + 1 + 2 + 4 + 1 + 1 + 1,
        1 + 2 + 1 + 3 + 3 + 4 + 1 + 12 + 1,
        1 + 1 + 1 + 1,
    ),
}

START = """    .syntax unified
    .thumb
    .text
    .word 0x20010000
    .word reset + 1
    .thumb_func
mark:
    bx lr
    .thumb_func
leaf:
    push {r4, lr}
    pop {r4, pc}
    .thumb_func
    .global reset
reset:
    bl mark
"""
EXIT = """    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
    .ltorg
"""


def build(tmp_path: Path) -> Path:
    body = "".join(f"    @ {name}\n{code}\n    bl mark\n" for name, (code, *_) in CASES.items())
    src, elf = tmp_path / "loops.S", tmp_path / "loops.elf"
    src.write_text(START + body + EXIT)
    subprocess.run([need_tool("arm-none-eabi-gcc"), "-mcpu=cortex-m4", "-mthumb", "-nostdlib",
                    "-nostartfiles", "-Wl,-Ttext=0x08000000", "-Wl,-e,reset",
                    "-o", str(elf), str(src)], check=True)  # fmt: skip
    return elf


def test_estimator_on_trm_loops(tmp_path):
    need_tool("qemu-system-arm")
    elf = build(tmp_path)
    segs, _ = cycles.estimate(elf, cycles.symbol(elf, "mark"))
    got = segs[1:]  # [0]: reset's first `bl mark`; the last: mark's return into the exit code
    assert len(got) == len(CASES) + 1, len(got)
    for (name, (_, instr, base, refills)), seg in zip(CASES.items(), got[: len(CASES)], strict=True):
        assert (seg.instructions, seg.base, seg.refills) == (instr, base, refills), name
        for p in (1, 2, 3):
            assert seg.cycles(p) == base + refills * p, (name, p)
    print(f"{len(CASES)} hand-counted TRM sequences, P = 1..3: estimator agrees")


def test_estimator_matches_tim2_on_the_firmware():
    """Per layer, the trace's instruction count must equal TIM2's (QEMU icount) exactly; the estimate must
    lie between 1 and 3 cycles per instruction (no instruction is free, none costs more than 14)."""
    need_tool("arm-none-eabi-gcc")
    need_tool("qemu-system-arm")
    model_dir = Path(os.environ.get("KWS_MODEL_DIR", ROOT / "build" / "kws"))
    model, test_set = model_dir / "kws_dscnn_int8.tflite", model_dir / "test_set.npz"
    if not model.exists():
        pytest.fail(f"{model} missing: run `make models`")
    elf = fw.build_elf(model, test_set, 0, 1, "optimized")
    r = cycles.firmware_layers(elf)  # raises when any layer's count differs from TIM2
    assert r["total"].instructions == r["tim2_total"]
    ratio = r["total"].cycles() / r["total"].instructions
    assert 1.0 < ratio < 3.0, ratio
    print(f"kws_dscnn optimized: {len(r['layers'])} layers, {r['tim2_total']} instructions = TIM2, "
          f"{r['total'].cycles()} estimated cycles ({ratio:.2f} per instruction)")  # fmt: skip
