"""The API's own reference: `/openapi.json` (completed by api/openapi.py) and the
interactive docs at `/docs`.

Swagger UI's assets are served from this server (the `fastapi-offline` package ships
them), so the docs work offline and under a strict Content-Security-Policy.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from . import openapi

DESCRIPTION = """\
Collaborative work orders (协同工单) for marketplace after-sales disputes: a consumer asks
the platform for help with an order, the store must contact the consumer and reply within
24 hours with evidence, and the platform rules when they cannot agree.

Authenticate with `Authorization: Bearer <token>` (the **Authorize** button). Errors are
`application/problem+json` with a stable `code`. See the project's `docs/` for the rules
(`docs/rules.md`) and how this API reads them (`docs/api-guide.md`).
"""

SWAGGER_ASSETS = Path(str(files("fastapi_offline") / "static"))
OUR_ASSETS = Path(__file__).with_name("static")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>collabdesk API</title>
<link rel="stylesheet" href="/static/docs/swagger-ui.css">
<link rel="icon" href="/static/docs/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/docs/swagger-ui-bundle.js"></script>
<script src="/static/collabdesk/swagger-init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    openapi.install(app)
    app.mount("/static/docs", StaticFiles(directory=SWAGGER_ASSETS), name="docs-assets")
    app.mount("/static/collabdesk", StaticFiles(directory=OUR_ASSETS), name="assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(PAGE)
