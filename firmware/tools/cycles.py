"""Estimated Cortex-M4 cycles from the instructions QEMU actually executed.

QEMU counts instructions (-icount shift=0), not cycles: an LDM of 8 registers, a taken branch and a SMLAD
all count 1. This tool replays the run with `-d in_asm,exec,nochain`: every translated block's disassembly
(in_asm) and every entry into a block (exec; nochain makes each entry visible), then prices each executed
instruction with the Cortex-M4 Technical Reference Manual (r0p1, table 3-1 and table 7-1 for the FPU).

Assumptions (what the estimate does NOT know):
- zero-wait-state memory (an STM32F4 at 168 MHz has 5 flash wait states hidden by its ART cache, mostly);
- P, the pipeline refill after a taken branch, is 1 to 3 cycles: `cycles(p)` gives any choice, the
  default P = 2 is the middle; `refills` says how much P moves the total;
- single loads/stores pipeline as the TRM says: an LDR/STR right after an LDR costs 1 cycle unless the
  previous load's destination is its base register; LDR 2, STR with immediate offset 1 (store buffer), with a
  register offset 2; LDRD/STRD 3; LDM/STM/PUSH/POP 1+N (+P when POP/LDM loads PC);
- all accesses aligned (an unaligned word access costs up to 2 more cycles; the trace has no addresses);
- MUL/MLA/MLS, SMULL/UMULL/SMLAL/UMLAL and every DSP multiply 1; SDIV/UDIV 12 (the worst of 2-12);
- IT 1 (not folded); a conditional instruction that fails its condition still costs its cycles;
- FPU: VMLA/VMLS/VNMLA/VFMA family 3, VDIV/VSQRT 14, VLDR/VSTR 2 (.64: 3), VLDM/VSTM/VPUSH/VPOP 1+N words,
  VMOV of two core registers 2, others 1.

    python tools/cycles.py firmware.elf [--split-at timer_ticks]
"""

import argparse
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator import QEMU  # noqa: E402

