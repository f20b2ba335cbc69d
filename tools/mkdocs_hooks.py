"""mkdocs hooks: the parts of the site that are generated at build time, so nothing typed can drift.

- publishes lessons/*.ipynb (outside docs_dir) and builds the whole navigation from the files that exist:
  a new lesson, recipe, page or snippet module appears without editing mkdocs.yml;
- fills in the markers {{ tested_with }}, {{ lesson_table }}, {{ recipe_table }}, {{ snippet_reference }},
  {{ readme_commands }}, {{ path_picture }} (tools/docsite/path_picture.py), {{ glossary_terms }};
- expands `--8<-- "snippets/x.py:name"` to that function's source; captions every recipe code block;
  closes every recipe with what its example printed in the tests, its lesson link, the versions it was
  tested with and its last commit;
- tidies lesson pages (tools/docsite/notebook_page.py, error_cells.py): a download line with the
  measured run time, versions and commit (provenance.py), folded expected-error tracebacks, no lint
  pragmas, outputs kept out of search, figures with alt text that zoom;
- keeps the site offline (no CDN scripts; LaTeX becomes MathML at build time) and free of this machine's
  paths (tools/nb.py's strip_paths over every page, the search index and the notebook downloads);
- makes search treat British and American spellings alike (search_spelling.py);
- builds the Chinese edition under zh/ in the same build (i18n_site.py, issue 17): the functions below
  write Chinese words and zh/ links on zh/ pages.

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
import html
import json
import logging
import posixpath
import re
import sys
from pathlib import Path

import yaml
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `mkdocs` run as a script: make tools/ and snippets/ importable
    sys.path.insert(0, str(ROOT))

from snippets.environment import package_version, tested_with  # noqa: E402
from tools.docsite import error_cells, i18n_site, notebook_page, provenance  # noqa: E402
from tools.docsite.path_picture import path_picture  # noqa: E402
from tools.docsite.recipe_page import (  # noqa: E402
    after_last_example,
    caption_code_blocks,
    include_definitions,
    recipe_output_block,
)
from tools.docsite.search_spelling import add_spelling_variants  # noqa: E402
from tools.nb import strip_paths  # noqa: E402

LESSONS = ROOT / "lessons"
SNIPPETS = ROOT / "snippets"

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
REFERENCE = ["migration.md", "pytorch-tips.md", "glossary.md", "faq.md", "coverage.md"]
GET_THE_CODE = "get-the-code.md"


# ----------------------------------------------------------------------------- lessons
def lesson_files() -> list[Path]:
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def first_markdown(path: Path) -> str:
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        log.warning("cannot read lesson %s: %s", path.name, err)
        return ""
    return next(("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown"), "")


def plain_title(markdown: str) -> str:
    """A heading's text as the page shows it: inline code and emphasis marks dropped, their words kept."""
    text = re.sub(r"`([^`]*)`", r"\1", markdown)
    text = re.sub(r"(\*\*|__|\*)(\S(?:.*?\S)?)\1", r"\2", text)
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).strip()


def lesson_title(path: Path) -> str:
    """The first '# ' heading of the notebook's first markdown cell (as plain text), else the file name."""
    for line in first_markdown(path).splitlines():
        if line.startswith("# "):
            return plain_title(line[2:])
    return path.stem


def page_lesson_title(page, path: Path) -> str:
    """The lesson's title in the language of `page` (the Chinese notebook's first heading on zh/ pages)."""
    if page is not None and i18n_site.is_zh(page):
        title = i18n_site.chinese_lesson_title(path)
        if title:
            return title
    return lesson_title(path)


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
            return plain_title(line[2:])
    return path.stem.replace("-", " ")


def recipe_files(files) -> list[File]:
    return sorted(
        (f for f in files if f.src_uri.startswith("recipes/") and f.src_uri.endswith(".md")),
        key=lambda f: f.src_uri,
    )


# ----------------------------------------------------------------------------- snippet reference
def snippet_modules() -> list[Path]:
    return [p for p in sorted(SNIPPETS.glob("*.py")) if p.name != "__init__.py"]


def snippet_summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def snippet_page(path: Path) -> str:
    """One page per module: a reader opens the module they need, not a 1 MB page of all of them."""
    return f"# snippets/{path.name}\n\n::: snippets.{path.stem}\n"


def snippet_reference(page) -> str:
    """The reference's index: every module with the first line of its docstring."""
    rows = [
        f"| [`{p.name}`]({relative(page, f'reference/snippets/{p.stem}.md')}) | {snippet_summary(p)} |"
        for p in snippet_modules()
    ]
    return "| module | what it does |\n|---|---|\n" + "\n".join(rows)


