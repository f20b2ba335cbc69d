"""Find the layer and the step where int8 accuracy is lost: PyTorch -> ONNX -> int8 TFLite -> TFLM -> MCU.

Taught in: lessons/35_where_int8_accuracy_is_lost.ipynb.
Needs: torch, numpy, pandas, ai-edge-litert; optional: onnx + onnxruntime (ONNX stage), tflite-micro (TFLM
stage), matplotlib (plot).
`report = stack_diff(net, X, "model_int8.tflite", onnx_model="model.onnx", firmware=dump_text)` runs one
input X (in the PyTorch net's layout) through every stage and keeps each layer's output:
  pytorch   forward hooks on every Conv/Linear module (the reference, float)
  onnx      ONNX Runtime, the paired tensors added as graph outputs (float)
  litert    the int8 .tflite in LiteRT with experimental_preserve_all_tensors (dequantised)
  tflm      the same file in TFLM (tflite-micro, kPreserveAllTensors) (dequantised)
  firmware  `LAYER <op> <tensor> <shape> <hex>` lines from a device or host run, or {tensor_index: int8}
Layers are paired by what the converters record: the module path in the TFLite tensor name
(`.../Sequential_1/Conv2d_0`) and the ONNX node's name scopes, the op kind, the weight and output shapes, and
the op position where names are ambiguous or missing; NHWC tensors are compared with NCHW ones transposed.
The returned DataFrame has one row per layer and stage (SQNR dB, cosine, max error in the layer's own int8
steps, change from the previous stage) and `report.attrs["first_fault"]` = (layer, stage, why) or None;
`report.attrs["unpaired"]` lists what could not be paired and why. `format_report`, `plot_sqnr` show it.
A fault is an error that int8 does not explain: each int8 layer is also run in float on that stage's own
int8 input, and the error it adds is compared with its own rounding noise (scale**2 / 12) and int8
weights, per layer and per channel, with clipping counted apart; the firmware must equal TFLM bit for bit.
"""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ai_edge_litert import schema_py_generated as schema

STAGES = ("onnx", "litert", "tflm", "firmware")  # the path, in order; PyTorch float is the reference
WEIGHT_OPS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "conv", "FULLY_CONNECTED": "linear",
              "TRANSPOSE_CONV": "convT"}  # fmt: skip
MODULE_KINDS = {torch.nn.Conv1d: "conv", torch.nn.Conv2d: "conv", torch.nn.Linear: "linear",
                torch.nn.ConvTranspose2d: "convT"}  # fmt: skip
WHY_UNPAIRED = {  # TFLite ops that no forward hook can see, and why
    "PAD": "padding the converter split out of the next convolution",
    "RESHAPE": "a reshape/flatten: a tensor method in PyTorch, no module",
    "TRANSPOSE": "a layout change the converter added (NCHW <-> NHWC)",
    "QUANTIZE": "a requantisation the converter added",
}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {1: lambda a: np.maximum(a, 0), 3: lambda a: np.clip(a, 0, 6),
                2: lambda a: np.clip(a, -1, 1), 4: np.tanh}  # fmt: skip # TFLite fused activations
WEIGHT_DB = 40.0  # SQNR of a layer whose only error is per-channel int8 weights (typical: 38-45 dB)
CLIPPED_PCT = 1.0  # calibration clips rare outliers on purpose; more than this is a narrow range
MIN_POSITIONS = 16  # per-channel SQNR needs enough values per channel to mean something
TFLM_ARENA = 16 * 1024 * 1024  # preserving every tensor needs room for all of them at once


# ---------------------------------------------------------------- the int8 model, read from its flatbuffer
def _tflite_bytes(model) -> bytes:
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"no .tflite file at {path}")
        data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite flatbuffer: expected b'TFL3' at bytes 4..8, got {data[4:8]!r}")
    return data


