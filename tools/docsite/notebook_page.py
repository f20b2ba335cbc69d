"""What a lesson page shows, rewritten from the HTML mkdocs-jupyter made of the stored notebook.

Each function takes and returns HTML; tools/mkdocs_hooks.py applies them in on_page_content. The
notebook itself is never edited: what readers see is tidied here, at render time.
"""

import hashlib
import html
import logging
import re
from pathlib import Path

from latex2mathml.converter import convert as latex_to_mathml
from mkdocs.structure.toc import get_toc

log = logging.getLogger("mkdocs.hooks.cookbook")

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
SNIPPETS = ROOT / "snippets"

CDN_SCRIPTS = [
    # nbconvert's MathJax loader and its configuration block
    re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S),
    # nbconvert's mermaid loader (imports mermaid from a CDN when a diagram is present)
    re.compile(r'<script type="module">(?:(?!</script>).)*?cdnjs\.cloudflare\.com.*?</script>', re.S),
]
CELL_SPLIT = re.compile(r'(?=<div class="jp-Cell )')
PROTECTED = re.compile(r"(<pre.*?</pre>|<code.*?</code>|<script.*?</script>|<style.*?</style>)", re.S)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">\\[(\[](.*?)\\[)\]]</\1>', re.S)


def remove_cdn_scripts(content: str) -> str:
    for pattern in CDN_SCRIPTS:
        content = pattern.sub("", content)
    return content


# ----------------------------------------------------------------------------- math
def mathml(latex: str, display: bool) -> str:
    try:
        return latex_to_mathml(html.unescape(latex).strip(), display="block" if display else "inline")
    except Exception as err:  # a formula latex2mathml cannot parse stays visible as its source
        log.warning("cannot render math %r: %s", latex, err)
        return f"<code>{latex}</code>"


def render_math_in_markdown_cells(content: str) -> str:
    parts = CELL_SPLIT.split(content)
    for i, cell in enumerate(parts):
        if not cell.startswith('<div class="jp-Cell jp-MarkdownCell'):
            continue
        pieces = PROTECTED.split(cell)
        for j in range(0, len(pieces), 2):  # even pieces are outside <pre>, <code>, <script>, <style>
            text = DISPLAY_MATH.sub(lambda m: mathml(m.group(1), True), pieces[j])
            pieces[j] = INLINE_MATH.sub(lambda m: mathml(m.group(1), False), text)
        parts[i] = "".join(pieces)
    return "".join(parts)


def render_arithmatex(content: str) -> str:
    return ARITHMATEX.sub(lambda m: mathml(m.group(2), m.group(1) == "div"), content)


