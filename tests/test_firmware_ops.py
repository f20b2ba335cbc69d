"""The operators MLPerf-shaped models need beyond the keyword models (ADD, MEAN, PAD, TRANSPOSE, QUANTIZE),
each in single-operator models with seeded random shapes and quantisation, byte-identical to TFLM on the host
build with both kernel sets. The models are written straight into the TFLite flatbuffer (the schema classes
the `tflite-micro` package ships), so every case is one the converters need not have produced.
"""

import subprocess
import sys

import flatbuffers
import numpy as np
import pytest
from tflite_micro import runtime

from tests.conftest import ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402

fb = runtime.schema_fb
INT8, INT32 = 9, 2
ADD, PAD, TRANSPOSE, MEAN, QUANTIZE = 0, 34, 39, 40, 114
MODELS_PER_OP = 100  # about 2 s per operator on 2 cores
INPUTS = 4


class Model:
    """One subgraph under construction: tensors, buffers, operators."""

    def __init__(self):
        self.tensors, self.buffers, self.ops, self.codes = [], [fb.BufferT()], [], []

    def tensor(self, shape, dtype=INT8, scale=None, zero_point=0, data=None) -> int:
        t = fb.TensorT()
        t.shape, t.type, t.name, t.buffer = list(shape), dtype, f"t{len(self.tensors)}", 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = list(np.ascontiguousarray(data).tobytes())
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(np.float32(scale))], [int(zero_point)]
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code, inputs, outputs, options_type=0, options=None):
        if code not in self.codes:
            self.codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.ops.append(o)

    def bytes(self, inputs, output) -> bytes:
        m, sg = fb.ModelT(), fb.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs = self.tensors, self.ops, list(inputs), [output]
        m.version, m.subgraphs, m.buffers = 3, [sg], self.buffers
        m.operatorCodes = []
        for code in self.codes:
            oc = fb.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            m.operatorCodes.append(oc)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def quant(rng):
    zp = int(rng.choice([-128, 127, 0])) if rng.random() < 0.3 else int(rng.integers(-128, 128))
    return float(10 ** rng.uniform(-3, 0.5)), zp


def single_op(kind: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    g = Model()
    shape = [1, *(int(v) for v in rng.integers(1, 9, 2)), int(rng.integers(1, 6))]
    s, zp = quant(rng)
    x = g.tensor(shape, INT8, s, zp)
    if kind == "ADD":  # a second activation of the same shape, or a broadcast constant per channel
        if rng.random() < 0.5:
            y = g.tensor(
                [1, 1, 1, shape[3]], INT8, *quant(rng), rng.integers(-128, 128, shape[3]).astype(np.int8)
            )
        else:
            y = g.tensor(shape, INT8, *quant(rng), rng.integers(-128, 128, shape).astype(np.int8))
        out = g.tensor(shape, INT8, *quant(rng))
        o = fb.AddOptionsT()
        o.fusedActivationFunction = int(rng.choice([0, 1, 3]))
        g.op(ADD, [x, y], [out], fb.BuiltinOptions.AddOptions, o)
    elif kind == "MEAN":  # any axes, same or different quantisation in and out
        axes = sorted(int(a) for a in rng.choice(4, int(rng.integers(1, 4)), replace=False))
        a = g.tensor([len(axes)], INT32, data=np.array(axes, np.int32))
        kept = [1 if i in axes else d for i, d in enumerate(shape)]
        out = g.tensor(kept, INT8, s, zp) if rng.random() < 0.5 else g.tensor(kept, INT8, *quant(rng))
        o = fb.ReducerOptionsT()
        o.keepDims = True
        g.op(MEAN, [x, a], [out], fb.BuiltinOptions.ReducerOptions, o)
    elif kind == "PAD":
        p = rng.integers(0, 3, (4, 2)).astype(np.int32)
        p[0] = 0
        pads = g.tensor([4, 2], INT32, data=p)
        out = g.tensor([d + int(p[i].sum()) for i, d in enumerate(shape)], INT8, s, zp)
        g.op(PAD, [x, pads], [out])
    elif kind == "TRANSPOSE":
        perm = [int(v) for v in rng.permutation(4)]
        pt = g.tensor([4], INT32, data=np.array(perm, np.int32))
        out = g.tensor([shape[i] for i in perm], INT8, s, zp)
        g.op(TRANSPOSE, [x, pt], [out])
    else:  # QUANTIZE int8 -> int8: a requantisation
        out = g.tensor(shape, INT8, *quant(rng))
        g.op(QUANTIZE, [x], [out])
    return g.bytes([x], out)


@pytest.mark.parametrize("kind", ["ADD", "MEAN", "PAD", "TRANSPOSE", "QUANTIZE"])
def test_single_operator_models_match_tflm(kind, tmp_path):
    need_tool("cc")
    exe = fw.build_host() / "kws_host"
    no_weights = tmp_path / "packed.bin"  # these operators have no weights to convert at build time
    no_weights.write_bytes(b"")
    checked = 0
    for seed in range(MODELS_PER_OP):
        data = single_op(kind, seed)
        path = tmp_path / f"{kind}_{seed}.tflite"
        path.write_bytes(data)
        interp = runtime.Interpreter.from_bytes(data)
        det = interp.get_input_details(0)
        xq = (
            np.random.default_rng(1000 + seed)
            .integers(-128, 128, (INPUTS, *det["shape"][1:]))
            .astype(np.int8)
        )
        ref = []
        for k in range(INPUTS):
            interp.set_input(xq[k : k + 1], 0)
            interp.invoke()
            ref.append(interp.get_output(0).reshape(-1).copy())
        ref = np.stack(ref).astype(np.int8)
        # the host binary takes float features and quantises them as the device does: give it exact ones
        scale, zp = (
            det["quantization_parameters"]["scales"][0],
            det["quantization_parameters"]["zero_points"][0],
        )
        x = (xq.astype(np.float32) - np.float32(zp)) * np.float32(scale)
        assert (fw.quantize(x, scale, zp) == xq).all()
        f32 = tmp_path / "inputs.f32"
        x.tofile(f32)
        for kernels in ("reference", "optimized"):
            args = [str(exe), str(path), str(f32), kernels, "100000", str(no_weights)]
            out = fw.parse(subprocess.run(args, capture_output=True, text=True, timeout=60).stdout)
            assert not out.error, f"{kind} seed {seed} {kernels}: {out.error} (model kept at {path})"
            assert (out.raw == ref).all(), (
                f"{kind} seed {seed} {kernels}: differs from TFLM (model at {path})"
            )
            checked += 1
    print(f"{kind}: {MODELS_PER_OP} random one-operator models x {INPUTS} inputs, {checked} runs = TFLM")
