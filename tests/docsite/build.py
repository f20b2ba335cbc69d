"""Build the docs site once per test run (into a temporary folder) and serve it on 127.0.0.1.

Both tests/test_site.py and tests/test_site_browser.py use the same build: `built_site()` is cached.
"""

import atexit
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Build:
    site: Path  # the built site
    returncode: int
    log: str  # everything mkdocs printed


@functools.cache
def built_site() -> Build:
    """`mkdocs build --strict` into a temporary folder, exactly as `make site` runs it."""
    site = Path(tempfile.mkdtemp(prefix="cookbook-site-"))
    atexit.register(shutil.rmtree, site, ignore_errors=True)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return Build(site, result.returncode, result.stdout + result.stderr)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve(site: Path):
    """Serve `site` on 127.0.0.1 at a free port; yields the base URL ('http://127.0.0.1:PORT/')."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
