"""Turn a .tflite model and N test inputs into C arrays for the firmware (run by firmware/Makefile).

    python tools/gen_model.py --model M.tflite --out DIR                 # the model
    python tools/gen_model.py --test-set T.npz --start 0 --count 50 --out DIR   # a batch of inputs

The model gives DIR/model_data.c (the .tflite bytes, const and 16-byte aligned: it stays in flash and the
interpreter reads it in place) and DIR/packed_weights.c + DIR/packed.bin: convolution weights converted
at build time for the optimised kernels (int16, zero-padded to quads of taps, output channels interleaved
in pairs: see kernels/optimized/conv.c). Inputs give DIR/inputs.c (float features, quantised on the
device) and DIR/inputs.f32 (the same floats for the host build).
"""

import argparse
from pathlib import Path

import numpy as np
from tflite_micro import runtime

CONV_2D, DEPTHWISE_CONV_2D = 3, 4


def c_bytes(name: str, data: bytes) -> str:
    hexes = [f"0x{b:02x}" for b in data]
    rows = [", ".join(hexes[i : i + 16]) for i in range(0, len(hexes), 16)]
    body = ",\n  ".join(rows)
    return (
        f"const uint8_t {name}[] __attribute__((aligned(16))) = {{\n  {body}\n}};\n"
        f"const uint32_t {name}_len = {len(data)};\n"
    )


