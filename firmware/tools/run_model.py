"""Run any int8 .tflite in QEMU on the STM32F407 firmware, in one command (`make -C firmware run`):

    make -C firmware run MODEL=my.tflite INPUTS=my.npy [KERNELS=reference|optimized]
    python tools/run_model.py --model my.tflite [--inputs my.npy] [--kernels optimized]

INPUTS: N x the model's input shape (with or without its leading 1), int8 (used as they are) or float32
(quantised on the device with the input's scale and zero point); an .npz is read at key `x`. Without
INPUTS: one input filled with the input zero point. Steps:
  1. a build folder keyed by the content hash of model + inputs: build/run/<model>-<sha1[:12]>/
  2. the arena from our own planner: the host build runs the model once per kernel set and reports it
  3. the inputs split into as many flash images as the 1 MB flash needs, each run in QEMU
  4. per input: class (argmax) and the raw int8 output; when the `tflite-micro` package is importable,
     a last line `match TFLM: K/N inputs` (byte-for-byte equal outputs).
Exit status: 0 when every input ran (and matched TFLM, when checked), else 1; the firmware's own error
line (e.g. `error UNSUPPORTED_OP op 3 code 0 ADD`) is printed as it is.
"""

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulator as fw  # noqa: E402

ARENA_ROUND = 16  # the arena buffer is 16-byte aligned; the planner reports exact bytes


def fail(message: str) -> None:
    raise SystemExit(f"run_model: {message}")


def model_input(model: bytes) -> tuple[tuple, int, float, int]:
    """Input tensor: shape, TFLite type, scale, zero point (read with tflite-micro's schema module)."""
    from tflite_micro import runtime

    try:
        m = runtime.schema_fb.ModelT.InitFromPackedBuf(model, 0)
        sg = m.subgraphs[0]
        t = sg.tensors[sg.inputs[0]]
        q = t.quantization
        scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
        zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
        return tuple(int(d) for d in t.shape), int(t.type), scale, zp
    except Exception as e:  # a corrupt file: say so in one line, the firmware would name the error
        fail(f"cannot read the model's input tensor ({type(e).__name__}: {e}); is it a valid .tflite?")


def load_inputs(path, shape: tuple, zero_point: int) -> np.ndarray:
    if path is None:
        return np.full((1, *shape[1:]), zero_point, np.int8)
    p = Path(path)
    if not p.exists():
        fail(f"{p}: no such file (INPUTS must be an .npy of N x {shape[1:]} int8 or float32)")
    x = np.load(p)
    if isinstance(x, np.lib.npyio.NpzFile):
        if "x" not in x.files:
            fail(f"{p}: an .npz needs the inputs at key 'x'; it holds {x.files}")
        x = x["x"]
    if x.shape[1:] == tuple(shape):  # N x (1, H, W, C)
        x = x.reshape(len(x), *shape[1:])
    if x.ndim == len(shape) - 1 and x.shape == tuple(shape[1:]):  # a single input without N
        x = x[None]
    if x.shape[1:] != tuple(shape[1:]) or len(x) == 0:
        fail(f"{p}: inputs have shape {x.shape}, expected N x {tuple(shape[1:])} (the model's input {shape})")
    if x.dtype == np.int8:
        return x
    if x.dtype.kind == "f":
        return x.astype(np.float32)
    fail(f"{p}: inputs are {x.dtype}, expected int8 (quantised) or float32")


