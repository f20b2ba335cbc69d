"""onnx_debug: sub-models and intermediate tensors agree with PyTorch, for both exporters' tensor names."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision

from snippets.onnx_debug import (
    expose_intermediate_outputs,
    extract_submodel,
    module_outputs,
    run_intermediates,
    tensor_names,
)


class MultiBranch(torch.nn.Module):
    """The seed tutorial's model: a trunk, two parallel branches added together, a tail."""

    def __init__(self):
        super().__init__()
        conv = lambda: torch.nn.Conv2d(3, 3, 3)  # noqa: E731
        self.convs1 = torch.nn.Sequential(conv(), conv(), conv())
        self.convs2 = torch.nn.Sequential(conv(), conv())
        self.convs3 = torch.nn.Sequential(conv(), conv())
        self.convs4 = torch.nn.Sequential(conv(), conv(), conv())

    def forward(self, x):
        x = self.convs1(x)
        x = self.convs2(x) + self.convs3(x)
        return self.convs4(x)


def export(net, X, path, dynamo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        kwargs = {"external_data": False, "verbose": False} if dynamo else {"opset_version": 18}
        torch.onnx.export(net, (X,), path, dynamo=dynamo, input_names=["x"], **kwargs)
    return onnx.load(path)


def run(model, feeds):
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)


@pytest.fixture(scope="module", params=[False, True], ids=["legacy", "dynamo"])
def branchy(request, tmp_path_factory):
    torch.manual_seed(0)
    net, X = MultiBranch().eval(), torch.randn(1, 3, 20, 20)
    path = tmp_path_factory.mktemp("m") / "whole.onnx"
    return net, X, export(net, X, path, request.param), path


def test_extract_two_branches(branchy):
    net, X, model, _ = branchy
    names = module_outputs(model)  # looked up: 'convs1.2' -> '/convs1/convs1.2/Conv_output_0' or 'conv2d_2'
    trunk, left, right = names["convs1.2"], names["convs2.1"], names["convs3.1"]
    sub = extract_submodel(model, [trunk], [left, right])
    with torch.no_grad():
        t = net.convs1(X)
        want = [net.convs2(t).numpy(), net.convs3(t).numpy()]
    got = run(sub, {trunk: t.numpy()})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_redundant_input_changes_nothing(branchy):
    net, X, model, _ = branchy
    names = module_outputs(model)
    sub = extract_submodel(model, [names["convs1.2"], "x"], [names["convs2.1"]])
    assert [i.name for i in sub.graph.input] == [names["convs1.2"], "x"]
    t = net.convs1(X).detach().numpy()
    a = run(sub, {names["convs1.2"]: t, "x": np.zeros((1, 3, 20, 20), np.float32)})[0]
    b = run(sub, {names["convs1.2"]: t, "x": np.ones((1, 3, 20, 20), np.float32)})[0]
    np.testing.assert_array_equal(a, b)


def test_too_few_inputs_names_what_is_missing(branchy):
    _, _, model, path = branchy
    names = module_outputs(model)
    add = next(n.output[0] for n in model.graph.node if n.op_type == "Add")
    with pytest.raises(ValueError, match="not enough") as info:
        extract_submodel(path, [names["convs2.1"]], [add])
    assert names["convs3.1"] in str(info.value)  # the other branch is what it needs
    # onnx's own extractor fails on the same request with a topological-order message
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        onnx.utils.extract_model(str(path), str(path.with_name("bad.onnx")), [names["convs2.1"]], [add])


def test_unknown_names_list_at_most_ten_close_ones(tmp_path):
    torch.manual_seed(0)
    net, X = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 32, 32)
    model = export(net, X, tmp_path / "r.onnx", dynamo=True)
    assert len(tensor_names(model)) > 40
    for call in (lambda: extract_submodel(model, ["x"], ["relu_99"]),
                 lambda: expose_intermediate_outputs(model, ["relu_99"])):  # fmt: skip
        with pytest.raises(KeyError, match=r"\['relu_99'\] are not in the model") as info:
            call()
        closest = eval(str(info.value).split("closest: ")[1].rstrip("\"'"))  # the printed list
        assert len(closest) == 10 and all(name in tensor_names(model) for name in closest)
        assert closest[0].startswith("relu") and len(str(info.value)) < 400
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        extract_submodel("missing.onnx", ["x"], ["y"])


@pytest.mark.parametrize("call", ["tensor_names", "module_outputs", "extract", "graph_to_dot", "layerwise"])
def test_bad_files_name_the_path(call, tmp_path):
    from snippets.graph_image import graph_to_dot
    from snippets.layerwise_diff import layerwise_diff

    run_it = {
        "tensor_names": tensor_names,
        "module_outputs": module_outputs,
        "extract": lambda p: extract_submodel(p, ["x"], ["y"]),
        "graph_to_dot": graph_to_dot,
        "layerwise": lambda p: layerwise_diff(p, p, np.zeros(1, np.float32)),
    }[call]
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "notes.onnx").write_text("a text file, not a model\n" * 20)
    (tmp_path / "model.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"empty.onnx is empty: expected an ONNX model"):
        run_it(tmp_path / "empty.onnx")
    for name in ("notes.onnx", "model.json"):
        with pytest.raises(ValueError, match=rf"{name} is not an ONNX model"):
            run_it(tmp_path / name)


class Nested(torch.nn.Module):
    """Names the legacy parser used to get wrong: a Sequential in a Sequential, and 'ln_1'."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
        self.ln_1 = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.ln_1(self.features(x).mean((2, 3)))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_module_names_of_nested_containers(dynamo, tmp_path):
    net, X = Nested().eval(), torch.randn(1, 3, 8, 8)
    model = export(net, X, tmp_path / "n.onnx", dynamo)
    names = module_outputs(model)
    assert {"features.0.0", "ln_1"} <= set(names) <= {n for n, _ in net.named_modules()}
    values = run_intermediates(model, {"x": X.numpy()}, [names["features.0.0"]])
    np.testing.assert_allclose(
        values[names["features.0.0"]], net.features[0][0](X).detach().numpy(), atol=1e-5
    )


def test_intermediates_match_torch_hooks(branchy):
    net, X, model, _ = branchy
    exposed = expose_intermediate_outputs(model)
    assert len(exposed.graph.output) == len(tensor_names(model)) - 1  # every node output; 'x' is an input
    seen = {}
    hooks = [m.register_forward_hook(lambda m, a, out, n=n: seen.__setitem__(n, out.detach().numpy()))
             for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]  # fmt: skip
    with torch.no_grad():
        net(X)
    for h in hooks:
        h.remove()
    values = run_intermediates(model, {"x": X.numpy()})
    names = module_outputs(model)
    assert set(seen) == set(names)
    for module, tensor in names.items():
        np.testing.assert_allclose(values[tensor], seen[module], atol=1e-5)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_resnet18_layer2_submodel(tmp_path, dynamo):
    torch.manual_seed(0)
    net, X = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 64, 64)
    model = export(net, X, tmp_path / "resnet18.onnx", dynamo)
    names = module_outputs(model)
    start, end = names["layer1.1.relu"], names["layer2.1.relu"]  # each block's last activation
    sub = extract_submodel(model, [start], [end], path=tmp_path / "layer2.onnx")
    assert (tmp_path / "layer2.onnx").is_file()
    with torch.no_grad():
        t = net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(X)))))
        want = net.layer2(t).numpy()
    np.testing.assert_allclose(run(sub, {start: t.numpy()})[0], want, atol=1e-4)
    values = run_intermediates(model, {"x": X.numpy()}, [end])
    np.testing.assert_allclose(values[end], want, atol=1e-4)
