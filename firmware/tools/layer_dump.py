"""Each operator's output tensor from our firmware for one input: the firmware stage of a layer-by-layer diff.

    python firmware/tools/layer_dump.py MODEL.tflite [INPUT.npy] [--qemu] [--kernels reference] [--fault NAME]
    make -C firmware run MODEL=my.tflite INPUTS=x.npy DUMP=1 [KERNELS=reference] [FAULT=FAULT_CONV_BIAS]

    from layer_dump import dump_layers
    layers = dump_layers(model, x)        # one dict per operator: op_index, tensor_index, shape, data (int8)

A dump build (app/app.c under KWS_LAYER_DUMP) prints, right after each operator ran, for the first input only,
the same line on the host's stdout and on the MCU's UART:

    LAYER <op_index> <tensor_index> <d0>x<d1>x...x<dn> <hex bytes: two lowercase digits per byte, no spaces>

tensor_index is the operator's output in subgraph 0's tensors of the .tflite (its name, scale and zero point
come from the model); the bytes are the int8 tensor as it lies in the arena (NHWC). The usual `result` line
follows. Normal builds do not contain the dump code: it lives in its own binaries (build/host/kws_host-dump,
kws_<kernels>-<arena>-dump.elf, objects in build/arm-dump/), as do the test-only faults in FAULTS.
INPUT: one input of the model's input shape (with or without its leading 1), float32 (quantised as the
firmware does) or int8; an .npy or an .npz at key `x` holding several takes the first (--index to choose).
"""

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulator as fw  # noqa: E402
import run_model  # noqa: E402

# the deliberate kernel bugs a test build can carry (kernels/faults.h); never part of a normal build
FAULTS = {
    "FAULT_CONV_BIAS": "every CONV_2D: output channel 0's bias is off by 16 steps of the output scale",
}
HOST_ARENA = 4 * 1024 * 1024  # the host has room: the arena never limits which model can be dumped
LINE = re.compile(r"LAYER (\S+) (\S+) (\S+) (\S*)")
HEX = re.compile(r"(?:[0-9a-f]{2})*")


def parse_dump(text: str) -> list[dict]:
    """The LAYER lines of a dump -> [{op_index, tensor_index, shape (tuple), data (int8 array, that shape)}].
    Other lines are skipped; a LAYER line that is cut short or corrupt raises ValueError naming it."""
    layers = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("LAYER"):
            continue
        shown = line if len(line) <= 80 else f"{line[:60]}...({len(line)} characters)"
        where = f"dump line {number} {shown!r}"
        m = LINE.fullmatch(line)
        if not m:
            raise ValueError(f"{where}: expected 'LAYER <op_index> <tensor_index> <d0>x...x<dn> <hex bytes>'")
        try:
            op, tensor = int(m[1]), int(m[2])
            shape = tuple(int(d) for d in m[3].split("x"))
        except ValueError:
            raise ValueError(f"{where}: op index, tensor index and the dimensions must be integers") from None
        if not HEX.fullmatch(m[4]):
            raise ValueError(f"{where}: data must be pairs of lowercase hex digits ({len(m[4])} characters)")
        data = np.frombuffer(bytes.fromhex(m[4]), np.int8)
        expected = int(np.prod(shape))
        if data.size != expected:
            raise ValueError(f"{where}: {data.size} bytes for shape {shape}, expected {expected} (cut off?)")
        layers.append({"op_index": op, "tensor_index": tensor, "shape": shape, "data": data.reshape(shape)})
    return layers


def _input(data: bytes, x) -> tuple[np.ndarray, float, int]:
    """One input as (1, *input shape), int8 or float32, and the input's scale and zero point."""
    try:
        shape, ttype, scale, zp = run_model.model_input(data)
    except SystemExit as e:  # run_model reports with SystemExit; a library raises
        raise ValueError(str(e)) from None
    if ttype != 9:
        raise ValueError(f"the model's input is TFLite type {ttype}, expected int8 (9)")
    x = np.asarray(x)
    if x.shape not in (tuple(shape), tuple(shape[1:])):
        raise ValueError(f"input has shape {x.shape}, expected one input of shape {tuple(shape)}")
    if x.dtype != np.int8 and x.dtype.kind != "f":
        raise ValueError(f"input is {x.dtype}, expected float32 (quantised as the firmware does) or int8")
    return x.reshape(shape).astype(np.int8 if x.dtype == np.int8 else np.float32), scale, zp


def _prepare(model, x, kernels: str, fault: str | None) -> tuple[Path, np.ndarray, float, int, str, Path]:
    """Checked arguments, the model's C arrays and build-time weights (tools/gen_model.py via make)."""
    model = Path(model).resolve()
    if not model.exists():
        raise FileNotFoundError(f"{model}: no such file (expected an int8 .tflite)")
    data = model.read_bytes()
    if data[4:8] != b"TFL3":
        raise ValueError(f"{model}: not a .tflite file (expected the identifier TFL3 at byte 4)")
    if kernels not in ("reference", "optimized"):
        raise ValueError(f"kernels={kernels!r}: expected 'reference' or 'optimized'")
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"fault={fault!r}: expected one of {sorted(FAULTS)}")
    x, scale, zp = _input(data, x)
    tag = fw._tag(model)
    fw.make(f"build/gen/{tag}/model_data.c", MODEL=model, NAME=tag)
    return model, x, scale, zp, tag, fw.FIRMWARE / "build" / "gen" / tag / "packed.bin"


