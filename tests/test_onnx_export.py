"""snippets/onnx_export.py: round trips with both exporters, checked by running ONNX Runtime ourselves
against PyTorch (the reference), never against numbers export_onnx reported."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic
from torch.onnx.symbolic_helper import parse_args

from snippets.onnx_export import (
    DegenerateReferenceError,
    ExportFailedError,
    ExportMismatchError,
    _match_rows,
    compare_with_onnxruntime,
    export_onnx,
    format_diffs,
    legacy_unsupported_ops,
)

EXPORTERS = ["legacy", "dynamo"]


def run_ort(path, *inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
    return session.run(None, feeds)


def torch_out(net, *inputs):
    with torch.no_grad():
        out = net(*inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def assert_matches_torch(net, path, *inputs, atol=1e-4):
    for got, want in zip(run_ort(path, *inputs), torch_out(net, *inputs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_round_trip(name, exporter, tmp_path):
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None).eval()
    X = torch.rand(1, 3, 96, 96)
    report = export_onnx(net, (X,), tmp_path / f"{name}.onnx", exporter=exporter)
    assert_matches_torch(net, report.path, X)
    assert report.opset == (17 if exporter == "legacy" else 20)
    assert report.input_names == ["input0"] and report.output_names == ["output0"]
    assert report.max_abs_diff["output0"] < 1e-4
    if exporter == "dynamo":
        assert not (tmp_path / f"{name}.onnx.data").exists(), "weights must stay inside the .onnx file"


def small_vit():
    """torchvision's VisionTransformer in a small configuration: dynamo used to fix its batch at 1."""
    torch.manual_seed(0)
    net = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    torch.nn.init.normal_(net.heads.head.weight, std=0.02)  # zero-initialised: the output would be all 0
    return net.eval()


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["resnet18", "vit"])
def test_dynamic_batch(name, exporter, tmp_path):
    torch.manual_seed(0)
    net = small_vit() if name == "vit" else torchvision.models.resnet18(weights=None).eval()
    size = 32 if name == "vit" else 64
    report = export_onnx(
        net, (torch.rand(1, 3, size, size),), tmp_path / "r.onnx", exporter=exporter, dynamic_batch=True
    )
    dim0 = onnx.load(report.path).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value, "dimension 0 must be symbolic in the file"
    for batch in (1, 4):
        X = torch.rand(batch, 3, size, size)
        assert run_ort(report.path, X)[0].shape[0] == batch
        assert_matches_torch(net, report.path, X)


class Asinh(torch.nn.Module):
    def forward(self, x):
        return torch.asinh(x)


class DeformNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 18, 3)
        self.conv2 = torchvision.ops.DeformConv2d(3, 3, 3)

    def forward(self, x):
        return self.conv2(x, self.conv1(x))


def asinh_symbolic(g, input, *, out=None):
    return g.op("Asinh", input)


@parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i", "i", "i", "i", "i", "b")
def deform_conv_symbolic(
    g, x, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups, use_mask
):
    inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
    return g.op(
        "DeformConv", *inputs, strides_i=[sh, sw], pads_i=[ph, pw, ph, pw], dilations_i=[dh, dw],
        group_i=groups, offset_group_i=offset_groups,
    )  # fmt: skip


@pytest.fixture
def legacy_symbolics():
    register_custom_op_symbolic("aten::asinh", asinh_symbolic, 9)
    register_custom_op_symbolic("torchvision::deform_conv2d", deform_conv_symbolic, 19)
    yield
    unregister_custom_op_symbolic("aten::asinh", 9)
    unregister_custom_op_symbolic("torchvision::deform_conv2d", 19)


