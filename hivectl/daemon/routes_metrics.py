"""``GET /metrics``: the host's and its guests' metrics in Prometheus text (docs/metrics.md).

Served outside ``/1.0`` because that is where scrapers look for it (Prometheus's default
``metrics_path``), by the same collection as ``hivectl metrics`` (``hivectl/metrics/collect.py``), through
one :class:`~hivectl.metrics.exposition.ScrapeCache` per application: a collection is reused for five
seconds, and scrapers arriving while one runs wait for it rather than starting their own. Reading metrics
is the ``viewer`` role on ``/`` (security.py): the guest names and their activity are the host's business.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hivectl.daemon import security
from hivectl.metrics.exposition import CONTENT_TYPE, ScrapeCache

_LOCK = threading.Lock()
PRINCIPAL = Depends(security.principal_of)


def cache_of(request: Request) -> ScrapeCache:
    """The application's scrape cache, made on first use (endpoints run on worker threads: one cache)."""
    state = request.app.state
    with _LOCK:
        cache: ScrapeCache | None = getattr(state, "metrics_cache", None)
        if cache is None:
            from hivectl.context import Context
            from hivectl.metrics.collect import scrape

            vm_dir = str(state.vm_dir) if state.vm_dir is not None else None

            def collect() -> Any:
                ctx = Context(state.driver, vm_dir)
                return scrape(ctx.store, ctx.host, ctx.driver)

            cache = state.metrics_cache = ScrapeCache(collect)
        return cache


def router() -> APIRouter:
    api = APIRouter(tags=["metrics"])

    # Not in the OpenAPI schema of /1.0: it is no API operation (Prometheus text, not an envelope), and its
    # JSON counterpart is /1.0's metrics operation (the catalog's Hivectl.metrics).
    @api.get("/metrics", response_class=Response, include_in_schema=False)
    def metrics(request: Request, principal: Any = PRINCIPAL) -> Response:
        """Every metric of docs/metrics.md, at most five seconds old (``hivectl_scrape_timestamp_seconds``)."""
        security.authorize(request, principal, "viewer", "/")
        return Response(cache_of(request).get(), media_type=CONTENT_TYPE)

    return api