def pack_conv_weights(w: np.ndarray) -> np.ndarray:
    """w: (O, K) int8 -> int16 in the optimised kernel's order: channel pairs, quads of 4 taps interleaved."""
    o, k = w.shape
    kq, o2 = -(-k // 8) * 8, -(-o // 2) * 2  # taps padded to a multiple of 8: the kernel unrolls by 2 quads
    padded = np.zeros((o2, kq), np.int16)
    padded[:o, :k] = w
    # inside each quad of taps the kernel's order is (t0, t2, t1, t3): what SXTB16 produces
    padded = padded.reshape(o2, kq // 4, 4)[:, :, [0, 2, 1, 3]]
    # (pairs, 2, quads, 4) -> (pairs, quads, 2, 4): [w0 q0][w1 q0][w0 q1][w1 q1]...
    return padded.reshape(o2 // 2, 2, kq // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


class ModelError(ValueError):
    """A model this tool cannot convert: corrupt, or not one the firmware runs. The message is one line."""


def filter_weights(m, sg, op, name: str) -> tuple[np.ndarray, list]:
    """(int8 weights in the filter's shape, the input's shape) of a conv operator, checked first."""
    ins = list(op.inputs) if op.inputs is not None else []
    for slot in (0, 1):
        if len(ins) <= slot or not 0 <= ins[slot] < len(sg.tensors):
            raise ModelError(f"{name}: input {slot} is tensor {ins[slot] if len(ins) > slot else 'missing'}, "
                             f"expected an index in 0..{len(sg.tensors) - 1}")  # fmt: skip
    x, f = sg.tensors[ins[0]], sg.tensors[ins[1]]
    if f.type != 9:  # TensorType INT8
        raise ModelError(f"{name}: filter tensor {ins[1]} has TensorType {f.type}, expected 9 (INT8): "
                         "the firmware runs int8 models")  # fmt: skip
    shape = [int(d) for d in (f.shape if f.shape is not None else [])]
    if len(shape) != 4 or min(shape) < 1 or x.shape is None or len(x.shape) != 4:
        raise ModelError(f"{name}: filter shape {shape} and input shape {x.shape}, expected 4-D NHWC")
    buf = m.buffers[f.buffer] if 0 <= f.buffer < len(m.buffers or []) else None
    data = bytes(buf.data) if buf is not None and buf.data is not None else b""
    if len(data) != int(np.prod(shape)):
        raise ModelError(f"{name}: filter tensor {ins[1]} holds {len(data)} bytes, its shape {shape} needs "
                         f"{int(np.prod(shape))}")  # fmt: skip
    return np.frombuffer(data, np.int8).reshape(shape), list(x.shape)


def packed_weights(model_bytes: bytes) -> dict[int, np.ndarray]:
    """Filter tensor index -> packed int16 weights, for CONV_2D and for DEPTHWISE_CONV_2D on 1 channel
    (kernels/optimized/conv.c: opt_conv_packed, which depthwise.c also runs for one input channel).
    Raises ModelError on a bad model."""
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ModelError("not a .tflite file (expected the identifier TFL3 at byte 4)")
    try:
        m = runtime.schema_fb.ModelT.InitFromPackedBuf(model_bytes, 0)
    except Exception as e:  # the flatbuffers reader fails in many ways on a corrupt file
        raise ModelError(f"corrupt flatbuffer ({type(e).__name__}: {e})") from None
    if not m.subgraphs or not m.operatorCodes:
        raise ModelError("no subgraph or no operator codes")
    sg = m.subgraphs[0]
    out = {}
    for i, op in enumerate(sg.operators or []):
        if not 0 <= op.opcodeIndex < len(m.operatorCodes):
            raise ModelError(
                f"operator {i}: opcode index {op.opcodeIndex}, expected 0..{len(m.operatorCodes) - 1}"
            )
        oc = m.operatorCodes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code not in (CONV_2D, DEPTHWISE_CONV_2D):
            continue
        name = "CONV_2D" if code == CONV_2D else "DEPTHWISE_CONV_2D"
        w, x_shape = filter_weights(m, sg, op, f"operator {i} ({name})")
        if code == CONV_2D:
            out[int(op.inputs[1])] = pack_conv_weights(w.reshape(w.shape[0], -1))
        elif x_shape[-1] == 1:  # depthwise on one input channel = a conv with in_c 1: the same packing
            out[int(op.inputs[1])] = pack_conv_weights(w.reshape(-1, w.shape[-1]).T)  # (O, KH*KW)
    return out


def write_model(model_path: str, out: Path) -> None:
    model = Path(model_path).read_bytes()
    if model[4:8] != b"TFL3":
        raise ModelError("not a .tflite file (expected the identifier TFL3 at byte 4)")
    (out / "model_data.c").write_text(
        f"/* {Path(model_path).name}: generated by tools/gen_model.py, do not edit */\n"
        + HEAD
        + c_bytes("kws_model", model)
    )
    packs = packed_weights(model)
    lines, table = [HEAD], []
    for tensor, w in packs.items():
        body = ", ".join(str(int(v)) for v in w)
        lines.append(f"static const int16_t w{tensor}[] __attribute__((aligned(8))) = {{{body}}};\n")
        table.append(f"{{{tensor}, {w.size * 2}, w{tensor}}}")
    table = table or ["{-1, 0, 0}"]
    lines.append(f"const packed_weights_t kws_packed[] = {{{', '.join(table)}}};\n")
    lines.append(f"const int kws_num_packed = {len(packs)};\n")
    (out / "packed_weights.c").write_text("".join(lines))
    (out / "packed.bin").write_bytes(packed_file(packs))


def packed_file(packs: dict[int, np.ndarray]) -> bytes:
    """The host build's PACKED.bin (host/packed_file.h): {int32 tensor, uint32 bytes, data padded to 4}."""
    blob = bytearray()
    for tensor, w in packs.items():
        raw = w.astype("<i2").tobytes()
        blob += np.array([tensor, len(raw)], "<i4").tobytes() + raw + bytes(-len(raw) % 4)
    return bytes(blob)


def write_inputs(test_set: str, start: int, count: int, out: Path) -> None:
    x = np.load(test_set)["x"][start : start + count].astype(np.float32)
    if len(x) == 0:
        raise SystemExit(f"{test_set}: no inputs in [{start}, {start + count})")
    rows = (", ".join(f"{float(v)!r}f" for v in row.astype(np.float64)) for row in x.reshape(len(x), -1))
    (out / "inputs.c").write_text(
        f"/* inputs {start}..{start + len(x) - 1} of {Path(test_set).name}: float features, shape "
        f"{tuple(x.shape[1:])} each */\n"
        + HEAD
        + "const float kws_inputs[] = {\n  "
        + ",\n  ".join(rows)
        + f"\n}};\nconst int kws_num_inputs = {len(x)};\n"
    )
    x.tofile(out / "inputs.f32")


HEAD = '#include <stdint.h>\n#include "interpreter.h"\n\n'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--test-set")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.model:
        try:
            write_model(args.model, out)
        except (ModelError, OSError) as e:  # one line, no traceback: what is wrong with which file
            raise SystemExit(f"gen_model: {args.model}: {e}") from None
    if args.test_set:
        write_inputs(args.test_set, args.start, args.count, out)


if __name__ == "__main__":
    main()