# ----------------------------------------------------------------------------- navigation
@event_priority(50)  # before mkdocs-jupyter's on_files, which turns lessons/*.ipynb into pages
def on_files(files, config):
    files = i18n_site.without_translation_sources(files)  # x.zh.md becomes zh/x.md, not a page of its own
    for nb in lesson_files():
        files.append(File(f"lessons/{nb.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    for path in snippet_modules():
        files.append(File.generated(config, f"reference/snippets/{path.stem}.md", content=snippet_page(path)))
    config["nav"] = build_nav(files)
    return i18n_site.add_chinese_files(files, config)  # after the English nav: it must not list zh/ pages


def on_config(config):
    i18n_site.load_search_words()
    # truthy but not iterable: material shows the language menu (overrides/partials/alternate.html, filled
    # per page by on_page_context) without its site-wide <link rel="alternate"> and sitemap look-ups
    config.extra["alternate"] = True
    return config


_chinese = {"nav": None, "files": None}


def on_nav(nav, config, files):
    _chinese["nav"] = i18n_site.chinese_navigation(config["nav"], files, config)
    _chinese["files"] = files
    return nav


def on_page_context(context, page, config, nav):
    return i18n_site.page_context(context, page, config, _chinese["files"], _chinese["nav"])


def build_nav(files) -> list:
    """Home, Lessons (by part), Cookbook (by topic), Reference, then any page not placed yet."""
    pages = {f.src_uri for f in files if f.src_uri.endswith((".md", ".ipynb"))}
    placed = set()

    def take(uri):
        placed.add(uri)
        return uri

    nav = [{"Home": take("index.md")}] if "index.md" in pages else []

    lessons = [take(uri) for uri in ("lessons/index.md", GET_THE_CODE) if uri in pages]
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

    reference = []
    modules = [{f"snippets/{p.name}": take(f"reference/snippets/{p.stem}.md")} for p in snippet_modules()]
    if "reference/snippets.md" in pages:
        reference.append({"Snippet reference": [take("reference/snippets.md"), *modules]})
    reference += [take(uri) for uri in REFERENCE if uri in pages]
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
    """Every lesson with what it teaches (its first "What you will learn" point) and its measured time."""
    rows = []
    for nb in lesson_files():
        link = f"[{page_lesson_title(page, nb)}]({relative(page, 'lessons/' + nb.name)})"
        learn = i18n_site.learn_line(page, nb) or provenance.learn_line(first_markdown(nb))
        learn = learn.replace("|", "\\|")
        seconds = provenance.lesson_times().get(nb.name, (None, ""))[0]
        time = f"{max(1, round(seconds))} s" if seconds is not None else ""
        rows.append(f"| {link} | {learn} | {time} |")
    head = "| 课程 | 你将学到 | 用时 |" if i18n_site.is_zh(page) else "| lesson | you will learn | time |"
    return head + "\n|---|---|---|\n" + "\n".join(rows)


def lesson_times_note(page=None) -> str:
    notes = sorted({note for _, note in provenance.lesson_times().values()})
    if page is not None and i18n_site.is_zh(page):
        notes = [i18n_site.times_zh(note) for note in notes]
        return "用时由 nbval 测得（" + "；".join(notes) + "）。" if notes else "本检出还没有给课程计时。"
    if not notes:
        return "No lesson has been timed on this checkout yet, so no times are shown."
    return "Times are nbval's, " + "; ".join(notes) + "."


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
        if i18n_site.is_zh(page):
            title = i18n_site.chinese_page_title(f.src_uri) or title
        order = TOPICS.index(topic) if topic in TOPICS else len(TOPICS)
        rows.append(
            (
                (order, title.lower()),
                f"| {i18n_site.section(page, topic)} | [{title}]({relative(page, f.src_uri)}) | {taught} |",
            )
        )
    head = "| 主题 | 菜谱 | 课程 |" if i18n_site.is_zh(page) else "| topic | recipe | lesson |"
    return head + "\n|---|---|---|\n" + "\n".join(row for _, row in sorted(rows))


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


def repo_clone(config) -> str:
    """The clone command: with mkdocs.yml's repo_url when it is set, else with a placeholder to fill in."""
    url = config.get("repo_url")
    target = url if url else "<the repository's URL>"
    return f"```bash\ngit clone {target} deployment-cookbook\ncd deployment-cookbook\n```"


def relative(page, target_uri: str) -> str:
    """A link from `page` to another source file, as mkdocs resolves links (relative to the page's file).

    On a Chinese page it leads to the Chinese page, except the snippet modules' pages (English only)."""
    depth = page.file.src_uri.count("/")
    if i18n_site.is_zh(page) and not target_uri.startswith("reference/snippets/"):
        target_uri = i18n_site.ZH + target_uri
    return "../" * depth + target_uri


def recipe_footer(page, markdown: str) -> str:
    """Lesson link, included snippet files, tested-with versions and commit of a recipe."""
    meta, uri = page.meta, page.file.src_uri
    zh = i18n_site.is_zh(page)
    lines = ['!!! info "经过测试的代码"' if zh else '!!! info "Tested code"']
    lessons = meta.get("lesson", [])
    lessons = lessons if isinstance(lessons, list) else [lessons]
    if not lessons:
        log.warning("%s: front matter has no 'lesson:' (the lesson that teaches this recipe)", uri)
    for ref in lessons:
        nb = find_lesson(ref)
        if nb is None:
            log.warning("%s: front matter 'lesson: %s' matches no lessons/*.ipynb", uri, ref)
            continue
        link = f"[{page_lesson_title(page, nb)}]({relative(page, 'lessons/' + nb.name)})"
        lines.append(f"    讲解见{link}。" if zh else f"    Taught in {link}.")
    included = sorted(set(re.findall(r'--8<-- "snippets/(\w+)\.py', markdown)))
    if not included:
        log.warning('%s: includes no snippet file (--8<-- "snippets/<file>.py")', uri)
    if included:
        names = ", ".join(
            f"[`snippets/{name}.py`]({relative(page, f'reference/snippets/{name}.md')})" for name in included
        )
        lines.append(
            f"    本页代码来自 {names}：构建网站时从经过测试的文件中直接引入，用法示例由 "
            "`tests/test_site.py` 运行。"
            if zh
            else f"    The code on this page comes from {names}: it is included from the tested file when "
            "the site is built, and the usage example is run by `tests/test_site.py`."
        )
    versions = {name: package_version(name) for name in meta.get("packages", ["torch"])}
    facts = provenance.provenance_line(Path(page.file.abs_src_path), versions)
    lines.append(f"    {i18n_site.provenance_zh(facts)}。" if zh else f"    {facts}.")
    get_code = relative(page, GET_THE_CODE)
    lines.append(f"    想在自己的机器上运行，请先[获取代码]({get_code})。" if zh else
                 f"    To run it on your machine, [get the code]({get_code}).")  # fmt: skip
    return "\n\n" + "\n\n".join(lines) + "\n"


# Pages other chapters own: a link to one that does not exist yet stays plain text instead of breaking
# the strict build.
OPTIONAL_PAGES = re.compile(r"\[([^\]]+)\]\(((?:\.\./)*(?:migration|pytorch-tips)\.md)(#[\w-]+)?\)")


def unlink_missing_optional_pages(markdown: str, page, files) -> str:
    def keep_or_unlink(m):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), m.group(2)))
        return m.group(0) if files.get_file_from_path(target) else m.group(1)

    return OPTIONAL_PAGES.sub(keep_or_unlink, markdown)


