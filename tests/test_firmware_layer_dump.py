"""The firmware's per-operator dump (firmware/tools/layer_dump.py; app/app.c, KWS_LAYER_DUMP) against TFLM.

- every dumped intermediate tensor of the book's KWS models and the MLPerf-shaped models, both kernel sets on
  the host, is byte-identical to TFLM's own intermediate tensor for the same input (the `tflite-micro`
  package kept with kPreserveAllTensors: the interpreter our firmware is bit-exact with);
- the dump build's final output equals the normal build's; in QEMU the UART dump equals the host dump and
  the image's per-layer emulated instruction counts equal the normal image's (the dump is not counted);
- a fault compiled into the CONV_2D kernels (FAULT_CONV_BIAS) makes the dump differ from TFLM exactly from
  the first CONV_2D onward;
- LiteRT's reference kernels against TFLM, layer by layer: where they part (reported, not hidden);
- a corrupt or cut-off LAYER line raises a ValueError that names the line.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IN_CI, ROOT, need_tool

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402
import layer_dump  # noqa: E402

KWS_DIR = Path(os.environ.get("KWS_MODEL_DIR", ROOT / "build" / "kws"))
MLPERF_DIR = Path(os.environ.get("MLPERF_MODEL_DIR", ROOT / "build" / "mlperf"))
# name -> (model, inputs: the first one is dumped)
MODELS = {
    "kws_cnn": (KWS_DIR / "kws_cnn_int8.tflite", KWS_DIR / "test_set.npz"),
    "kws_dscnn": (KWS_DIR / "kws_dscnn_int8.tflite", KWS_DIR / "test_set.npz"),
    **{
        f"mlperf_{n}": (MLPERF_DIR / f"{n}_int8.tflite", MLPERF_DIR / f"{n}_inputs.npy")
        for n in ("kws_dscnn", "vww_mobilenet", "ic_resnet8", "ad_autoencoder")
    },
}
KERNELS = ("reference", "optimized")


def model_and_input(name: str) -> tuple[Path, np.ndarray]:
    model, inputs = MODELS[name]
    missing = [str(p) for p in (model, inputs) if not p.exists()]
    if missing:
        message = f"models missing ({', '.join(missing)}): run `make models` and `make mlperf-models` first"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    x = np.load(inputs)
    return model, (x["x"] if isinstance(x, np.lib.npyio.NpzFile) else x)[0]


def model_ops(model: Path) -> list[tuple[str, int]]:
    """(builtin name, output tensor index) per operator, read from the .tflite itself."""
    from tflite_micro import runtime

    m = runtime.schema_fb.ModelT.InitFromPackedBuf(model.read_bytes(), 0)
    names = {v: k for k, v in vars(runtime.schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [runtime.get_builtin_code_from_operator_code(c) for c in m.operatorCodes]
    return [(names[codes[op.opcodeIndex]], int(op.outputs[0])) for op in m.subgraphs[0].operators]


def quantised(model: Path, x: np.ndarray) -> np.ndarray:
    scale, zp = fw.input_quantization(model)
    return x if x.dtype == np.int8 else fw.quantize(x, scale, zp)


def tflm_tensors(model: Path, x: np.ndarray) -> dict[int, np.ndarray]:
    """TFLM's intermediate tensors (every operator's output) for one input."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(
        model.read_bytes(), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    interp.set_input(quantised(model, x).reshape(interp.get_input_details(0)["shape"]), 0)
    interp.invoke()
    return {t: np.asarray(interp.GetTensor(t, 0)["tensor_data"]) for _, t in model_ops(model)}


