"""Depthwise conv over ONE input channel with depth multiplier > 1 (a converted first layer: KWS CNN,
DS-CNN) in the optimised kernels against TFLM, byte for byte. Two paths (kernels/optimized/depthwise.c):
3x3 stride 1 on one shared int16 plane (depthwise_1ch_plane: assembly on the M4, C on the host) when the
zero point folds and the plane fits (width <= 125, height <= 30); everything else the
packed convolution of conv.c (opt_conv_packed, in_c 1). Random shapes on both sides of each limit, random
quantisation (nearly dead channels, zero points at both ends) and all three activations; the test counts
how many layers took each path by the same rules as the firmware."""

import math
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402
import gen_model  # noqa: E402
import random_model as rm  # noqa: E402

HOST_MODELS, INPUTS = 50, 2
PLANE_MAX_W, PLANE_MAX_H = 125, 30  # depthwise.c: DW1_MAX_W, and DW3_PLANE_CAP / 256 - 2
# in QEMU: the widest plane (SAME, width 125), the first width it refuses (126), the tallest (30) and the
# first height it refuses (31), MLPerf's 10x4 stride 2, then a few random seeds
QEMU_CASES = [("wide", 125), ("wide", 126), ("tall", 30), ("tall", 31), ("kws10x4", 0), ("random", 7)]
QEMU_CASES += [("clamp", 1), ("clamp", 2)]  # RELU6 / RELU above -128: the assembly's clamping variant