def on_page_markdown(markdown, page, config, files):
    if i18n_site.is_zh(page):
        markdown = i18n_site.note_translation_state(markdown, page)
        markdown = i18n_site.point_untranslated_links_to_english(markdown, page, files)
    source = markdown
    markdown = unlink_missing_optional_pages(include_definitions(markdown, page), page, files)
    replacements = {
        "{{ tested_with }}": lambda: versions_table(),
        "{{ lesson_table }}": lambda: lesson_table(page),
        "{{ lesson_times_note }}": lambda: lesson_times_note(page),
        "{{ recipe_table }}": lambda: recipe_table(page, files),
        "{{ snippet_reference }}": lambda: snippet_reference(page),
        "{{ readme_commands }}": readme_commands,
        "{{ repo_clone }}": lambda: repo_clone(config),
        "{{ glossary_terms }}": lambda: i18n_site.glossary_table(page),
    }
    for mark, make in replacements.items():
        if mark in markdown:
            markdown = markdown.replace(mark, make())
    uri = i18n_site.english_uri(page.file.src_uri)
    if uri.startswith("recipes/") and uri != "recipes/index.md":
        markdown = after_last_example(caption_code_blocks(markdown), recipe_output_block(page))
        markdown = i18n_site.recipe_words(markdown, page) + recipe_footer(page, source)
    return markdown