def read_tflite(model) -> dict:
    """Ops (name, inputs, outputs, fused activation) and tensors (name, shape, scale, zero point) of
    subgraph 0, straight from the flatbuffer."""
    data = _tflite_bytes(model)
    m = schema.ModelT.InitFromPackedBuf(data, 0)
    graph = m.subgraphs[0]
    tensors = []
    for t in graph.tensors:
        q = t.quantization
        scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float64)
        zero = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append({"name": name, "shape": tuple(int(s) for s in t.shape), "type": int(t.type),
                        "scale": scale, "zero_point": zero})  # fmt: skip
    ops = []
    for op in graph.operators:
        code = m.operatorCodes[op.opcodeIndex]
        name = _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        act = getattr(op.builtinOptions, "fusedActivationFunction", 0) if op.builtinOptions else 0
        inputs, outputs = [int(i) for i in op.inputs], [int(i) for i in op.outputs]
        ops.append({"op": name, "inputs": inputs, "outputs": outputs, "activation": int(act or 0)})
    return {"data": data, "ops": ops, "tensors": tensors, "inputs": [int(i) for i in graph.inputs],
            "outputs": [int(i) for i in graph.outputs]}  # fmt: skip


def dequantize(q: np.ndarray, tensor: dict) -> np.ndarray:
    """Real values of an int8 activation tensor, with its own scale and zero point."""
    if not tensor["scale"].size:
        return np.asarray(q, np.float64)
    return (np.asarray(q, np.float64) - tensor["zero_point"][0]) * tensor["scale"][0]


def tflite_input(model, X) -> np.ndarray:
    """X (PyTorch layout, float) as the int8 .tflite's input: NCHW -> NHWC if needed, then quantised."""
    g = model if isinstance(model, dict) else read_tflite(model)
    t = g["tensors"][g["inputs"][0]]
    X = np.asarray(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X, np.float32)
    if X.ndim == 4 and X.transpose(0, 2, 3, 1).shape == t["shape"]:  # NHWC first: also when C == H == W
        X = X.transpose(0, 2, 3, 1)
    if X.shape != t["shape"]:
        raise ValueError(f"the .tflite takes input {t['shape']} (NHWC); X has shape {X.shape} "
                         "(expected the PyTorch layout of one sample, e.g. (1, C, H, W))")  # fmt: skip
    if not t["scale"].size:
        return X
    q = np.round(X / t["scale"][0]) + t["zero_point"][0]
    return np.clip(q, -128, 127).astype(np.int8)


