"""Small random VALID int8 .tflite models for the differential test against TFLM (test_firmware_random.py).

    python tools/random_model.py SEED OUT.tflite          # one model; prints what it holds

Each model is a random chain of the operators the firmware supports (OPS below: add a builder to extend it),
written straight into the TFLite flatbuffer with the schema classes the `tflite-micro` package ships. The
random choices are the ones that broke kernels before: odd and even channel counts, 1-3 input channels,
strides 1-2, dilations, SAME/VALID, depth multipliers 1-4, kernel sizes 1-5, per-channel and per-tensor weight
scales from 1e-10 to 1e2 (requantisation shifts from left shifts down to 31), zero points over -128..127
(-128 included), fused ReLU/ReLU6, dead (all-zero) channels. Same seed, same bytes.
"""

import math
import sys

import flatbuffers
import numpy as np
from tflite_micro import runtime

fb = runtime.schema_fb
INT8, INT32 = 9, 2
SAME, VALID = 0, 1


def tflite_shift(real: float) -> int:
    """The shift TFLite's QuantizeMultiplier gives a real multiplier (negative: a right shift)."""
    if real == 0.0:
        return 0
    q, s = math.frexp(real)
    if round(q * (1 << 31)) == 1 << 31:
        s += 1
    return 0 if s < -31 else s