# ----------------------------------------------------------------------------- table of contents
HEADING = re.compile(r'<h([1-6])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def heading_text(inner_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", inner_html)).rstrip("¶").strip()


def notebook_toc(content: str):
    """The table of contents from the headings nbconvert actually wrote (ids included).

    mkdocs-jupyter builds the TOC from a separate Markdown rendering whose ids differ for headings with
    code in them (`## Without `x``): those TOC links pointed nowhere.
    """
    tokens, stack = [], []
    for cell in CELL_SPLIT.split(content):
        if not cell.startswith('<div class="jp-Cell jp-MarkdownCell'):
            continue
        for level, anchor, inner in HEADING.findall(cell):
            token = {"level": int(level), "id": anchor, "name": heading_text(inner), "children": []}
            while stack and stack[-1]["level"] >= token["level"]:
                stack.pop()
            (stack[-1]["children"] if stack else tokens).append(token)
            stack.append(token)
    return get_toc(tokens)  # material shows the title's sections when the page starts with an <h1 id=...>


# ----------------------------------------------------------------------------- links and styles
NOTEBOOK_LESSON_LINK = re.compile(r'href="(?:\./|\.\./lessons/)?(\d\d_\w+)\.ipynb(#[^"]*)?"')
NOTEBOOK_SNIPPET_LINK = re.compile(r'href="(?:\.\./)?snippets/(\w+)\.py"')


def fix_notebook_links(content: str) -> str:
    """Links written for JupyterLab (`10_export_basics.ipynb`, `../snippets/x.py`) -> the site's pages."""

    def lesson(m):
        exists = (LESSONS / f"{m.group(1)}.ipynb").exists()
        return f'href="../{m.group(1)}/{m.group(2) or ""}"' if exists else m.group(0)

    def snippet(m):
        exists = (SNIPPETS / f"{m.group(1)}.py").exists()
        return f'href="../../reference/snippets/{m.group(1)}/"' if exists else m.group(0)

    return NOTEBOOK_SNIPPET_LINK.sub(snippet, NOTEBOOK_LESSON_LINK.sub(lesson, content))


STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
SHARED_CSS: dict[str, str] = {}  # site path -> CSS, written once by on_post_build


def share_notebook_styles(content: str, depth: int) -> str:
    """nbconvert inlines ~580 KB of JupyterLab CSS into every lesson: link one shared copy instead."""

    def link(m):
        css = m.group(1)
        if len(css) < 2000:
            return m.group(0)
        name = f"assets/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
        SHARED_CSS[name] = css
        return f'<link rel="stylesheet" href="{"../" * depth}{name}">'

    return STYLE.sub(link, content)


# ----------------------------------------------------------------------------- reader-facing tidying
# Lint pragmas are for the linter, not for readers: dropped from the code a page shows (and copies).
PRAGMA_SPAN = re.compile(r'[ \t]*<span class="c1">#\s*(?:fmt:\s*(?:skip|off|on)|noqa\b[^<]*)</span>')
PRAGMA_TEXT = re.compile(r"[ \t]*#\s*(?:fmt:\s*(?:skip|off|on)|noqa\b[^\n<]*)")
PRAGMA_LINE = re.compile(r'^[ \t]*<span class="c1">#\s*fmt:\s*(?:off|on)</span>\n', re.M)
CELL_TOOLBAR = re.compile(r'<div class="celltoolbar">.*?</span>\s*</span>\s*</div>\s*</div>\s*', re.S)
COPY_TEXT = re.compile(r'(<div class="clipboard-copy-txt"[^>]*>)(.*?)(</div>)', re.S)


def hide_lint_pragmas(content: str) -> str:
    content = PRAGMA_SPAN.sub("", PRAGMA_LINE.sub("", content))
    return COPY_TEXT.sub(lambda m: m.group(1) + PRAGMA_TEXT.sub("", m.group(2)) + m.group(3), content)


def hide_cell_badges(content: str) -> str:
    """The raises-exception / nbval-ignore-output tags are test plumbing; the error box explains itself."""
    return CELL_TOOLBAR.sub("", content)


# What search should not index: outputs (tracebacks, tables of numbers), the hidden copy of each cell's code
# kept for the copy button, and the In [n] prompts.
NOT_INDEXED = re.compile(
    r'<div class="(?:jp-Cell-outputWrapper|clipboard-copy-txt|jp-InputPrompt jp-InputArea-prompt)"'
)
DIV_TAG = re.compile(r"<div\b|</div>")


def div_end(content: str, start: int) -> int:
    """The index just after the </div> that closes the <div> opening at `start`."""
    depth = 0
    for m in DIV_TAG.finditer(content, start):
        depth += 1 if m.group(0) == "<div" else -1
        if depth == 0:
            return m.end()
    return len(content)


def exclude_from_search(content: str) -> str:
    """Wrap outputs, copy-button text and prompts in <nb-noindex data-search-exclude>.

    material's search skips an excluded element until the first closing tag *of the same name* (it compares
    elements by tag), so a data-search-exclude on a <div> stops at its first inner </div>: a wrapper with a
    tag of its own (a custom element, display: contents in extra.css) is skipped whole.
    """
    out, last = [], 0
    for m in NOT_INDEXED.finditer(content):
        if m.start() < last:
            continue  # inside an element already wrapped
        end = div_end(content, m.start())
        out += [
            content[last : m.start()],
            "<nb-noindex data-search-exclude>",
            content[m.start() : end],
            "</nb-noindex>",
        ]
        last = end
    return "".join(out) + content[last:]


# nbconvert writes the same placeholder alt on every output image: replaced by a numbered one
IMAGE = re.compile(
    r'<img (?:alt="No description has been provided for this image" )?(?:class="" )?(?![^>]*\balt=)([^>]*)>'
)


def label_figures(content: str, title: str) -> str:
    """Output images get alt text (the lesson and a figure number) and open full size when clicked."""
    count = 0

    def alt(m):
        nonlocal count
        count += 1
        return f'<img alt="{html.escape(title)}: figure {count}" class="zoomable" {m.group(1)}>'

    parts = CELL_SPLIT.split(content)
    for i, cell in enumerate(parts):
        if "jp-CodeCell" in cell[:80]:
            parts[i] = IMAGE.sub(alt, cell)
    return "".join(parts)