# ---------------------------------------------------------------- per-layer outputs of each stage
def torch_layers(net: torch.nn.Module, X) -> tuple[list[dict], np.ndarray]:
    """Every Conv/Linear call (in call order) with its output and the modules it ran inside, and the
    net's output. Pre-hooks keep a stack of running modules: what the converter calls the scope."""
    names = {m: n for n, m in net.named_modules()}
    stack, layers, handles = [], [], []

    def enter(module, args):
        stack.append(module)

    def leave(module, args, output):
        stack.pop()
        kind = next((k for cls, k in MODULE_KINDS.items() if isinstance(module, cls)), None)
        if kind and isinstance(output, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            scope = [(type(m).__name__, names[m].rpartition(".")[2]) for m in stack[1:]]
            layers.append({"layer": names[module], "kind": kind, "module": module,
                           "scope": scope + [(type(module).__name__, names[module].rpartition(".")[2])],
                           "in_shape": tuple(args[0].shape),
                           "ref": output.detach().double().cpu().numpy().copy()})  # fmt: skip

    for module in names:
        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        with torch.no_grad():
            out = net.eval()(torch.as_tensor(np.asarray(X, np.float32)))
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the net returns {type(out).__name__}; stack_diff needs one output tensor")
    return layers, out.detach().double().numpy()


def _activations(g: dict) -> list[int]:
    return g["inputs"] + [i for op in g["ops"] for i in op["outputs"]]


def litert_tensors(model, x_int8) -> dict[int, np.ndarray]:
    """Every tensor after one LiteRT run (reference kernels, no XNNPACK: preserved intermediates)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    g = model if isinstance(model, dict) else read_tflite(model)
    plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES  # XNNPACK would not keep intermediates
    interp = Interpreter(
        model_content=g["data"], experimental_preserve_all_tensors=True, experimental_op_resolver_type=plain
    )
    interp.allocate_tensors()
    interp.set_tensor(g["inputs"][0], x_int8)
    interp.invoke()
    return {i: interp.get_tensor(i) for i in _activations(g)}


def tflm_tensors(model, x_int8) -> dict[int, np.ndarray]:
    """Every op output after one TFLM run (the `tflite-micro` package: TFLM's own reference kernels)."""
    from tflite_micro import runtime

    g = model if isinstance(model, dict) else read_tflite(model)
    keep = runtime.InterpreterConfig.kPreserveAllTensors  # (the package spells the keyword "intrepreter")
    interp = runtime.Interpreter.from_bytes(g["data"], arena_size=TFLM_ARENA, intrepreter_config=keep)
    interp.set_input(x_int8, 0)
    interp.invoke()
    return {i: np.asarray(interp.GetTensor(i, 0)["tensor_data"]) for i in _activations(g)}


def parse_layer_dump(text: str) -> dict[int, np.ndarray]:
    """{tensor_index: int8 array} from the firmware's `LAYER <op> <tensor> <d0>x<d1>.. <hex>` lines."""
    found = {}
    for line in text.splitlines():
        if not line.startswith("LAYER "):
            continue
        parts = line.split()
        if len(parts) != 5:
            raise ValueError(f"bad LAYER line (expected LAYER <op> <tensor> <shape> <hex>): {line[:80]!r}")
        shape = tuple(int(d) for d in parts[3].split("x"))
        data = np.frombuffer(bytes.fromhex(parts[4]), np.int8)
        if data.size != int(np.prod(shape)):
            raise ValueError(f"LAYER line for tensor {parts[2]}: {data.size} bytes, shape {shape} needs "
                             f"{int(np.prod(shape))}")  # fmt: skip
        found[int(parts[2])] = data.reshape(shape)
    if not found:
        raise ValueError("no LAYER lines in the firmware output: was it built with the per-layer dump on?")
    return found


def _onnx_values(onnx_model, X, layers) -> tuple[dict, dict]:
    """{layer: array} for the layers whose module scope ONNX records (dynamo export), plus why not."""
    import onnx
    import onnxruntime as ort

    model = onnx_model
    if not isinstance(model, onnx.ModelProto):
        path = Path(onnx_model)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {path}")
        model = onnx.load(path)
    scopes = {}  # module name -> output tensor of the last node made inside it
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                for name in ast.literal_eval(prop.value)[1:-1]:  # ['', 'blocks.0', 'blocks.0.0', 'conv2d_3']
                    scopes[name] = node.output[0]
    wanted, why = {}, {}
    for layer in layers:
        if layer["layer"] in scopes:
            wanted[layer["layer"]] = scopes[layer["layer"]]
        else:
            why[layer["layer"]] = "no ONNX node records this module scope (export with dynamo=True)"
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    have = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(
        onnx.ValueInfoProto(name=t) for t in dict.fromkeys(wanted.values()) if t not in have
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.asarray(X, np.float32)}
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, feed), strict=True))
    found = {layer: values[t] for layer, t in wanted.items()}
    found["output"] = values[model.graph.output[0].name]
    return found, why


# ---------------------------------------------------------------- pairing PyTorch modules with TFLite ops
def _scope_matches(scope: list, tensor_name: str) -> bool:
    """Does a TFLite tensor name record this module path? litert-torch writes one `<class>_<attribute>`
    part per module that ran: `.../torch.nn.modules.container.Sequential_1/torch.nn.modules.conv.Conv2d_0`."""
    want = [f"{cls}_{attr}" for cls, attr in scope]
    for location in tensor_name.split(";"):
        parts = location.split("/")
        if len(parts) > len(want) and all(
            p == w or p.endswith("." + w) for p, w in zip(parts[-len(want) :], want, strict=True)
        ):
            return True
    return False


