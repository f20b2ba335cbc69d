"""The docs site, checked from the built files: strict build, links, navigation, search, offline.

The site is built once per run by tests/docsite/build.py (`mkdocs build --strict`, as `make site` does).
References are the source files themselves: lessons/*.ipynb, cookbook/recipes/*.md, snippets/*.py
and the installed package versions.
"""

import ast
import html
import importlib.metadata
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.docsite.build import ROOT, built_site
from tests.docsite.run_examples import examples

LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
RECIPES = sorted(p for p in (ROOT / "cookbook" / "recipes").glob("*.md") if p.name != "index.md")
SNIPPETS = sorted(p for p in (ROOT / "snippets").glob("*.py") if p.name != "__init__.py")
# Attributes that make a browser fetch something when the page is viewed.
FETCHING = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "use": ("href", "xlink:href"),
    "image": ("href", "xlink:href"),
}
CDN_HOSTS = re.compile(r"cdnjs|jsdelivr|unpkg|googleapis|gstatic|cloudflare|bootstrapcdn|fontawesome")


class Page(HTMLParser):
    """Links, fetched resources, ids, nav links and inline CSS of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.fetches, self.ids, self.nav_links, self.css = [], [], set(), [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
            if "md-nav__link" in (attrs.get("class") or ""):
                self.nav_links.append(attrs["href"])
        for name in FETCHING.get(tag, ()):
            value = attrs.get(name)
            if value and name == "srcset":
                self.fetches.extend(u.strip().split(" ")[0] for u in value.split(","))
            elif value:
                self.fetches.append(value.strip())
        if attrs.get("style"):
            self.css.append(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def page_url(site: Path, path: Path) -> str:
    """The URL path of a built file, with a scheme-less base so urljoin resolves relative links."""
    return "http://site/" + path.relative_to(site).as_posix()


def target_file(site: Path, url: str) -> Path | None:
    """The built file a site-internal URL points at (folder URLs serve index.html), or None if external."""
    parts = urlsplit(url)
    if parts.netloc != "site":
        return None
    path = site / unquote(parts.path.lstrip("/"))
    return path / "index.html" if path.is_dir() else path


def is_external(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)) and not url.startswith("data:")


@pytest.fixture(scope="module")
def site() -> Path:
    build = built_site()
    assert build.returncode == 0, build.log[-5000:]
    return build.site


@pytest.fixture(scope="module")
def pages(site) -> dict[Path, Page]:
    return {path: parse(path) for path in sorted(site.rglob("*.html"))}


def test_build_is_strict_and_has_no_warnings():
    build = built_site()
    assert build.returncode == 0, build.log[-5000:]
    warnings = [line for line in build.log.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)


def test_internal_links_and_anchors_resolve(site, pages):
    broken = []
    for path, page in pages.items():
        base = page_url(site, path)
        for href in page.links + page.fetches:
            if href.startswith(("mailto:", "data:", "javascript:", "blob:")) or is_external(href):
                continue
            url = urljoin(base, href)
            target = target_file(site, url)
            if target is None or not target.exists():
                broken.append(f"{path.relative_to(site)}: {href}")
                continue
            fragment = unquote(urlsplit(url).fragment)
            if fragment and target.suffix == ".html" and fragment not in pages[target].ids:
                broken.append(f"{path.relative_to(site)}: {href} (no id '{fragment}')")
    assert not broken, "\n".join(broken[:50])


def nav_targets(site, pages) -> set[Path]:
    index = site / "index.html"
    return {target_file(site, urljoin(page_url(site, index), href)) for href in pages[index].nav_links}


def test_navigation_lists_every_lesson_and_recipe(site, pages):
    targets = nav_targets(site, pages)
    expected = [site / "lessons" / nb.stem / "index.html" for nb in LESSONS]
    expected += [site / "recipes" / md.stem / "index.html" for md in RECIPES]
    expected += [site / "reference" / "snippets" / "index.html", site / "glossary" / "index.html"]
    missing = [str(p.relative_to(site)) for p in expected if p not in targets]
    assert not missing, f"not reachable from the navigation: {missing}"


def test_search_index_covers_lessons_and_recipes(site):
    docs = json.loads((site / "search" / "search_index.json").read_text())["docs"]
    text = {}
    for doc in docs:
        page = doc["location"].split("#")[0]
        text[page] = text.get(page, "") + " " + doc["title"] + " " + doc["text"]
    for nb in LESSONS:
        assert len(text.get(f"lessons/{nb.stem}/", "")) > 200, f"lesson {nb.name} is not in the search index"
    for md in RECIPES:
        assert len(text.get(f"recipes/{md.stem}/", "")) > 200, f"recipe {md.name} is not in the search index"


def test_no_page_loads_anything_from_another_host(site, pages):
    offenders = []
    for path, page in pages.items():
        for url in page.fetches:
            if is_external(url):
                offenders.append(f"{path.relative_to(site)}: fetches {url}")
        for css in page.css:
            for url in re.findall(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", css):
                if is_external(url):
                    offenders.append(f"{path.relative_to(site)}: CSS loads {url}")
        for host in set(CDN_HOSTS.findall(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(site)}: mentions CDN host '{host}'")
    for css_file in site.rglob("*.css"):
        for url in re.findall(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""", css_file.read_text()):
            if is_external(url):
                offenders.append(f"{css_file.relative_to(site)}: loads {url}")
    assert not offenders, "\n".join(sorted(set(offenders))[:50])