P_DEFAULT = 2
CONDS = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"}
BRANCHES = {"b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh"}
LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt", "ldrbt", "ldrht"}
STORES = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht"}
MULTI = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "pop", "stm", "stmia", "stmea", "stmdb", "stmfd", "push"}
FP_MAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
FP_MULTI = {"vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}
# mnemonics that end in a condition's letters without one (adCS, lsLS, moVS, teQ... would be misread)
PLAIN = {"adc", "sbc", "lsl", "mov", "teq", "mls", "smlal", "umlal", "smlsl", "vmls", "vnmls", "bls"}
KNOWN = BRANCHES | LOADS | STORES | MULTI | FP_MAC | FP_MULTI | {"ldrd", "strd", "sdiv", "udiv", "it"}
LINE = re.compile(r"^0x([0-9a-f]+):\s+((?:[0-9a-f]{4} )+)\s*(\S+)\s*(.*)$")


def base_mnemonic(m: str) -> str:
    """'ldr.w' -> 'ldr', 'movlt' -> 'mov', 'bne' -> 'b', 'itte' -> 'it' (capstone's spelling)."""
    m = m.split(".")[0]
    if m in KNOWN or m in ("bl", "bls"):  # 'bls' is b + ls, handled below
        return "b" if m == "bls" else m
    if re.fullmatch(r"it[te]{0,3}", m):
        return "it"
    if m in PLAIN or (m.endswith("s") and m[:-1] in PLAIN):  # 'lsls', 'movs', 'teq', 'smlal': no condition
        return m
    if len(m) > 2 and m[-2:] in CONDS:
        return m[:-2]
    return m


def _regs(ops: str) -> int:
    """Number of registers in a list like '{r4, r5, pc}' or '{s16, s17}' or '{d8, d9}' (words for FP)."""
    inner = ops[ops.find("{") + 1 : ops.find("}")]
    n = 0
    for r in inner.split(","):
        r = r.strip()
        if "-" in r:  # 'r4-r7' style ranges
            a, b = (int(re.sub(r"\D", "", x)) for x in r.split("-"))
            n += (b - a + 1) * (2 if r.startswith("d") else 1)
        elif r:
            n += 2 if r.startswith("d") else 1
    return n


@dataclass
class Insn:
    addr: int
    size: int
    mnem: str
    ops: str
    base: str = ""
    fixed: int = 1  # cycles without refills and without pipelining
    refill: int = 0  # refills when executed (branches: when taken)
    kind: str = ""  # 'load', 'store', 'branch' or ''
    dest: str = ""
    addr_reg: str = ""

    def __post_init__(self):
        b = self.base = base_mnemonic(self.mnem)
        ops = self.ops
        writes_pc = ops.split(",")[0].strip() == "pc"
        if b in BRANCHES:
            self.kind, self.fixed, self.refill = "branch", 1, 1
            if b in ("tbb", "tbh"):
                self.fixed = 3  # load 2 + add 1, then the refill
        elif b in LOADS or b in STORES:
            self.kind = "load" if b in LOADS else "store"
            self.dest = ops.split(",")[0].strip()
            self.addr_reg = ops[ops.find("[") + 1 :].split(",")[0].strip(" ]") if "[" in ops else ""
            reg_offset = bool(re.search(r"\[\w+, (r\d+|sb|sl|fp|ip|lr)", ops))
            self.fixed = 1 if b in STORES and not reg_offset else 2
            if b in LOADS and writes_pc:
                self.refill, self.kind = 1, "branch"
        elif b in ("ldrd", "strd"):
            self.fixed = 3
        elif b in MULTI:
            self.fixed = 1 + _regs(ops)
            if b in ("pop", "ldm", "ldmia", "ldmfd", "ldmdb", "ldmea") and "pc" in ops:
                self.refill, self.kind = 1, "branch"
        elif b in ("sdiv", "udiv"):
            self.fixed = 12
        elif b in FP_MAC:
            self.fixed = 3
        elif b in ("vdiv", "vsqrt"):
            self.fixed = 14
        elif b in ("vldr", "vstr"):
            self.fixed = 3 if ops.startswith("d") else 2
        elif b in FP_MULTI:
            self.fixed = 1 + _regs(ops)
        elif b == "vmov" and ops.count(",") >= 2:  # two core registers <-> two S / one D register
            self.fixed = 2
        elif writes_pc and b in ("mov", "add"):
            self.refill, self.kind = 1, "branch"

    @property
    def end(self) -> int:
        return self.addr + self.size


@dataclass
class Block:
    insns: list
    base: int = 0  # cycles, pipelining inside the block applied, no refills
    refills_not_taken: int = 0
    last_is_branch: bool = False
    counts: dict = field(default_factory=dict)

    def __post_init__(self):
        prev = None
        for i in self.insns:
            c = i.fixed
            pipelined = prev is not None and prev.kind == "load" and prev.base in LOADS and not prev.refill
            if i.kind in ("load", "store") and pipelined and prev.dest != i.addr_reg:
                c = 1
            self.base += c
            if i.refill and i.base not in BRANCHES:  # writes PC: always a refill
                self.refills_not_taken += 1
            prev = i
        last = self.insns[-1]
        self.last_is_branch = last.base in BRANCHES or bool(last.refill)


@dataclass
class Segment:
    instructions: int = 0
    base: int = 0
    refills: int = 0

    def cycles(self, p: int = P_DEFAULT) -> int:
        return self.base + p * self.refills


def parse_blocks(lines):
    """Yield ('block', pc, Block) for each translation, ('exec', pc, host_ptr) for each entry,
    ('stop', pc, None) when QEMU left a block before running it (icount budget spent) and ('rewind', pc, None)
    when it ran a block only up to the I/O access at pc (icount re-translates from there)."""
    insns = []
    for line in lines:
        if line.startswith("0x"):
            m = LINE.match(line)
            if m:
                size = len(m.group(2).replace(" ", "")) // 2
                insns.append(Insn(int(m.group(1), 16), size, m.group(3), m.group(4).strip()))
            continue
        if insns:
            yield "block", insns[0].addr, Block(insns)
            insns = []
        if line.startswith("Trace "):
            lb = line.index("[")
            yield "exec", int(line[lb + 10 : lb + 18], 16), line[9 : lb - 1]
        elif line.startswith("Stopped execution of TB chain before"):
            yield "stop", int(line[line.index("[") + 1 : line.index("]")], 16), None
        elif line.startswith("cpu_io_recompile: rewound execution of TB to"):
            yield "rewind", int(line.split()[-1], 16), None


def trace_lines(elf, uart: list, timeout: float = 600):
    """Run `elf` in QEMU and yield the block trace's lines (stderr, streamed: it can be hundreds of MB);
    the UART text (stdout) is appended to `uart` at the end."""
    cmd = [*QEMU, "-d", "in_asm,exec,nochain", "-kernel", str(elf)]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1 << 20
    ) as proc:
        reader = threading.Thread(target=lambda: uart.append(proc.stdout.read()), daemon=True)
        reader.start()
        yield from proc.stderr
        proc.wait(timeout)
        reader.join(timeout)