def multiplier_and_shift(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier (the firmware's Prepare computes the same)."""
    q, s = math.frexp(real)
    m = round(q * (1 << 31))
    if m == 1 << 31:
        m, s = m // 2, s + 1
    return (0, 0) if s < -31 else (m, s)


def plane_applies(info: dict) -> bool:
    """The firmware's rule (dw1_plane_applies + all_right_shifts), from the model's numbers."""
    ok = info["k"] == (3, 3) and info["stride"] == (1, 1) and info["dil"] == (1, 1)
    ok &= info["in"][1] <= PLANE_MAX_W and info["in"][0] <= PLANE_MAX_H
    for real in info["reals"]:
        m, s = multiplier_and_shift(real)
        r, zp = -s, info["out_zp"]
        ok &= r >= 1 and m > 1 << 30 and abs((2 * zp + 1) * (1 << r) + 1) <= 1 << 32
    return bool(ok)


def dw1_model(seed: int, case: str = "random", size: int = 0, typical: bool = True) -> tuple[bytes, dict]:
    rng = np.random.default_rng(seed)
    g = rm.Graph(rng)
    dm = int(rng.choice([2, 3, 5, 8, 16, 32, 64]))
    if case == "kws10x4":
        h, w, (kh, kw), (sh, sw), (dh, dw), pad = 59, 12, (10, 4), (2, 2), (1, 1), rm.VALID
    elif case in ("wide", "tall"):
        h, w = (int(rng.integers(1, 6)), size) if case == "wide" else (size, int(rng.integers(3, 20)))
        (kh, kw), (sh, sw), (dh, dw), pad = (3, 3), (1, 1), (1, 1), rm.SAME
    elif case == "clamp":
        h, w, (kh, kw), (sh, sw), (dh, dw), pad = 13, 50, (3, 3), (1, 1), (1, 1), rm.SAME
    else:
        h, w = int(rng.integers(1, 36)), int(rng.integers(1, 130))
        if rng.random() < 0.6:  # the plane's shape; the rest goes to the packed convolution
            (kh, kw), (sh, sw), (dh, dw) = (3, 3), (1, 1), (1, 1)
            pad = rm.SAME if rng.random() < 0.6 or min(h, w) < 3 else rm.VALID
        else:
            kh, kw = int(rng.integers(1, 11)), int(rng.integers(1, 6))
            sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
            pad = rm.SAME if rng.random() < 0.5 else rm.VALID
            h, w = max(h, (kh - 1) * dh + 1), max(w, (kw - 1) * dw + 1)
    oh, ow = rm.out_size(pad, h, kh, sh, dh), rm.out_size(pad, w, kw, sw, dw)
    while oh * ow * dm > (40_000 if case != "random" else 8_000) and dm > 2:  # QEMU's 48 KB arena; time
        dm //= 2
    x = g.activation([1, h, w, 1])
    in_s, _ = g.q(x)
    relu_floor = typical and case != "clamp" and rng.random() < 0.5  # RELU on zero point -128: SSAT alone
    out = g.activation([1, oh, ow, dm], zero_point=-128 if relu_floor else None)
    out_s, out_zp = g.q(out)
    n = dm if rng.random() < 0.8 else 1
    ws = g.weight_scales(n, in_s, out_s, kh * kw)
    if typical:
        ws = (out_s / in_s / (kh * kw * 127 * 40) * 10 ** rng.uniform(-1, 1, n)).astype(np.float32)
    f = g.tensor([1, kh, kw, dm], rm.INT8, ws, 0, g.weights((1, kh, kw, dm), 3), 3)
    b = g.tensor(
        [dm], rm.INT32, (in_s * np.broadcast_to(ws, (dm,))).astype(np.float32), 0, g.bias(dm, kh * kw)
    )
    o = rm.fb.DepthwiseConv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = pad, sw, sh, dw, dh
    act = int(rng.choice([1, 3])) if case == "clamp" else int(relu_floor) if typical else rm.activation_fn(g)
    o.depthMultiplier, o.fusedActivationFunction = dm, act
    g.op(4, [x, f, b], [out], rm.fb.BuiltinOptions.DepthwiseConv2DOptions, o)
    model = rm.fb.ModelT()
    model.version, model.description = 3, f"dw1 {seed}"
    sg = rm.fb.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = g.tensors, g.ops, [x], [out], "main"
    model.subgraphs, model.buffers = [sg], g.buffers
    oc = rm.fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = 4, 4, 1
    model.operatorCodes = [oc]
    bld = rm.flatbuffers.Builder(4096)
    bld.Finish(model.Pack(bld), file_identifier=b"TFL3")
    lo = max(-128, out_zp) if act in (1, 3) else -128
    hi = min(127, out_zp + round(6 / out_s)) if act == 3 else 127
    reals = [
        float(np.float32(in_s)) * float(np.float32(s)) / float(np.float32(out_s)) for s in np.atleast_1d(ws)
    ]
    info = {"in": (h, w), "k": (kh, kw), "stride": (sh, sw), "dil": (dh, dw), "dm": dm, "act": act,
            "lo_hi": (lo, hi), "out_zp": out_zp, "reals": reals}  # fmt: skip
    return bytes(bld.Output()), info


def inputs(model: bytes, seed: int):
    return fw.grid_inputs_and_tflm(model, seed, INPUTS, arena=400_000)


def test_dw1_matches_tflm_on_host(tmp_path):
    need_tool("cc")
    exe = fw.build_host() / "kws_host_asan"
    plane = packed = 0
    widths, heights, dms, filters = set(), set(), set(), set()
    for seed in range(HOST_MODELS):
        model, info = dw1_model(seed, typical=seed % 3 != 0)
        plane += plane_applies(info)
        packed += not plane_applies(info)
        widths.add(info["in"][1]), heights.add(info["in"][0]), dms.add(info["dm"]), filters.add(info["k"])
        path, f32, pk = tmp_path / "m.tflite", tmp_path / "x.f32", tmp_path / "packed.bin"
        path.write_bytes(model)
        pk.write_bytes(gen_model.packed_file(gen_model.packed_weights(model)))
        x, ref = inputs(model, seed)
        x.tofile(f32)
        for kernels in ("reference", "optimized"):
            args = [str(exe), str(path), str(f32), kernels, "400000"] + (
                [str(pk)] if kernels == "optimized" else []
            )
            proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
            out = fw.parse(proc.stdout)
            why = f"seed {seed} {kernels} {info}: {out.error} {proc.stderr[-300:]}"
            assert proc.returncode == 0 and not out.error, why
            assert (out.raw == ref).all(), f"{why}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
    assert plane >= 20 and packed >= 20, (plane, packed)
    assert max(widths) > PLANE_MAX_W and max(heights) > PLANE_MAX_H
    print(
        f"{HOST_MODELS} models x {INPUTS} inputs x 2 sets = TFLM: {plane} took the 3x3 plane, {packed} the "
        f"packed convolution (or the reference loops); widths {min(widths)}..{max(widths)}, heights "
        f"{min(heights)}..{max(heights)}, depth multipliers {sorted(dms)}, {len(filters)} filter sizes"
    )


@pytest.mark.parametrize(("case", "size"), QEMU_CASES)
def test_dw1_matches_tflm_in_qemu(case, size, tmp_path):
    """The assembly runs only on the M4: the same check in QEMU (optimised set)."""
    for tool in fw.tools_missing():
        need_tool(tool)
    seed = 100 + size
    model, info = dw1_model(seed, case, size)
    out, ref = fw.qemu_against_tflm(model, tmp_path, f"dw1_{case}_{size}", seed, INPUTS)
    assert out.error == "" and out.raw.shape == ref.shape, f"{case} {size}: {out.error}"
    assert (out.raw == ref).all(), f"{case} {size} {info}: ours {out.raw.tolist()} TFLM {ref.tolist()}"
    how = "3x3 plane" if plane_applies(info) else "packed convolution"
    print(f"{case} {size}: input {info['in']}, filter {info['k']}, dm {info['dm']}: {how} = TFLM in QEMU")
