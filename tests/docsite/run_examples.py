"""Run the usage examples of cookbook recipes: every ```python block that is not an `--8<--` include.

    python -m tests.docsite.run_examples cookbook/recipes/a.md cookbook/recipes/b.md   # prints JSON

One process for all recipes (torch is imported once); each recipe runs in a fresh namespace and a fresh
temporary working directory, its blocks in order. Prints {recipe file name: "ok" or the traceback}.
"""

import json
import os
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

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


def run(path: Path) -> str:
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


def main(paths: list[str]) -> None:
    results = {Path(p).name: run(Path(p).resolve()) for p in paths}
    sys.stdout.flush()
    print("\n@@RESULTS@@" + json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