def _shapes_fit(layer: dict, op: dict, g: dict) -> bool:
    """Same kind of layer, same weight shape (OIHW vs OHWI / 1HWO), same output shape (NCHW vs NHWC)."""
    if WEIGHT_OPS.get(op["op"]) != layer["kind"]:
        return False
    w = tuple(layer["module"].weight.shape)
    tw = g["tensors"][op["inputs"][1]]["shape"]
    if layer["kind"] == "linear" and tw != w:
        return False
    if op["op"] == "CONV_2D" and tw != (w[0], *w[2:], w[1]):  # OIHW -> OHWI
        return False
    if op["op"] == "DEPTHWISE_CONV_2D" and (tw != (1, *w[2:], w[0]) or w[1] != 1):  # one input per group
        return False
    out = g["tensors"][op["outputs"][0]]["shape"]
    ref = layer["ref"].shape
    return out == ref or (len(ref) == 4 and out == (ref[0], ref[2], ref[3], ref[1]))


def _op_named(scope: list, g: dict, i: int) -> bool:
    op = g["ops"][i]
    return any(
        _scope_matches(scope, g["tensors"][t]["name"]) for t in op["outputs"] + op["inputs"][1:] if t >= 0
    )


def pair_layers(layers: list[dict], g: dict) -> tuple[list[dict], list[dict]]:
    """Each PyTorch layer -> the TFLite op computing it, and a table of what found no partner and why.

    A layer whose module path appears in TFLite tensor names (an op's output, weights or bias) takes the
    first unused op of those (names can repeat: ModuleList indices are not recorded, so position decides
    among `Sequential_0/Conv2d_0`s);
    one whose path appears nowhere takes the next unused op after the last pair with the right kind and
    shapes (position + shape). Either way kind, weight shape and output shape must fit."""
    used, pairs, unpaired, last = set(), [], [], -1
    for layer in layers:
        fit = [i for i, op in enumerate(g["ops"]) if i not in used and _shapes_fit(layer, op, g)]
        named = [i for i in fit if _op_named(layer["scope"], g, i)]
        anywhere = any(_scope_matches(layer["scope"], t["name"]) for t in g["tensors"])
        how, choice = ("name", named) if anywhere else ("position+shape", [i for i in fit if i > last])
        if not choice:
            shapes = f"weight {tuple(layer['module'].weight.shape)} and output {layer['ref'].shape}"
            if anywhere:
                reason = f"its name is in the model, but no unused {layer['kind']} op there has {shapes}"
            else:
                reason = f"not named in the model, and no {layer['kind']} op after op {last} has {shapes}"
            unpaired.append({"side": "pytorch", "what": layer["layer"], "why": reason})
            continue
        used.add(choice[0])
        last = choice[0]
        pairs.append({**layer, "op_index": choice[0], "op": g["ops"][choice[0]]["op"], "paired_by": how,
                      "tensor": g["ops"][choice[0]]["outputs"][0]})  # fmt: skip
    out_op = next((i for i, op in enumerate(g["ops"]) if g["outputs"][0] in op["outputs"]), None)
    for i, op in enumerate(g["ops"]):
        if i in used or i == out_op:
            continue
        why = WHY_UNPAIRED.get(op["op"], "a functional call in PyTorch (no module, so no forward hook)")
        if op["op"] in WEIGHT_OPS:
            why = "no Conv/Linear module with this kind, weight shape and output shape in the PyTorch net"
        unpaired.append({"side": "tflite", "what": f"op {i} {op['op']}", "why": why})
    return pairs, unpaired


