"""Stored lesson outputs are what readers see on the site: executed, and free of this machine's paths."""

import json
import re

import pytest

from tests.conftest import ROOT

LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
# An absolute path into a checkout or a virtual environment, as a traceback prints it.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:[\w.-]+/)+(?:\.venv|site-packages|snippets|lessons)/")


def output_texts(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            yield from (ANSI.sub("", line) for line in out["traceback"])
        elif "text" in out:
            yield ANSI.sub("", "".join(out["text"]))


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_stored_outputs_are_executed_and_path_free(path):
    nb = json.loads(path.read_text())
    unexecuted = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and "".join(c["source"]).strip() and c.get("execution_count") is None
    ]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were never run (tools/nb.py run)"
    leaks = [
        (i, m.group(0))
        for i, c in enumerate(nb["cells"])
        for text in output_texts(c)
        if (m := MACHINE_PATH.search(text) or re.search(re.escape(str(ROOT)), text))
    ]
    assert not leaks, f"{path.name}: machine paths in stored outputs (run tools/nb.py strip): {leaks[:5]}"
