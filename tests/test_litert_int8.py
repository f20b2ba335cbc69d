"""litert_int8: the built models honour the firmware contract and lose little accuracy against float torch."""

import numpy as np
import pytest
import torch

from snippets import kws_nets
from snippets.litert_int8 import convert_int8
from snippets.tflite_inspect import inspect_tflite
from snippets.tflm_runner import run_tflm
from tests.kws_build import kws_dir

ALLOWED = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "RESHAPE",
    "SOFTMAX",
}


@pytest.mark.parametrize("kind", ["cnn", "dscnn"])
def test_contract_and_accuracy(kind):
    info = inspect_tflite(kws_dir() / f"kws_{kind}_int8.tflite")
    assert set(info.ops) <= ALLOWED and {t.dtype for t in info.tensors} <= {"int8", "int32"}
    assert info.inputs[0].shape == (1, 13, 50, 1) and info.outputs[0].shape == (1, 11)
    assert info.ops[-1] == "SOFTMAX" and info.outputs[0].dtype == "int8"

    test = np.load(kws_dir() / "test_set.npz")
    net = {"cnn": kws_nets.KwsCNN, "dscnn": kws_nets.KwsDSCNN}[kind]()
    net.load_state_dict(torch.load(kws_dir() / f"kws_{kind}_float.pt"))
    float_acc = kws_nets.accuracy(net, test["x"], test["y"])  # the reference: float PyTorch
    x_in = info.inputs[0]
    q = np.clip(np.round(test["x"] / x_in.scale[0]) + x_in.zero_point[0], -128, 127).astype(np.int8)
    int8_acc = float((run_tflm(kws_dir() / f"kws_{kind}_int8.tflite", q).argmax(1) == test["y"]).mean())
    assert len(test["y"]) >= 200 and float_acc > 0.75
    assert float_acc - int8_acc <= 0.02  # the source's checklist: at most 2 points lost


def test_together_the_models_use_every_resolver_op():
    ops = set()
    for kind in ("cnn", "dscnn"):
        ops |= set(inspect_tflite(kws_dir() / f"kws_{kind}_int8.tflite").ops)
    assert ops == ALLOWED


def test_calibration_must_be_nhwc_batch():
    with pytest.raises(ValueError, match="non-empty NHWC batch"):
        convert_int8(kws_nets.KwsDSCNN(), np.zeros((13, 50, 1), np.float32))
