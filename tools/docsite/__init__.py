"""Parts of the docs site's build hooks (tools/mkdocs_hooks.py), one idea per module."""
