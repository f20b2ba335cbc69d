"""List what a .tflite file contains: operators, tensors, dtypes and quantisation parameters.

Taught in: lessons/31_pytorch_to_int8_tflite.ipynb. Needs: ai-edge-litert (its flatbuffer schema module).
Reads the flatbuffer directly, so it works on any model, including ones no interpreter can run.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_NUMPY_TYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
                "float32": np.float32, "uint8": np.uint8, "float16": np.float16}  # fmt: skip


@dataclass
class TensorInfo:
    name: str
    shape: tuple
    dtype: str
    scale: np.ndarray  # one value per tensor, or one per channel; empty when not quantised
    zero_point: np.ndarray
    quantized_dimension: int
    data: np.ndarray | None  # the constant's values (weights, biases); None for activations


@dataclass
class ModelInfo:
    ops: list  # operator names in execution order, e.g. ["CONV_2D", "MAX_POOL_2D", ...]
    op_inputs: list  # per op, the indices into `tensors` it reads (-1: optional input left out)
    op_outputs: list  # per op, the indices it writes
    tensors: list  # TensorInfo for every tensor of the main subgraph
    inputs: list  # TensorInfo of the model inputs
    outputs: list
    size_bytes: int


def _load_bytes(model) -> bytes:
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"no .tflite file at {path}")
        data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise ValueError(
            f"not a TFLite flatbuffer: expected identifier b'TFL3' at bytes 4..8, got {data[4:8]!r}"
        )
    return data


def inspect_tflite(model) -> ModelInfo:
    """Parse a .tflite (path or bytes) into op names, tensors and quantisation parameters."""
    data = _load_bytes(model)
    m = schema.ModelT.InitFromPackedBuf(data, 0)
    graph = m.subgraphs[0]

    def op_name(code):
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # small codes live in the old field
        return _OP_NAMES.get(builtin, f"CUSTOM:{code.customCode}")

    def tensor(t):
        q = t.quantization
        scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
        zero = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        dim = q.quantizedDimension if q is not None else 0
        shape, dtype = tuple(int(s) for s in t.shape), _TYPE_NAMES[t.type]
        raw = m.buffers[t.buffer].data if t.buffer < len(m.buffers) else None
        data = None
        if raw is not None and len(raw) and dtype in _NUMPY_TYPES:
            data = np.frombuffer(bytes(bytearray(raw)), _NUMPY_TYPES[dtype]).reshape(shape)
        return TensorInfo(name, shape, dtype, scale, zero, dim, data)

    tensors = [tensor(t) for t in graph.tensors]
    ops = [op_name(m.operatorCodes[op.opcodeIndex]) for op in graph.operators]
    op_inputs = [[int(i) for i in op.inputs] for op in graph.operators]
    op_outputs = [[int(i) for i in op.outputs] for op in graph.operators]
    return ModelInfo(
        ops,
        op_inputs,
        op_outputs,
        tensors,
        [tensors[i] for i in graph.inputs],
        [tensors[i] for i in graph.outputs],
        len(data),
    )


def op_counts(info: ModelInfo) -> dict:
    """{op name: how many times it appears}, sorted by name."""
    return {name: info.ops.count(name) for name in sorted(set(info.ops))}


def tensor_dtypes(info: ModelInfo) -> list:
    """Sorted list of the dtypes any tensor has (a full-int8 model shows only int8 and int32)."""
    return sorted({t.dtype for t in info.tensors})


def _self_check():
    assert (
        _OP_NAMES[schema.BuiltinOperator.CONV_2D] == "CONV_2D"
        and _TYPE_NAMES[schema.TensorType.INT8] == "int8"
    )
