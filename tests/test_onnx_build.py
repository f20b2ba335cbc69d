"""onnx_build: hand-built and edited models compute what numpy, torch and onnx's reference evaluator say."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import helper
from onnx.reference import ReferenceEvaluator

from snippets.onnx_build import (
    add_initializer,
    build_model,
    insert_node_after,
    remove_node,
    rename_tensor,
    sort_nodes,
    tensor_info,
)

rng = np.random.default_rng(0)
A, X, B = (rng.standard_normal((10, 10)).astype(np.float32) for _ in range(3))
FEEDS = {"a": A, "x": X, "b": B}


def linear(nodes=None):
    """output = a * x + b, as in the seed tutorial."""
    nodes = nodes or [helper.make_node("Mul", ["a", "x"], ["c"], name="mul"),
                      helper.make_node("Add", ["c", "b"], ["output"], name="add")]  # fmt: skip
    inputs = [tensor_info(n, [10, 10]) for n in "axb"]
    return build_model(nodes, inputs, [tensor_info("output", [10, 10])], name="linear_func")


def run(model, feeds=FEEDS):
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]


def test_linear_model_matches_numpy_and_reference_evaluator():
    model = linear()
    assert model.opset_import[0].version == 18 and model.ir_version == 8
    np.testing.assert_allclose(run(model), A * X + B, rtol=1e-6)
    np.testing.assert_allclose(ReferenceEvaluator(model).run(None, FEEDS)[0], A * X + B, rtol=1e-6)


def test_nodes_out_of_topological_order_fail_the_checker():
    add = helper.make_node("Add", ["c", "b"], ["output"])
    mul = helper.make_node("Mul", ["a", "x"], ["c"])
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        linear([add, mul])
    graph = helper.make_graph(
        [add, mul], "g", [tensor_info(n, [10, 10]) for n in "axb"], [tensor_info("output", [10, 10])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    sort_nodes(model)
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Mul", "Add"]
    np.testing.assert_allclose(run(model), A * X + B, rtol=1e-6)
    model.graph.node[0].input[1] = "nope"
    with pytest.raises(ValueError, match=r"no node makes \['nope'\]"):
        sort_nodes(model)


def test_edits_compute_the_edited_formula():
    model = linear()
    model.graph.node[1].op_type = "Sub"
    np.testing.assert_allclose(run(model), A * X - B, rtol=1e-6)
    rename_tensor(model, "c", "ax")
    assert [list(n.input) for n in model.graph.node] == [["a", "x"], ["ax", "b"]]
    insert_node_after(model, "ax", "Neg")
    np.testing.assert_allclose(run(model), -(A * X) - B, rtol=1e-6)
    add_initializer(model, "two", np.float32(2.0))
    insert_node_after(model, "output", "Mul", ["two"])
    onnx.checker.check_model(model)
    assert model.graph.output[0].name == "output"
    np.testing.assert_allclose(run(model), 2 * (-(A * X) - B), rtol=1e-6)
    remove_node(model, "Neg_after_ax")
    np.testing.assert_allclose(run(model), 2 * (A * X - B), rtol=1e-6)
    np.testing.assert_allclose(ReferenceEvaluator(model).run(None, FEEDS)[0], 2 * (A * X - B), rtol=1e-6)


def test_bad_edits_are_named():
    model = linear()
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        rename_tensor(model, "nope", "new")
    with pytest.raises(ValueError, match="'b' exists already"):
        rename_tensor(model, "c", "b")
    with pytest.raises(KeyError, match=r"no node named 'nope'; nodes: \['mul', 'add'\]"):
        remove_node(model, "nope")
    with pytest.raises(ValueError, match="only single-input nodes"):
        remove_node(model, "add")


def test_edits_on_resnet18_match_torch(tmp_path):
    torch.manual_seed(0)
    net, image = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net, (image,), tmp_path / "r.onnx", dynamo=False, input_names=["x"], output_names=["y"]
        )
    model = onnx.load(tmp_path / "r.onnx")
    rename_tensor(model, "x", "image")
    add_initializer(model, "temperature", np.float32(2.0))
    insert_node_after(model, "y", "Div", ["temperature"])
    insert_node_after(model, "y", "Softmax", axis=1)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))  # scramble the order, then repair it
    sort_nodes(model)
    stem_relu = next(n.name for n in model.graph.node if n.op_type == "Relu")  # used once, before maxpool
    remove_node(model, stem_relu)
    onnx.checker.check_model(model)
    net.relu = torch.nn.Identity()  # what removing that node means in PyTorch (layers keep their own relu)
    for block in [*net.layer1, *net.layer2, *net.layer3, *net.layer4]:
        block.relu = torch.nn.ReLU()
    with torch.no_grad():
        want = torch.softmax(net(image) / 2, dim=1).numpy()
    np.testing.assert_allclose(run(model, {"image": image.numpy()}), want, atol=1e-5)
