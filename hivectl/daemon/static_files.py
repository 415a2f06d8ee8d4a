"""The web pages: ``hivectl/daemon/static/`` served under ``/ui/`` (one ``StaticFiles`` mount).

The pages are plain files: the console page (``console.html``, ``console*.js``) and the web UI
(``index.html``, ``app*``), and under ``vendor/`` the npm packages they import (xterm.js, noVNC), which
``scripts/build-web`` installs from ``web/package-lock.json``; the vendor files are built, never committed,
so a packaged install runs scripts/build-web before building the package (docs/api.md, "The consoles").
The pages hold no secret: every call they make carries the user's bearer token, and a console's
websocket its single-use ticket (hivectl/daemon/tickets.py).

Every answer gets the security headers below: the pages load scripts and styles only from the daemon
itself (no inline script; xterm.js sets the styles of its own elements, hence ``'unsafe-inline'`` for
styles only), connect only back to it (CSP Level 3's ``'self'`` also covers ``wss:`` to the same host),
are never framed, and send no referrer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"

HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount(app: Any) -> None:
    """Serve ``static/`` under ``/ui/`` with the security headers (nothing when it is not installed)."""
    if not STATIC.is_dir():
        return
    from starlette.staticfiles import StaticFiles

    class Pages(StaticFiles):
        def file_response(self, *args: Any, **kwargs: Any) -> Any:
            response = super().file_response(*args, **kwargs)
            response.headers.update(HEADERS)
            return response

    app.mount(PREFIX, Pages(directory=str(STATIC), html=True), name="ui")
