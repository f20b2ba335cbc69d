"""Draw an ONNX graph as a picture (what netron would show), with graphviz.

Taught in: lessons/10_export_basics.ipynb and lessons/14_build_and_edit_onnx.ipynb.
Needs: onnx, the graphviz Python package and Graphviz's `dot` program (Debian: apt-get install graphviz).
`graph_to_image("model.onnx", "model.png")` writes a PNG; in Jupyter, display the returned path with
`IPython.display.Image(filename=...)`; `highlight=[...]` paints the named nodes (by node name or
output tensor) so an edit stands out in a before/after pair.
"""

import difflib
import shutil
from pathlib import Path

import graphviz
import onnx

MAX_NODES = 400  # beyond this a picture is unreadable: extract a sub-model first


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
        model = onnx.load_model_from_string(data)  # binary protobuf; external weights are not needed
    except Exception as error:
        raise ValueError(
            f"{path} is not an ONNX model (expected a serialized onnx.ModelProto): {error}"
        ) from None
    if not model.ir_version or not model.graph.output:
        raise ValueError(f"{path} is not an ONNX model: it parses, but has no IR version or graph outputs")
    return model


def _shape(value_info) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "x".join(d.dim_param or str(d.dim_value) for d in dims) if dims else "?"


def graph_to_dot(model_or_path, *, rankdir: str = "TB", highlight=()) -> graphviz.Digraph:
    """Build the graphviz description: boxes for operators, ellipses for graph inputs and outputs."""
    highlight = set(highlight)
    model = _load(model_or_path)
    graph = model.graph
    known = {n.name for n in graph.node} | {t for n in graph.node for t in [*n.input, *n.output]}
    unknown = sorted(highlight - known - {i.name for i in graph.input})
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known - {""}), n=10, cutoff=0)
        raise KeyError(f"highlight {unknown}: no node or tensor of that name; closest: {close}")
    if len(graph.node) > MAX_NODES:
        raise ValueError(f"graph has {len(graph.node)} nodes; draw at most {MAX_NODES} (extract a sub-model)")
    dot = graphviz.Digraph(
        graph_attr={"rankdir": rankdir, "fontsize": "10"},
        node_attr={"fontsize": "10"},
        edge_attr={"fontsize": "9"},
    )
    initializers = {t.name for t in graph.initializer}
    producers = {}
    # Node ids carry no ':' (graphviz reads "a:b" in an edge as node a, port b).
    for k, inp in enumerate(graph.input):
        if inp.name not in initializers:
            dot.node(
                f"in{k}",
                f"{inp.name}\n{_shape(inp)}",
                shape="ellipse",
                style="filled",
                fillcolor="#d9ead3",
            )
            producers[inp.name] = f"in{k}"
    for i, node in enumerate(graph.node):
        node_id = f"n{i}"
        weights = [n for n in node.input if n in initializers]
        label = node.op_type if not node.domain else f"{node.domain}::{node.op_type}"
        if weights:
            label += "\n" + "\n".join(f"<{w}>" for w in weights[:3])
        painted = node.name in highlight or highlight.intersection(node.output)
        dot.node(
            node_id, label, shape="box", style="rounded,filled", fillcolor="#f4cccc" if painted else "#cfe2f3"
        )
        for name in node.input:
            if name in producers:
                dot.edge(producers[name], node_id, label=name if len(name) < 24 else "")
        for name in node.output:
            producers[name] = node_id
    for k, out in enumerate(graph.output):
        dot.node(
            f"out{k}",
            f"{out.name}\n{_shape(out)}",
            shape="ellipse",
            style="filled",
            fillcolor="#fce5cd",
        )
        if out.name in producers:
            dot.edge(producers[out.name], f"out{k}")
    return dot


def graph_to_image(model_or_path, path, *, rankdir: str = "TB", highlight=()) -> Path:
    """Render the graph to a PNG file at `path` and return the path."""
    if shutil.which("dot") is None:
        raise RuntimeError("Graphviz's `dot` is not installed (Debian: apt-get install graphviz)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_to_dot(model_or_path, rankdir=rankdir, highlight=highlight).pipe(format="png"))
    return path
