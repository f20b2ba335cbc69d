"""mkdocs hooks: the parts of the site that are generated at build time, so nothing typed can drift.

- publishes lessons/*.ipynb (outside docs_dir) and builds the whole navigation from the files that exist:
  a new lesson, recipe or page appears without editing mkdocs.yml;
- fills in the markers {{ tested_with }}, {{ lesson_table }}, {{ recipe_table }}, {{ snippet_reference }},
  {{ readme_commands }};
- expands `--8<-- "snippets/x.py:name"` to that function's source; closes every recipe with its lesson
  link and the versions it was tested with (from its front matter);
- gives every lesson page a line with its download link and how long it runs (build/lesson_times.json);
- draws the home page's path picture (assets/path.svg) with the lesson numbers that exist;
- keeps the site offline: notebook pages lose nbconvert's CDN scripts (MathJax, mermaid) and their
  LaTeX is rendered to MathML at build time instead.

A recipe (cookbook/recipes/<name>.md) starts with front matter and an H1, then shows the problem, a usage
example that tests/test_site.py runs (every ```python block without --8<--), and the tested code:

    ---
    topic: Export to ONNX        # one of TOPICS below: its section in the navigation
    lesson: 10                   # lesson number(s) that teach it: linked at the end of the page
    packages: [torch, onnx]      # shown as "Tested with ..." with the installed versions
    ---
    # Export with a dynamic batch
    ```python title="snippets/onnx_export.py"
    --8<-- "snippets/onnx_export.py:export_onnx"     (one definition; or the whole file without ":name")
    ```
"""

import ast
import hashlib
import html
import json
import logging
import posixpath
import re
from pathlib import Path

import yaml
from latex2mathml.converter import convert as latex_to_mathml
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.structure.toc import get_toc

from snippets.environment import package_version, tested_with

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
SNIPPETS = ROOT / "snippets"
TIMES_FILE = ROOT / "build" / "lesson_times.json"
LESSON_BUDGET_S = 60

log = logging.getLogger("mkdocs.hooks.cookbook")

# Parts of the book, by lesson number (CONTRIBUTING.md: chapters by tens).
PARTS = [
    (0, 0, "Start here"),
    (1, 9, "Everyday PyTorch"),
    (10, 19, "ONNX"),
    (20, 29, "Deployment-friendly detection"),
    (30, 39, "Microcontrollers"),
]
# Recipe topics in reading order; a recipe names one in its front matter (`topic:`).
TOPICS = [
    "Everyday PyTorch",
    "Export to ONNX",
    "Inspect and edit ONNX",
    "Detection models",
    "Quantisation",
    "Microcontrollers",
]
# Reference pages in this order when they exist; any other page is appended after them.
REFERENCE = ["reference/snippets.md", "migration.md", "pytorch-tips.md", "glossary.md", "faq.md"]