class Graph:
    """Tensors, buffers and operators of one subgraph, plus what the test reports (shifts, zero points)."""

    def __init__(self, rng: np.random.Generator, tame: np.random.Generator | None = None):
        self.rng = rng
        # random_model's second stream (None: never), so that the structure drawn from rng stays what each
        # seed always gave
        self.tame = tame
        self.tensors, self.buffers, self.ops, self.codes = [], [fb.BufferT()], [], []
        self.shifts: list[int] = []
        self.zero_points: set[int] = set()
        self.feature_maps: list[int] = []  # NHWC activations so far (ADD's second input)

    def zero_point(self) -> int:
        if self.rng.random() < 0.3:  # the ends and the middle often: -128 is where the old bugs were
            zp = int(self.rng.choice([-128, 127, 0]))
        else:
            zp = int(self.rng.integers(-128, 128))
        self.zero_points.add(zp)
        return zp

    def scale(self) -> float:
        return float(np.float32(10 ** self.rng.uniform(-3, 0.5)))

    def tensor(self, shape, dtype=INT8, scale=None, zero_point=0, data=None, qdim=0) -> int:
        t = fb.TensorT()
        t.shape, t.type, t.name = list(shape), dtype, f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = list(np.ascontiguousarray(data).tobytes())
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = fb.QuantizationParametersT()
            scales = np.atleast_1d(np.asarray(scale, np.float32))
            q.scale = [float(s) for s in scales]
            zps = np.atleast_1d(np.asarray(zero_point, np.int64))
            q.zeroPoint = [int(z) for z in (zps if zps.size == scales.size else np.repeat(zps, scales.size))]
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def activation(self, shape, scale=None, zero_point=None) -> int:
        scale = self.scale() if scale is None else scale
        zero_point = self.zero_point() if zero_point is None else zero_point
        return self.tensor(shape, INT8, scale, zero_point)

    def op(self, code: int, inputs, outputs, options_type=0, options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.ops.append(o)

    def q(self, t: int) -> tuple[float, int]:
        qp = self.tensors[t].quantization
        return qp.scale[0], qp.zeroPoint[0]

    def shape(self, t: int) -> list[int]:
        return list(self.tensors[t].shape)

    def weight_scales(self, n: int, in_scale: float, out_scale: float, taps: int) -> np.ndarray:
        """Per-channel (or one) weight scales: mostly ones that keep the outputs inside int8, some from the
        whole 1e-10 .. 1e2 range (shifts down to 31 and left shifts), a few nearly dead channels."""
        typical = out_scale / in_scale / (taps * 127 * 40) * 10 ** self.rng.uniform(-1, 1, n)
        extreme = 10 ** self.rng.uniform(-10, 2, n)
        dead = 10 ** self.rng.uniform(-10, -7.5, n)
        pick = self.rng.random(n)
        if self.tame is not None and self.tame.random() < 0.5:
            pick[:] = 0  # every channel typical: the layer reaches the assembly's fast paths
        s = np.where(pick < 0.6, typical, np.where(pick < 0.85, extreme, dead))
        s = np.clip(s, 1e-10, 1e2).astype(np.float32)
        for v in s:
            shift = tflite_shift(float(in_scale) * float(v) / float(out_scale))
            if -31 <= shift <= 31:
                self.shifts.append(shift)
        return s

    def weights(self, shape, channel_axis: int) -> np.ndarray:
        w = self.rng.integers(-127, 128, shape).astype(np.int8)
        if self.rng.random() < 0.3:  # a dead channel, as trained models have
            idx = [slice(None)] * len(shape)
            idx[channel_axis] = int(self.rng.integers(shape[channel_axis]))
            w[tuple(idx)] = 0
        return w

    def bias(self, n: int, taps: int) -> int:
        b = self.rng.integers(-taps * 128 * 64, taps * 128 * 64 + 1, n).astype(np.int32)
        return b


def out_size(padding: int, n: int, k: int, stride: int, dilation: int) -> int:
    eff = (k - 1) * dilation + 1
    return (n + stride - 1) // stride if padding == SAME else (n - eff + stride) // stride


def spatial(g: Graph, x: int, k_max: int = 5):
    """Random filter size, stride, dilation and padding that give an output of at least 1x1."""
    _, h, w, _ = g.shape(x)
    for _ in range(20):
        kh, kw = int(g.rng.integers(1, k_max + 1)), int(g.rng.integers(1, k_max + 1))
        sh, sw = int(g.rng.integers(1, 3)), int(g.rng.integers(1, 3))
        dh, dw = (int(g.rng.integers(1, 3)), int(g.rng.integers(1, 3))) if g.rng.random() < 0.3 else (1, 1)
        pad = SAME if g.rng.random() < 0.5 else VALID
        oh, ow = out_size(pad, h, kh, sh, dh), out_size(pad, w, kw, sw, dw)
        if oh >= 1 and ow >= 1:
            return kh, kw, sh, sw, dh, dw, pad, oh, ow
    return 1, 1, 1, 1, 1, 1, VALID, h, w


def activation_fn(g: Graph) -> int:
    return int(g.rng.choice([0, 0, 1, 3]))  # NONE, RELU, RELU6


def conv(g: Graph, x: int) -> int:
    n, h, w, c = g.shape(x)
    kh, kw, sh, sw, dh, dw, pad, oh, ow = spatial(g, x)
    three = g.tame is not None and g.tame.random() < 0.4
    if three and out_size(pad, h, 3, sh, dh) >= 1 and out_size(pad, w, 3, sw, 1) >= 1:
        kh, kw, dw = 3, 3, 1  # the usual 3x3 (over 3 channels: an image's first layer, its own fast path)
        oh, ow = out_size(pad, h, 3, sh, dh), out_size(pad, w, 3, sw, 1)
    oc = int(g.rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 12, 16]))  # multiples of 4, 8: the fast paths
    in_s, _ = g.q(x)
    out = g.activation([n, oh, ow, oc])
    per_channel = g.rng.random() < 0.7
    ws = g.weight_scales(oc if per_channel else 1, in_s, g.q(out)[0], kh * kw * c)
    f = g.tensor([oc, kh, kw, c], INT8, ws, 0, g.weights((oc, kh, kw, c), 0), 0)
    b = g.tensor([oc], INT32, (in_s * ws).astype(np.float32), 0, g.bias(oc, kh * kw * c), 0)
    o = fb.Conv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = pad, sw, sh, dw, dh
    o.fusedActivationFunction = activation_fn(g)
    g.op(3, [x, f, b], [out], fb.BuiltinOptions.Conv2DOptions, o)
    return out


