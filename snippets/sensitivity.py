"""Per-layer int8 sensitivity of an ONNX model: quantise one layer at a time, compare its output with fp32.

Taught in: lessons/22_quantisation_sensitivity.ipynb. Needs: onnx, onnxruntime, numpy.
`quantize_qdq(model, out, calibration)` is ONNX Runtime static QDQ quantisation (int8, or int4 weights);
`layer_sensitivity(model, calibration)` ranks the layers (MSE, SNR in dB, cosine similarity of each layer's
output, float vs quantised with only that layer quantised, on one calibration batch). Keep the top-k in
float with `quantize_qdq(..., nodes_to_exclude=[...])`.
"""

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static


class _Batches(CalibrationDataReader):
    def __init__(self, input_name, batches):
        self._iter = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._iter, None)


def _load(model_path) -> onnx.ModelProto:
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path} (expected a .onnx file)")
    try:
        return onnx.load(path)
    except Exception as err:
        raise ValueError(f"{path} is not a readable ONNX model: {err}") from err


def _check_calibration(model: onnx.ModelProto, calibration) -> list[np.ndarray]:
    batches = calibration if isinstance(calibration, list | tuple) else [calibration]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    rank = len(dims)
    for b in batches:
        if not isinstance(b, np.ndarray) or b.dtype != np.float32 or b.ndim != rank:
            raise ValueError(f"calibration must be float32 arrays of rank {rank} (the model input "
                             f"{model.graph.input[0].name!r}), got {type(b).__name__} "
                             f"{getattr(b, 'dtype', '')} {getattr(b, 'shape', '')}")  # fmt: skip
    return list(batches)


def quantize_qdq(model_path, out_path, calibration, weight_bits=8, per_channel=True, op_types=("Conv",),
                 nodes_to_quantize=None, nodes_to_exclude=None) -> Path:  # fmt: skip
    """ONNX Runtime static QDQ quantisation: uint8 activations, int8 (or int4) weights, MinMax ranges.

    calibration: one float32 batch or a list of batches for the model's (single) input.
    """
    if weight_bits not in (8, 4):
        raise ValueError(f"weight_bits must be 8 or 4, got {weight_bits!r}")
    model = _load(model_path)
    batches = _check_calibration(model, calibration)
    quantize_static(
        str(model_path), str(out_path), _Batches(model.graph.input[0].name, batches),
        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8 if weight_bits == 8 else QuantType.QInt4,
        per_channel=per_channel, op_types_to_quantize=list(op_types),
        nodes_to_quantize=nodes_to_quantize, nodes_to_exclude=nodes_to_exclude,
    )  # fmt: skip
    return Path(out_path)


def _with_outputs(model: onnx.ModelProto, names) -> onnx.ModelProto:
    """A copy of the model that also returns the named intermediate tensors."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in present)
    return model


def _run(model: onnx.ModelProto, feeds, names):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(list(names), feeds), strict=True))


def compare(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """MSE, signal-to-noise ratio in dB and cosine similarity of two tensors (reference first)."""
    ref, oth = reference.astype(np.float64).ravel(), other.astype(np.float64).ravel()
    noise = np.mean((ref - oth) ** 2)
    signal = np.mean(ref**2)
    cosine = ref @ oth / max(np.linalg.norm(ref) * np.linalg.norm(oth), 1e-30)
    snr = 10 * np.log10(signal / noise) if noise > 0 else float("inf")
    return {"mse": float(noise), "snr_db": float(snr), "cosine": float(cosine)}


def layer_sensitivity(
    model_path, calibration, weight_bits=8, per_channel=True, op_types=("Conv",)
) -> list[dict]:
    """One row per layer of the given op types, most sensitive (lowest SNR) first.

    Each layer is quantised alone (inputs, weights and output through int8) while the rest stays fp32,
    so the error measured at its output is its own, not the sum of every layer before it.
    Cost: one quantisation and one run of the calibration batch per layer (seconds for a small model).
    """
    model = _load(model_path)
    batch = _check_calibration(model, calibration)[0]
    nodes = [n for n in model.graph.node if n.op_type in op_types]
    if not nodes:
        raise ValueError(f"{model_path} has no node of types {op_types}")
    names = [n.output[0] for n in nodes]
    feeds = {model.graph.input[0].name: batch}
    reference = _run(_with_outputs(model, names), feeds, names)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exposed = Path(tmp) / "exposed.onnx"
        onnx.save(_with_outputs(model, names), exposed)
        for node, name in zip(nodes, names, strict=True):
            quantized = quantize_qdq(exposed, Path(tmp) / "q.onnx", batch, weight_bits, per_channel, op_types,
                                     nodes_to_quantize=[node.name])  # fmt: skip
            out = _run(onnx.load(quantized), feeds, [name])[name]
            weight = node.input[1] if len(node.input) > 1 else ""  # initializer name, e.g. "head.0.weight"
            rows.append(
                {"layer": node.name, "weight": weight, "output": name, **compare(reference[name], out)}
            )
    return sorted(rows, key=lambda r: r["snr_db"])
