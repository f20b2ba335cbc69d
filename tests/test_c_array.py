"""c_array against `xxd -i` (same bytes) and a C compiler (the array lands in read-only data, aligned)."""

import shutil
import subprocess

import pytest

from snippets.c_array import parse_c_array, write_c_array
from tests.conftest import need_tool
from tests.kws_build import kws_dir


def test_same_bytes_as_xxd(tmp_path):
    need_tool("xxd")
    model = kws_dir() / "kws_dscnn_int8.tflite"
    source, header = write_c_array(model, "kws_model", tmp_path, {"input_scale": 0.5, "input_zero_point": -3})
    xxd = subprocess.run(["xxd", "-i", str(model)], capture_output=True, text=True, check=True).stdout
    assert parse_c_array(source.read_text()) == parse_c_array(xxd) == model.read_bytes()
    assert f"kws_model_len = {model.stat().st_size};" in source.read_text()
    assert "#define KWS_MODEL_INPUT_SCALE 0.5f" in header.read_text()


def test_compiles_to_aligned_read_only_data(tmp_path):
    compiler = shutil.which("arm-none-eabi-gcc") or need_tool("gcc")
    source, _ = write_c_array(kws_dir() / "kws_dscnn_int8.tflite", "kws_model", tmp_path)
    obj = tmp_path / "kws_model.o"
    subprocess.run([compiler, "-std=c11", "-O2", "-c", str(source), "-o", str(obj)], check=True)
    objdump = shutil.which("arm-none-eabi-objdump" if "arm" in compiler else "objdump") or need_tool(
        "objdump"
    )
    sections = subprocess.run([objdump, "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    rodata = next(line for line in sections.splitlines() if ".rodata" in line)
    assert int(rodata.split()[2], 16) > 20_000  # the model is in read-only data (flash), not .data (RAM)
    symbols = subprocess.run([objdump, "-t", str(obj)], capture_output=True, text=True, check=True).stdout
    address = int(next(line for line in symbols.splitlines() if line.endswith(" kws_model")).split()[0], 16)
    assert address % 16 == 0


def test_rejects_a_file_that_is_not_tflite(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(32))
    with pytest.raises(ValueError, match="expected the identifier b'TFL3'"):
        write_c_array(bogus, "model", tmp_path)
    with pytest.raises(ValueError, match="not a C identifier"):
        write_c_array(kws_dir() / "kws_dscnn_int8.tflite", "2model", tmp_path)
