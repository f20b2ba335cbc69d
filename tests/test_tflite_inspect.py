"""tflite_inspect against the LiteRT interpreter's own view of the same model."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from snippets.tflite_inspect import inspect_tflite, op_counts, tensor_dtypes
from tests.kws_build import kws_dir


@pytest.mark.parametrize("kind", ["cnn", "dscnn"])
def test_matches_litert_interpreter(kind):
    path = kws_dir() / f"kws_{kind}_int8.tflite"
    info = inspect_tflite(path)
    ref = Interpreter(
        str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    assert info.ops == [op["op_name"] for op in ref._get_ops_details()]
    for detail in ref.get_tensor_details():
        ours = info.tensors[detail["index"]]
        assert ours.shape == tuple(detail["shape"]) and ours.dtype == detail["dtype"].__name__
        np.testing.assert_array_equal(ours.scale, detail["quantization_parameters"]["scales"])
        np.testing.assert_array_equal(ours.zero_point, detail["quantization_parameters"]["zero_points"])
    assert info.inputs[0].shape == tuple(ref.get_input_details()[0]["shape"])
    assert tensor_dtypes(info) == ["int32", "int8"] and sum(op_counts(info).values()) == len(info.ops)


def test_constant_data_matches_interpreter():
    path = kws_dir() / "kws_dscnn_int8.tflite"
    info = inspect_tflite(path)
    ref = Interpreter(
        str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    ref.allocate_tensors()
    weights = info.op_inputs[0][1]
    np.testing.assert_array_equal(info.tensors[weights].data, ref.get_tensor(weights))


def test_rejects_what_is_not_tflite(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .tflite file"):
        inspect_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="TFL3"):
        inspect_tflite(b"\x08\x00\x00\x00ONNX" + bytes(16))
