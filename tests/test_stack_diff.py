"""stack_diff names the right layer AND stage of one injected fault per stage; clean models raise no alarm.

Faults (each one built here, outside the code under test, into the book's keyword CNN):
  onnx      a wrong constant in the export: fc2's bias initializer off by one
  litert    a corrupted int8 weight: conv1's largest weight of channel 3 with its sign flipped
  litert    a wrong per-channel scale: conv2's weight scale of output channel 5 doubled
  litert    a calibration mistake: fc1's output scale a quarter of the calibrated one (clipped too tight)
  firmware  FAULT_CONV_BIAS compiled into the host build (firmware/tools/layer_dump.py): every CONV_2D
Clean runs: kws_cnn (all five stages), kws_dscnn and the four MLPerf-shaped models (LiteRT, TFLM and the
firmware; one input each, no ONNX stage: exporting the MLPerf nets would cost ~40 s more here).
"""

import sys
import warnings

import flatbuffers
import numpy as np
import onnx
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema

from snippets.stack_diff import format_report, parse_layer_dump, plot_sqnr, stack_diff, tflite_input
from tests.conftest import ROOT, need_tool
from tests.kws_build import kws_dir

sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import build_kws  # noqa: E402
import build_mlperf  # noqa: E402

MLPERF = ("kws_dscnn", "vww_mobilenet", "ic_resnet8", "ad_autoencoder")
named = {}  # fault -> (layer, stage) the tool named, printed at the end


@pytest.fixture(scope="module")
def cnn():
    folder = kws_dir()
    torch.manual_seed(0)
    net = build_kws.inference_net("cnn")
    X = np.load(folder / "test_set.npz")["x"][:1].transpose(0, 3, 1, 2)  # NHWC features -> NCHW
    return net, X, (folder / "kws_cnn_int8.tflite").read_bytes()


@pytest.fixture(scope="module")
def cnn_onnx(cnn):
    net, X, _ = cnn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(net, (torch.from_numpy(X),), dynamo=True, verbose=False).model_proto


def edit_tflite(data: bytes, edit) -> bytes:
    """Unpack the flatbuffer (ai-edge-litert's schema object API), `edit(model, subgraph)`, pack it again."""
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    edit(model, model.subgraphs[0])
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_index(model, graph, layer: str) -> int:
    """The op whose weights litert-torch named after module `layer` (e.g. 'Conv2d_conv2')."""
    for i, op in enumerate(graph.operators):
        if any(f"_{layer};" in graph.tensors[t].name.decode() for t in op.inputs[1:]):
            return i
    raise AssertionError(f"no op with weights named after {layer}")


def flip_weight(model, graph):
    op = graph.operators[op_index(model, graph, "conv1")]
    buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
    w = np.frombuffer(bytes(bytearray(buffer.data)), np.int8).reshape(3, 3, 32).copy()  # 1 x 3 x 3 x 32
    k = np.unravel_index(np.argmax(np.abs(w[..., 3])), (3, 3))
    w[k[0], k[1], 3] = -w[k[0], k[1], 3]  # a sign bit gone wrong in flash
    buffer.data = np.frombuffer(w.tobytes(), np.uint8)


def double_channel_scale(model, graph):
    q = graph.tensors[graph.operators[op_index(model, graph, "conv2")].inputs[1]].quantization
    scale = np.array(q.scale)
    scale[5] *= 2
    q.scale = scale


def clip_activation(model, graph):
    q = graph.tensors[graph.operators[op_index(model, graph, "fc1")].outputs[0]].quantization
    q.scale = np.array(q.scale) / 4  # as if calibrated on inputs a quarter of the real size


@pytest.mark.parametrize(
    "fault, edit, where",
    [("int8 weight", flip_weight, ("conv1", "litert")),
     ("per-channel scale", double_channel_scale, ("conv2", "litert")),
     ("calibration clip", clip_activation, ("fc1", "litert"))],
)  # fmt: skip
def test_tflite_faults_found(cnn, fault, edit, where):
    net, X, data = cnn
    report = stack_diff(net, X, edit_tflite(data, edit))
    first = report.attrs["first_fault"]
    named[fault] = first[:2]
    assert first[:2] == where, format_report(report)
    tflm = report[(report.layer == where[0]) & (report.stage == "tflm")].iloc[0]
    assert tflm.step_lsb <= 1  # TFLM runs the same broken file: the same error, nothing new


def test_onnx_constant_found(cnn, cnn_onnx):
    net, X, data = cnn
    model = onnx.ModelProto()
    model.CopyFrom(cnn_onnx)
    scopes = {
        n.output[0]: p.value for n in model.graph.node for p in n.metadata_props if p.key.endswith("scopes")
    }
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm" and "'fc2'" in scopes[n.output[0]])
    bias = next(t for t in model.graph.initializer if t.name == gemm.input[2])
    values = onnx.numpy_helper.to_array(bias) + 1.0  # a constant folded wrongly
    bias.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), bias.name))
    report = stack_diff(net, X, data, onnx_model=model)
    named["onnx constant"] = report.attrs["first_fault"][:2]
    assert report.attrs["first_fault"][:2] == ("fc2", "onnx"), format_report(report)


