"""snippets/onnx_export.py: round trips with both exporters, checked by running ONNX Runtime ourselves
against PyTorch (the reference), never against numbers export_onnx reported."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic
from torch.onnx.symbolic_helper import parse_args

from snippets.onnx_export import (
    ExportMismatchError,
    compare_with_onnxruntime,
    export_onnx,
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


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_dynamic_batch(exporter, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    report = export_onnx(
        net, (torch.rand(1, 3, 64, 64),), tmp_path / "r.onnx", exporter=exporter, dynamic_batch=True
    )
    X = torch.rand(4, 3, 64, 64)
    assert run_ort(report.path, X)[0].shape == (4, 1000)
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
