"""Every snippet is the thing a reader copies: it must import alone, from an empty folder."""

import subprocess
import sys
from pathlib import Path

import pytest

SNIPPETS = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "snippets").glob("*.py") if p.name != "__init__.py"
)


@pytest.mark.parametrize("path", SNIPPETS, ids=[p.stem for p in SNIPPETS])
def test_snippet_imports_alone(path, tmp_path):
    (tmp_path / path.name).write_bytes(path.read_bytes())
    # -I: isolated mode (no PYTHONPATH, no cwd on sys.path), then only the empty folder is added back.
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        f"import {path.stem} as m\n"
        "assert m.__doc__ and len(m.__doc__.strip()) > 40, 'snippet needs a docstring'\n"
        "check = getattr(m, '_self_check', None)\n"
        "check and check()\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_snippets_do_not_import_each_other():
    for path in SNIPPETS:
        text = path.read_text()
        assert "from snippets" not in text and "import snippets" not in text, path.name
        assert "from ." not in text, path.name
