"""What a recipe page shows besides its own text, added to its markdown at build time.

- `--8<-- "snippets/x.py:name1,name2"` becomes those definitions' source, from the tested file;
- every ```python block gets a caption: the example the tests run, or the snippet file it shows;
- after the last example, what it printed when tests/docsite/run_examples.py ran it (recorded in
  tests/docsite/recipe_outputs.json, checked against a fresh run by tests/test_site.py).
"""

import ast
import json
import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.cookbook")

ROOT = Path(__file__).resolve().parents[2]
# written by tests/docsite/run_examples.py --record
RECIPE_OUTPUTS = ROOT / "tests" / "docsite" / "recipe_outputs.json"


PART_INCLUDE = re.compile(
    r'^(?P<indent>[ \t]*)--8<-- "(?P<file>snippets/\w+\.py):(?P<names>[\w,]+)"[ \t]*$', re.M
)


def definition_source(path: Path, name: str) -> str:
    """The source of one top-level function or class (with its decorators) of a snippet file."""
    source = path.read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "\n".join(source.splitlines()[first - 1 : node.end_lineno])
    raise ValueError(f"{path.relative_to(ROOT)} has no top-level function or class named {name!r}")


def include_definitions(markdown: str, page) -> str:
    """`--8<-- "snippets/x.py:name1,name2"` includes those definitions from the tested file.

    pymdownx.snippets would need section markers in the snippet files; this keeps them plain Python.
    """

    def expand(m):
        try:
            code = "\n\n\n".join(definition_source(ROOT / m["file"], n) for n in m["names"].split(","))
        except (OSError, ValueError, SyntaxError) as err:
            log.warning("%s: cannot include %s: %s", page.file.src_uri, m.group(0).strip(), err)
            return m.group(0)
        return "\n".join(m["indent"] + line if line else line for line in code.splitlines())

    return PART_INCLUDE.sub(expand, markdown)


FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
INCLUDED_FILE = re.compile(r'--8<-- "(snippets/\w+\.py)')


def caption_code_blocks(markdown: str) -> str:
    """Every recipe code block says what it is: the example the tests run, or the snippet file it shows."""

    def caption(m):
        if "title=" in m["attrs"]:
            return m.group(0)
        included = INCLUDED_FILE.search(m["body"])
        title = included.group(1) if included else "Example (run by the tests)"
        return f'{m["indent"]}```python title="{title}"{m["attrs"]}\n{m["body"]}{m["indent"]}```'

    return FENCE.sub(caption, markdown)


def after_last_example(markdown: str, block: str) -> str:
    """Insert `block` right after the recipe's last example (a ```python block that includes nothing)."""
    examples = [m for m in FENCE.finditer(markdown) if "--8<--" not in m["body"] and not m["indent"]]
    if not block or not examples:
        return markdown + block
    end = examples[-1].end()
    return markdown[:end] + block + markdown[end:]


def recipe_outputs() -> dict[str, str]:
    try:
        return json.loads(RECIPE_OUTPUTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def recipe_output_block(page) -> str:
    """What the recipe's example printed when the tests ran it (tests/docsite/run_examples.py)."""
    printed = recipe_outputs().get(Path(page.file.src_uri).name)
    if printed is None:
        # tests/test_site.py fails on a recipe without a recorded output; the site still builds
        log.info("%s: no recorded output in %s", page.file.src_uri, RECIPE_OUTPUTS.relative_to(ROOT))
        return ""
    if not printed.strip():
        return "\n\n*The example prints nothing: its checks are `assert`s, and they passed in the tests.*\n"
    return f'\n\n```text title="What the example prints (recorded by the tests)"\n{printed.rstrip()}\n```\n'
