"""The 3x3 depthwise fast paths (kernels/optimized/depthwise.c: depth multiplier 1, stride 1, SAME or VALID
padding; int16 planes + SMLAD, assembly on the M4) against TFLM, byte for byte: random chains of such
layers with every image width the four-channel planes take (odd, even, below one group of four, up to 29
with SAME and 31 with VALID), wider ones (one channel's plane at a time, up to 125) and wider still
(depthwise_4ch), random quantisation (zero points at both ends, shifts up to 31, nearly dead channels) and
all three activations (RELU6 and a RELU floor above -128 take the assembly's clamping variant)."""

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402
import gen_model  # noqa: E402
import random_model as rm  # noqa: E402

HOST_MODELS, INPUTS = 60, 3
# in QEMU: the widest each padding takes (2006: SAME 29, 2105: VALID 31), the narrowest each refuses
# (2008: SAME 30, 4: VALID 32), then the first few seeds
QEMU_SEEDS = [2006, 2105, 2008, 4, *range(1000, 1006)]


def dw3_model(
    seed: int, typical: bool = False, wide: bool = False, clamp: bool = False, stride2: bool = False
) -> tuple[bytes, dict]:
    """typical: what the assembly takes: weight scales that keep outputs inside int8 (every channel a right
    shift >= 2), no activation or RELU on zero point -128 (SSAT is the only clamp); else also extreme and
    nearly dead channels and RELU/RELU6 on any zero point (the C loops). clamp: typical scales with RELU6 or
    RELU on any zero point (the assembly's clamping variant). wide: widths 34..130 (one channel's plane at
    a time, up to 125; wider ones take depthwise_4ch). stride2: most layers stride 2 (one channel's plane,
    the stride-2 assembly), taller images."""
    rng = np.random.default_rng(seed)
    g = rm.Graph(rng)
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 34))
    if stride2:
        h = int(rng.integers(1, 40))
    if wide:
        w = int(rng.integers(34, 131))
    c = int(rng.choice([4, 8, 12, 16, 32, 64]))
    c = min(c, 8) if wide else min(c, 16) if stride2 else c  # QEMU builds have a 48 KB arena
    x = first = g.activation([1, h, w, c])
    acts, pads = [], []
    for _ in range(int(rng.integers(1, 4))):
        valid = h >= 3 and w >= 3 and rng.random() < 0.4  # as after an explicit PAD (MLPerf's DS-CNN)
        s = 2 if stride2 and rng.random() < 0.8 else 1
        h, w = (h - 2, w - 2) if valid else (h, w)
        if s == 2:  # TFLite: VALID (n - 3) // 2 + 1 (h is n - 2 by now), SAME (n + 1) // 2
            h, w = ((h + 1) // 2, (w + 1) // 2)
        pads.append("VALID" if valid else "SAME")
        in_s, _ = g.q(x)
        relu_floor = typical and not clamp and rng.random() < 0.5  # RELU on zero point -128: SSAT alone
        out = g.activation([1, h, w, c], zero_point=-128 if relu_floor else None)
        n = c if rng.random() < 0.8 else 1
        ws = g.weight_scales(n, in_s, g.q(out)[0], 9)
        if typical or clamp:
            ws = (g.q(out)[0] / in_s / (9 * 127 * 40) * 10 ** rng.uniform(-1, 1, n)).astype(np.float32)
        f = g.tensor([1, 3, 3, c], rm.INT8, ws, 0, g.weights((1, 3, 3, c), 3), 3)
        b = g.tensor([c], rm.INT32, (in_s * np.broadcast_to(ws, (c,))).astype(np.float32), 0, g.bias(c, 9), 0)
        o = rm.fb.DepthwiseConv2DOptionsT()
        o.padding = rm.VALID if valid else rm.SAME
        o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = s, s, 1, 1
        act = int(rng.choice([1, 3])) if clamp else int(relu_floor) if typical else rm.activation_fn(g)
        o.depthMultiplier, o.fusedActivationFunction = 1, act
        acts.append(o.fusedActivationFunction)
        g.op(4, [x, f, b], [out], rm.fb.BuiltinOptions.DepthwiseConv2DOptions, o)
        x = out
    model = rm.fb.ModelT()
    model.version, model.description = 3, f"dw3x3 {seed}"
    sg = rm.fb.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = g.tensors, g.ops, [first], [x], "main"
    model.subgraphs, model.buffers = [sg], g.buffers
    oc = rm.fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = 4, 4, 1
    model.operatorCodes = [oc]
    bld = rm.flatbuffers.Builder(4096)
    bld.Finish(model.Pack(bld), file_identifier=b"TFL3")
    shape = g.shape(first)[1:]
    return bytes(bld.Output()), {"in": shape, "pads": pads, "acts": acts, "shifts": g.shifts}


def inputs(model: bytes, seed: int):
    return fw.grid_inputs_and_tflm(model, seed, INPUTS, arena=200_000)


def test_dw3x3_matches_tflm_on_host(tmp_path):
    need_tool("cc")
    exe = fw.build_host() / "kws_host_asan"
    widths, acts, pads, shifts = set(), set(), set(), []
    for seed in range(HOST_MODELS):
        model, info = dw3_model(
            seed, typical=seed % 2 == 0, wide=seed % 5 == 4, clamp=seed % 6 == 5, stride2=seed % 4 == 3
        )
        widths.add(info["in"][1]), acts.update(info["acts"]), shifts.extend(info["shifts"])
        pads.update(info["pads"])
        path, f32, packed = tmp_path / "m.tflite", tmp_path / "x.f32", tmp_path / "packed.bin"
        path.write_bytes(model)
        packed.write_bytes(gen_model.packed_file(gen_model.packed_weights(model)))
        x, ref = inputs(model, seed)
        x.tofile(f32)
        for kernels in ("reference", "optimized"):
            args = [str(exe), str(path), str(f32), kernels, "200000"] + (
                [str(packed)] if kernels == "optimized" else []
            )
            proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
            out = fw.parse(proc.stdout)
            assert proc.returncode == 0 and not out.error, (
                f"seed {seed} {kernels}: {out.error} {proc.stderr[-300:]}"
            )
            assert (out.raw == ref).all(), (
                f"seed {seed} {kernels} {info}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
            )
    assert {0, 1, 3} <= acts and pads == {"SAME", "VALID"} and max(widths) > 125 and min(widths) <= 3
    print(f"{HOST_MODELS} models x {INPUTS} inputs x 2 kernel sets = TFLM; widths {sorted(widths)}, "
          f"right shifts up to {-min(shifts)}")  # fmt: skip


@pytest.mark.parametrize("seed", QEMU_SEEDS)
def test_dw3x3_matches_tflm_in_qemu(seed, tmp_path):
    """The assembly runs only on the M4: the same check in QEMU (optimised set)."""
    for tool in fw.tools_missing():
        need_tool(tool)
    model, info = dw3_model(seed, typical=True)
    out, ref = fw.qemu_against_tflm(model, tmp_path, f"dw3_{seed}", seed, INPUTS)
    assert out.error == "" and out.raw.shape == ref.shape, f"seed {seed}: {out.error}"
    assert (out.raw == ref).all(), f"seed {seed} {info}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
    print(f"seed {seed}: input {info['in']}, layers {info['pads']} = TFLM in QEMU")


@pytest.mark.parametrize(
    ("kind", "seed"),
    [("wide", 7), ("wide", 8), ("clamp", 9), ("clamp", 10), ("stride2", 11), ("stride2", 12)],
)
def test_dw3x3_wide_and_clamped_in_qemu(kind, seed, tmp_path):
    """One channel's plane at a time (images wider than 29) and the assembly's clamping variant (RELU6, or
    RELU on a zero point above -128), in QEMU against TFLM."""
    for tool in fw.tools_missing():
        need_tool(tool)
    model, info = dw3_model(
        seed, typical=True, wide=kind == "wide", clamp=kind == "clamp", stride2=kind == "stride2"
    )
    out, ref = fw.qemu_against_tflm(model, tmp_path, f"dw3_{kind}_{seed}", seed, INPUTS)
    assert out.error == "" and out.raw.shape == ref.shape, f"{kind} {seed}: {out.error}"
    assert (out.raw == ref).all(), f"{kind} {seed} {info}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
    print(
        f"{kind} {seed}: input {info['in']}, layers {info['pads']}, activations {info['acts']} = TFLM in QEMU"
    )
