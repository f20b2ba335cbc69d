"""sensitivity: a deliberately fragile layer ranks first; int8 QDQ output stays close to fp32 in ORT."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snippets.sensitivity import compare, layer_sensitivity, quantize_qdq


def build_model(path):
    """x -> conv_a -> (+) -> conv_c, and x * [1000, 1, 1, 1] -> fragile -> (+).

    `fragile` reads an input whose channel 0 is 1000x larger than the rest, while its weights ignore that
    channel: an 8-bit per-tensor input scale wide enough for channel 0 rounds the useful channels to zero.
    """
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), f"w{len(inits)}")  # noqa: E731
    inits = []
    inits.append(w(4, 4, 3, 3))
    fragile_w = rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32)
    fragile_w[:, 0] *= 1e-3
    inits.append(numpy_helper.from_array(fragile_w, "w_fragile"))
    inits.append(w(4, 4, 3, 3))
    inits.append(numpy_helper.from_array(np.array([1000, 1, 1, 1], np.float32).reshape(1, 4, 1, 1), "gain"))
    nodes = [
        helper.make_node("Conv", ["x", inits[0].name], ["ya"], pads=[1] * 4, name="conv_a"),
        helper.make_node("Mul", ["x", "gain"], ["xs"], name="mul"),
        helper.make_node("Conv", ["xs", "w_fragile"], ["yf"], pads=[1] * 4, name="fragile"),
        helper.make_node("Add", ["ya", "yf"], ["s"], name="add"),
        helper.make_node("Conv", ["s", inits[2].name], ["y"], pads=[1] * 4, name="conv_c"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def model(tmp_path):
    return build_model(tmp_path / "m.onnx")


def calibration():
    return np.random.default_rng(1).normal(size=(8, 4, 8, 8)).astype(np.float32)


def test_fragile_layer_ranks_first(model):
    rows = layer_sensitivity(model, calibration())
    assert [r["layer"] for r in rows][0] == "fragile"
    assert {r["layer"] for r in rows} == {"conv_a", "fragile", "conv_c"}
    assert rows[0]["snr_db"] < 10 < rows[1]["snr_db"] and rows[0]["cosine"] < rows[1]["cosine"]


def test_quantized_model_runs_in_onnxruntime_close_to_fp32(model, tmp_path):
    x = calibration()
    out = quantize_qdq(model, tmp_path / "q.onnx", x, nodes_to_exclude=["fragile"])
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("Conv") == 3
    ref = ort.InferenceSession(str(model)).run(None, {"x": x})[0]
    got = ort.InferenceSession(str(out)).run(None, {"x": x})[0]
    assert compare(ref, got)["snr_db"] > 25


def test_compare_hand_values():
    r = compare(np.array([3.0, 4.0]), np.array([3.0, 4.0]) * 1.1)
    assert r["mse"] == pytest.approx((0.09 + 0.16) / 2)
    assert r["snr_db"] == pytest.approx(20.0)  # error is 1/10 of the signal in amplitude
    assert r["cosine"] == pytest.approx(1.0)


def test_bad_inputs_name_the_problem(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        layer_sensitivity(tmp_path / "missing.onnx", calibration())
    with pytest.raises(ValueError, match="float32 arrays of rank 4"):
        layer_sensitivity(model, calibration().astype(np.float64))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        quantize_qdq(tmp_path / "bad.onnx", tmp_path / "q.onnx", calibration())
    with pytest.raises(ValueError, match="weight_bits"):
        quantize_qdq(model, tmp_path / "q.onnx", calibration(), weight_bits=2)
