"""Expected-failure cells (nbval's `raises-exception` tag) as a compact error box.

A stored IPython traceback runs through library internals for thousands of pixels, with the one line a
reader needs at its bottom. The page shows instead: the exception type and message and the line of the
cell that raised, with the full traceback folded in a closed <details>. Everything comes from the
notebook's stored error output, so nothing is typed.
"""

import html
import json
import re
import textwrap
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CELL_ID = re.compile(r'<div class="jp-Cell [^"]*" id="cell-id=([^"]+)">')
STDERR_OUTPUT = re.compile(
    r'<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="application/vnd\.jupyter\.stderr"'
    r"[^>]*>\s*<pre>.*?</pre>\s*</div>",
    re.S,
)
CELL_FRAME = re.compile(r"^\s*Cell In\s*\[(\d+)\], line (\d+)", re.M)
ARROW = re.compile(r"^-+> ?(\d+)\s?(.*)$")
CONTEXT = re.compile(r"^\s+(\d+)\s?(.*)$")
MESSAGE_LINES = 6


def plain(text: str) -> str:
    return ANSI.sub("", text)


def raising_line(traceback: list[str]) -> tuple[str, str] | None:
    """('In [4], line 2', code) for the cell's own frame: the line the reader ran that raised.

    A statement spread over several lines keeps its continuation lines (up to three).
    """
    for frame in map(plain, traceback):
        m = CELL_FRAME.search(frame)
        if not m:
            continue
        lines = frame[m.end() :].splitlines()
        for i, line in enumerate(lines):
            arrow = ARROW.match(line)
            if arrow:
                code = [arrow.group(2)]
                for more in lines[i + 1 : i + 4]:
                    cont = CONTEXT.match(more)
                    if not cont or not code[-1].rstrip().endswith(("(", ",", "[", "{", "\\")):
                        break
                    code.append(cont.group(2))
                return f"In [{m.group(1)}], line {m.group(2)}", textwrap.dedent("\n".join(code))
        # a SyntaxError raised by compile()/exec() names the cell's line without an arrow: the next line
        code = next((line.strip() for line in lines if line.strip()), "")
        return f"In [{m.group(1)}], line {m.group(2)}", code
    return None


def error_box(error: dict, original: str) -> str:
    """The box for one stored error output; `original` is the traceback HTML nbconvert made."""
    name, message = plain(error.get("ename", "Error")), plain(error.get("evalue", "")).strip()
    lines = message.splitlines()
    shown = "\n".join(lines[:MESSAGE_LINES]) + ("\n…" if len(lines) > MESSAGE_LINES else "")
    where = raising_line(error.get("traceback", []))
    label = "Expected error: the tests check that this cell still raises it."
    parts = ['<div class="nb-error">', f'<p class="nb-error__label">{label}</p>']
    if where:
        parts.append(
            f'<p class="nb-error__where">{html.escape(where[0])}</p>'
            f'<pre class="nb-error__line"><code>{html.escape(where[1])}</code></pre>'
        )
    parts.append(
        f'<pre class="nb-error__message"><strong>{html.escape(name)}</strong>: {html.escape(shown)}</pre>'
    )
    frames = len(error.get("traceback", []))
    parts.append(f"<details><summary>Full traceback ({frames} frames)</summary>{original}</details>")
    return "\n".join([*parts, "</div>"])


def fold_error_outputs(content: str, notebook: Path) -> str:
    """Replace the traceback of every cell whose stored outputs end in an error by its error box."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return content
    errors = {
        c.get("id"): c["outputs"][-1]
        for c in cells
        if c.get("outputs") and c["outputs"][-1].get("output_type") == "error"
    }
    if not errors:
        return content
    starts = [(m.start(), m.group(1)) for m in CELL_ID.finditer(content)]
    out, last = [], 0
    for i, (start, cell_id) in enumerate(starts):
        if cell_id not in errors:
            continue
        end = starts[i + 1][0] if i + 1 < len(starts) else len(content)
        cell = content[start:end]
        tracebacks = list(STDERR_OUTPUT.finditer(cell))
        if not tracebacks:
            continue
        m = tracebacks[-1]  # the error is the cell's last output
        out += [
            content[last:start],
            cell[: m.start()],
            error_box(errors[cell_id], m.group(0)),
            cell[m.end() :],
        ]
        last = end
    return "".join(out) + content[last:]