def _variant(dump: bool, fault: str | None) -> tuple[str, dict]:
    """The Makefile's binary-name suffix and variables for a dump and/or fault build."""
    variant = ("-dump" if dump else "") + (f"-{fault}" if fault else "")
    return variant, {**({"DUMP": 1} if dump else {}), **({"FAULT": fault} if fault else {})}


def host_run(model, x, kernels: str = "optimized", fault: str | None = None, dump: bool = True,
             timeout: float = 300) -> str:  # fmt: skip
    """The host build on one input (dump=False: the normal binary); returns what it printed."""
    model, x, scale, zp, _, packed = _prepare(model, x, kernels, fault)
    variant, flags = _variant(dump, fault)
    exe = f"build/host/kws_host{variant}"
    fw.make(exe, **flags)
    # the host binary reads float features; an int8 input goes in as (q - zp) * scale, which it quantises
    # back to exactly q (checked here, so an int8 input is never silently changed)
    xf = x if x.dtype == np.float32 else ((x.astype(np.float32) - zp) * np.float32(scale)).astype(np.float32)
    if x.dtype == np.int8 and not np.array_equal(fw.quantize(xf, scale, zp), x):
        raise RuntimeError("this int8 input does not survive the host's float path; pass it as float32")
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "input.f32"
        xf.tofile(f32)
        args = [str(fw.FIRMWARE / exe), str(model), str(f32), kernels, str(HOST_ARENA), str(packed)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return proc.stdout + proc.stderr


def qemu_image(model, x, kernels: str = "optimized", fault: str | None = None, dump: bool = True) -> Path:
    """The firmware ELF for one input (dump=False: the normal image), next to run_model's images."""
    model, x, _, _, tag, packed = _prepare(model, x, kernels, fault)
    variant, flags = _variant(dump, fault)
    arena = run_model.host_arena(model, packed, x)
    data = model.read_bytes()
    key = hashlib.sha1(data + x.dtype.str.encode() + str(x.shape).encode() + x.tobytes()).hexdigest()[:12]
    folder = fw.FIRMWARE / "build" / "run" / f"{model.stem}-{key}"  # run_model's folder for this one input
    folder.mkdir(parents=True, exist_ok=True)
    npy = folder / "inputs.npy"
    if not npy.exists():
        np.save(npy, x)
    gen = folder / "inputs-0-1"
    elf = gen / f"kws_{kernels}-{arena}{variant}.elf"
    fw.make(str(elf.relative_to(fw.FIRMWARE)), MODEL=model, NAME=tag, GEN=gen.relative_to(fw.FIRMWARE),
            INPUTS_NPY=npy, START=0, COUNT=1, ARENA=arena, **flags)  # fmt: skip
    return elf


def dump_text(model, x, where: str = "host", kernels: str = "optimized", fault: str | None = None,
              timeout: float = 300) -> str:  # fmt: skip
    """Build the dump binary (host) or image (QEMU) for `model` and one input, run it; what it printed."""
    if where not in ("host", "qemu"):
        raise ValueError(f"where={where!r}: expected 'host' or 'qemu'")
    if where == "host":
        return host_run(model, x, kernels, fault, True, timeout)
    return fw.run_qemu(qemu_image(model, x, kernels, fault), timeout).text


def check_complete(text: str, layers: list[dict]) -> None:
    """A dump must cover every operator once, in order, and end with the run's `done` line."""
    out = fw.parse(text)
    if out.error:
        raise RuntimeError(f"the firmware refused: {out.error}")
    if out.done != 1:
        raise RuntimeError(f"the run printed no `done 1` line (crash? cut off?), it ends:\n{text[-500:]}")
    ops = [d["op_index"] for d in layers]
    if ops != list(range(len(out.layers))):
        raise RuntimeError(f"LAYER lines for operators {ops}, expected one each for 0..{len(out.layers) - 1}")


def dump_layers(model, x, where: str = "host", kernels: str = "optimized", fault: str | None = None,
                timeout: float = 300) -> list[dict]:  # fmt: skip
    """Run the firmware (host build or QEMU) on one input and return each operator's output (parse_dump)."""
    text = dump_text(model, x, where, kernels, fault, timeout)
    layers = parse_dump(text)
    check_complete(text, layers)
    return layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("input", nargs="?", help=".npy (or .npz at key x); default: one input of zero points")
    ap.add_argument("--index", type=int, default=0, help="which input when the file holds several")
    ap.add_argument("--qemu", action="store_true", help="run the image in QEMU (default: the host build)")
    ap.add_argument("--kernels", default="optimized", choices=("reference", "optimized"))
    ap.add_argument("--fault", choices=sorted(FAULTS), help="a test build with this deliberate kernel bug")
    args = ap.parse_args()
    try:
        if not Path(args.model).is_file():
            raise ValueError(f"{args.model}: no such file (expected an int8 .tflite)")
        shape, _, _, zp = run_model.model_input(Path(args.model).read_bytes())
        x = run_model.load_inputs(args.input, shape, zp)
        if not 0 <= args.index < len(x):
            raise ValueError(f"--index {args.index}: the file holds {len(x)} inputs")
        text = dump_text(args.model, x[args.index], "qemu" if args.qemu else "host", args.kernels, args.fault)
        layers = parse_dump(text)
        check_complete(text, layers)
    except (OSError, ValueError, RuntimeError) as e:
        raise SystemExit(f"layer_dump: {e}") from None
    for line in text.splitlines():
        if line.startswith("LAYER "):
            print(line)
    print(f"{len(layers)} operators dumped", file=sys.stderr)


if __name__ == "__main__":
    main()
