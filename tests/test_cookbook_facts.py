"""Facts the cookbook pages state in prose, re-measured: the pages must change when the tools do.

Each test reads the sentence from the page and checks it against the tool it describes (onnx's schema
registry, the firmware's error names, TFLM's arena), never against numbers written in this file.
"""

import re
from pathlib import Path

import onnx.defs

from snippets.tflm_runner import arena_bytes, interpreter
from tests.kws_build import kws_dir

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = ROOT / "cookbook"


def test_migration_page_names_first_and_latest_opset_of_an_op():
    text = (COOKBOOK / "migration.md").read_text(encoding="utf-8")
    first = int(
        re.search(r"get_all_schemas_with_history\(\) if s\.name == name\)` \(Asinh: (\d+)\)", text)[1]
    )
    latest = int(
        re.search(
            r"get_schema\(name\)\.since_version` is its \*\*latest\*\* revision \(Asinh: (\d+)\)", text
        )[1]
    )
    history = [s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.name == "Asinh"]
    assert (first, latest) == (min(history), onnx.defs.get_schema("Asinh").since_version)
    assert first != latest  # the two questions have different answers, which is the point of the row
    print(f"Asinh: first opset {first}, latest revision {latest}, {len(history)} revisions")


def test_faq_names_only_errors_the_firmware_prints():
    faq = (COOKBOOK / "faq.md").read_text(encoding="utf-8")
    answer = faq[faq.index("**The firmware prints nothing") :].split("\n\n")[0]
    cited = set(re.findall(r"`error ([A-Z_]+)", answer))
    firmware = (ROOT / "firmware" / "runtime" / "errors.h").read_text() + (
        ROOT / "firmware" / "board" / "startup.c"
    ).read_text()
    printed = set(re.findall(r'"([A-Z_]{4,})"', firmware)) | set(re.findall(r'"error ([A-Z_]+)', firmware))
    assert cited and cited <= printed, cited - printed
    print(f"{len(cited)} error names cited, all printed by the firmware: {sorted(cited)}")


def _smallest_arena(model) -> int:
    def allocates(size):
        try:
            interpreter(model, arena_size=size)
            return True
        except RuntimeError:
            return False

    low, high = 1024, 4 * arena_bytes(model)
    assert allocates(high) and not allocates(low)
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if allocates(middle) else (middle, high)
    return high


def test_faq_arena_margins_are_what_tflm_measures():
    """The FAQ: smallest working arena = report for the DS-CNN, 8 bytes less for the CNN (lesson 32)."""
    faq = (COOKBOOK / "faq.md").read_text(encoding="utf-8")
    said = re.search(r"exactly\s+the report for the DS-CNN keyword model, (\d+) bytes less for the CNN", faq)
    assert said, "the FAQ's arena answer changed: update this test with it"
    for kind, expected in (("dscnn", 0), ("cnn", -int(said[1]))):
        path = kws_dir() / f"kws_{kind}_int8.tflite"
        reported, smallest = arena_bytes(path), _smallest_arena(path)
        print(f"{kind}: reported {reported} bytes, smallest that allocates {smallest}")
        assert smallest - reported == expected