# ----------------------------------------------------------------------------- lesson pages
def lesson_banner(page) -> str:
    """Under the title: download, how to run it, measured time, versions and commit."""
    nb = LESSONS / Path(page.file.src_uri).name
    depth = page.url.count("/")
    time = provenance.lesson_time_text(nb.name)
    facts = provenance.provenance_line(nb, provenance.notebook_versions(nb))
    if i18n_site.is_zh(page):
        return i18n_site.lesson_banner(nb.name, "../" * depth + i18n_site.ZH, time, facts)
    return (
        '<div class="lesson-meta">'
        f'<p><a class="md-button" href="{nb.name}" download>Download {nb.name}</a> '
        f"<span>It imports <code>snippets/</code>: run it inside the project, see "
        f'<a href="{"../" * depth}get-the-code/">get the code</a> (<code>make lab</code>).'
        + (f" Runs in {html.escape(time)}." if time else "")
        + "</span></p>"
        + (f'<p class="lesson-meta__facts">{html.escape(facts)}.</p>' if facts else "")
        + "</div>\n"
    )


LESSON_MENTION = re.compile(r"(?<![\w/.\"'])lessons/(\d\d_\w+)\.ipynb(?![\w\"'])")


def link_lessons(content, page) -> str:
    """Turn 'lessons/NN_x.ipynb' in docstrings into links to the rendered lesson, when it exists."""

    def link(m):
        if not (LESSONS / f"{m.group(1)}.ipynb").exists():
            return m.group(0)
        href = "../" * (page.url.count("/")) + f"lessons/{m.group(1)}/"
        return f'<a href="{href}">{m.group(0)}</a>'

    pieces = notebook_page.PROTECTED.split(content)
    for j in range(0, len(pieces), 2):
        pieces[j] = LESSON_MENTION.sub(link, pieces[j])
    return "".join(pieces)


def lesson_page(content: str, page) -> str:
    nb = LESSONS / Path(page.file.src_uri).name
    content = notebook_page.remove_cdn_scripts(content)
    content = notebook_page.share_notebook_styles(content, page.url.count("/"))
    content = notebook_page.render_math_in_markdown_cells(content)
    content = notebook_page.fix_notebook_links(content)
    content = error_cells.fold_error_outputs(content, nb)
    content = notebook_page.hide_cell_badges(notebook_page.hide_lint_pragmas(content))
    content = notebook_page.exclude_from_search(content)
    if i18n_site.is_zh(page):  # its code is the English page's: searching it there is enough
        content = i18n_site.exclude_code_from_search(content)
    title = page_lesson_title(page, nb)
    content = notebook_page.label_figures(content, title)
    page.toc = notebook_page.notebook_toc(content)
    page.title = title  # mkdocs-jupyter's title drops inline code ("from  to a bit-exact ...")
    # the banner goes under the lesson's title, or on top when the notebook has none
    head, h1, rest = content.partition("</h1>")
    return head + h1 + lesson_banner(page) + rest if h1 else lesson_banner(page) + content


SOURCE_BLOCK = '<details class="mkdocstrings-source">'


def on_page_content(content, page, config, files):
    uri = page.file.src_uri
    if uri.startswith("reference/snippets"):
        content = link_lessons(content, page)
        # the source is on the page, but searching it would only repeat the signature and docstring
        content = content.replace(SOURCE_BLOCK, '<details class="mkdocstrings-source" data-search-exclude>')
    if uri.endswith(".ipynb"):
        content = lesson_page(content, page)
    elif i18n_site.is_zh(page):
        content = i18n_site.exclude_code_blocks_from_search(content)
    if "<p>{{ path_picture }}</p>" in content:
        numbers = [int(nb.name[:2]) for nb in lesson_files()]
        stems = {int(nb.name[:2]): nb.stem for nb in lesson_files()}
        home = "../" * page.url.count("/") + (i18n_site.ZH if i18n_site.is_zh(page) else "")
        picture = path_picture(numbers, lambda n: home + f"lessons/{stems[n]}/")
        content = content.replace("<p>{{ path_picture }}</p>", picture)
    return without_machine_paths(notebook_page.render_arithmatex(content))


def without_machine_paths(text: str) -> str:
    """tools/nb.py's strip_paths, run only where a path can be (its regex is slow on 400 KB pages)."""
    if str(ROOT) in text or "/lib/python" in text:
        return strip_paths(text)
    return text


def on_post_build(config):
    site = Path(config["site_dir"])
    for name, css in notebook_page.SHARED_CSS.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css, encoding="utf-8")
    # the notebook downloads: outputs are stored path-free (tools/nb.py strip); this is the guard
    for download in [*site.glob("lessons/*/*.ipynb"), *site.glob("zh/lessons/*/*.ipynb")]:
        text = download.read_text(encoding="utf-8")
        if without_machine_paths(text) != text:
            log.info("stripped machine paths from the download %s", download.name)
            download.write_text(without_machine_paths(text), encoding="utf-8")
    index = site / "search" / "search_index.json"
    if index.exists():
        add_spelling_variants(index)