def first_difference(layers: list[dict], ref: dict[int, np.ndarray]) -> int | None:
    for d in layers:
        if not np.array_equal(d["data"], ref[d["tensor_index"]].reshape(d["shape"])):
            return d["op_index"]
    return None


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", list(MODELS))
def test_host_dump_equals_tflm_intermediates(name, kernels):
    need_tool("cc")
    model, x = model_and_input(name)
    text = layer_dump.dump_text(model, x, "host", kernels)
    layers = layer_dump.parse_dump(text)
    layer_dump.check_complete(text, layers)
    ops, ref = model_ops(model), tflm_tensors(model, x)
    assert [d["tensor_index"] for d in layers] == [t for _, t in ops], (
        f"{name}: dumped tensors are not the ops' outputs"
    )
    for d, (op, _) in zip(layers, ops, strict=True):
        r = ref[d["tensor_index"]]
        assert d["shape"] == r.shape, f"{name} op {d['op_index']} {op}: shape {d['shape']}, TFLM {r.shape}"
        differ = int((d["data"] != r).sum())
        assert differ == 0, (
            f"{name}/{kernels} op {d['op_index']} {op}: {differ}/{r.size} bytes differ from TFLM"
        )
    # the dump build's final output is the normal build's, byte for byte
    normal_text = layer_dump.host_run(model, x, kernels, dump=False)
    dumped, normal = fw.parse(text), fw.parse(normal_text)
    assert normal.done == 1 and "LAYER" not in normal_text, f"{name}: the normal build: {normal_text[-300:]}"
    assert np.array_equal(dumped.raw, normal.raw), (
        f"{name}/{kernels}: dump build's output differs from normal"
    )
    sizes = [d["data"].size for d in layers]
    print(f"{name} host {kernels}: {len(layers)} operators, {sum(sizes)} bytes (tensors of {min(sizes)}.."
          f"{max(sizes)}) identical to TFLM; final output identical to the normal build")  # fmt: skip


def test_int8_input_dumps_as_given():
    """An int8 input goes in unchanged (dump_layers accepts int8 as well as float32)."""
    need_tool("cc")
    model, _ = model_and_input("mlperf_ic_resnet8")
    shape = tuple(fw.input_shape(model))
    xq = np.random.default_rng(18).integers(-128, 128, size=shape, dtype=np.int8)
    layers = layer_dump.dump_layers(model, xq, "host", "optimized")
    assert first_difference(layers, tflm_tensors(model, xq)) is None
    print(f"ic_resnet8: a random int8 input, {len(layers)} operators identical to TFLM")


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("name", ["kws_cnn", "kws_dscnn", "mlperf_vww_mobilenet"])
def test_conv_fault_shows_from_the_first_conv(name, kernels):
    need_tool("cc")
    model, x = model_and_input(name)
    ops = model_ops(model)
    first_conv = [op for op, _ in ops].index("CONV_2D")
    layers = layer_dump.dump_layers(model, x, "host", kernels, fault="FAULT_CONV_BIAS")
    ref = tflm_tensors(model, x)
    first = first_difference(layers, ref)
    assert first == first_conv, (
        f"{name}/{kernels}: first difference at op {first}, the first CONV_2D is {first_conv}"
    )
    assert ops[first][0] == "CONV_2D"
    later = sum(not np.array_equal(d["data"], ref[d["tensor_index"]]) for d in layers[first:])
    print(f"{name}/{kernels} FAULT_CONV_BIAS: ops 0..{first - 1} identical, first difference at op {first} "
          f"({ops[first][0]}, the first CONV_2D); {later}/{len(layers) - first} ops on differ")  # fmt: skip


def test_qemu_dump_equals_host_dump():
    """One image in QEMU (kws_cnn, optimised kernels): the UART dump is the host dump, the image's results and
    per-layer emulated instructions are the normal image's, and the normal image holds no dump code."""
    need_tool("arm-none-eabi-gcc")
    need_tool("qemu-system-arm")
    model, x = model_and_input("kws_cnn")
    host = layer_dump.dump_layers(model, x, "host", "optimized")
    dump_elf = layer_dump.qemu_image(model, x, "optimized")
    normal_elf = layer_dump.qemu_image(model, x, "optimized", dump=False)
    text = fw.run_qemu(dump_elf).text
    qemu = layer_dump.parse_dump(text)
    layer_dump.check_complete(text, qemu)
    assert len(qemu) == len(host)
    for q, h in zip(qemu, host, strict=True):
        assert (q["op_index"], q["tensor_index"], q["shape"]) == (
            h["op_index"],
            h["tensor_index"],
            h["shape"],
        )
        assert np.array_equal(q["data"], h["data"]), (
            f"op {q['op_index']}: the UART dump differs from the host's"
        )
    normal_text = fw.run_qemu(normal_elf).text
    dumped, normal = fw.parse(text), fw.parse(normal_text)
    assert normal.done == 1 and "LAYER" not in normal_text, normal_text[-300:]
    assert np.array_equal(dumped.raw, normal.raw), "the dump image's output differs from the normal image's"
    assert dumped.layer_instr == normal.layer_instr, "printing the dump leaked into the per-layer counts"
    assert b"LAYER " in dump_elf.read_bytes() and b"LAYER " not in normal_elf.read_bytes()
    n_bytes = sum(d["data"].size for d in qemu)
    print(f"kws_cnn QEMU optimized: {len(qemu)} operators, {n_bytes} bytes on the UART "
          f"identical to the host dump; per-layer instructions identical to the normal image "
          f"({sum(normal.layer_instr)} in all)")  # fmt: skip


