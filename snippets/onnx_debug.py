"""Debug an ONNX model from the inside: cut out sub-models, expose and run intermediate tensors.

Taught in: lessons/15_extract_and_debug_onnx.ipynb. Needs: onnx, onnxruntime, numpy.
`module_outputs(model)` finds the tensor each PyTorch module produced (both exporters' naming schemes),
`extract_submodel(model, inputs, outputs)` wraps `onnx.utils.extract_model` with errors that say what
is missing, `run_intermediates(model, feeds)` returns every tensor the graph computes.
"""

import ast
import difflib
import re
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # written by torch.onnx.export(dynamo=True) on every node


def _load(model_or_path) -> onnx.ModelProto:
    """An ONNX model from a ModelProto or a path; a missing, empty or non-ONNX file is named."""
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path} is empty: expected an ONNX model (a serialized onnx.ModelProto)")
    try:
        model = onnx.load_model_from_string(data)  # binary protobuf, whatever the file is called
    except Exception as error:
        raise ValueError(
            f"{path} is not an ONNX model (expected a serialized onnx.ModelProto): {error}"
        ) from None
    if not model.ir_version or not model.graph.output:
        raise ValueError(f"{path} is not an ONNX model: it parses, but has no IR version or graph outputs")
    return model


def tensor_names(model) -> list[str]:
    """Every tensor a sub-model can start or end at: graph inputs, then node outputs in graph order."""
    graph = _load(model).graph
    weights = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in weights]
    return names + [o for n in graph.node if n.op_type != "Constant" for o in n.output if o]


def _legacy_path(node_name: str, known) -> list[str]:
    """'/features/features.7/block/block.1/Conv' -> ['features', 'features.7', 'features.7.block',
    'features.7.block.1']: one part per module, an attribute name ('block') or, for a child of a
    container, the container's attribute name and the index ('block.1'). The N+1-th call of a module
    gets '_N' ('relu_1'), stripped when the bare name is in `known`, so a real name such as 'ln_1' stays.
    """
    path, parent = [], ""
    for part in node_name.split("/")[1:-1]:
        prefix = part.rpartition(".")[0]
        name = f"{parent}.{part}" if parent else part
        if prefix and (parent == prefix or parent.endswith(f".{prefix}")):
            name = parent[: len(parent) - len(prefix)] + part
        match = re.fullmatch(r"(.+)_\d+", name)
        if name not in known and match and match[1] in known:
            name = match[1]
        path.append(name)
        parent = name
    return path


def node_module(node: onnx.NodeProto, known: set[str] = frozenset()) -> str | None:
    """Qualified name of the PyTorch module that produced a node ('' = top level), None if unknown.

    dynamo=True stores the scope list in metadata; dynamo=False encodes it in the node name
    ('/layer1/layer1.0/conv1/Conv'). `known`: module names, to tell a second call ('relu_1') from a
    module called 'relu_1'; module_outputs() collects them from the graph itself.
    """
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            scopes = ast.literal_eval(prop.value)  # a Python list literal of strings
            return scopes[-2] if len(scopes) >= 2 else ""
    if not node.name.startswith("/"):
        return None
    path = _legacy_path(node.name, known)
    return path[-1] if path else ""


def module_outputs(model) -> dict[str, str]:
    """{module name: the tensor its last node wrote}, in graph order; looks names up, hard-codes none."""
    nodes = _load(model).graph.node
    raw = {name for n in nodes if n.name.startswith("/") for name in _legacy_path(n.name, set())}
    repeats = {name for name in raw if (m := re.fullmatch(r"(.+)_\d+", name)) and m[1] in raw}
    known = raw - repeats  # 'relu_1' beside 'relu' is relu's second call; 'ln_1' alone is a name
    found = {}
    for node in nodes:
        module = node_module(node, known)
        if module and node.op_type != "Constant":
            found.pop(module, None)  # re-insert so the order follows the module's last node
            found[module] = node.output[0]
    return found


def _unknown(names, available) -> KeyError:
    """KeyError naming the unknown tensors and at most 10 existing names closest to the first one."""
    close = difflib.get_close_matches(names[0], available, n=10, cutoff=0)
    return KeyError(f"tensors {names} are not in the model ({len(available)} tensors); closest: {close}")


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
        raise _unknown(missing, available)
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
        raise _unknown(unknown, available)
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
