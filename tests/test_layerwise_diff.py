"""layerwise_diff finds an injected fault at the right layer, for both exporters' naming schemes."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxscript import FLOAT
from onnxscript import opset18 as op

from snippets.layerwise_diff import compare, format_diff, layerwise_diff

OPSET = 18
TYPO = 0.44715  # GELU's tanh formula uses 0.044715: one missing zero, as a hand-written export might have


def gelu_typo_symbolic(g, x, approximate="none"):
    """Legacy exporter: GELU (tanh form) written out by hand with the typo."""

    def const(v):
        return g.op("Constant", value_t=torch.tensor(v, dtype=torch.float32))

    x3 = g.op("Mul", g.op("Mul", x, x), x)
    inner = g.op("Mul", const(0.7978845608), g.op("Add", x, g.op("Mul", const(TYPO), x3)))
    return g.op("Mul", g.op("Mul", const(0.5), x), g.op("Add", const(1.0), g.op("Tanh", inner)))


def gelu_typo_dynamo(x: FLOAT, approximate: str = "none") -> FLOAT:
    """Dynamo exporter: the same typo as a custom_translation_table entry."""
    x3 = op.Mul(op.Mul(x, x), x)
    inner = op.Mul(
        op.Constant(value_float=0.7978845608), op.Add(x, op.Mul(op.Constant(value_float=TYPO), x3))
    )
    return op.Mul(
        op.Mul(op.Constant(value_float=0.5), x), op.Add(op.Constant(value_float=1.0), op.Tanh(inner))
    )


def export(net, X, path, *, dynamo, faulty):
    if dynamo:
        table = {torch.ops.aten.gelu.default: gelu_typo_dynamo} if faulty else None
        torch.onnx.export(net, (X,), path, dynamo=True, external_data=False, verbose=False,
                          input_names=["x"], custom_translation_table=table)  # fmt: skip
        return onnx.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if faulty:
            torch.onnx.register_custom_op_symbolic("aten::gelu", gelu_typo_symbolic, OPSET)
        try:
            torch.onnx.export(net, (X,), path, dynamo=False, opset_version=OPSET, input_names=["x"])
        finally:
            if faulty:
                torch.onnx.unregister_custom_op_symbolic("aten::gelu", OPSET)
    return onnx.load(path)


@pytest.fixture(scope="module")
def resnet():
    """resnet18 (random weights: nothing downloads) whose block layer3.1 uses GELU(tanh) instead of ReLU."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    net.layer3[1].relu = torch.nn.GELU(approximate="tanh")
    return net.eval(), torch.randn(1, 3, 64, 64)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_fault_found_at_the_faulty_layer(resnet, tmp_path, dynamo):
    net, X = resnet
    model = export(net, X, tmp_path / "faulty.onnx", dynamo=dynamo, faulty=True)
    table = layerwise_diff(net, model, (X,))
    # BasicBlock calls its activation twice; the first call is the first wrong tensor.
    assert table.attrs["first_divergent"] == "layer3.1.relu#1"
    first = table.index[table["diverged"]][0]
    assert first > 20 and table.loc[: first - 1, "sqnr_db"].min() > 80  # deep, and clean before it
    # The row points at the hand-written nodes: the tensor is made by the faulty Tanh formula.
    producer = next(n for n in model.graph.node if table.loc[first, "onnx_tensor"] in n.output)
    assert producer.op_type == "Mul" and "Tanh" in table.loc[first, "onnx_ops"]
    assert "<-- first divergence" in format_diff(table).splitlines()[first + 1]


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_clean_export_has_no_divergence(resnet, tmp_path, dynamo):
    net, X = resnet
    model = export(net, X, tmp_path / "clean.onnx", dynamo=dynamo, faulty=False)
    table = layerwise_diff(net, model, (X,))
    assert table.attrs["first_divergent"] is None
    assert len(table) >= 35  # every conv(+bn), relu, pool and the fc got a row
    out = ort.InferenceSession(model.SerializeToString()).run(None, {"x": X.numpy()})[0]
    np.testing.assert_allclose(out, net(X).detach().numpy(), atol=1e-4)


def test_metrics_match_torch_reference():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(1000).astype(np.float32)
    b = a + 0.01 * rng.standard_normal(1000).astype(np.float32)
    m = compare(a, b)
    ta, tb = torch.from_numpy(a).double(), torch.from_numpy(b).double()
    assert m["max_abs_diff"] == pytest.approx((ta - tb).abs().max().item())
    assert m["cosine"] == pytest.approx(torch.nn.functional.cosine_similarity(ta, tb, dim=0).item())
    sqnr = 10 * torch.log10(ta.pow(2).sum() / torch.nn.functional.mse_loss(ta, tb, reduction="sum"))
    assert m["sqnr_db"] == pytest.approx(sqnr.item())
    assert compare(a, a)["sqnr_db"] == float("inf")