def test_litert_reference_kernels_against_tflm():
    """LiteRT (BUILTIN_REF kernels, all tensors kept) is not TFLM: say where its intermediates part from it,
    on each model's real input and on a seeded random int8 one. Known: per-channel FULLY_CONNECTED, where
    TFLM rounds twice and LiteRT once (the firmware notes): a LiteRT stage may part there by one step."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    apart, total = [], 0
    for seed, name in enumerate(MODELS):
        model, x = model_and_input(name)
        shape = tuple(fw.input_shape(model))
        random_x = np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)
        for kind, xi in (("real", x), ("random", random_x)):
            ref = tflm_tensors(model, xi)
            lite = Interpreter(
                model_content=model.read_bytes(),
                experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            )
            lite.allocate_tensors()
            lite.set_tensor(lite.get_input_details()[0]["index"], quantised(model, xi).reshape(shape))
            lite.invoke()
            for i, (op, t) in enumerate(model_ops(model)):
                total += 1
                a, b = ref[t].astype(np.int32), lite.get_tensor(t).reshape(ref[t].shape).astype(np.int32)
                if not np.array_equal(a, b):
                    apart.append((name, kind, i, op, int((a != b).sum()), a.size, int(np.abs(a - b).max())))
    for name, kind, i, op, n, size, worst in apart:
        print(f"LiteRT != TFLM: {name} ({kind} input) op {i} {op}: {n}/{size} values, by <= {worst}")
    print(f"{len(apart)} of {total} intermediate tensors differ between LiteRT BUILTIN_REF and TFLM")
    # where they first part, per model and input: a FULLY_CONNECTED, by one step (later ops inherit it)
    first = {}
    for name, kind, i, op, _, _, worst in apart:
        first.setdefault((name, kind), (i, op, worst))
    assert all(op == "FULLY_CONNECTED" and worst <= 1 for _, op, worst in first.values()), first


GOOD = "LAYER 0 11 1x2x2x1 00ff7f80"


@pytest.mark.parametrize(
    "line, says",
    [
        ("LAYER 0 11 1x2x2x1 00ff7f", "3 bytes for shape (1, 2, 2, 1), expected 4"),
        ("LAYER 0 11 1x2x2x1 00ff7f8", "pairs of lowercase hex"),
        ("LAYER 0 11 1x2x2x1 00FF7F80", "pairs of lowercase hex"),
        ("LAYER 0 11 1x2x2x1", "expected 'LAYER <op_index>"),
        ("LAYER 0 11 1x2xx1 00ff7f80", "must be integers"),
        ("LAYER zero 11 1x2x2x1 00ff7f80", "must be integers"),
        ("LAYER 0 11 1x2x2x1 00ff 7f80", "expected 'LAYER <op_index>"),
    ],
)
def test_corrupt_line_is_named(line, says):
    good = layer_dump.parse_dump(f"kws model 1 bytes kernels reference\n{GOOD}\n")
    assert good[0]["shape"] == (1, 2, 2, 1) and good[0]["data"].reshape(-1).tolist() == [0, -1, 127, -128]
    with pytest.raises(ValueError, match="dump line 3 ") as e:
        layer_dump.parse_dump(f"kws model 1 bytes\n{GOOD}\n{line}\nresult 0\n")
    assert says in str(e.value)