# ---------------------------------------------------------------- numbers
def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """SQNR (dB), cosine similarity and max abs error of `candidate` against `reference`."""
    a = np.asarray(reference, np.float64).ravel()
    b = np.asarray(candidate, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare tensors of {a.size} and {b.size} elements")
    noise, signal = np.sum((a - b) ** 2), np.sum(a**2)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return {
        "sqnr_db": float(10 * np.log10(signal / noise)) if noise > 0 else float("inf"),
        "cosine": float(a @ b / norms) if norms > 0 else float(np.array_equal(a, b)),
        "max_abs": float(np.max(np.abs(a - b))) if a.size else 0.0,
    }


def _nhwc_like(ref: np.ndarray, shape: tuple) -> np.ndarray:
    """A PyTorch (NCHW) tensor laid out like the TFLite tensor: NHWC, also when C == H == W."""
    if ref.ndim == 4 and ref.transpose(0, 2, 3, 1).shape == shape:
        return ref.transpose(0, 2, 3, 1)
    return ref.reshape(shape)


def _ratio_db(signal: float, noise: float) -> float:
    return float(10 * np.log10(signal / noise)) if noise > 0 else float("inf")


def _activation(code: int):
    return _ACTIVATIONS.get(code, lambda a: a)


def _local_reference(r: dict, g: dict, values: dict, producer: dict) -> np.ndarray | None:
    """The float layer run on this stage's own (dequantised) input: what the op alone should give.
    Comparing with it isolates the error a layer adds from the error it inherits."""
    op = g["ops"][r["op_index"]]
    t_in = op["inputs"][0]
    if "module" in r:
        want = r["in_shape"]
        if len(want) == 4 and g["tensors"][t_in]["shape"] not in (want, (want[0], *want[2:], want[1])):
            pad = producer.get(t_in)  # the converter split the module's padding out into a PAD op
            if pad is not None and g["ops"][pad]["op"] == "PAD":
                t_in = g["ops"][pad]["inputs"][0]
        if t_in not in values:
            return None
        x = dequantize(values[t_in], g["tensors"][t_in])
        x = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x  # TFLite's 4-D activations are NHWC
        if x.shape != want and x.size == int(np.prod(want)) and len(want) == 2:
            x = x.reshape(want)  # FULLY_CONNECTED flattens a (1, 1, 1, C) pool output itself
        if x.shape != want:
            return None
        with torch.no_grad():
            y = r["module"](torch.from_numpy(x.astype(np.float32))).double().numpy()
    elif op["op"] == "SOFTMAX" and t_in in values:
        x = dequantize(values[t_in], g["tensors"][t_in])
        y = np.exp(x - x.max(axis=-1, keepdims=True))
        y /= y.sum(axis=-1, keepdims=True)
    else:
        return None
    return _activation(op["activation"])(_nhwc_like(y, g["tensors"][r["tensor"]]["shape"]))


def stack_diff(net: torch.nn.Module, X, tflite, *, onnx_model=None, firmware=None, tflm: bool = True,
               float_min_db: float = 60.0, quant_margin_db: float = 10.0, channel_margin_db: float = 15.0,
               firmware_exact: bool = True) -> pd.DataFrame:  # fmt: skip
    """One row per (layer, stage): error against PyTorch float, and the first fault beyond quantisation.

    X: one sample in the net's layout, e.g. (1, C, H, W) float. `onnx_model`: path or ModelProto exported
    from `net` (dynamo=True). `firmware`: LAYER text or {tensor_index: int8 array}.
    Columns: sqnr_db, cosine, max_err_lsb: against PyTorch float (max error in the layer's own int8 steps).
    Int8 stages also: local_db, the SQNR against the float layer run on this stage's own int8 input (the
    error this layer adds, not what it inherits), values inside the int8 range only; expected_db, what
    int8 explains there (rounding to the layer's grid, scale**2/12, plus int8 weights, WEIGHT_DB);
    clipped_pct and clip_db, the values beyond the int8 range and the SQNR of their error alone;
    channel_gap_db, worst_channel, the channel furthest below its own expectation; step_db and step_lsb,
    the change from the previous int8 stage (local SQNR, largest difference in int8 steps).
    The rule (`first_fault`: the first layer, then the first stage there, that breaks it):
      onnx      SQNR below `float_min_db` (float32 stages agree to 100+ dB);
      int8      (litert, tflm, firmware) local SQNR more than `quant_margin_db` below expected_db; or one
                channel's local SQNR more than `channel_margin_db` below what int8 explains for it (a fault
                in one channel hides in the layer's mean); or more than CLIPPED_PCT % of values clipped
                with the clipping alone more than `quant_margin_db` below expected_db (calibration);
      firmware  also, when `firmware_exact`, any int8 step different from TFLM on the same int8 input:
                our kernels are bit-exact with TFLM, so any difference is a bug however small.
    LiteRT and TFLM may differ by design (TFLM's FULLY_CONNECTED rounds twice, the softmax exp differs):
    both are judged against int8's own error, not against each other.
    """
    g = read_tflite(tflite)
    x_q = tflite_input(g, X)  # checks X against the model's input before anything runs
    layers, out = torch_layers(net, X)
    if not layers:
        raise ValueError("the net has no Conv/Linear modules: nothing for forward hooks to pair")
    pairs, unpaired = pair_layers(layers, g)
    if not pairs:
        ops = [o["op"] for o in g["ops"]]
        raise ValueError(
            f"no layer of the net pairs with the .tflite ops {ops}: is it a conversion of this net?"
        )
    in_t, out_t = g["inputs"][0], g["outputs"][0]
    producer = {t: i for i, op in enumerate(g["ops"]) for t in op["outputs"]}
    if out.size != int(np.prod(g["tensors"][out_t]["shape"])):
        raise ValueError(
            f"the net's output {out.shape} does not fit the .tflite output {g['tensors'][out_t]['shape']}"
        )
    rows_in = [
        {"layer": "input", "op_index": -1, "op": "(input)", "tensor": in_t, "ref": np.asarray(X, np.float64)}
    ]
    rows_in += pairs
    if all(p["tensor"] != out_t for p in pairs):  # e.g. a SOFTMAX after the last Linear
        rows_in.append({"layer": "output", "op_index": producer[out_t], "op": g["ops"][producer[out_t]]["op"],
                        "tensor": out_t, "ref": out})  # fmt: skip
    rows_in.sort(key=lambda r: r["op_index"])
    stages = {}
    if onnx_model is not None:
        values, why = _onnx_values(onnx_model, X, pairs)
        stages["onnx"] = ("float", values)
        unpaired += [{"side": "onnx", "what": k, "why": v} for k, v in why.items()]
    stages["litert"] = ("int8", litert_tensors(g, x_q))
    if tflm:
        stages["tflm"] = ("int8", tflm_tensors(g, x_q))
    if firmware is not None:
        dump = parse_layer_dump(firmware) if isinstance(firmware, str) else dict(firmware)
        stages["firmware"] = ("int8", {**dump, in_t: x_q})  # the firmware does not print its input
        missing = [r for r in rows_in if r["op_index"] >= 0 and r["tensor"] not in dump]
        for r in missing:
            unpaired.append(
                {"side": "firmware", "what": r["layer"], "why": f"no LAYER line for tensor {r['tensor']}"}
            )
    table = []
    for r in rows_in:
        t = g["tensors"][r["tensor"]]
        scale = float(t["scale"][0]) if t["scale"].size else float("nan")
        act = _activation(g["ops"][r["op_index"]]["activation"] if r["op_index"] >= 0 else 0)
        ref = act(_nhwc_like(r["ref"], t["shape"]))  # the int8 op's fused ReLU, applied to the reference
        earlier = None
        for stage, (kind, values) in stages.items():
            key = r["layer"] if kind == "float" else r["tensor"]
            if key not in values or (r["layer"] == "input" and kind == "float"):
                continue
            got = values[key]
            got = (
                dequantize(got, t)
                if kind == "int8"
                else act(_nhwc_like(np.asarray(got, np.float64), t["shape"]))
            )
            if got.size != ref.size:
                raise ValueError(
                    f"{stage}: tensor {key} has {got.size} values, layer {r['layer']} has {ref.size}"
                )
            got = got.reshape(ref.shape)
            m = compare(ref, got)
            row = {"layer": r["layer"], "op": r["op"], "op_index": r["op_index"], "stage": stage,
                   "sqnr_db": m["sqnr_db"], "cosine": m["cosine"], "max_err_lsb": m["max_abs"] / scale,
                   "local_db": np.nan, "expected_db": np.nan, "clipped_pct": np.nan, "clip_db": np.nan,
                   "channel_gap_db": np.nan, "worst_channel": -1,
                   "step_db": np.nan, "step_lsb": np.nan,
                   "flag": ""}  # fmt: skip
            local = None
            if kind == "int8":  # the input's own quantisation is judged too: a narrow calibration clips it
                local = ref if r["op_index"] < 0 else _local_reference(r, g, values, producer)
            if local is not None:
                row.update(_local_scores(local, got, scale, float(t["zero_point"][0])))
            if earlier is not None:
                row["step_db"] = row["local_db"] - earlier["local_db"]
                row["step_lsb"] = float(np.max(np.abs(got - earlier["got"]))) / scale
                t_in = g["ops"][r["op_index"]]["inputs"][0] if r["op_index"] >= 0 else r["tensor"]
                row["same_input"] = t_in in values and np.array_equal(
                    values[t_in], earlier["values"].get(t_in)
                )
            row["flag"] = _judge(
                row, stage, earlier, float_min_db, quant_margin_db, channel_margin_db, firmware_exact
            )
            row.pop("same_input", None)
            if kind == "int8":
                earlier = {**row, "got": got, "values": values}
            table.append(row)
    report = pd.DataFrame(table)
    flagged = report[report["flag"] != ""]
    first = flagged.iloc[0] if len(flagged) else None
    report.attrs["first_fault"] = None if first is None else (first["layer"], first["stage"], first["flag"])
    report.attrs["unpaired"] = pd.DataFrame(unpaired, columns=["side", "what", "why"])
    report.attrs["paired_by"] = {
        p["layer"]: f"{p['paired_by']} -> op {p['op_index']} {p['op']}" for p in pairs
    }
    return report


def _local_scores(local: np.ndarray, got: np.ndarray, scale: float, zero_point: float) -> dict:
    """The error a layer adds (got vs its float twin on the same int8 input), split in two: values beyond
    the int8 range are clipped by the calibration's choice of range and counted apart; the rest is what
    rounding and int8 weights must explain."""
    low, high = (-128.5 - zero_point) * scale, (127.5 - zero_point) * scale
    clipped = (local < low) | (local > high)
    signal = np.sum(local**2)
    gap, worst = _worst_channel(local, np.where(clipped, local, got), scale)
    return {
        "local_db": _ratio_db(signal, np.sum(np.where(clipped, 0, got - local) ** 2)),
        "expected_db": _explained_db(np.mean(local**2), scale),
        "clipped_pct": 100 * float(np.mean(clipped)),
        "clip_db": _ratio_db(signal, np.sum(np.where(clipped, got - local, 0) ** 2)),
        "channel_gap_db": gap,
        "worst_channel": worst,
    }


def _explained_db(signal_power, scale: float) -> np.ndarray:
    """SQNR that int8 explains for a layer alone: rounding to its own grid (noise scale**2 / 12) plus
    per-channel int8 weights (WEIGHT_DB). Not 6.02 * 8 + 1.76 dB: that assumes a full-range sine."""
    own = np.asarray(signal_power, np.float64) / (scale**2 / 12)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1 / (1 / own + 10 ** (-WEIGHT_DB / 10)))


