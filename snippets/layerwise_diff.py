"""Find the first layer where an ONNX model stops agreeing with its reference (PyTorch or another ONNX).

Taught in: lessons/16_layerwise_diff.ipynb. Needs: torch, onnx, onnxruntime, numpy, pandas.
`table = layerwise_diff(net, "model.onnx", (X,))` runs PyTorch with forward hooks on every leaf module and
ONNX Runtime with every intermediate tensor exposed, pairs them by module scope (both torch.onnx exporters'
naming schemes) and returns one row per layer: max abs diff, cosine similarity, SQNR in dB, and whether
it diverged; `table.attrs["first_divergent"]` names the first one. `print(format_diff(table))` shows it.
With an ONNX model as reference (fp32 vs its int8 QDQ copy) tensors are paired by name instead.
"""

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import torch

SCOPES_KEY = "pkg.torch.onnx.name_scopes"  # dynamo=True writes the module scopes into node metadata


def _load(model_or_path) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if not Path(model_or_path).is_file():
        raise FileNotFoundError(f"no ONNX file at {model_or_path}")
    return onnx.load(str(model_or_path))


def _node_module(node: onnx.NodeProto) -> str | None:
    """PyTorch module that produced `node`: dynamo metadata, else the legacy '/a/a.0/conv1/Conv' name."""
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            scopes = ast.literal_eval(prop.value)
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
    return re.sub(r"_\d+$", "", qualified)  # 'relu_1' is the second call of module 'relu'