def host_arena(model: Path, packed: Path, x: np.ndarray) -> int:
    """Bytes our planner needs, the larger of the two kernel sets, from the host build (8-byte pointers
    make its records bigger than the MCU's, so this is an upper bound for the firmware)."""
    exe = fw.build_host() / "kws_host"
    need = 0
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "one.f32"
        np.zeros(x[0].size, np.float32).tofile(f32)
        for kernels in ("reference", "optimized"):
            args = [str(exe), str(model), str(f32), kernels, str(4 * 1024 * 1024), str(packed)]
            out = fw.parse(subprocess.run(args, capture_output=True, text=True, timeout=300).stdout)
            if out.error:
                fail(f"the firmware refuses this model ({kernels} kernels): {out.error}")
            need = max(need, out.arena_used)
    return -(-need // ARENA_ROUND) * ARENA_ROUND


def tflm_raw(model: Path, x: np.ndarray, scale: float, zp: int) -> np.ndarray | None:
    try:
        from tflite_micro import runtime
    except ImportError:
        return None
    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    xq = x if x.dtype == np.int8 else fw.quantize(x, scale, zp)
    outs = []
    for k in range(len(xq)):
        interp.set_input(xq[k : k + 1].reshape(interp.get_input_details(0)["shape"]), 0)
        interp.invoke()
        outs.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(outs).astype(np.int8)


def run(model, inputs=None, kernels: str = "optimized", quiet: bool = False) -> dict:
    """Everything above; returns {"raw": (N, out) int8, "classes", "instr", "tflm_match": K or None, ...}."""
    model = Path(model).resolve()
    if not model.exists():
        fail(f"{model}: no such file (MODEL must be an int8 .tflite)")
    data = model.read_bytes()
    if data[4:8] != b"TFL3":
        fail(f"{model}: not a .tflite file (expected the identifier TFL3 at byte 4)")
    if kernels not in ("reference", "optimized"):
        fail(f"KERNELS={kernels}: expected reference or optimized")
    shape, ttype, scale, zp = model_input(data)
    if ttype != 9:
        fail(f"the model's input is TFLite type {ttype}, expected int8 (9): convert it fully to int8")
    x = load_inputs(inputs, shape, zp)
    key = hashlib.sha1(data + x.dtype.str.encode() + str(x.shape).encode() + x.tobytes()).hexdigest()[:12]
    folder = fw.FIRMWARE / "build" / "run" / f"{model.stem}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    npy = folder / "inputs.npy"
    if not npy.exists():
        np.save(npy, x)
    tag = fw._tag(model)
    model_gen = Path("build") / "gen" / tag
    fw.make(str(model_gen / "model_data.c"), MODEL=model, NAME=tag)
    packed = fw.FIRMWARE / model_gen / "packed.bin"
    arena = host_arena(model, packed, x)
    room = fw.FLASH_BYTES - 1.06 * len(data) - packed.stat().st_size - fw.CODE_MARGIN
    per = max(1, min(len(x), int(room // (x[0].size * x.itemsize))))
    per = -(-len(x) // -(-len(x) // per))  # equal-sized images
    say = (lambda *a: None) if quiet else print
    images = -(-len(x) // per)
    say(f"model {model.name}: input {shape} int8, {len(x)} {x.dtype} inputs, kernels {kernels}, "
        f"arena {arena} B, {images} image(s), build folder {folder.relative_to(fw.FIRMWARE)}")  # fmt: skip
    raw, classes, instr, errors, outputs = [], [], [], [], []
    for start in range(0, len(x), per):
        count = min(per, len(x) - start)
        gen = folder / f"inputs-{start}-{count}"
        elf = gen / f"kws_{kernels}-{arena}.elf"
        fw.make(str(elf.relative_to(fw.FIRMWARE)), MODEL=model, NAME=tag, GEN=gen.relative_to(fw.FIRMWARE),
                INPUTS_NPY=npy, START=start, COUNT=count, ARENA=arena)  # fmt: skip
        out = fw.parse(fw.run_qemu(elf).text)
        if out.error or out.done != count:
            errors.append(out.error or f"image {start}..{start + count - 1}: no `done` line")
            say(out.error or errors[-1])
            break
        for i in range(count):
            raw_hex = out.raw[i].tobytes().hex()
            say(f"input {start + i} class {out.classes[i]} raw {raw_hex} instr {out.instr[i]}")
        raw.append(out.raw)
        outputs.append(out)
        classes += out.classes
        instr += out.instr
    result = {
        "raw": np.concatenate(raw) if raw else np.zeros((0, 0), np.int8),
        "classes": classes, "instr": instr, "arena": arena, "errors": errors, "images": images,
        "outputs": outputs, "folder": folder, "tflm_match": None, "n": len(x),
    }  # fmt: skip
    ref = tflm_raw(model, x, scale, zp) if not errors else None
    if ref is not None:
        result["tflm_match"] = int((ref == result["raw"]).all(axis=1).sum())
        say(f"match TFLM: {result['tflm_match']}/{len(x)} inputs")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs")
    ap.add_argument("--kernels", default="optimized")
    args = ap.parse_args()
    r = run(args.model, args.inputs, args.kernels)
    ok = not r["errors"] and r["tflm_match"] in (None, r["n"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
