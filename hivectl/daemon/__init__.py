"""hivectld: the REST daemon over hivectl's catalog of operations (issue 11; docs/api.md).

Optional: it needs the ``daemon`` extra (FastAPI, uvicorn), imported only here, so the command line works
without it. Every endpoint is one operation of ``hivectl.catalog`` and so one method of
``hivectl.api.Hivectl``: the daemon validates, authorizes, runs and wraps; it never implements an
operation of its own.
"""
