"""tflm_runner against ai-edge-litert (outputs within a few units) and TFLM itself (exact arena figure)."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from snippets.tflm_runner import arena_bytes, run_tflm
from tests.kws_build import kws_dir


def _litert(path, inputs):
    ref = Interpreter(
        str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    ref.allocate_tensors()
    out = []
    for x in inputs:
        ref.set_tensor(ref.get_input_details()[0]["index"], x[None])
        ref.invoke()
        out.append(ref.get_tensor(ref.get_output_details()[0]["index"])[0])
    return np.stack(out)


@pytest.mark.parametrize("kind", ["cnn", "dscnn"])
def test_outputs_close_to_litert(kind):
    path = kws_dir() / f"kws_{kind}_int8.tflite"
    inputs = np.random.default_rng(0).integers(-128, 128, (8, 13, 50, 1), dtype=np.int8)
    ours = run_tflm(path, inputs)
    diff = np.abs(ours.astype(int) - _litert(path, inputs).astype(int))
    assert ours.shape == (8, 11) and ours.dtype == np.int8
    assert diff.max() <= 3  # TFLM's FC rounds twice, LiteRT once: a few output units at most


def test_arena_figure_is_exact():
    path = kws_dir() / "kws_dscnn_int8.tflite"
    needed = arena_bytes(path)
    x = np.zeros((1, 13, 50, 1), np.int8)
    run_tflm(path, x, arena_size=needed)  # exactly the reported size works...
    with pytest.raises(RuntimeError, match="arena"):
        run_tflm(path, x, arena_size=needed - 16)  # ...and 16 bytes less does not


def test_wrong_input_is_named():
    with pytest.raises(ValueError, match=r"inputs must be int8 \(N, \(13, 50, 1\)\)"):
        run_tflm(kws_dir() / "kws_dscnn_int8.tflite", np.zeros((1, 13, 50, 1), np.float32))