def depthwise(g: Graph, x: int) -> int:
    n, h, w, c = g.shape(x)
    kh, kw, sh, sw, dh, dw, pad, oh, ow = spatial(g, x)
    dm = int(g.rng.choice([1, 1, 2, 3, 4]))
    oc = c * dm
    in_s, _ = g.q(x)
    out = g.activation([n, oh, ow, oc])
    per_channel = g.rng.random() < 0.7
    ws = g.weight_scales(oc if per_channel else 1, in_s, g.q(out)[0], kh * kw)
    f = g.tensor([1, kh, kw, oc], INT8, ws, 0, g.weights((1, kh, kw, oc), 3), 3)
    bias_scales = (in_s * np.broadcast_to(ws, (oc,))).astype(np.float32)
    b = g.tensor([oc], INT32, bias_scales, 0, g.bias(oc, kh * kw), 0)
    o = fb.DepthwiseConv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = pad, sw, sh, dw, dh
    o.depthMultiplier, o.fusedActivationFunction = dm, activation_fn(g)
    g.op(4, [x, f, b], [out], fb.BuiltinOptions.DepthwiseConv2DOptions, o)
    return out


def pool(g: Graph, x: int, code: int) -> int:
    n, h, w, c = g.shape(x)
    for _ in range(20):
        kh, kw, sh, sw = (int(v) for v in g.rng.integers(1, 4, 4))
        sh, sw = min(sh, 2), min(sw, 2)
        pad = SAME if g.rng.random() < 0.5 else VALID
        oh, ow = out_size(pad, h, kh, sh, 1), out_size(pad, w, kw, sw, 1)
        if oh >= 1 and ow >= 1:
            break
    else:
        kh = kw = sh = sw = 1
        pad, oh, ow = VALID, h, w
    s, zp = g.q(x)
    out = g.tensor([n, oh, ow, c], INT8, s, zp)  # TFLM's pools keep the input's quantisation
    o = fb.Pool2DOptionsT()
    o.padding, o.strideW, o.strideH, o.filterWidth, o.filterHeight = pad, sw, sh, kw, kh
    o.fusedActivationFunction = activation_fn(g)
    g.op(code, [x], [out], fb.BuiltinOptions.Pool2DOptions, o)
    return out


def max_pool(g: Graph, x: int) -> int:
    return pool(g, x, 17)


def average_pool(g: Graph, x: int) -> int:
    return pool(g, x, 1)


def reshape(g: Graph, x: int) -> int:
    shape = g.shape(x)
    new = [shape[0], int(np.prod(shape[1:]))]
    s, zp = g.q(x)
    out = g.tensor(new, INT8, s, zp)
    shape_t = g.tensor([2], INT32, None, 0, np.array(new, np.int32))
    o = fb.ReshapeOptionsT()
    o.newShape = new
    g.op(22, [x, shape_t], [out], fb.BuiltinOptions.ReshapeOptions, o)
    return out


def fully_connected(g: Graph, x: int) -> int:
    shape = g.shape(x)
    depth = int(np.prod(shape[1:]))
    units = int(g.rng.integers(1, 13))
    in_s, _ = g.q(x)
    out = g.activation([shape[0], units])
    per_channel = g.rng.random() < 0.5
    ws = g.weight_scales(units if per_channel else 1, in_s, g.q(out)[0], depth)
    f = g.tensor([units, depth], INT8, ws, 0, g.weights((units, depth), 0), 0)
    bias_scales = (in_s * np.broadcast_to(ws, (units,))).astype(np.float32)
    b = g.tensor([units], INT32, bias_scales, 0, g.bias(units, depth))
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = activation_fn(g)
    g.op(9, [x, f, b], [out], fb.BuiltinOptions.FullyConnectedOptions, o)
    return out


def softmax(g: Graph, x: int) -> int:
    out = g.tensor(g.shape(x), INT8, 1.0 / 256, -128)
    o = fb.SoftmaxOptionsT()
    o.beta = 1.0
    g.op(25, [x], [out], fb.BuiltinOptions.SoftmaxOptions, o)
    return out