def estimate(elf, split_at: int | None = None) -> tuple[list[Segment], str]:
    """Cycles of the whole run, split into segments at every entry into address `split_at` (for example
    the firmware's timer_ticks: the segments between its calls are what TIM2 measured). Returns the segments
    and the UART text."""
    latest: dict[int, Block] = {}  # pc -> the most recent translation
    by_ptr: dict[str, Block] = {}  # host code pointer -> translation (each retranslation has its own)
    segs, seg = [], Segment()
    prev_block, uart, undo = None, [], None
    for kind, pc, x in parse_blocks(trace_lines(elf, uart)):
        if kind == "block":
            latest[pc] = x
            continue
        if kind in ("stop", "rewind"):  # correct the last entry: it ran none, or only part, of its block
            blk, refill, split, before = undo
            seg.instructions -= len(blk.insns)
            seg.base -= blk.base
            seg.refills -= blk.refills_not_taken + refill
            if kind == "stop":
                if split:
                    seg = segs.pop()
                prev_block = before
                continue
            part = Block([i for i in blk.insns if i.addr < pc]) if blk.insns[0].addr < pc else None
            seg.refills += refill
            if part:
                seg.instructions += len(part.insns)
                seg.base += part.base
                seg.refills += part.refills_not_taken
            prev_block = None  # execution resumes at pc, the next instruction: no refill
            continue
        blk = by_ptr.get(x)
        if blk is None or blk.insns[0].addr != pc:
            blk = by_ptr[x] = latest[pc]
        refill = 0
        if prev_block is not None and prev_block.last_is_branch:
            last = prev_block.insns[-1]
            if last.base in BRANCHES and pc != last.end:  # taken (PC writers are in refills_not_taken)
                refill = 1
        split = split_at is not None and pc == split_at
        if split:
            segs.append(seg)
            seg = Segment()
        seg.instructions += len(blk.insns)
        seg.base += blk.base
        seg.refills += blk.refills_not_taken + refill
        undo = (blk, refill, split, prev_block)
        prev_block = blk
    segs.append(seg)
    return segs, "".join(uart)


def symbol(elf, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        w = line.split()
        if len(w) == 3 and w[2] == name:
            return int(w[0], 16) & ~1
    raise KeyError(f"{elf}: no symbol {name!r}")


def firmware_layers(elf) -> dict:
    """One inference of our firmware (an image built with one input): per layer and whole-model instructions
    and estimated cycles. The trace is split at timer_ticks, the function the firmware reads TIM2 with, so
    each layer's instruction count must equal the one the firmware printed (checked here)."""
    import emulator

    segs, uart = estimate(elf, symbol(elf, "timer_ticks"))
    out = emulator.parse(uart)
    if out.error or out.done < 1:
        raise RuntimeError(f"{elf}: {out.error or 'no done line'}")
    # reads: start, then (after layer i, before layer i+1) per layer, then the total; segments follow reads
    n = len(out.layer_instr)
    calls = segs[1:]  # segs[0] is everything before the first read
    whole = calls[0 : 2 * n + 1]  # start..L0 end, L0 end..L1 start (the hook), ..., ..total
    layers = [whole[2 * i] for i in range(n)]
    got = [s.instructions for s in layers]
    if got != out.layer_instr:
        raise RuntimeError(f"{elf}: trace instructions per layer {got} != TIM2 {out.layer_instr}")
    total = Segment()
    for s in whole:
        total.instructions += s.instructions
        total.base += s.base
        total.refills += s.refills
    return {"layers": layers, "total": total, "tim2_total": out.instr[0], "ops": out.layers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("elf")
    ap.add_argument("-p", type=int, default=P_DEFAULT, help="pipeline refill cycles (1-3)")
    a = ap.parse_args()
    r = firmware_layers(a.elf)
    for i, ((op, macs), s) in enumerate(zip(r["ops"], r["layers"], strict=True)):
        c = s.cycles(a.p)
        print(f"layer {i} {op:20s} instr {s.instructions:9d} cycles {c:9d} MAC/cycle {macs / c:.3f}")
    t = r["total"]
    print(f"total instr {t.instructions} (TIM2 {r['tim2_total']}) cycles {t.cycles(a.p)} "
          f"(P=1: {t.cycles(1)}, P=3: {t.cycles(3)})")  # fmt: skip


if __name__ == "__main__":
    main()
