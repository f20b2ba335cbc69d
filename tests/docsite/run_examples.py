"""Run the usage examples of cookbook recipes: every ```python block that is not an `--8<--` include.

    python -m tests.docsite.run_examples cookbook/recipes/a.md cookbook/recipes/b.md   # prints JSON
    python -m tests.docsite.run_examples --record cookbook/recipes/*.md   # rewrites recipe_outputs.json

One process for all recipes (torch is imported once); each recipe runs in a fresh namespace and a fresh
temporary working directory, its blocks in order. Prints {recipe file name: {"result": "ok" or the
traceback, "printed": what the example printed}}. The site shows each recipe's recorded output
(RECORDED, written by --record from such a run); tests/test_site.py checks it equals a fresh run.
"""

import contextlib
import io
import json
import os
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

RECORDED = Path(__file__).with_name("recipe_outputs.json")
BLOCK = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def examples(markdown: str) -> list[str]:
    """The recipe's runnable code blocks, dedented; blocks that include snippet source are skipped."""
    blocks = []
    for m in BLOCK.finditer(markdown):
        indent = len(m["indent"])
        body = "\n".join(line[indent:] for line in m["body"].splitlines())
        if "--8<--" not in body:
            blocks.append(body)
    return blocks


def run(path: Path) -> dict[str, str]:
    """{"result": "ok" or the traceback, "printed": stdout of the recipe's examples}."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = run_blocks(path)
    return {"result": result, "printed": printed.getvalue()}


def run_blocks(path: Path) -> str:
    namespace = {"__name__": "__main__"}  # as in a script: `if __name__ == "__main__":` blocks run
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(tmp)
        try:
            for i, code in enumerate(examples(path.read_text(encoding="utf-8"))):
                # a real file, so that inspect.getsource works (onnxscript.script needs it)
                block = Path(tmp) / f"{path.stem.replace('-', '_')}_block{i + 1}.py"
                block.write_text(code, encoding="utf-8")
                exec(compile(code, str(block), "exec"), namespace)
        except BaseException:  # noqa: B036 (report every failure, SystemExit included)
            return traceback.format_exc(limit=-4)
        finally:
            os.chdir(home)
    return "ok"


def main(args: list[str]) -> None:
    record = "--record" in args
    paths = [a for a in args if a != "--record"]
    results = {Path(p).name: run(Path(p).resolve()) for p in paths}
    sys.stdout.flush()
    if record:
        failed = sorted(name for name, r in results.items() if r["result"] != "ok")
        old = json.loads(RECORDED.read_text(encoding="utf-8")) if RECORDED.exists() else {}
        printed = {name: r["printed"] for name, r in results.items() if r["result"] == "ok"}
        printed = dict(sorted({**old, **printed}.items()))  # a failing example keeps its last good output
        RECORDED.write_text(json.dumps(printed, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"recorded {len(results) - len(failed)} recipes' output in {RECORDED.name}; failing: {failed}")
        raise SystemExit(1 if failed else 0)
    print("\n@@RESULTS@@" + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