def firmware_dump(X, fault=None, path=None):
    """The host build's LAYER lines (the book's kws_cnn unless `path`; built once, cached by make)."""
    need_tool("gcc")
    import layer_dump

    path = path or kws_dir() / "kws_cnn_int8.tflite"
    return layer_dump.dump_text(path, tflite_input(path, X), fault=fault)


def test_firmware_fault_found(cnn):
    net, X, data = cnn
    report = stack_diff(net, X, data, firmware=firmware_dump(X, "FAULT_CONV_BIAS"))
    named["firmware kernel"] = report.attrs["first_fault"][:2]
    assert report.attrs["first_fault"][:2] == ("conv2", "firmware"), format_report(
        report
    )  # the first CONV_2D


def test_clean_kws_cnn_all_stages(cnn, cnn_onnx):
    net, X, data = cnn
    report = stack_diff(net, X, data, onnx_model=cnn_onnx, firmware=firmware_dump(X))
    print(format_report(report))
    assert report.attrs["first_fault"] is None, format_report(report)
    assert set(report.stage) == {"onnx", "litert", "tflm", "firmware"}
    assert list(report.attrs["paired_by"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    unpaired = report.attrs["unpaired"]
    assert sorted(unpaired.what) == ["op 1 MAX_POOL_2D", "op 3 MAX_POOL_2D", "op 4 RESHAPE"]
    fw = report[report.stage == "firmware"]
    assert (fw.step_lsb == 0).all()  # bit-exact with TFLM, layer by layer
    onnx_rows = report[report.stage == "onnx"]
    assert onnx_rows.sqnr_db.min() > 100  # float32 vs float32
    assert plot_sqnr(report).axes[0].get_ylabel().startswith("SQNR")


@pytest.mark.parametrize("name", ["kws_dscnn", *(f"mlperf_{n}" for n in MLPERF)])
def test_clean_models_no_false_alarm(name):
    if name.startswith("mlperf_"):
        short = name.removeprefix("mlperf_")
        path = ROOT / "build" / "mlperf" / f"{short}_int8.tflite"
        if not path.exists():
            pytest.skip(f"{path.name} missing: run `make mlperf-models`")
        net = build_mlperf.seeded_net(short)
        X = np.load(ROOT / "build" / "mlperf" / f"{short}_inputs.npy")[:1]
    else:
        folder = kws_dir()
        net, path = build_kws.inference_net("dscnn"), folder / "kws_dscnn_int8.tflite"
        X = np.load(folder / "test_set.npz")["x"][:1]
    X = X.transpose(0, 3, 1, 2) if X.ndim == 4 else X
    report = stack_diff(net, X, path, firmware=firmware_dump(X, path=path))
    modules = [n for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert list(report.attrs["paired_by"]) == modules  # every Conv/Linear paired, none by hand
    assert not (report.attrs["unpaired"].side == "pytorch").any()
    assert (report[report.stage == "firmware"].step_lsb.dropna() == 0).all()  # bit-exact with TFLM
    named[f"clean {name}"] = report.attrs["first_fault"]
    assert report.attrs["first_fault"] is None, format_report(report)


def test_clear_errors(cnn, tmp_path):
    net, X, data = cnn
    with pytest.raises(FileNotFoundError, match="no .tflite file"):
        stack_diff(net, X, tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        stack_diff(net, X, b"\0" * 64)
    with pytest.raises(ValueError, match=r"takes input \(1, 13, 50, 1\)"):
        stack_diff(net, X[:, :, :, :40], data)
    with pytest.raises(ValueError, match="no Conv/Linear modules"):
        stack_diff(torch.nn.Flatten(), X, data)
    other = (kws_dir() / "kws_dscnn_int8.tflite").read_bytes()
    report = stack_diff(net, X, other)  # the wrong model: most layers find no partner, and say why
    unpaired = report.attrs["unpaired"]
    assert set(unpaired[unpaired.side == "pytorch"].what) == {"conv2", "fc1", "fc2", "fc3"}
    cut = stack_diff(net, X, data, firmware="LAYER 0 11 1x13x50x32 " + "80" * 20800)  # stops after op 0
    assert "no LAYER line for tensor 14" in set(cut.attrs["unpaired"].why)  # conv2's output
    with pytest.raises(ValueError, match="bytes, shape"):
        parse_layer_dump("LAYER 0 11 1x4 7f80\n")
    with pytest.raises(ValueError, match="no LAYER lines"):
        parse_layer_dump("result 3\n")


def test_zz_summary():
    """Printed for the closing note: which layer and stage each fault was pinned on (pytest -s)."""
    print(f"\n{len(named)} runs:")
    for fault, where in named.items():
        print(f"  {fault:<28} -> {where}")