def _worst_channel(local: np.ndarray, got: np.ndarray, scale: float) -> tuple[float, int]:
    """For a feature map (1, H, W, C) with H*W >= MIN_POSITIONS: the channel whose local SQNR falls
    furthest below what int8 explains for that channel, and by how much (dB). A fault in one channel
    (a weight, a per-channel scale, a bias) hides in the layer's average, not here."""
    if local.ndim != 4 or local.shape[1] * local.shape[2] < MIN_POSITIONS:
        return np.nan, -1
    signal = np.mean(local**2, axis=(0, 1, 2))
    noise = np.mean((local - got) ** 2, axis=(0, 1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = 10 * np.log10(signal / np.maximum(noise, 1e-30)) - _explained_db(signal, scale)
    gap = np.where(signal > 0, gap, np.inf)
    worst = int(np.argmin(gap))
    return float(gap[worst]), worst


def _judge(row, stage, earlier, float_min_db, quant_margin_db, channel_margin_db, firmware_exact) -> str:
    """Why this (layer, stage) is beyond what quantisation explains, or ''."""
    if stage == "onnx":
        if row["sqnr_db"] < float_min_db:
            return f"SQNR {row['sqnr_db']:.1f} dB: float32 stages agree to more than {float_min_db:g} dB"
        return ""
    if (
        stage == "firmware"
        and firmware_exact
        and earlier is not None
        and row["step_lsb"] > 0
        and row["same_input"]
    ):
        return (f"{row['step_lsb']:.0f} int8 steps from {earlier['stage']} on the same int8 input: "
                "our kernels must be bit-exact with TFLM")  # fmt: skip
    if row["local_db"] < row["expected_db"] - quant_margin_db:
        return (f"local SQNR {row['local_db']:.1f} dB is {row['expected_db'] - row['local_db']:.0f} dB below "
                f"the {row['expected_db']:.1f} dB int8 explains")  # fmt: skip
    if row["channel_gap_db"] < -channel_margin_db:
        return (f"channel {row['worst_channel']}: local SQNR {-row['channel_gap_db']:.0f} dB below what "
                "int8 explains for it")  # fmt: skip
    if row["clipped_pct"] > CLIPPED_PCT and row["clip_db"] < row["expected_db"] - quant_margin_db:
        return (f"{row['clipped_pct']:.0f}% of values clipped (SQNR of the clipping alone "
                f"{row['clip_db']:.1f} dB): the calibration range is too narrow")  # fmt: skip
    return ""


# ---------------------------------------------------------------- showing it
def format_report(report: pd.DataFrame) -> str:
    """The report as text: one line per layer, SQNR (dB) per stage, the largest error in int8 steps.
    SQNR prints in whole dB, and above 100 dB as '>100' (float32 noise, which differs between CPUs)."""
    stages = [s for s in STAGES if s in set(report["stage"])]
    head = "".join(f" {s:>8}" for s in stages)
    lines = [f"{'':<35}{'SQNR (dB) vs PyTorch float':^{len(head)}}  max error",
             f"{'layer':<16} {'op':<18}{head}  (int8 steps)"]  # fmt: skip

    def cell(v):
        return f" {'>100' if v > 100 else f'{v:.0f}':>8}"

    for layer, rows in report.groupby("layer", sort=False):
        by = rows.set_index("stage")
        cells = "".join(cell(by.loc[s, "sqnr_db"]) if s in by.index else f" {'-':>8}" for s in stages)
        lsb = "/".join(f"{by.loc[s, 'max_err_lsb']:.1f}" for s in stages if s in by.index and s != "onnx")
        mark = ""
        if report.attrs.get("first_fault") and report.attrs["first_fault"][0] == layer:
            mark = f"  <-- {report.attrs['first_fault'][1]}"
        lines.append(f"{layer[:16]:<16} {rows['op'].iloc[0][:18]:<18}{cells}  {lsb}{mark}")
    fault = report.attrs.get("first_fault")
    lines.append("first fault: none beyond what int8 explains" if fault is None else
                 f"first fault: layer {fault[0]}, stage {fault[1]}: {fault[2]}")  # fmt: skip
    return "\n".join(lines)


def plot_sqnr(report: pd.DataFrame, ax=None):
    """SQNR per layer, one line per stage; the first fault circled. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2)) if ax is None else (ax.figure, ax)
    order = list(dict.fromkeys(report["layer"]))
    styles = {
        "onnx": ("o", "-", 7),
        "litert": ("o", "-", 9),
        "tflm": ("s", "--", 6),
        "firmware": ("x", ":", 6),
    }
    for stage in [s for s in STAGES if s in set(report["stage"])]:
        rows = report[report["stage"] == stage]
        y = np.minimum(rows["sqnr_db"].to_numpy(), 150.0)  # identical tensors have infinite SQNR
        marker, line, size = styles[stage]  # stages that agree overlap: keep each one visible
        ax.plot([order.index(n) for n in rows["layer"]], y, marker=marker, ls=line, ms=size, label=stage)
    fault = report.attrs.get("first_fault")
    if fault:
        row = report[(report["layer"] == fault[0]) & (report["stage"] == fault[1])].iloc[0]
        ax.plot(order.index(fault[0]), min(row["sqnr_db"], 150.0), "o", ms=14, mfc="none", mec="red",
                label=f"first fault ({fault[1]})")  # fmt: skip
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
    ax.set_ylabel("SQNR vs PyTorch (dB)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _self_check():
    text = "LAYER 0 11 1x2 7f80\nclass 3\n"
    assert parse_layer_dump(text)[11].tolist() == [[127, -128]]
    assert _scope_matches(
        [("Sequential", "1"), ("Conv2d", "0")], "W/a.Net;;W/a.Net/x.Sequential_1/x.Conv2d_0;4"
    )
