"""Turn a .tflite file into C source, like `xxd -i`, but const (stays in flash), aligned, with a header.

Taught in: lessons/33_model_as_c_array.ipynb. Needs: Python only.
`write_c_array(model, "model_data", out_dir, quant={...})` writes model_data.c and model_data.h:
`const unsigned char model_data[]` aligned to 16 bytes (TFLM reads the flatbuffer in place), a
`model_data_len` symbol, and #defines for the input/output scale and zero point the firmware needs.
"""

import re
from pathlib import Path

ALIGNMENT = 16  # flatbuffer tables are read in place; 16 also suits 128-bit loads
BYTES_PER_LINE = 12  # same layout as xxd -i


def _model_bytes(model) -> bytes:
    data = bytes(model) if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(
            f"not a TFLite model: expected the identifier b'TFL3' at bytes 4..8, got {data[4:8]!r}"
            " (is this the .tflite file, not the .c or .onnx?)"
        )
    return data


def c_source(data: bytes, name: str) -> str:
    """The .c file text: a const, aligned byte array and its length."""
    lines = [
        ", ".join(f"0x{b:02x}" for b in data[i : i + BYTES_PER_LINE])
        for i in range(0, len(data), BYTES_PER_LINE)
    ]
    body = ",\n  ".join(lines)
    return (
        f'#include "{name}.h"\n\n'
        f"/* {len(data)} bytes of TFLite flatbuffer; const keeps it in flash, not in RAM. */\n"
        f"alignas({ALIGNMENT}) const unsigned char {name}[] = {{\n  {body}\n}};\n"
        f"const unsigned int {name}_len = {len(data)};\n"
    )


def c_header(name: str, quant: dict | None = None) -> str:
    """The .h file text: extern declarations plus #defines such as NAME_INPUT_SCALE."""
    guard = f"{name.upper()}_H"
    defines = "".join(
        f"#define {name.upper()}_{key.upper()} {value!r}{'f' if isinstance(value, float) else ''}\n"
        for key, value in (quant or {}).items()
    )
    return (
        f"#ifndef {guard}\n#define {guard}\n\n#include <stdalign.h>\n\n"
        f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n\n"
        f"{defines}\n#endif /* {guard} */\n"
    )


def write_c_array(model, name: str, out_dir, quant: dict | None = None) -> tuple[Path, Path]:
    """Write <name>.c and <name>.h for a .tflite path or bytes; returns their paths."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a C identifier")
    data = _model_bytes(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source, header = out_dir / f"{name}.c", out_dir / f"{name}.h"
    source.write_text(c_source(data, name))
    header.write_text(c_header(name, quant))
    return source, header


def parse_c_array(text: str) -> bytes:
    """The bytes listed in a C array initialiser (ours or xxd -i's): for round-trip checks."""
    body = text[text.index("{") + 1 : text.index("}")]
    return bytes(int(token, 16) for token in re.findall(r"0x([0-9a-fA-F]{2})", body))


def _self_check():
    fake = b"\x1c\x00\x00\x00TFL3" + bytes(20)
    assert parse_c_array(c_source(fake, "m")) == fake
