"""Build ONNX models by hand and edit them in place: rename, insert and remove nodes, add weights.

Taught in: lessons/14_build_and_edit_onnx.ipynb. Needs: onnx, numpy.
`build_model(nodes, inputs, outputs, opset=18)` wraps onnx.helper with an explicit opset and the checker;
the edit helpers keep every reference to a tensor (node inputs, graph inputs/outputs, weights) consistent.
"""

import numpy as np
import onnx
from onnx import helper, numpy_helper


def tensor_info(name: str, shape, dtype=np.float32) -> onnx.ValueInfoProto:
    """A ValueInfoProto: name, element type and shape (None or a string for a dynamic dimension)."""
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def build_model(nodes, inputs, outputs, *, initializers=None, name="graph", opset=18) -> onnx.ModelProto:
    """Nodes (in topological order) + value infos -> a checked ModelProto for the given opset.

    `initializers`: {name: numpy array} stored as weights. The IR version is the oldest that can hold
    `opset`, so older runtimes load the file too (make_model alone writes the newest).
    """
    weights = [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), initializer=weights)
    opset_id = helper.make_opsetid("", opset)
    model = helper.make_model(graph, opset_imports=[opset_id])
    model.ir_version = helper.find_min_ir_version_for([opset_id])
    onnx.checker.check_model(model, full_check=True)
    return model


def sort_nodes(model: onnx.ModelProto) -> None:
    """Reorder the nodes topologically (in place): each node after the nodes that make its inputs."""
    g = model.graph
    ready = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    pending, ordered = list(g.node), []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            missing = sorted(
                {i for n in pending for i in n.input} - ready - {o for n in pending for o in n.output}
            )
            raise ValueError(f"cannot order nodes: no node makes {missing} (or the graph has a cycle)")
        for node in runnable:
            ordered.append(node)
            ready.update(node.output)
            pending.remove(node)
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del g.node[:]
    g.node.extend(copies)


def _node(model, node_name: str) -> onnx.NodeProto:
    for node in model.graph.node:
        if node.name == node_name:
            return node
    names = [n.name for n in model.graph.node]
    raise KeyError(f"no node named {node_name!r}; nodes: {names}")


def _all_tensors(model) -> set[str]:
    g = model.graph
    names = {i.name for i in g.input} | {t.name for t in g.initializer}
    return names | {o for n in g.node for o in n.output}


def rename_tensor(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename tensor `old` to `new` everywhere it appears (in place)."""
    if old not in _all_tensors(model):
        raise KeyError(f"no tensor named {old!r}; tensors: {sorted(_all_tensors(model))}")
    if new in _all_tensors(model):
        raise ValueError(f"a tensor named {new!r} exists already: pick a free name")
    g = model.graph
    for node in g.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]
    for item in [*g.input, *g.output, *g.value_info, *g.initializer]:
        if item.name == old:
            item.name = new


def add_initializer(model: onnx.ModelProto, name: str, array) -> None:
    """Store `array` as a weight called `name` (in place)."""
    if name in _all_tensors(model):
        raise ValueError(f"a tensor named {name!r} exists already")
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))


def insert_node_after(
    model, tensor: str, op_type: str, extra_inputs=(), name=None, **attrs
) -> onnx.NodeProto:
    """Insert `op_type(tensor, *extra_inputs)` right after `tensor` is made; its consumers read the result.

    Graph outputs named `tensor` keep their name: the new node takes it over and the old tensor is
    renamed `<tensor>_before_<op_type>`.
    """
    if tensor not in _all_tensors(model):
        raise KeyError(f"no tensor named {tensor!r}; tensors: {sorted(_all_tensors(model))}")
    g = model.graph
    name = name or f"{op_type}_after_{tensor}"
    is_output = any(o.name == tensor for o in g.output)
    if is_output:  # keep the graph's output name stable: rename what feeds it instead
        rename_tensor(model, tensor, f"{tensor}_before_{op_type}")
        source, result = f"{tensor}_before_{op_type}", tensor
        for o in g.output:
            if o.name == source:
                o.name = tensor
    else:
        source, result = tensor, f"{tensor}_{op_type.lower()}"
        for node in g.node:
            node.input[:] = [result if i == source else i for i in node.input]
    new = helper.make_node(op_type, [source, *extra_inputs], [result], name=name, **attrs)
    producers = [i for i, n in enumerate(g.node) if source in n.output]
    g.node.insert(producers[0] + 1 if producers else 0, new)  # right after the producer: stays sorted
    return new


def remove_node(model: onnx.ModelProto, node_name: str) -> None:
    """Delete a one-in/one-out node; whatever read its output reads its input instead (in place)."""
    node = _node(model, node_name)
    data_inputs = [i for i in node.input if i]
    if len(data_inputs) != 1 or len(node.output) != 1:
        raise ValueError(f"node {node_name!r} has inputs {list(node.input)}: only single-input nodes can go")
    source, result = data_inputs[0], node.output[0]
    g = model.graph
    g.node.remove(node)
    if any(o.name == result for o in g.output):  # keep the graph's output name
        if source in {i.name for i in g.input} | {t.name for t in g.initializer}:
            g.node.append(helper.make_node("Identity", [source], [result], name=f"{node_name}_bypass"))
        else:
            rename_tensor(model, source, result)  # the producer of `source` now writes the output
        return
    for other in g.node:
        other.input[:] = [source if i == result else i for i in other.input]


def _self_check():
    x, y = tensor_info("x", [2]), tensor_info("y", [2])
    model = build_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y])
    insert_node_after(model, "y", "Neg")
    remove_node(model, "relu")
    onnx.checker.check_model(model)