@pytest.mark.parametrize("nb", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_page_has_outputs_download_and_run_time(site, nb):
    page = site / "lessons" / nb.stem / "index.html"
    text = page.read_text(encoding="utf-8")
    assert (site / "lessons" / nb.stem / nb.name).read_bytes() == nb.read_bytes(), (
        "download is not the lesson"
    )
    assert f'href="{nb.name}" download' in text
    assert re.search(r"Runs in about \d+ s|Time budget: under \d+ s", text)
    # every stored text output appears on the page (nbval checked these outputs)
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                first = next((s.strip() for s in "".join(out["text"]).splitlines() if s.strip()), "")
                assert html.escape(first, quote=False) in text or first in html.unescape(text), first


INCLUDE = re.compile(r'--8<-- "(snippets/\w+\.py)(?::([\w,]+))?"')


def definition_lines(source: str, names: list[str] | None) -> list[str]:
    """First source line of the named top-level definitions (all of them when names is None)."""
    lines = source.splitlines()
    found = {
        node.name: lines[node.lineno - 1]
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    if names is None:
        return list(found.values())
    missing = [n for n in names if n not in found]
    assert not missing, f"no top-level definition {missing}"
    return [found[n] for n in names]


@pytest.mark.parametrize("md", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_includes_tested_snippet_and_links_its_lesson(site, md):
    includes = INCLUDE.findall(md.read_text(encoding="utf-8"))
    assert includes, f"{md.name} includes no snippet file"
    page = (site / "recipes" / md.stem / "index.html").read_text(encoding="utf-8")
    built = html.unescape(re.sub(r"<[^>]+>", "", page))
    for name, parts in includes:
        source = (ROOT / name).read_text(encoding="utf-8")
        for line in definition_lines(source, parts.split(",") if parts else None):
            assert line in built, f"{name}: {line!r} is not on the page of {md.name}"
    assert re.search(r'href="\.\./\.\./lessons/\d\d_\w+/', page), f"{md.name} links no lesson"
    assert "Tested with" in built


def test_snippet_reference_lists_every_module(site, pages):
    ids = pages[site / "reference" / "snippets" / "index.html"].ids
    missing = [p.stem for p in SNIPPETS if f"snippets.{p.stem}" not in ids]
    assert not missing, f"snippet modules missing from the reference page: {missing}"


def test_home_page_shows_versions_of_this_environment(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    for name in ("torch", "onnx", "onnxruntime"):
        assert f"<td>{importlib.metadata.version(name)}</td>" in text, name
    assert (site / "assets" / "path.svg").exists() and 'src="assets/path.svg"' in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.search(r"^```bash\n(.*?)^```$", readme, re.M | re.S).group(1)
    shown = html.unescape(re.sub(r"<[^>]+>", "", text))
    for line in commands.splitlines():
        assert line in shown, f"the README's command {line!r} is not on the home page"


@pytest.fixture(scope="module")
def example_results() -> dict[str, str]:
    """Every recipe's usage example, run once in one process by tests/docsite/run_examples.py."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.docsite.run_examples", *map(str, RECIPES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "@@RESULTS@@" in result.stdout, (result.stdout + result.stderr)[-3000:]
    return json.loads(result.stdout.split("@@RESULTS@@")[-1])


@pytest.mark.parametrize("md", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_usage_example_runs(example_results, md):
    assert examples(md.read_text(encoding="utf-8")), f"{md.name} shows no usage example"
    assert example_results[md.name] == "ok", example_results[md.name]


def test_math_is_rendered_at_build_time(site):
    """No MathJax download: formulas are MathML in the built page (the glossary's scale entry)."""
    text = (site / "glossary" / "index.html").read_text(encoding="utf-8")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in text
    assert "arithmatex" not in text and "\\(" not in text


def test_notebook_math_becomes_mathml_but_code_and_prices_do_not():
    """The hook's notebook pass on a made-up markdown cell (nbconvert leaves $...$ for MathJax)."""
    hooks = importlib.import_module("tools.mkdocs_hooks")
    cell = (
        '<div class="jp-Cell jp-MarkdownCell"><p>scale $s$ and $$q = x / s$$ but <code>$HOME</code></p>'
        "<pre>echo $PATH $USER</pre></div>"
    )
    out = hooks.render_math_in_markdown_cells(cell)
    assert out.count("<math") == 2 and 'display="block"' in out
    assert "<code>$HOME</code>" in out and "<pre>echo $PATH $USER</pre>" in out
    code_cell = '<div class="jp-Cell jp-CodeCell"><p>$x$</p></div>'
    assert hooks.render_math_in_markdown_cells(code_cell) == code_cell