def add(g: Graph, x: int) -> int:
    """A residual ADD with an earlier feature map of the same shape, or a broadcast constant per channel."""
    same = [t for t in g.feature_maps if t != x and g.shape(t) == g.shape(x)]
    if same and g.rng.random() < 0.7:
        y = int(g.rng.choice(same))
    else:
        c = g.shape(x)[-1]
        values = g.rng.integers(-128, 128, c).astype(np.int8)
        y = g.tensor([1, 1, 1, c], INT8, g.scale(), g.zero_point(), values)
    out = g.activation(g.shape(x))
    o = fb.AddOptionsT()
    o.fusedActivationFunction = activation_fn(g)
    g.op(0, [x, y], [out], fb.BuiltinOptions.AddOptions, o)
    return out


def mean(g: Graph, x: int) -> int:
    """MEAN over H and W (global average pooling as converters emit it), keeping the dimensions."""
    n, _, _, c = g.shape(x)
    out = g.activation([n, 1, 1, c])
    axes = g.tensor([2], INT32, None, 0, np.array([1, 2], np.int32))
    o = fb.ReducerOptionsT()
    o.keepDims = True
    g.op(40, [x, axes], [out], fb.BuiltinOptions.ReducerOptions, o)
    return out


def pad(g: Graph, x: int) -> int:
    n, h, w, c = g.shape(x)
    p = g.rng.integers(0, 3, (4, 2)).astype(np.int32)
    p[0] = p[3] = 0
    s, zp = g.q(x)
    out = g.tensor([n, h + p[1].sum(), w + p[2].sum(), c], INT8, s, zp)  # PAD keeps the quantisation
    paddings = g.tensor([4, 2], INT32, None, 0, p)
    g.op(34, [x, paddings], [out], fb.BuiltinOptions.PadOptions, fb.PadOptionsT())
    return out


# Operators on NHWC feature maps, then the ones that end a model. Extend here: each builder takes the graph
# and its current feature map and returns the new one.
SPATIAL_OPS = {"CONV_2D": conv, "DEPTHWISE_CONV_2D": depthwise, "MAX_POOL_2D": max_pool,
               "AVERAGE_POOL_2D": average_pool, "ADD": add, "MEAN": mean, "PAD": pad}  # fmt: skip
HEAD_OPS = {"RESHAPE": reshape, "FULLY_CONNECTED": fully_connected, "SOFTMAX": softmax}


def random_model(seed: int) -> tuple[bytes, dict]:
    """A valid int8 model and what it covers: {"ops": [...], "shifts": [...], "zero_points": [...]}."""
    rng = np.random.default_rng(seed)
    g = Graph(rng, np.random.default_rng([seed, 1]))
    h, w, c = int(rng.integers(1, 11)), int(rng.integers(1, 11)), int(rng.integers(1, 4))
    x = first = g.activation([1, h, w, c])
    names = []
    for _ in range(int(rng.integers(1, 5))):
        name = str(rng.choice(list(SPATIAL_OPS)))
        names.append(name)
        g.feature_maps.append(x)
        x = SPATIAL_OPS[name](g, x)
    tail = rng.random()
    if tail < 0.5:  # classifier head: (reshape) FC (softmax)
        if rng.random() < 0.5:
            names.append("RESHAPE")
            x = reshape(g, x)
        names.append("FULLY_CONNECTED")
        x = fully_connected(g, x)
        if rng.random() < 0.5:
            names.append("SOFTMAX")
            x = softmax(g, x)
    elif tail < 0.6:
        names.append("SOFTMAX")
        x = softmax(g, x)
    model = fb.ModelT()
    model.version, model.description = 3, f"random model {seed}"
    sg = fb.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = g.tensors, g.ops, [first], [x], "main"
    model.subgraphs, model.buffers = [sg], g.buffers
    codes = []
    for code in g.codes:
        oc = fb.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
        codes.append(oc)
    model.operatorCodes = codes
    b = flatbuffers.Builder(4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), {"ops": names, "shifts": g.shifts, "zero_points": sorted(g.zero_points)}


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.splitlines()[2].strip())
    data, info = random_model(int(sys.argv[1]))
    with open(sys.argv[2], "wb") as f:
        f.write(data)
    ops = " ".join(info["ops"])
    print(f"{sys.argv[2]}: {ops}; shifts {info['shifts']}; zero points {info['zero_points']}")


if __name__ == "__main__":
    main()
