"""Authoring tool for lessons: write a lesson as a percent-format .py file, build and run the notebook.

    python tools/nb.py build lessons/src.py lessons/NN_topic.ipynb   # cells from "# %%" markers
    python tools/nb.py run lessons/NN_topic.ipynb                    # execute in place, store outputs
    python tools/nb.py extract lessons/NN_topic.ipynb out.py         # back to percent format
    python tools/nb.py strip lessons/*.ipynb                         # drop machine paths ("run" does too)

Cell markers: "# %%" (code), "# %% [markdown]" (markdown, lines start with "# "),
"# %% tags=["raises-exception"]" (a code cell expected to raise: nbval checks it still does).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat

MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def py_to_notebook(text: str) -> nbformat.NotebookNode:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()
            )
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            flush()
            kind = "markdown" if m["md"] else "code"
            tags = json.loads(m["tags"]) if m["tags"] else []
            lines = []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def notebook_to_py(nb) -> str:
    out = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        suffix = f" tags={json.dumps(tags)}" if tags else ""
        if cell.cell_type == "markdown":
            out.append(f"# %% [markdown]{suffix}")
            out += [f"# {line}" if line else "#" for line in cell.source.splitlines()]
        else:
            out.append(f"# %%{suffix}")
            out += cell.source.splitlines()
        out.append("")
    return "\n".join(out)


ROOT = Path(__file__).resolve().parent.parent
# Tracebacks name files by absolute path; readers (and CI, in another folder) must not see this machine's.
SITE_PACKAGES = re.compile(
    r"(?:/[^\s\"'()]*?)?/(?:\.venv|venv|usr|usr/local)/lib/python3\.\d+/(?:site|dist)-packages/"
)
STDLIB = re.compile(r"/usr(?:/local)?/lib/python(3\.\d+)/")


def strip_paths(text: str, root: Path = ROOT) -> str:
    text = SITE_PACKAGES.sub("site-packages/", text)
    text = text.replace(f"{root}/", "").replace(str(root), ".")
    return STDLIB.sub(r"python\1/", text)


def strip_notebook_paths(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                new = [strip_paths(line) for line in out["traceback"]]
                changed |= new != out["traceback"]
                out["traceback"] = new
            elif "text" in out:
                new = strip_paths(out["text"])
                changed |= new != out["text"]
                out["text"] = new
    if changed:
        nbformat.write(nb, path)
    return changed


def run(path: Path) -> None:
    # Runs with the lesson's folder as working directory, as nbval and JupyterLab do.
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
         "--ExecutePreprocessor.timeout=600", path.name],
        cwd=path.parent, check=True,
    )  # fmt: skip
    strip_notebook_paths(path)


def main(argv):
    cmd, *args = argv
    if cmd == "build":
        src, dst = map(Path, args)
        nbformat.write(py_to_notebook(src.read_text()), dst)
    elif cmd == "extract":
        src, dst = map(Path, args)
        dst.write_text(notebook_to_py(nbformat.read(src, as_version=4)))
    elif cmd == "run":
        for p in args:
            run(Path(p))
    elif cmd == "strip":
        for p in args:
            if strip_notebook_paths(Path(p)):
                print(f"stripped machine paths from {p}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