# ----------------------------------------------------------------------------- lessons
def lesson_files() -> list[Path]:
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def lesson_title(path: Path) -> str:
    """The first '# ' heading of the notebook's first markdown cell, else the file name."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        log.warning("cannot read lesson %s: %s", path.name, err)
        return path.stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
            break
    return path.stem


def lesson_seconds() -> dict[str, float]:
    """Measured nbval seconds per lesson file name, from the last `pytest` run (may be absent or partial)."""
    try:
        times = json.loads(TIMES_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {Path(k).name: float(v) for k, v in times.items()}


def runtime_text(name: str, times: dict[str, float]) -> str:
    if name in times:
        return f"Runs in about {max(1, round(times[name]))} s (measured under nbval)"
    return f"Time budget: under {LESSON_BUDGET_S} s"


def lesson_part(path: Path) -> str:
    number = int(path.name[:2])
    for low, high, title in PARTS:
        if low <= number <= high:
            return title
    return "More lessons"


def find_lesson(ref) -> Path | None:
    """A lesson by number (10) or stem (10_export_basics): numbers survive a rename of the topic part."""
    ref = str(ref).removesuffix(".ipynb").removeprefix("lessons/")
    for path in lesson_files():
        if path.stem == ref or path.name[:2] == ref.zfill(2):
            return path
    return None


# ----------------------------------------------------------------------------- recipes
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def front_matter(path: Path) -> dict:
    m = FRONT_MATTER.match(path.read_text(encoding="utf-8"))
    return (yaml.safe_load(m.group(1)) or {}) if m else {}


def recipe_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ")


def recipe_files(files) -> list[File]:
    return sorted(
        (f for f in files if f.src_uri.startswith("recipes/") and f.src_uri.endswith(".md")),
        key=lambda f: f.src_uri,
    )


# ----------------------------------------------------------------------------- the path picture
# (row, column, title, first and last lesson number, what you hold at that point); lesson ranges on the
# picture are read from the lessons that exist, so it cannot drift from the book.
PATH_BOXES = [
    (1, 1, "Start here", 0, 0, "versions, seeds"),
    (1, 2, "Everyday PyTorch", 1, 9, "net, state_dict"),
    (1, 3, "Export to ONNX", 10, 12, "model.onnx"),
    (1, 4, "Inside ONNX", 13, 19, "edit, cut, diff"),
    (2, 2, "Detection", 20, 29, "re-param, QAT"),
    (2, 3, "int8 quantisation", 30, 31, "model.tflite"),
    (2, 4, "TFLM, C array", 32, 33, "arena, model.cc"),
    (2, 5, "Cortex-M4", 34, 39, "firmware in QEMU"),
]


def lesson_range(low: int, high: int) -> str:
    numbers = sorted({int(nb.name[:2]) for nb in lesson_files()} & set(range(low, high + 1)))
    if not numbers:
        return "in preparation"
    if len(numbers) == 1:
        return f"lesson {numbers[0]:02d}"
    return f"lessons {numbers[0]:02d}–{numbers[-1]:02d}"


def path_svg() -> str:
    """The home page's picture of the path through the book, as SVG (system fonts: nothing to download)."""
    width, height, box_w, box_h = 960, 250, 160, 78
    col = lambda c: 20 + (c - 1) * 190  # noqa: E731
    row = {1: 20, 2: 150}
    blue, orange = ("#e8eaf6", "#3949ab"), ("#fff3e0", "#e65100")
    mono = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" role="img">',
        "<title>The path through the book: PyTorch, ONNX, detection, int8 quantisation, TensorFlow Lite "
        "Micro, a C array, firmware on a Cortex-M4</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]

    def text(x, y, s, size, fill="#222", extra=""):
        out.append(f'<text x="{x}" y="{y}" text-anchor="middle" font-size="{size}" fill="{fill}"{extra}>'
                   f"{html.escape(s)}</text>")  # fmt: skip

    def arrow(x1, y1, x2, y2):
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" stroke-width="2" '
                   'marker-end="url(#arrow)"/>')  # fmt: skip

    for r, c, title, low, high, holds in PATH_BOXES:
        (fill, stroke), x, y = (blue if r == 1 else orange), col(c), row[r]
        out.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="10" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="2"/>')  # fmt: skip
        text(x + box_w / 2, y + 24, title, 15, extra=' font-weight="bold"')
        text(x + box_w / 2, y + 45, lesson_range(low, high), 13, "#444")
        text(x + box_w / 2, y + 65, holds, 13, stroke, f' font-family="{mono}"')
    x, y = col(5), row[1]
    out.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="10" fill="none" '
               'stroke="#3949ab" stroke-width="2" stroke-dasharray="6 4"/>')  # fmt: skip
    text(x + box_w / 2, y + 34, "ONNX Runtime", 15, extra=' font-weight="bold"')
    text(x + box_w / 2, y + 55, "server, PC, phone", 13, "#444")
    for r, columns in ((1, range(1, 5)), (2, range(2, 5))):
        for c in columns:
            arrow(col(c) + box_w + 2, row[r] + box_h / 2, col(c + 1) - 3, row[r] + box_h / 2)
    arrow(col(2) + box_w / 2, row[1] + box_h + 2, col(2) + box_w / 2, row[2] - 3)
    out.append(f'<text x="{col(2) + box_w / 2 + 8}" y="{(row[1] + box_h + row[2]) / 2 + 5}" font-size="12" '
               'fill="#555">for a microcontroller</text>')  # fmt: skip
    return "\n".join([*out, "</svg>"]) + "\n"