def test_legacy_cannot_export_asinh_or_deform_conv_without_help():
    net = torch.nn.Sequential(DeformNet(), Asinh()).eval()
    assert legacy_unsupported_ops(net, (torch.rand(1, 3, 5, 5),)) == [
        "aten::asinh",
        "torchvision::deform_conv2d",
    ]
    assert (
        legacy_unsupported_ops(torchvision.models.resnet18(weights=None).eval(), (torch.rand(1, 3, 32, 32),))
        == []
    )


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_asinh_parity(exporter, tmp_path, legacy_symbolics):
    X = torch.linspace(-20, 20, 101).reshape(1, 101)
    report = export_onnx(Asinh().eval(), (X,), tmp_path / "asinh.onnx", exporter=exporter, opset=None)
    (got,) = run_ort(report.path, X)
    np.testing.assert_allclose(got, np.arcsinh(X.numpy()), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_deform_conv_parity(exporter, tmp_path, legacy_symbolics):
    torch.manual_seed(0)
    net = DeformNet().eval()
    X = torch.rand(2, 3, 7, 7)
    report = export_onnx(net, (X,), tmp_path / "dcn.onnx", exporter=exporter, opset=19)
    assert_matches_torch(net, report.path, X, atol=1e-5)


def test_mismatch_names_each_output(tmp_path):
    class Noisy(torch.nn.Module):  # random ops: the exported RandomUniformLike draws other numbers
        def forward(self, x):
            return x + 1, x + torch.rand_like(x)

    with pytest.raises(ExportMismatchError, match=r"output1: max abs diff") as info:
        export_onnx(Noisy().eval(), (torch.zeros(1, 64),), tmp_path / "n.onnx")
    assert "output0" not in str(info.value)


def test_wrong_input_count(tmp_path):
    net = torch.nn.Linear(4, 3).eval()
    report = export_onnx(net, (torch.rand(1, 4),), tmp_path / "l.onnx")
    with pytest.raises(ValueError, match=r"expects 1 input\(s\) \['input0'\], got 2"):
        compare_with_onnxruntime(net, report.path, (torch.rand(1, 4), torch.rand(1, 4)))


def test_non_tensor_outputs(tmp_path):
    class Talker(torch.nn.Module):
        def forward(self, x):
            return "done"

    with pytest.raises(TypeError, match="returned a str"):
        export_onnx(Talker().eval(), (torch.rand(1, 4),), tmp_path / "t.onnx")


def test_bad_arguments(tmp_path):
    net = torch.nn.Linear(4, 3).eval()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(net, (torch.rand(1, 4),), tmp_path / "missing" / "l.onnx")
    with pytest.raises(TypeError, match="tuple of tensors"):
        export_onnx(net, ([1.0, 2.0],), tmp_path / "l.onnx")
    with pytest.raises(ValueError, match="exporter must be one of"):
        export_onnx(net, (torch.rand(1, 4),), tmp_path / "l.onnx", exporter="torchscript")
    with pytest.raises(ValueError, match="training mode"):
        export_onnx(net.train(), (torch.rand(1, 4),), tmp_path / "l.onnx")
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        compare_with_onnxruntime(net, tmp_path / "nothing.onnx", (torch.rand(1, 4),))
    with pytest.raises(ValueError, match=r"3 output names .* for 1 model outputs"):
        export_onnx(net.eval(), (torch.rand(1, 4),), tmp_path / "l.onnx", output_names=["a", "b", "c"])


def test_bad_files_are_named(tmp_path):
    net = torch.nn.Linear(4, 3).eval()
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "text.onnx").write_text("this is not a model")
    (tmp_path / "model.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match=r"empty.onnx is empty: expected an ONNX model"):
        compare_with_onnxruntime(net, tmp_path / "empty.onnx", (torch.rand(1, 4),))
    for name in ("text.onnx", "model.json"):
        with pytest.raises(ValueError, match=rf"{name} could not be loaded as an ONNX model"):
            compare_with_onnxruntime(net, tmp_path / name, (torch.rand(1, 4),))


def test_compare_accepts_a_model_proto(tmp_path):
    net = torch.nn.Linear(4, 3).eval()
    X = torch.rand(2, 4)
    report = export_onnx(net, (X,), tmp_path / "l.onnx")
    diffs = compare_with_onnxruntime(net, onnx.load(report.path), (X,))
    want = np.abs(run_ort(report.path, X)[0] - net(X).detach().numpy()).max()
    assert diffs == {"output0": pytest.approx(float(want), abs=1e-12)}


class TinyOutput(torch.nn.Module):
    """Linear -> GELU -> Linear whose last weight is scaled by 1e-6: every output is below 1e-4."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)
        with torch.no_grad():
            self.fc2.weight.mul_(1e-6)
            self.fc2.bias.zero_()

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def relu_as_gelu(g, x, approximate="none"):
    return g.op("Relu", x)  # a wrong export rule: far from GELU for negative inputs


def test_small_outputs_are_judged_by_their_own_scale(tmp_path):
    net, X = TinyOutput().eval(), torch.randn(4, 8)
    want = net(X).detach().numpy()
    assert np.abs(want).max() < 1e-4  # an absolute tolerance of 1e-4 would pass anything here
    register_custom_op_symbolic("aten::gelu", relu_as_gelu, 17)
    try:
        with pytest.raises(ExportMismatchError, match=r"output0: max abs diff .* of its largest value"):
            export_onnx(net, (X,), tmp_path / "wrong.onnx", exporter="legacy")
    finally:
        unregister_custom_op_symbolic("aten::gelu", 17)
    got = run_ort(tmp_path / "wrong.onnx", X)[0]  # the reference: the file is really that far off
    assert np.abs(got - want).max() > 0.1 * np.abs(want).max()
    report = export_onnx(net, (X,), tmp_path / "right.onnx", exporter="legacy")  # the honest export passes
    assert report.verified and report.max_rel_diff["output0"] < 1e-4


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_degenerate_references_are_not_called_verified(exporter, tmp_path):
    zeros = torch.nn.Linear(4, 3)
    torch.nn.init.zeros_(zeros.weight), torch.nn.init.zeros_(zeros.bias)
    with pytest.raises(DegenerateReferenceError, match=r"output0: every value is 0: a constant output"):
        export_onnx(zeros.eval(), (torch.rand(2, 4),), tmp_path / "z.onnx", exporter=exporter)

    class HalfEmpty(torch.nn.Module):
        def forward(self, x):
            return x + 1, x[x > 2]  # inputs in [0, 1): the second output is empty

    report = export_onnx(HalfEmpty().eval(), (torch.rand(2, 4),), tmp_path / "e.onnx", exporter="legacy")
    assert report.verified and list(report.unverified) == ["output1"]
    assert "NOT VERIFIED output1: empty" in str(report)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_dict_outputs(exporter, tmp_path):
    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 2)

        def forward(self, x):
            return {"out": self.a(x), "aux": self.b(x)}

    torch.manual_seed(0)
    net, X = Heads().eval(), torch.rand(2, 4)
    report = export_onnx(net, (X,), tmp_path / "d.onnx", exporter=exporter)
    assert report.output_names == ["out", "aux"] and report.verified
    got = run_ort(report.path, X)
    np.testing.assert_allclose(got[0], net(X)["out"].detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], net(X)["aux"].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rows_of_tied_detections_may_come_in_any_order():
    rng = np.random.default_rng(0)
    boxes, labels = rng.random((6, 4)), np.arange(6)
    scores = np.full(6, 1 / 91)  # random init: every score equal, so any order is a right answer
    order = np.array([3, 0, 5, 1, 4, 2])
    got = [boxes[order], scores[order], labels[order]]
    found = _match_rows(got, [boxes, scores, labels], rtol=1e-4)
    assert (order[found] == np.arange(6)).all()
    distinct = np.linspace(0.9, 0.4, 6)  # different scores: the order is part of the answer
    assert (
        _match_rows([boxes[order], distinct[order], labels[order]], [boxes, distinct, labels], 1e-4) is None
    )


def test_dynamo_failure_names_the_cause(tmp_path):
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 4:  # a branch on the values: torch.export cannot trace it (NMS fails alike)
                return x * 2
            return x - 1

    with pytest.raises(
        ExportFailedError, match="Hint: a shape or a branch depends on the input values"
    ) as info:
        export_onnx(DataDependent().eval(), (torch.rand(1, 8),), tmp_path / "dd.onnx")
    assert "\x1b[" not in str(info.value)


def test_format_diffs_prints_the_order_of_magnitude():
    # reference: the next power of ten of each value, computed by hand
    assert format_diffs({"a": 2.4e-7, "b": 0.0, "c": 0.03}) == "a < 1e-06, b = 0, c < 1e-01"
