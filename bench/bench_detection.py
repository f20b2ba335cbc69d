"""Deployment-friendly detection (lessons 20-23): re-parameterisation speed, int8 latency, mAP after PTQ/QAT.

The detector is trained once with the lessons' recipe and cached under build/bench_detection/.
"""

import copy
import logging
import time
import warnings
from pathlib import Path

import onnxruntime as ort
import torch

from snippets.average_precision import mean_average_precision
from snippets.detection_losses import DetectionLoss
from snippets.distillation import channel_wise_distillation
from snippets.fake_quant import prepare_qat, strip_qat
from snippets.repvgg import RepBlock, RepVGGBlock, reparameterize_model
from snippets.sensitivity import layer_sensitivity, quantize_qdq
from snippets.tiny_detector import (
    CLASSES,
    TRAIN_IMAGES,
    VAL_IMAGES,
    fit,
    make_shapes,
    postprocess,
    train_or_load,
)

BUILD = Path("build/bench_detection")


def _best_times(fn_a, fn_b, repeats):
    fn_a(), fn_b()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, fn in enumerate((fn_a, fn_b)):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _export(net, path, example, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(), (example,), path, dynamo=True, external_data=False, verbose=False, **kwargs
        )
    return path


def _ort(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def block_rows():
    torch.manual_seed(0)
    train_net = RepBlock(32, 32, n=4)
    with torch.no_grad():  # give BN real statistics
        train_net.train()(torch.randn(16, 32, 56, 56))
    train_net.eval()
    deploy_net = reparameterize_model(copy.deepcopy(train_net))
    X = torch.randn(8, 32, 56, 56)
    with torch.no_grad():
        t_train, t_fused = _best_times(lambda: train_net(X), lambda: deploy_net(X), 25)
    sessions = [_ort(_export(n, BUILD / f"block_{i}.onnx", X)) for i, n in enumerate((train_net, deploy_net))]
    feed = {sessions[0].get_inputs()[0].name: X.numpy()}
    o_train, o_fused = _best_times(
        lambda: sessions[0].run(None, feed), lambda: sessions[1].run(None, feed), 40
    )
    note = "4 RepVGG blocks, 32 ch, 8x56x56, 1 thread"
    return [
        {"benchmark": "RepVGG fused vs training-time, PyTorch (x)", "value": f"{t_train / t_fused:.2f}",
         "target": ">= 1.3", "note": note},
        {"benchmark": "RepVGG fused vs training-time, ORT (x)", "value": f"{o_train / o_fused:.2f}",
         "target": ">= 1.3", "note": note},
    ]  # fmt: skip


def detector_rows():
    logging.getLogger().setLevel(logging.ERROR)
    net, _ = train_or_load(BUILD / "tiny_detector.pt", RepVGGBlock, DetectionLoss())
    teacher = reparameterize_model(net)
    X, gt_boxes, gt_labels, gt_mask = make_shapes(TRAIN_IMAGES, seed=0)
    X_val, val_boxes, val_labels, val_mask = make_shapes(VAL_IMAGES, seed=1)
    truth = [(b[m], c[m]) for b, c, m in zip(val_boxes, val_labels, val_mask, strict=True)]
    calibration = X[:32].numpy()
    dyn = {"dynamic_shapes": {"x": {0: "batch"}}}

    def onnx_map(path):
        cls_logits, boxes = ort.InferenceSession(str(path)).run(None, {"x": X_val.numpy()})
        dets = postprocess(torch.from_numpy(cls_logits).sigmoid(), torch.from_numpy(boxes))
        return mean_average_precision(dets, truth, num_classes=len(CLASSES))

    fp32 = _export(teacher, BUILD / "fp32.onnx", X_val[:1], **dyn)
    int8 = quantize_qdq(fp32, BUILD / "int8.onnx", calibration)
    w4 = quantize_qdq(fp32, BUILD / "w4.onnx", calibration, weight_bits=4)
    ranked = layer_sensitivity(fp32, calibration, weight_bits=4)
    partial = quantize_qdq(fp32, BUILD / "w4_partial.onnx", calibration, weight_bits=4,
                           nodes_to_exclude=[r["layer"] for r in ranked[:4]])  # fmt: skip
    torch.manual_seed(0)
    student = prepare_qat(copy.deepcopy(teacher), weight_bits=4)
    fit(student, X, gt_boxes, gt_labels, gt_mask, DetectionLoss(), num_epochs=3, lr=1e-3, teacher=teacher,
        feature_loss=channel_wise_distillation)  # fmt: skip
    qat_fp = _export(strip_qat(student), BUILD / "qat.onnx", X_val[:1], **dyn)
    qat = quantize_qdq(qat_fp, BUILD / "qat_w4.onnx", calibration, weight_bits=4)

    s_fp32, s_int8 = _ort(fp32), _ort(int8)
    feed = {"x": X_val[:1].numpy()}
    t_fp32, t_int8 = _best_times(lambda: s_fp32.run(None, feed), lambda: s_int8.run(None, feed), 300)
    maps = {
        "fp32": onnx_map(fp32), "int8 PTQ": onnx_map(int8), "W4A8 PTQ": onnx_map(w4),
        "W4A8 partial PTQ (top-4 sensitive in float)": onnx_map(partial), "W4A8 QAT + CWD": onnx_map(qat),
    }  # fmt: skip
    rows = [{"benchmark": "detector int8 vs fp32 latency, ORT (x)", "value": f"{t_int8 / t_fp32:.2f}",
             "target": "< 1 faster", "note": f"1 image, 1 thread; fp32 {t_fp32 * 1e6:.0f} us"}]  # fmt: skip
    rows += [
        {
            "benchmark": f"detector mAP@0.5, {name}",
            "value": f"{m:.3f}",
            "target": "",
            "note": "300 val images",
        }
        for name, m in maps.items()
    ]
    return rows


def rows():
    BUILD.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the lessons: tiny tensors, repeatable training
    try:
        return block_rows() + detector_rows()
    finally:
        torch.set_num_threads(threads)
