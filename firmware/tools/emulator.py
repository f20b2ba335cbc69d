"""Build the firmware, run it in QEMU or on the host, and read what it printed on USART1.

Used by tests/test_firmware.py, bench/bench_firmware.py and lessons/34_firmware_in_the_emulator.ipynb:

    from emulator import build_elf, run_qemu, parse, tflm_outputs
    elf = build_elf(model, test_set, start=0, count=50, kernels="optimized")
    out = parse(run_qemu(elf).text)          # out.raw: (50, 11) int8, out.layer_instr: per layer

Needs: numpy, tflite-micro (the oracle), make, arm-none-eabi-gcc, qemu-system-arm, a C compiler.
"""

import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FIRMWARE = Path(__file__).resolve().parents[1]
ROOT = FIRMWARE.parent
FLASH_BYTES = 1024 * 1024
RAM_BYTES = 128 * 1024
CODE_MARGIN = 96 * 1024  # flash kept for code, packed weights and alignment when sizing input batches
QEMU = [
    "qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "stdio",
    "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
]  # fmt: skip
STATUS = {
    0: "OK", 1: "BAD_MAGIC", 2: "SCHEMA_VERSION", 3: "OUT_OF_BOUNDS", 4: "BAD_MODEL", 5: "UNSUPPORTED_TYPE",
    6: "UNSUPPORTED_OP", 7: "BAD_SHAPE", 8: "BAD_QUANT", 9: "MISALIGNED", 10: "ARENA_TOO_SMALL",
    11: "NOT_READY", 12: "HARD_FAULT", 13: "NO_PACKED_WEIGHTS", 14: "HOST_IO",
}  # fmt: skip


@dataclass
class Run:
    text: str
    returncode: int


@dataclass
class Output:
    kernels: str = ""
    arena_used: int = 0
    layers: list = field(default_factory=list)  # (op name, MACs) per operator
    layer_instr: list = field(default_factory=list)  # emulated instructions per operator, first inference
    classes: list = field(default_factory=list)
    confidence: list = field(default_factory=list)  # per mille
    raw: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    instr: list = field(default_factory=list)  # emulated instructions per inference
    error: str = ""
    done: int = -1


def make(*targets: str, **variables) -> None:
    """`make -C firmware TARGETS VAR=value ...`; raises with make's own output on failure."""
    args = ["make", "-s", "-C", str(FIRMWARE), *targets, f"PYTHON={sys.executable}"]
    args += [f"{k}={v}" for k, v in variables.items()]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def build_host() -> Path:
    make("host")
    return FIRMWARE / "build" / "host"


def _tag(path) -> str:
    """Name + content hash: a different file under the same name must not reuse stale C arrays."""
    return f"{Path(path).stem}-{hashlib.sha1(Path(path).read_bytes()).hexdigest()[:8]}"


def gen_dir(model, start: int, count: int, test_set=None) -> Path:
    """Where the firmware Makefile puts the image for these inputs (see build_elf)."""
    inputs = f"inputs-{_tag(test_set)}-{start}-{count}" if test_set else f"inputs-{start}-{count}"
    return FIRMWARE / "build" / "gen" / _tag(model) / inputs


def build_elf(model, test_set, start: int, count: int, kernels: str, arena: int = 49152) -> Path:
    """The firmware ELF for `model` with test inputs [start, start + count), one kernel set."""
    model, test_set = Path(model).resolve(), Path(test_set).resolve()
    gen = gen_dir(model, start, count, test_set)
    elf = gen / f"kws_{kernels}-{arena}.elf"
    target = str(elf.relative_to(FIRMWARE))
    make(target, MODEL=model, TEST_SET=test_set, START=start, COUNT=count, ARENA=arena, NAME=_tag(model),
         GEN=gen.relative_to(FIRMWARE))  # fmt: skip
    return elf