# ----------------------------------------------------------------------------- navigation
@event_priority(50)  # before mkdocs-jupyter's on_files, which turns lessons/*.ipynb into pages
def on_files(files, config):
    for nb in lesson_files():
        files.append(File(f"lessons/{nb.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    files.append(File.generated(config, "assets/path.svg", content=path_svg()))
    config["nav"] = build_nav(files)
    return files


def build_nav(files) -> list:
    """Home, Lessons (by part), Cookbook (by topic), Reference, then any page not placed yet."""
    pages = {f.src_uri for f in files if f.src_uri.endswith((".md", ".ipynb"))}
    placed = set()

    def take(uri):
        placed.add(uri)
        return uri

    nav = [{"Home": take("index.md")}] if "index.md" in pages else []

    lessons = [] if "lessons/index.md" not in pages else [take("lessons/index.md")]
    by_part: dict[str, list] = {}
    for nb in lesson_files():
        by_part.setdefault(lesson_part(nb), []).append({lesson_title(nb): take(f"lessons/{nb.name}")})
    lessons += [{part: entries} for part, entries in by_part.items()]
    if lessons:
        nav.append({"Lessons": lessons})

    recipes = [] if "recipes/index.md" not in pages else [take("recipes/index.md")]
    by_topic: dict[str, list] = {topic: [] for topic in TOPICS}
    for f in recipe_files(files):
        if f.src_uri == "recipes/index.md":
            continue
        topic = front_matter(Path(f.abs_src_path)).get("topic")
        if topic not in by_topic:
            log.warning("%s: front matter 'topic: %s' is not one of %s", f.src_uri, topic, TOPICS)
            topic = TOPICS[-1]
        by_topic[topic].append({recipe_title(Path(f.abs_src_path)): take(f.src_uri)})
    recipes += [  # alphabetical within a topic, like the table on the cookbook's index page
        {topic: sorted(entries, key=lambda entry: next(iter(entry)).lower())}
        for topic, entries in by_topic.items()
        if entries
    ]
    if recipes:
        nav.append({"Cookbook": recipes})

    reference = [take(uri) for uri in REFERENCE if uri in pages]
    reference += [take(uri) for uri in sorted(pages - placed) if uri.endswith(".md")]
    if reference:
        nav.append({"Reference": reference})
    return nav


# ----------------------------------------------------------------------------- generated markdown
def versions_table(packages=None) -> str:
    versions = tested_with(packages) if packages else tested_with()
    rows = "\n".join(f"| {k} | {v} |" for k, v in versions.items())
    return "| package | version |\n|---|---|\n" + rows


def lesson_table(page) -> str:
    times = lesson_seconds()
    rows = [
        f"| {lesson_part(nb)} | [{lesson_title(nb)}]({relative(page, 'lessons/' + nb.name)}) "
        f"| {runtime_text(nb.name, times)} |"
        for nb in lesson_files()
    ]
    return "| part | lesson | time |\n|---|---|---|\n" + "\n".join(rows)


def recipe_table(page, files) -> str:
    """Every recipe with its topic and the lesson that teaches it, in the navigation's order."""
    rows = []
    for f in recipe_files(files):
        if f.src_uri == "recipes/index.md":
            continue
        meta, title = front_matter(Path(f.abs_src_path)), recipe_title(Path(f.abs_src_path))
        refs = meta.get("lesson", [])
        lessons = [nb for nb in map(find_lesson, refs if isinstance(refs, list) else [refs]) if nb]
        taught = ", ".join(f"[{nb.name[:2]}]({relative(page, 'lessons/' + nb.name)})" for nb in lessons)
        topic = meta.get("topic", "")
        order = TOPICS.index(topic) if topic in TOPICS else len(TOPICS)
        rows.append(
            ((order, title.lower()), f"| {topic} | [{title}]({relative(page, f.src_uri)}) | {taught} |")
        )
    return "| topic | recipe | lesson |\n|---|---|---|\n" + "\n".join(row for _, row in sorted(rows))


def readme_commands() -> str:
    """The README's first ```bash block (its "two commands"), so the home page cannot drift from it."""
    readme = ROOT / "README.md"
    m = (
        re.search(r"^```bash\n.*?^```$", readme.read_text(encoding="utf-8"), re.M | re.S)
        if readme.exists()
        else None
    )
    if m is None:
        log.warning("README.md has no ```bash block for the home page's commands")
        return ""
    return m.group(0)


def snippet_reference() -> str:
    """One mkdocstrings block per snippets/*.py module: a new snippet file appears by itself."""
    blocks = []
    for path in sorted(SNIPPETS.glob("*.py")):
        if path.name != "__init__.py":
            blocks.append(f"::: snippets.{path.stem}\n")
    return "\n".join(blocks)


def relative(page, target_uri: str) -> str:
    """A link from `page` to another source file, as mkdocs resolves links (relative to the page's file)."""
    depth = page.file.src_uri.count("/")
    return "../" * depth + target_uri


def recipe_footer(page, markdown: str) -> str:
    """Lesson link, included snippet files and tested-with versions of a recipe, from its front matter."""
    meta, uri = page.meta, page.file.src_uri
    lines = ['!!! info "Tested code"']
    lessons = meta.get("lesson", [])
    lessons = lessons if isinstance(lessons, list) else [lessons]
    if not lessons:
        log.warning("%s: front matter has no 'lesson:' (the lesson that teaches this recipe)", uri)
    for ref in lessons:
        nb = find_lesson(ref)
        if nb is None:
            log.warning("%s: front matter 'lesson: %s' matches no lessons/*.ipynb", uri, ref)
            continue
        lines.append(f"    Taught in [{lesson_title(nb)}]({relative(page, 'lessons/' + nb.name)}).")
    included = sorted(set(re.findall(r'--8<-- "snippets/(\w+)\.py', markdown)))
    if not included:
        log.warning('%s: includes no snippet file (--8<-- "snippets/<file>.py")', uri)
    if included:
        names = ", ".join(
            f"[`snippets/{name}.py`]({relative(page, 'reference/snippets.md')}#snippets.{name})"
            for name in included
        )
        lines.append(
            f"    The code on this page comes from {names}: it is included from the tested file when "
            "the site is built, and the usage example is run by `tests/test_site.py`."
        )
    packages = meta.get("packages", ["torch"])
    versions = ", ".join(f"{name} {package_version(name)}" for name in packages)
    lines.append(f"    Tested with {versions}.")
    return "\n\n" + "\n\n".join(lines) + "\n"


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


# Pages other chapters own: a link to one that does not exist yet stays plain text instead of breaking
# the strict build.
OPTIONAL_PAGES = re.compile(r"\[([^\]]+)\]\(((?:\.\./)*(?:migration|pytorch-tips)\.md)(#[\w-]+)?\)")


def unlink_missing_optional_pages(markdown: str, page, files) -> str:
    def keep_or_unlink(m):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), m.group(2)))
        return m.group(0) if files.get_file_from_path(target) else m.group(1)

    return OPTIONAL_PAGES.sub(keep_or_unlink, markdown)


