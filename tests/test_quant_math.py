"""quant_math against references: torch's quantize ops, and TFLM's own layer outputs (bit for bit)."""

import flatbuffers
import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema

from snippets import quant_math as qm
from snippets.tflite_inspect import inspect_tflite
from snippets.tflm_runner import tensor_values
from tests.kws_build import kws_dir

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


def test_quantize_matches_torch_per_tensor():
    x = torch.linspace(-3, 5, 1001)
    ref = torch.quantize_per_tensor(x, 0.037, -11, torch.qint8).int_repr().numpy()
    assert np.array_equal(qm.quantize(x.numpy(), 0.037, -11), ref)
    back = torch.quantize_per_tensor(x, 0.037, -11, torch.qint8).dequantize().numpy()
    np.testing.assert_allclose(qm.dequantize(ref, 0.037, -11), back, rtol=0, atol=1e-6)


def test_quantize_matches_torch_per_channel():
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    scales = qm.symmetric_qparams(w.numpy(), axis=0)
    ref = torch.quantize_per_channel(
        w, torch.tensor(scales), torch.zeros(8, dtype=torch.long), 0, torch.qint8
    )
    assert np.array_equal(qm.quantize(w.numpy(), scales, 0, qmin=-127, axis=0), ref.int_repr().numpy())


def test_asymmetric_qparams_match_torch_observer():
    x = torch.tensor([-0.7, 0.0, 2.9])
    observer = torch.ao.quantization.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    ours = qm.asymmetric_qparams(-0.7, 2.9)
    assert ours[0] == pytest.approx(float(scale), rel=1e-6) and ours[1] == int(zero_point)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="scale must be positive"):
        qm.quantize([1.0], 0.0, 0)
    with pytest.raises(ValueError, match="per-channel values"):
        qm.quantize(np.ones((4, 2)), [0.1, 0.2, 0.3], 0, axis=0)


def test_multiplier_reconstructs_the_real_scale():
    real = np.geomspace(1e-6, 0.99, 200)
    multiplier, shift = qm.quantize_multiplier(real)
    np.testing.assert_allclose(multiplier * 2.0 ** (shift.astype(float) - 31), real, rtol=1e-9)
    assert (multiplier >= 2**30).all()  # normalised mantissa: full 31-bit precision


def _first_conv(model_path):
    """The DS-CNN's first op: DEPTHWISE_CONV_2D of the 1-channel input, multiplier 32, SAME, fused ReLU."""
    info = inspect_tflite(model_path)
    assert info.ops[0] == "DEPTHWISE_CONV_2D"
    return info, *(info.tensors[i] for i in info.op_inputs[0]), info.tensors[info.op_outputs[0][0]]


def test_requantisation_matches_tflm_bit_for_bit():
    path = kws_dir() / "kws_dscnn_int8.tflite"
    info, x_t, w_t, b_t, y_t = _first_conv(path)
    w, b = w_t.data[0], b_t.data  # (3, 3, 32) int8 weights, (32,) int32 bias
    x = np.random.default_rng(0).integers(-128, 128, (1, 13, 50, 1), dtype=np.int8)
    padded = np.pad(x[0, :, :, 0].astype(np.int64) - x_t.zero_point[0], 1)  # SAME padding with real zeros
    acc = sum(padded[i : i + 13, j : j + 50, None] * w[i, j] for i in range(3) for j in range(3)) + b
    ours = qm.requantize(acc, x_t.scale[0], w_t.scale, y_t.scale[0], y_t.zero_point[0], relu=True)
    tflm = tensor_values(path, x, info.op_outputs[0][0]).reshape(ours.shape)
    assert np.array_equal(ours, tflm)


def _quantize_model(n, scale, zero_point) -> bytes:
    """float32 (1, n) -> QUANTIZE -> int8 (1, n): a one-op .tflite model, built by hand."""
    qparams = schema.QuantizationParametersT(scale=[float(scale)], zeroPoint=[int(zero_point)])
    tensors = [
        schema.TensorT(shape=[1, n], type=schema.TensorType.FLOAT32, buffer=1, name="x"),
        schema.TensorT(shape=[1, n], type=schema.TensorType.INT8, buffer=2, name="q", quantization=qparams),
    ]
    op = schema.OperatorT(opcodeIndex=0, inputs=[0], outputs=[1])
    code = schema.OperatorCodeT(
        builtinCode=schema.BuiltinOperator.QUANTIZE,
        deprecatedBuiltinCode=schema.BuiltinOperator.QUANTIZE,
        version=1,
    )
    graph = schema.SubGraphT(tensors=tensors, inputs=[0], outputs=[1], operators=[op], name="main")
    model = schema.ModelT(
        version=3,
        operatorCodes=[code],
        subgraphs=[graph],
        buffers=[schema.BufferT() for _ in range(3)],
    )
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("scale, zero_point", [(0.25, 0), (0.5, -3), (0.0625, 7)])
def test_quantize_rounds_ties_like_tflm(scale, zero_point):
    """Exact ties (x / scale = k + 0.5): TFLM's QUANTIZE uses std::round, half away from zero."""
    ties = ((np.arange(-40, 40) + 0.5) * scale).astype(np.float32)  # exact in float32: scale is 2**-k
    tflm = tensor_values(_quantize_model(ties.size, scale, zero_point), ties[None], 1).reshape(-1)
    ours = qm.quantize(ties, scale, zero_point)
    assert np.array_equal(ours, tflm), np.flatnonzero(ours != tflm)
    half_even = np.clip(np.round(ties / scale) + zero_point, -128, 127)  # NumPy's and PyTorch's rule
    assert (half_even != tflm).sum() == ties.size // 2  # half the ties differ: the test tells them apart
    print(f"{ties.size} exact ties, scale {scale}, zero point {zero_point}: equal to TFLM")


def test_quantize_matches_tflm_on_random_inputs():
    """Scales that are not powers of two, 20,000 random floats across and beyond the int8 range."""
    rng = np.random.default_rng(0)
    cases = 0
    for scale, zero_point in [(0.0598, -3), (0.0339, -128), (0.1234567, 17), (3e-3, 100)]:
        x = (rng.uniform(-140, 140, 5000) * scale).astype(np.float32)
        tflm = tensor_values(_quantize_model(x.size, scale, zero_point), x[None], 1).reshape(-1)
        assert np.array_equal(qm.quantize(x, scale, zero_point), tflm), (scale, zero_point)
        cases += x.size
    print(f"{cases} random values, 4 scales: equal to TFLM")