class _Reader(CalibrationDataReader):
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def test_fp32_against_int8_qdq(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU()
    ).eval()
    X = torch.randn(1, 3, 16, 16)
    export(net, X, tmp_path / "fp32.onnx", dynamo=True, faulty=False)
    batches = [{"x": torch.randn(1, 3, 16, 16).numpy()} for _ in range(8)]
    quantize_static(
        str(tmp_path / "fp32.onnx"),
        str(tmp_path / "int8.onnx"),
        _Reader(batches),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    assert layerwise_diff(tmp_path / "fp32.onnx", tmp_path / "fp32.onnx", X).attrs["first_divergent"] is None
    table = layerwise_diff(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", X, min_sqnr_db=60)
    # The quantizer folded each Relu into the QuantizeLinear after its Conv: compare what layers read.
    assert list(table["onnx_tensor"]) == [
        "x_DequantizeLinear_Output",
        "relu_DequantizeLinear_Output",
        "relu_1",
    ]
    assert table.attrs["first_divergent"] == "x"  # int8 error starts where the input is quantized
    assert table["sqnr_db"].between(15, 60).all()
    # Reference for the input row: quantize-dequantize x with the model's own scale, in numpy.
    int8 = onnx.load(tmp_path / "int8.onnx")
    init = {t.name: onnx.numpy_helper.to_array(t) for t in int8.graph.initializer}
    scale, zero = init["x_scale"], init["x_zero_point"].astype(np.float32)
    x = X.numpy()
    x_qdq = (np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale
    assert table.loc[0, "max_abs_diff"] == pytest.approx(np.abs(x - x_qdq).max(), rel=1e-5)


def test_wrong_inputs_are_named(resnet, tmp_path):
    net, X = resnet
    model = export(net, X, tmp_path / "m.onnx", dynamo=False, faulty=False)
    with pytest.raises(ValueError, match=r"takes inputs \['x'\], got 2"):
        layerwise_diff(net, model, (X, X))
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        layerwise_diff(net, tmp_path / "missing.onnx", (X,))


class Nested(torch.nn.Module):
    """Names the old legacy parser got wrong ('features.0.0' nested twice, 'ln_1' is no second call),
    an attention block whose output no child module makes (out_proj runs functionally), and a child
    that returns a dict."""

    class DictOut(torch.nn.Module):
        def forward(self, x):
            return {"y": 2 * x, "s": x.sum(1)}

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU()))
        self.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)
        self.ln_1 = torch.nn.Linear(16, 8)
        self.pack = self.DictOut()

    def forward(self, x):
        x = self.features(x)
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return self.pack(self.ln_1(x))["y"]


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_nested_names_attention_and_dicts(tmp_path, dynamo):
    torch.manual_seed(0)
    net, X = Nested().eval(), torch.randn(1, 5, 8)
    model = export(net, X, tmp_path / "clean.onnx", dynamo=dynamo, faulty=False)
    table = layerwise_diff(net, model, (X,))
    layers = set(table["layer"])
    assert {"features.0.0", "features.0.1", "attn", "ln_1"} <= layers
    assert table.attrs["first_divergent"] is None
    skipped = table.loc[table["layer"] == "pack", "note"]
    assert skipped.str.contains("output is dict").all() and "(output is dict" in format_diff(table)
    # A fault inside the attention block: out_proj is used functionally, so only the block has a row.
    faulty = Nested().eval()
    faulty.load_state_dict(net.state_dict())
    with torch.no_grad():
        faulty.attn.out_proj.weight.mul_(1.05)
    model = export(faulty, X, tmp_path / "faulty.onnx", dynamo=dynamo, faulty=False)
    table = layerwise_diff(net, model, (X,))
    assert table.attrs["first_divergent"] == "attn"
    row = table.set_index("layer").loc["attn"]
    # reference for the row: the attention output computed by the clean and the faulty torch modules
    want = compare(net.attn(*[net.features(X)] * 3)[0].detach().numpy(),
                   faulty.attn(*[net.features(X)] * 3)[0].detach().numpy())  # fmt: skip
    assert row["sqnr_db"] == pytest.approx(want["sqnr_db"], abs=0.5)
