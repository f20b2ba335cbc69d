"""mkdocs hooks: publish lessons/ (outside docs_dir) and generate the tested-with table at build time."""

from pathlib import Path

from mkdocs.structure.files import File

from snippets.environment import tested_with

ROOT = Path(__file__).resolve().parents[1]
TESTED_WITH_MARK = "{{ tested_with }}"


def on_files(files, config):
    for nb in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        files.append(File(f"lessons/{nb.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def versions_table() -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in tested_with().items())
    return "| package | version |\n|---|---|\n" + rows


def on_page_markdown(markdown, page, config, files):
    if TESTED_WITH_MARK in markdown:
        markdown = markdown.replace(TESTED_WITH_MARK, versions_table())
    return markdown