def batches(model, total: int, input_bytes: int) -> list[tuple[int, int]]:
    """Split `total` inputs into batches whose float features fit the flash next to the model."""
    room = FLASH_BYTES - Path(model).stat().st_size * 1.06 - CODE_MARGIN
    per = max(1, min(total, int(room // input_bytes)))
    per = -(-total // -(-total // per))  # the same size for every batch
    return [(s, min(per, total - s)) for s in range(0, total, per)]


def run_qemu(elf, timeout: float = 300) -> Run:
    proc = subprocess.run([*QEMU, "-kernel", str(elf)], capture_output=True, text=True, timeout=timeout)
    return Run(proc.stdout, proc.returncode)


def run_host(model, inputs: np.ndarray, kernels: str, arena: int = 100_000, asan: bool = False) -> Run:
    """Run the host build on float inputs (N, 13, 50, 1); the optimised set gets the build-time weights."""
    exe = build_host() / ("kws_host_asan" if asan else "kws_host")
    with tempfile.TemporaryDirectory() as tmp:
        f32, gen = Path(tmp) / "inputs.f32", Path(tmp) / "gen"
        np.asarray(inputs, np.float32).tofile(f32)
        args = [str(exe), str(model), str(f32), kernels, str(arena)]
        if kernels == "optimized":
            subprocess.run([sys.executable, str(FIRMWARE / "tools" / "gen_model.py"), "--model", str(model),
                            "--out", str(gen)], check=True)  # fmt: skip
            args.append(str(gen / "packed.bin"))
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    return Run(proc.stdout + proc.stderr, proc.returncode)


def parse(text: str) -> Output:
    """The firmware's UART lines -> an Output (see app/app.c for the format)."""
    out, raw = Output(), []
    for line in text.splitlines():
        w = line.split()
        if line.startswith("kws model"):
            out.kernels = w[-1]
        elif line.startswith("arena "):
            out.arena_used = int(w[1])
        elif line.startswith("layer "):
            out.layers.append((w[2], int(w[4])))
        elif line.startswith("instr layer "):
            out.layer_instr.append(int(w[3]))
        elif line.startswith("result "):
            out.classes.append(int(w[3]))
            out.confidence.append(int(w[5]))
            raw.append(np.frombuffer(bytes.fromhex(w[7]), np.int8))
            out.instr.append(int(w[9]))
        elif line.startswith("error "):
            out.error = line
        elif line.startswith("done "):
            out.done = int(w[1])
    if raw:
        out.raw = np.stack(raw)
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """What the firmware does on the device: round(x / scale) half away from zero, + zero point, int8."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def _tflm(model):
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(Path(model).read_bytes())


def input_quantization(model) -> tuple[float, int]:
    q = _tflm(model).get_input_details(0)["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])


def tflm_outputs(model, x: np.ndarray) -> np.ndarray:
    """TFLM's raw int8 outputs for float inputs x, quantised exactly as the firmware does."""
    interp = _tflm(model)
    q = interp.get_input_details(0)["quantization_parameters"]
    xq = quantize(x, q["scales"][0], q["zero_points"][0])
    outs = []
    for k in range(len(xq)):
        interp.set_input(xq[k : k + 1], 0)
        interp.invoke()
        outs.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(outs).astype(np.int8)


def grid_inputs_and_tflm(model: bytes, seed: int, count: int, arena: int = 400_000):
    """`count` seeded float inputs lying exactly on the input's int8 grid, and TFLM's raw int8 outputs for
    them (the kernel tests' reference; the default TFLM arena, 10x the model, is short for big tensors)."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
    det = interp.get_input_details(0)
    qp = det["quantization_parameters"]
    scale, zp = float(qp["scales"][0]), int(qp["zero_points"][0])
    q = np.random.default_rng(seed).integers(-128, 128, (count, *det["shape"][1:]))
    x = ((q - zp) * np.float64(scale)).astype(np.float32)
    ref = []
    for q in quantize(x, scale, zp).reshape(count, *det["shape"]):
        interp.set_input(q, 0)
        interp.invoke()
        ref.append(interp.get_output(0).reshape(-1).copy())
    return x, np.stack(ref).astype(np.int8)


def qemu_against_tflm(
    model: bytes, folder: Path, name: str, seed: int, count: int
) -> tuple[Output, np.ndarray]:
    """Run `model` on grid inputs in QEMU with the optimised kernels; returns our output and TFLM's."""
    path = Path(folder) / f"{name}.tflite"
    path.write_bytes(model)
    x, ref = grid_inputs_and_tflm(model, seed, count)
    np.savez(Path(folder) / "inputs.npz", x=x)
    return parse(run_qemu(build_elf(path, Path(folder) / "inputs.npz", 0, len(x), "optimized")).text), ref


def tflm_arena_bytes(model) -> int:
    """TFLM's own arena figure: print_allocations() writes it to C-level stderr, so capture fd 2."""
    interp = _tflm(model)
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise RuntimeError(f"TFLM printed no arena total; it printed:\n{text[:500]}")
    return int(m.group(1))


def elf_size(elf) -> dict:
    """arm-none-eabi-size: flash = text + data, RAM = data + bss."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


def renode_expectations(model, test_set, count: int = 3) -> list[str]:
    """The result lines the Renode Robot test waits for, as regular expressions: class and raw bytes from
    TFLM on test inputs [0, count), confidence and instruction count left open."""
    ref = tflm_outputs(model, np.load(test_set)["x"][:count])
    return [
        f"^result {i} class {int(row.argmax())} conf [0-9]+ raw {row.tobytes().hex()} instr [0-9]+$"
        for i, row in enumerate(ref)
    ]


def tools_missing() -> list[str]:
    return [t for t in ("make", "arm-none-eabi-gcc", "qemu-system-arm", "cc") if not shutil.which(t)]


def measure(model, test_set, count: int = 3) -> dict:
    """Both kernel sets on the first `count` inputs in QEMU: outputs, sizes and TFLM's arena figure."""
    result = {"tflm_arena": tflm_arena_bytes(model), "count": count}
    for kernels in ("reference", "optimized"):
        elf = build_elf(model, test_set, 0, count, kernels)
        out = parse(run_qemu(elf).text)
        if out.error or out.done != count:
            raise RuntimeError(f"{elf}: {out.error or 'no done line'}")
        size = elf_size(elf)
        size["flash_without_inputs"] = size["flash"] - count * 4 * int(np.prod(input_shape(model)))
        result[kernels] = out
        result[f"{kernels}_size"] = size
    return result


def input_shape(model) -> tuple:
    return tuple(_tflm(model).get_input_details(0)["shape"])


def layer_table(m: dict) -> list[dict]:
    """One row per operator: MACs, emulated instructions per kernel set, MACs per instruction, speed-up."""
    ref, opt = m["reference"], m["optimized"]
    rows = []
    for i, (op, macs) in enumerate(ref.layers):
        r, o = ref.layer_instr[i], opt.layer_instr[i]
        rows.append(
            {
                "layer": i,
                "op": op,
                "macs": macs,
                "ref_instr": r,
                "opt_instr": o,
                "ref_mac_per_instr": macs / r,
                "opt_mac_per_instr": macs / o,
                "speedup": r / o,
            }
        )
    return rows


def table_field(buf: bytes, table: int, field: int) -> int | None:
    """Absolute position of a FlatBuffer table field, or None when it is absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    if 4 + 2 * field >= vt_size:
        return None
    off = struct.unpack_from("<H", buf, vtable + 4 + 2 * field)[0]
    return table + off if off else None


def deref(buf: bytes, pos: int) -> int:
    return pos + struct.unpack_from("<I", buf, pos)[0]


def corrupt_model(model: bytes, how: str) -> bytes:
    """A broken copy of a .tflite: magic, version, truncated, offset (out of bounds) or operator (MUL)."""
    buf = bytearray(model)
    root = struct.unpack_from("<I", buf, 0)[0]
    if how == "magic":
        buf[4:8] = b"TFL2"
    elif how == "version":
        struct.pack_into("<I", buf, table_field(buf, root, 0), 2)
    elif how == "truncated":
        return bytes(buf[: len(buf) // 2])
    elif how == "offset":  # the subgraphs vector points past the end of the file
        struct.pack_into("<I", buf, table_field(buf, root, 2), len(buf))
    elif how == "operator":  # every operator code becomes MUL (18), which no resolver here registers
        codes = deref(buf, table_field(buf, root, 1))
        for i in range(struct.unpack_from("<I", buf, codes)[0]):
            code = deref(buf, codes + 4 + 4 * i)
            for field, fmt in ((0, "<b"), (3, "<i")):
                pos = table_field(buf, code, field)
                if pos is not None:
                    struct.pack_into(fmt, buf, pos, 18)
    return bytes(buf)
