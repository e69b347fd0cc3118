"""`collabdesk worker --metrics-port`: the worker's own Prometheus metrics over HTTP, for
the admin token only, as the API's `/metrics`."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from collabdesk.domain.errors import Unauthenticated
from collabdesk.domain.states import Role
from collabdesk.services.accounts import authenticate
from collabdesk.services.context import ServiceContext

from . import metrics

log = logging.getLogger("collabdesk.worker")


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def serve_metrics(ctx: ServiceContext, host: str, port: int) -> ThreadingHTTPServer:
    """Start serving GET /metrics on (host, port) in a daemon thread; returns the server
    (`shutdown()` stops it). Raises OSError when the port is taken."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._answer(404, b"not found\n")
                return
            try:
                account = authenticate(ctx, _bearer(self.headers.get("Authorization")))
            except Unauthenticated:
                self._answer(401, b"a bearer token is required\n")
                return
            except Exception:
                log.exception("metrics: cannot authenticate the caller")
                self._answer(503, b"cannot check the token now\n")
                return
            if account.role is not Role.ADMIN:
                self._answer(403, b"metrics are for operators: use the admin token\n")
                return
            self._answer(200, metrics.exposition(None, None), CONTENT_TYPE_LATEST)

        def _answer(self, status: int, body: bytes,
                    content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
