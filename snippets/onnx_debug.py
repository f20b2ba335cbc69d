"""Debug an ONNX model from the inside: cut out sub-models, expose and run intermediate tensors.

Taught in: lessons/15_extract_and_debug_onnx.ipynb. Needs: onnx, onnxruntime, numpy.
`module_outputs(model)` finds the tensor each PyTorch module produced (both exporters' naming schemes),
`extract_submodel(model, inputs, outputs)` wraps `onnx.utils.extract_model` with errors that say what
is missing, `run_intermediates(model, feeds)` returns every tensor the graph computes.
"""

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # written by torch.onnx.export(dynamo=True) on every node


def _load(model_or_path) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    return onnx.load(str(path))


def tensor_names(model) -> list[str]:
    """Every tensor a sub-model can start or end at: graph inputs, then node outputs in graph order."""
    graph = _load(model).graph
    weights = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in weights]
    return names + [o for n in graph.node if n.op_type != "Constant" for o in n.output if o]


def node_module(node: onnx.NodeProto) -> str | None:
    """Qualified name of the PyTorch module that produced a node ('' = top level), None if unknown.

    dynamo=True stores the scope list in metadata; dynamo=False encodes it in the node name
    ('/layer1/layer1.0/conv1/Conv'; a second call of one module gets a suffix: 'relu_1').
    """
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            scopes = ast.literal_eval(prop.value)  # a Python list literal of strings
            return scopes[-2] if len(scopes) >= 2 else ""
    if not node.name.startswith("/"):
        return None
    qualified = ""
    for part in node.name.split("/")[1:-1]:
        parent, _, last = qualified.rpartition(".")
        if part.startswith(f"{last}.") and qualified:  # a container's child: '/layer1/layer1.0'
            qualified = f"{parent}.{part}" if parent else part
        else:
            qualified = f"{qualified}.{part}" if qualified else part
    return re.sub(r"_\d+$", "", qualified) if qualified else ""


def module_outputs(model) -> dict[str, str]:
    """{module name: the tensor its last node wrote}, in graph order; looks names up, hard-codes none."""
    found = {}
    for node in _load(model).graph.node:
        module = node_module(node)
        if module and node.op_type != "Constant":
            found.pop(module, None)  # re-insert so the order follows the module's last node
            found[module] = node.output[0]
    return found


def _needed_nodes(graph, inputs, outputs):
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack, reached = [], list(outputs), set()
    while stack:
        name = stack.pop()
        if name in reached or name in inputs:
            continue
        reached.add(name)
        if name in producer:
            node = producer[name]
            if node not in needed:
                needed.append(node)
                stack.extend(i for i in node.input if i)
    return needed, reached


def extract_submodel(model, input_names, output_names, path=None) -> onnx.ModelProto:
    """The part of `model` between tensors `input_names` and `output_names` (saved to `path` if given).

    Raises KeyError listing unknown names and the available ones, and ValueError naming the tensors to
    add when the inputs do not cut the graph (onnx itself then fails with a topological-sort message).
    """
    model = _load(model)
    available = tensor_names(model)
    missing = [n for n in [*input_names, *output_names] if n not in available]
    if missing:
        raise KeyError(f"tensors {missing} are not in the model; available tensors: {available}")
    graph, given = model.graph, set(input_names)
    weights = {t.name for t in graph.initializer}
    known = given | weights
    _, reached = _needed_nodes(graph, given, output_names)
    for node in graph.node:  # forward pass: what the given inputs can compute
        if all(not i or i in known for i in node.input):
            known.update(node.output)
    graph_inputs = {i.name for i in graph.input} - known
    if reached & graph_inputs:
        frontier = sorted(
            {i for n in graph.node if n.output[0] in reached for i in n.input if i and i not in known}
            & {i for n in graph.node if any(x in known - weights for x in n.input) for i in n.input}
        )
        raise ValueError(
            f"inputs {list(input_names)} are not enough to compute {list(output_names)}: walking back "
            f"reaches model input(s) {sorted(reached & graph_inputs)}. Add {frontier or 'an earlier tensor'} "
            "to the inputs (or start further up)."
        )
    typed = onnx.shape_inference.infer_shapes(model)  # the extractor needs each cut tensor's type
    sub = onnx.utils.Extractor(typed).extract_model(list(input_names), list(output_names))
    onnx.checker.check_model(sub)
    if path is not None:
        onnx.save(sub, str(path))
    return sub


def expose_intermediate_outputs(model, names=None) -> onnx.ModelProto:
    """A copy of `model` whose graph outputs also include `names` (None: every node output)."""
    model = _load(model)
    available = tensor_names(model)
    names = available if names is None else list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise KeyError(f"tensors {unknown} are not in the model; available tensors: {available}")
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    try:  # typed outputs where shape inference knows them; onnxruntime also accepts untyped ones
        typed = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    except Exception:
        typed = {}
    present = {o.name for o in exposed.graph.output} | {i.name for i in exposed.graph.input}
    for name in names:
        if name not in present:
            exposed.graph.output.append(typed.get(name, onnx.ValueInfoProto(name=name)))
            present.add(name)
    return exposed


def run_intermediates(model, feeds: dict, names=None) -> dict[str, np.ndarray]:
    """Run `model` in onnxruntime; return {tensor name: value} for `names` (None: all) and the outputs."""
    exposed = expose_intermediate_outputs(model, names)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # quiet: exposed outputs stop some fusions, which ORT reports
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs()]
    return dict(zip(wanted, session.run(wanted, feeds), strict=True))