def _run_all(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    """Every node output of `model`, computed by onnxruntime (each one added as a graph output)."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for node in exposed.graph.node:
        for name in node.output:
            if name and name not in present and node.op_type != "Constant":
                exposed.graph.output.append(onnx.ValueInfoProto(name=name))
                present.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return {**feeds, **dict(zip(names, session.run(names, feeds), strict=True))}


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Max abs diff, cosine similarity and SQNR (signal-to-quantisation-noise ratio, dB) of two tensors."""
    a = np.asarray(reference, np.float64).ravel()
    b = np.asarray(candidate, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare tensors of {a.size} and {b.size} elements")
    noise, signal = np.sum((a - b) ** 2), np.sum(a**2)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return {
        "max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
        "cosine": float(a @ b / norms) if norms > 0 else float(np.array_equal(a, b)),
        "sqnr_db": float(10 * np.log10(signal / noise)) if noise > 0 else float("inf"),
    }


def _torch_calls(net: torch.nn.Module, inputs) -> list[tuple[str, np.ndarray]]:
    """(module name, output) for every call of a leaf module, in execution order."""
    calls, handles = [], []
    for name, module in net.named_modules():
        if name and not any(True for _ in module.children()):

            def hook(_module, _args, output, name=name):
                out = output[0] if isinstance(output, (tuple, list)) else output
                calls.append((name, out.detach().float().cpu().numpy().copy()))  # inplace ReLU follows

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(*[torch.as_tensor(x) for x in inputs])
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _onnx_runs(model: onnx.ModelProto) -> dict[str, list[tuple[str, list[str]]]]:
    """{module: [(last tensor of one call, op types of that call), ...]}: consecutive nodes form a call."""
    runs, previous = {}, None
    for node in model.graph.node:
        module = _node_module(node)
        if node.op_type == "Constant" or module is None:
            continue
        if module != previous:
            runs.setdefault(module, []).append((node.output[0], []))
        runs[module][-1] = (node.output[0], runs[module][-1][1] + [node.op_type])
        previous = module
    return runs


def _pairs_from_torch(net, model, inputs):
    """Rows pairing each PyTorch leaf call with the ONNX tensor that plays its part."""
    calls = _torch_calls(net, inputs)
    runs = _onnx_runs(model)
    legacy = not any(p.key == SCOPES_KEY for n in model.graph.node for p in n.metadata_props)
    seen, rows = {}, []
    count = {name: sum(1 for c, _ in calls if c == name) for name, _ in calls}
    for name, output in calls:
        k = seen[name] = seen.get(name, 0) + 1
        module_runs = runs.get(name, [])
        if not module_runs:
            # No node of its own: an exporter fused it (Conv+BN) or dropped it (Dropout in eval).
            # The legacy exporter names a fused Conv+BN after the Conv, so the Conv's tensor already
            # holds this module's output; dynamo names it after the BN, so the BN row covers it.
            if legacy and rows and rows[-1]["ref"].shape == output.shape:
                rows[-1]["ref"] = output
                last = name.rsplit(".", 1)[-1]
                rows[-1]["layer"] += "+" + (name if last.isdigit() else last)  # 'conv1+bn1', 'b.0+b.1'
            continue
        index = k - 1 if len(module_runs) == count[name] else (-1 if k == count[name] else None)
        if index is None:
            continue  # calls and node groups do not line up: compare the last call only
        tensor, ops = module_runs[index]
        label = name if count[name] == 1 else f"{name}#{k}"
        rows.append(
            {"layer": label, "onnx_ops": ",".join(dict.fromkeys(ops)), "tensor": tensor, "ref": output}
        )
    return rows


def _pairs_from_onnx(reference: onnx.ModelProto, ref_values: dict):
    weights = {t.name for t in reference.graph.initializer}
    rows = [{"layer": i.name, "onnx_ops": "(input)", "tensor": i.name, "ref": ref_values[i.name]}
            for i in reference.graph.input if i.name not in weights]  # fmt: skip
    for node in reference.graph.node:
        name = node.output[0] if node.output else ""
        if node.op_type != "Constant" and name in ref_values:
            label = node.name or name
            rows.append({"layer": label, "onnx_ops": node.op_type, "tensor": name, "ref": ref_values[name]})
    return rows


def layerwise_diff(reference, onnx_model, inputs, *, min_sqnr_db: float = 60.0) -> pd.DataFrame:
    """One row per layer comparing `onnx_model` with `reference` (a torch.nn.Module or an ONNX model).

    `inputs`: the model inputs in graph order (arrays or tensors). A row diverges when its SQNR falls
    below `min_sqnr_db`; fp32 exports usually stay above 100 dB, int8 models near 20-40 dB.
    """
    model = _load(onnx_model)
    inputs = [inputs] if isinstance(inputs, (np.ndarray, torch.Tensor)) else list(inputs)
    weights = {t.name for t in model.graph.initializer}
    input_names = [i.name for i in model.graph.input if i.name not in weights]
    if len(input_names) != len(inputs):
        raise ValueError(f"the ONNX model takes inputs {input_names}, got {len(inputs)} array(s)")
    feeds = {
        n: np.asarray(torch.as_tensor(x).cpu().numpy()) for n, x in zip(input_names, inputs, strict=True)
    }
    values = _run_all(model, feeds)
    if isinstance(reference, torch.nn.Module):
        rows = _pairs_from_torch(reference.eval(), model, inputs)
    else:
        ref_model = _load(reference)
        rows = _pairs_from_onnx(ref_model, {**feeds, **_run_all(ref_model, feeds)})
    table = []
    for row in rows:
        # In a QDQ model the value the next layer reads is the dequantized copy of the tensor.
        row["tensor"] = next(n for n in (f"{row['tensor']}_DequantizeLinear_Output", row["tensor"], "")
                             if n in values or not n)  # fmt: skip
        got = values.get(row["tensor"])
        if got is None or got.size != row["ref"].size or not np.issubdtype(got.dtype, np.floating):
            continue
        metrics = compare(row["ref"], got)
        table.append({"layer": row["layer"], "onnx_ops": row["onnx_ops"], "onnx_tensor": row["tensor"],
                      **metrics, "diverged": metrics["sqnr_db"] < min_sqnr_db})  # fmt: skip
    if not table:
        raise ValueError("no layer could be paired: is `onnx_model` an export of `reference`?")
    frame = pd.DataFrame(table)
    first = frame.index[frame["diverged"]]
    frame.attrs["first_divergent"] = frame.loc[first[0], "layer"] if len(first) else None
    frame.attrs["min_sqnr_db"] = min_sqnr_db
    return frame


def format_diff(table: pd.DataFrame, *, atol: float = 1e-4, exact: bool = False) -> str:
    """The table as text. Unless `exact`, differences below `atol` print as '<atol' and SQNRs above the
    threshold as '>threshold', so float noise (which varies between CPUs) does not show."""
    lines = [f"{'layer':<26} {'onnx ops':<18} {'max abs':>9} {'cosine':>8} {'SQNR dB':>8}"]
    for _, r in table.iterrows():
        diff = f"<{atol:.0e}" if r.max_abs_diff < atol and not exact else f"{r.max_abs_diff:.2g}"
        if r.sqnr_db >= table.attrs["min_sqnr_db"] and not exact:
            sqnr = f">{table.attrs['min_sqnr_db']:g}"
        else:
            sqnr = f"{r.sqnr_db:.0f}"
        mark = "  <-- first divergence" if r.layer == table.attrs["first_divergent"] else ""
        ops = r.onnx_ops if len(r.onnx_ops) <= 18 else r.onnx_ops[:15] + "..."
        lines.append(f"{r.layer[:26]:<26} {ops:<18} {diff:>9} {r.cosine:8.4f} {sqnr:>8}{mark}")
    return "\n".join(lines)
