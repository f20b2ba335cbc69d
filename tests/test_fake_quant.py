"""fake_quant: PyTorch fake quantisation must reproduce ONNX Runtime's QDQ quantisation of the same conv."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from torch import nn

from snippets.fake_quant import FakeQuantConv, fake_quantize_weight, prepare_qat, strip_qat


class OneBatch(CalibrationDataReader):
    def __init__(self, x):
        self.items = iter([{"x": x}])

    def get_next(self):
        return next(self.items, None)


def ort_quantized_weight(weight: np.ndarray, bits: int, tmp_path) -> np.ndarray:
    """Quantise a one-conv model with ONNX Runtime and dequantise its weight initializer back to float."""
    w = numpy_helper.from_array(weight, "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[1], 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.save(model, tmp_path / "f.onnx")
    x = np.random.default_rng(0).normal(size=(1, weight.shape[1], 6, 6)).astype(np.float32)
    weight_type = QuantType.QInt8 if bits == 8 else QuantType.QInt4
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), OneBatch(x),
                    quant_format=QuantFormat.QDQ, per_channel=True, weight_type=weight_type)  # fmt: skip
    q = onnx.load(tmp_path / "q.onnx")
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    dq = next(n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
              and inits[n.input[0]].ndim == 4)  # fmt: skip
    qw, scale = inits[dq.input[0]].astype(np.float32), inits[dq.input[1]]
    zero = inits[dq.input[2]].astype(np.float32) if len(dq.input) > 2 else 0.0
    return (qw - zero.reshape(-1, 1, 1, 1)) * scale.reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("bits", [8, 4])
def test_weights_round_like_onnxruntime(bits, tmp_path):
    weight = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(bits))
    expected = ort_quantized_weight(weight.numpy(), bits, tmp_path)
    np.testing.assert_allclose(fake_quantize_weight(weight, bits).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_straight_through_gradient_and_activation_range():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    fq = FakeQuantConv(conv, weight_bits=4).train()
    x = torch.rand(2, 3, 8, 8) * 6 - 1  # range [-1, 5]
    fq(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert fq.act_min.item() == pytest.approx(float(x.min())) and fq.act_max.item() == pytest.approx(
        float(x.max())
    )


def test_prepare_and_strip_round_trip():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 2, 1)))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    prepare_qat(net, 4)
    assert sum(isinstance(m, FakeQuantConv) for m in net.modules()) == 2
    strip_qat(net)
    assert [m for m in net.modules() if isinstance(m, nn.Conv2d)] == convs
    with pytest.raises(ValueError, match="8 or 4"):
        prepare_qat(net, 3)
