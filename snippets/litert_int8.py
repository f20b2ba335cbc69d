"""Convert a PyTorch CNN to a fully int8 .tflite with litert-torch's PT2E quantiser (no TensorFlow needed).

Taught in: lessons/31_pytorch_to_int8_tflite.ipynb. Needs: torch, torchao, litert-torch.
`convert_int8(net, calibration)` returns .tflite bytes with NHWC int8 input and int8 output.
`Int8Quantizer` fixes what litert-torch 0.10's annotators miss with torch 2.14's export: max/avg pool,
reshape, view and permute are annotated to share their input's scale, and every op input whose producer
is already quantised reuses that scale, so no stray QUANTIZE (requantise) op lands in the model.
"""

import os

os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import litert_torch  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config  # noqa: E402
from litert_torch.quantize.quant_config import QuantConfig  # noqa: E402
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: E402
from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec  # noqa: E402

aten = torch.ops.aten
SCALE_PRESERVING = {aten.max_pool2d.default, aten.avg_pool2d.default, aten.reshape.default,
                    aten.view.default, aten.permute.default, aten.flatten.using_ints}  # fmt: skip


def _output_qspec(node):
    annotation = node.meta.get("quantization_annotation") if isinstance(node, torch.fx.Node) else None
    return annotation.output_qspec if annotation is not None else None


class Int8Quantizer(PT2EQuantizer):
    """litert-torch's PT2E quantiser plus annotations for the scale-preserving ops it misses."""

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        model = super().annotate(model)
        for node in model.graph.nodes:  # graph order: a producer is annotated before its users
            if node.op != "call_function" or "quantization_annotation" in node.meta:
                continue
            source = node.args[0] if node.args else None
            if node.target in SCALE_PRESERVING and _output_qspec(source) is not None:
                shared = SharedQuantizationSpec(source)
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={source: shared}, output_qspec=shared, _annotated=True
                )
        for node in model.graph.nodes:  # an input already quantised upstream keeps its scale
            annotation = node.meta.get("quantization_annotation")
            for source, spec in list(annotation.input_qspec_map.items()) if annotation else []:
                if _output_qspec(source) is not None and not isinstance(spec, SharedQuantizationSpec):
                    annotation.input_qspec_map[source] = SharedQuantizationSpec(source)
        return model


def convert_int8(net: torch.nn.Module, calibration: np.ndarray) -> bytes:
    """Full-int8 .tflite bytes for an NCHW PyTorch net; `calibration` is (N, H, W, C) float32 features."""
    calibration = np.asarray(calibration, np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(
            f"calibration must be a non-empty NHWC batch (N, H, W, C), got shape {calibration.shape}"
        )
    nhwc_net = litert_torch.to_channel_last_io(net.eval(), args=[0]).eval()  # NHWC in, like a Keras model
    sample = (torch.from_numpy(calibration[:1]),)
    quantizer = Int8Quantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = prepare_pt2e(torch.export.export(nhwc_net, sample).module(), quantizer)  # inserts observers
    for x in calibration:
        graph(torch.from_numpy(x[None]))  # observers record each activation's range
    graph = convert_pt2e(graph, fold_quantize=False)  # observers -> quantize/dequantize pairs
    edge_model = litert_torch.convert(graph, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    return edge_model.model_content()


def _self_check():
    assert issubclass(Int8Quantizer, PT2EQuantizer) and aten.max_pool2d.default in SCALE_PRESERVING