def on_page_markdown(markdown, page, config, files):
    source = markdown
    markdown = unlink_missing_optional_pages(include_definitions(markdown, page), page, files)
    replacements = {
        "{{ tested_with }}": lambda: versions_table(),
        "{{ lesson_table }}": lambda: lesson_table(page),
        "{{ recipe_table }}": lambda: recipe_table(page, files),
        "{{ snippet_reference }}": snippet_reference,
        "{{ readme_commands }}": readme_commands,
    }
    for mark, make in replacements.items():
        if mark in markdown:
            markdown = markdown.replace(mark, make())
    uri = page.file.src_uri
    if uri.startswith("recipes/") and uri != "recipes/index.md":
        markdown += recipe_footer(page, source)
    return markdown


# ----------------------------------------------------------------------------- lesson pages
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


HEADING = re.compile(r'<h([1-6])[^>]*\bid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


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
            name = html.unescape(re.sub(r"<[^>]+>", "", inner)).rstrip("¶").strip()
            token = {"level": int(level), "id": anchor, "name": name, "children": []}
            while stack and stack[-1]["level"] >= token["level"]:
                stack.pop()
            (stack[-1]["children"] if stack else tokens).append(token)
            stack.append(token)
    return get_toc(tokens)  # material shows the title's sections when the page starts with an <h1 id=...>


NOTEBOOK_LESSON_LINK = re.compile(r'href="(?:\./|\.\./lessons/)?(\d\d_\w+)\.ipynb(#[^"]*)?"')
NOTEBOOK_SNIPPET_LINK = re.compile(r'href="(?:\.\./)?snippets/(\w+)\.py"')


def fix_notebook_links(content: str) -> str:
    """Links written for JupyterLab (`10_export_basics.ipynb`, `../snippets/x.py`) -> the site's pages."""

    def lesson(m):
        exists = (LESSONS / f"{m.group(1)}.ipynb").exists()
        return f'href="../{m.group(1)}/{m.group(2) or ""}"' if exists else m.group(0)

    def snippet(m):
        exists = (SNIPPETS / f"{m.group(1)}.py").exists()
        return f'href="../../reference/snippets/#snippets.{m.group(1)}"' if exists else m.group(0)

    return NOTEBOOK_SNIPPET_LINK.sub(snippet, NOTEBOOK_LESSON_LINK.sub(lesson, content))


def lesson_banner(page) -> str:
    name = Path(page.file.src_uri).name
    return (
        '<p class="lesson-meta">'
        f'<a class="md-button" href="{name}" download>Download {name}</a> '
        f"<span>{runtime_text(name, lesson_seconds())}. "
        "Run it yourself: <code>make lab</code>.</span></p>\n"
    )


LESSON_MENTION = re.compile(r"(?<![\w/.\"'])lessons/(\d\d_\w+)\.ipynb(?![\w\"'])")


def link_lessons(content, page) -> str:
    """Turn 'lessons/NN_x.ipynb' in docstrings into links to the rendered lesson, when it exists."""

    def link(m):
        if not (LESSONS / f"{m.group(1)}.ipynb").exists():
            return m.group(0)
        href = "../" * (page.url.count("/")) + f"lessons/{m.group(1)}/"
        return f'<a href="{href}">{m.group(0)}</a>'

    pieces = PROTECTED.split(content)
    for j in range(0, len(pieces), 2):
        pieces[j] = LESSON_MENTION.sub(link, pieces[j])
    return "".join(pieces)


STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
SHARED_CSS: dict[str, str] = {}  # site path -> CSS, written once by on_post_build


def share_notebook_styles(content: str, page) -> str:
    """nbconvert inlines ~580 KB of JupyterLab CSS into every lesson: link one shared copy instead.

    Pages shrink to their content, the browser caches the CSS once, and search indexing gets faster.
    """

    def link(m):
        css = m.group(1)
        if len(css) < 2000:
            return m.group(0)
        name = f"assets/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
        SHARED_CSS[name] = css
        return f'<link rel="stylesheet" href="{"../" * page.url.count("/")}{name}">'

    return STYLE.sub(link, content)


def on_post_build(config):
    for name, css in SHARED_CSS.items():
        path = Path(config["site_dir"]) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css, encoding="utf-8")


def on_page_content(content, page, config, files):
    if page.file.src_uri == "reference/snippets.md":
        content = link_lessons(content, page)
    if page.file.src_uri.endswith(".ipynb"):
        for pattern in CDN_SCRIPTS:
            content = pattern.sub("", content)
        content = render_math_in_markdown_cells(share_notebook_styles(content, page))
        content = fix_notebook_links(content)
        page.toc = notebook_toc(content)
        # the banner goes under the lesson's title, or on top when the notebook has none
        head, h1, rest = content.partition("</h1>")
        content = head + h1 + lesson_banner(page) + rest if h1 else lesson_banner(page) + content
    return ARITHMATEX.sub(lambda m: mathml(m.group(2), m.group(1) == "div"), content)
