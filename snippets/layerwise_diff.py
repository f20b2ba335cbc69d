"""Find the first layer where an ONNX model stops agreeing with its reference (PyTorch or another ONNX).

Taught in: lessons/16_layerwise_diff.ipynb. Needs: torch, onnx, onnxruntime, numpy, pandas.
`table = layerwise_diff(net, "model.onnx", (X,))` runs PyTorch with forward hooks on every module and
ONNX Runtime with every intermediate tensor exposed, pairs them by the module scopes the exporter
recorded (node names for dynamo=False, node metadata for dynamo=True) and returns one row per layer:
max abs diff, cosine similarity, SQNR in dB, and whether it diverged; `table.attrs["first_divergent"]`
names the first one. `print(format_diff(table))` shows it.
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


def _torch_calls(net: torch.nn.Module, inputs) -> list[dict]:
    """One entry per module call, in the order calls finish: name, output (None if not a tensor), and
    the input tensor, so a layer an exporter fused into the previous one can be recognised."""
    calls, handles = [], []
    for name, module in net.named_modules():
        if not name:
            continue

        def hook(module, args, output, name=name):
            tensor = output[0] if isinstance(output, (tuple, list)) and output else output
            entry = {"name": name, "module": module, "input": args[0] if args else None, "out": output,
                     "ref": None, "note": ""}  # fmt: skip
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                entry["ref"] = tensor.detach().float().cpu().numpy().copy()  # inplace ReLU follows
            else:
                entry["note"] = f"output is {type(output).__name__}, not a float tensor: not compared"
            calls.append(entry)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(*[torch.as_tensor(x) for x in inputs])
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _legacy_scopes(node_name: str, known) -> list[tuple[str, str]] | None:
    """'/layer1/layer1.0/relu_1/Relu' -> [('layer1', ''), ('layer1.0', ''), ('layer1.0.relu', '1')].

    The TorchScript exporter writes one part per module: an attribute name ('relu'), or for a child of
    a container the container's attribute name and the index ('block.1' inside 'features.7.block'),
    with '_N' added for the N+1-th call. `known` (the model's module names) tells a call suffix from
    a name that ends in '_1' ('ln_1').
    """
    if not node_name.startswith("/"):
        return None
    path, parent = [], ""
    for part in node_name.split("/")[1:-1]:
        prefix = part.rpartition(".")[0]
        candidates = [f"{parent}.{part}" if parent else part, part]
        if prefix and (parent == prefix or parent.endswith(f".{prefix}")):
            candidates.insert(0, parent[: len(parent) - len(prefix)] + part)
        name, tag = candidates[0], ""
        for candidate in candidates:
            match = re.fullmatch(r"(.+)_(\d+)", candidate)
            if candidate in known:
                name, tag = candidate, ""
                break
            if match and match[1] in known:
                name, tag = match[1], match[2]
                break
        path.append((name, tag))
        parent = name
    return path


def _node_scopes(node: onnx.NodeProto, known) -> list[tuple[str, str]] | None:
    """The modules (outermost first) whose call produced `node`, as the exporter recorded them."""
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:  # dynamo: ['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d']
            return [(scope, "") for scope in ast.literal_eval(prop.value)[1:-1]]
    return _legacy_scopes(node.name, known)


def _onnx_runs(model: onnx.ModelProto, known) -> dict[str, list[list[int]]]:
    """{module: [node indices of one call, ...]}: a call is a run of consecutive nodes in its scope."""
    runs, active = {}, set()
    for i, node in enumerate(model.graph.node):
        scopes = _node_scopes(node, known)
        if node.op_type == "Constant" or scopes is None:
            continue  # constants and unnamed nodes neither start nor end a call
        keys = set(scopes)
        for key in keys:
            if key in active:
                runs[key][-1].append(i)
            else:
                runs.setdefault(key, []).append([i])
        active = keys
    by_module = {}
    for (name, _tag), groups in sorted(runs.items(), key=lambda kv: (kv[0][0], int(kv[0][1] or 0))):
        by_module.setdefault(name, []).extend(groups)
    return by_module


def _run_output(model: onnx.ModelProto, run: list[int], consumers: dict, values: dict, shape) -> str | None:
    """The tensor a call hands on: made inside the run, read outside it (or a graph output)."""
    inside = set(run)
    outputs = {o.name for o in model.graph.output}
    leaving = [
        t
        for i in run
        for t in model.graph.node[i].output
        if t and (t in outputs or any(c not in inside for c in consumers.get(t, ())))
    ]
    for same in (lambda v: v.shape == shape, lambda v: v.size == int(np.prod(shape))):
        found = [t for t in leaving if t in values and same(values[t])]
        if found:
            return found[-1]
    return None


def _pairs_from_torch(net, model, inputs, values):
    """Rows pairing each PyTorch module call with the ONNX tensor its nodes hand on.

    Modules are matched by the scopes the exporter recorded (node names for dynamo=False, metadata for
    dynamo=True). A call without nodes of its own was fused (a BatchNorm folded into the Conv before
    it, whose tensor then holds the BatchNorm's output) or is a no-op. A container whose output one of
    its children already produced gets no row of its own; an attention block or a residual sum does.
    """
    calls = _torch_calls(net, inputs)
    known = {name for name, _ in net.named_modules()}
    runs = _onnx_runs(model, known)
    consumers = {}
    for i, node in enumerate(model.graph.node):
        for t in node.input:
            consumers.setdefault(t, []).append(i)
    count = {}
    for call in calls:
        count[call["name"]] = count.get(call["name"], 0) + 1
    seen, rows, by_output, used = {}, [], {}, set()
    for call in calls:
        name = call["name"]
        k = seen[name] = seen.get(name, 0) + 1
        label = name if count[name] == 1 else f"{name}#{k}"
        module_runs = runs.get(name, [])
        if not module_runs:
            row = by_output.get(id(call["input"]))
            fused = isinstance(call["module"], torch.nn.modules.batchnorm._BatchNorm)
            if (
                fused
                and row is not None
                and call["ref"] is not None
                and row["ref"].shape == call["ref"].shape
            ):
                last = name.rsplit(".", 1)[-1]  # 'conv1+bn1', 'block1.0+block1.1'
                row["ref"], row["layer"] = call["ref"], f"{row['layer']}+{name if last.isdigit() else last}"
                by_output[id(call["out"])] = row
            continue
        if len(module_runs) == count[name]:
            run = module_runs[k - 1]
        elif k == count[name]:
            run = [i for r in module_runs for i in r]  # calls and node groups differ: the last call only
        else:
            continue
        ops = ",".join(dict.fromkeys(model.graph.node[i].op_type for i in run))
        row = {"layer": label, "onnx_ops": ops, "tensor": None, "ref": call["ref"], "note": call["note"]}
        if call["ref"] is not None:
            row["tensor"] = _run_output(model, run, consumers, values, call["ref"].shape)
            if row["tensor"] is None:
                row["note"] = f"no tensor of shape {list(call['ref'].shape)} leaves its nodes: not compared"
            elif row["tensor"] in used:
                continue  # a child already made this tensor: the container adds nothing to look at
            used.add(row["tensor"])
        rows.append(row)
        by_output[id(call["out"])] = row
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
    below `min_sqnr_db`; fp32 exports usually stay above 100 dB, int8 models near 20-40 dB. A layer
    that cannot be compared (its output is no tensor, or no ONNX tensor of its shape) keeps a row with
    a `note` saying why.
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
        rows = _pairs_from_torch(reference.eval(), model, inputs, values)
    else:
        ref_model = _load(reference)
        rows = _pairs_from_onnx(ref_model, {**feeds, **_run_all(ref_model, feeds)})
    table = []
    for row in rows:
        entry = {"layer": row["layer"], "onnx_ops": row["onnx_ops"], "onnx_tensor": row["tensor"] or "",
                 "max_abs_diff": np.nan, "cosine": np.nan, "sqnr_db": np.nan, "diverged": False,
                 "note": row.get("note", "")}  # fmt: skip
        if row["tensor"] is not None and row["ref"] is not None:
            # In a QDQ model the value the next layer reads is the dequantized copy of the tensor.
            entry["onnx_tensor"] = next(n for n in (f"{row['tensor']}_DequantizeLinear_Output", row["tensor"])
                                        if n in values or n == row["tensor"])  # fmt: skip
            got = values.get(entry["onnx_tensor"])
            if got is None or got.size != row["ref"].size or not np.issubdtype(got.dtype, np.floating):
                continue
            metrics = compare(row["ref"], got)
            entry.update(metrics, diverged=metrics["sqnr_db"] < min_sqnr_db)
            if not np.any(row["ref"]):  # SQNR means nothing against all zeros: use the difference
                entry.update(diverged=metrics["max_abs_diff"] > 1e-5, note="reference is all zero")
        elif not entry["note"]:
            continue
        table.append(entry)
    if not any(not r["note"] or r["note"] == "reference is all zero" for r in table):
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
        ops = r.onnx_ops if len(r.onnx_ops) <= 18 else r.onnx_ops[:15] + "..."
        if np.isnan(r.max_abs_diff):
            lines.append(f"{r.layer[:26]:<26} {ops:<18} {'-':>9} {'-':>8} {'-':>8}  ({r.note})")
            continue
        diff = f"<{atol:.0e}" if r.max_abs_diff < atol and not exact else f"{r.max_abs_diff:.2g}"
        if r.sqnr_db >= table.attrs["min_sqnr_db"] and not exact:
            sqnr = f">{table.attrs['min_sqnr_db']:g}"
        else:
            sqnr = f"{r.sqnr_db:.0f}"
        mark = "  <-- first divergence" if r.layer == table.attrs["first_divergent"] else ""
        lines.append(f"{r.layer[:26]:<26} {ops:<18} {diff:>9} {r.cosine:8.4f} {sqnr:>8}{mark}")
    return "\n".join(lines)
