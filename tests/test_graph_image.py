"""graph_image: the picture has one box per ONNX node and one arrow per tensor a node reads."""

import subprocess

import onnx
import pytest
import torch
import torchvision
from onnx import helper

from snippets.graph_image import graph_to_dot, graph_to_image
from tests.conftest import need_tool


def linear():
    f = onnx.TensorProto.FLOAT
    nodes = [helper.make_node("Mul", ["a", "x"], ["c"]), helper.make_node("Add", ["c", "b"], ["output"])]
    inputs = [helper.make_tensor_value_info(n, f, [10, 10]) for n in "axb"]
    graph = helper.make_graph(nodes, "linear", inputs, [helper.make_tensor_value_info("output", f, [10, 10])])
    return helper.make_model(graph)


def count(dot_source: str):
    lines = [line.strip() for line in dot_source.splitlines()]
    return sum("shape=box" in s for s in lines), sum("->" in s for s in lines)


def test_boxes_and_arrows_follow_the_graph():
    model = linear()
    boxes, arrows = count(graph_to_dot(model).source)
    # reference: the ONNX graph itself: 2 nodes; arrows a,x->Mul, c,b->Add, Add->output
    assert boxes == len(model.graph.node) == 2
    assert arrows == sum(len(n.input) for n in model.graph.node) + len(model.graph.output) == 5


def test_highlight_of_an_unknown_name_raises():
    with pytest.raises(KeyError, match=r"highlight \['Add'\]: no node or tensor of that name; closest"):
        graph_to_dot(linear(), highlight=["Add"])  # an op type, not a name


def test_highlight_colours_the_named_node():
    source = graph_to_dot(linear(), highlight=["output"]).source
    painted = [s for s in source.splitlines() if "#f4cccc" in s]
    assert len(painted) == 1 and "Add" in painted[0]


def test_png_written(tmp_path):
    need_tool("dot")
    path = graph_to_image(linear(), tmp_path / "deep" / "linear.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resnet18_export(tmp_path):
    need_tool("dot")
    net = torchvision.models.resnet18(weights=None).eval()
    torch.onnx.export(
        net, (torch.randn(1, 3, 64, 64),), tmp_path / "r.onnx", dynamo=True, external_data=False
    )
    model = onnx.load(tmp_path / "r.onnx")
    weights = {t.name for t in model.graph.initializer}
    boxes, arrows = count(graph_to_dot(tmp_path / "r.onnx").source)
    assert boxes == len(model.graph.node)
    data_edges = sum(1 for n in model.graph.node for i in n.input if i and i not in weights)
    assert arrows == data_edges + len(model.graph.output)
    assert graph_to_image(tmp_path / "r.onnx", tmp_path / "r.png").stat().st_size > 10_000


def test_errors_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        graph_to_dot(tmp_path / "missing.onnx")
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(401)]
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(nodes, "long", [helper.make_tensor_value_info("t0", f, [1])],
                              [helper.make_tensor_value_info("t401", f, [1])])  # fmt: skip
    with pytest.raises(ValueError, match="401 nodes; draw at most 400"):
        graph_to_dot(helper.make_model(graph))


def test_names_with_colons_render_without_port_warnings(tmp_path):
    need_tool("dot")
    f = onnx.TensorProto.FLOAT
    node = helper.make_node("Relu", ["in:a"], ["out:b"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("in:a", f, [1])],
                              [helper.make_tensor_value_info("out:b", f, [1])])  # fmt: skip
    source = graph_to_dot(helper.make_model(graph)).source
    result = subprocess.run(["dot", "-Tpng", "-o", str(tmp_path / "g.png")], input=source, text=True,
                            capture_output=True)  # fmt: skip
    assert result.returncode == 0 and "unrecognized" not in result.stderr
