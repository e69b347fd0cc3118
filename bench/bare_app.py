"""The HTTP baseline: a bare Starlette JSON endpoint, served by uvicorn with the settings
`collabdesk serve` uses (one process, uvicorn's default loop and HTTP implementation,
`log_level="info"` with the access log, INFO logging). `python -m bench.bare_app --port N
--payload FILE` answers every GET /v1/work-orders/{id} with the JSON document in FILE,
serialized per request.

It lets uvicorn open the listening socket (`collabdesk serve` binds its own, with
`IPPROTO_TCP` so that connections get TCP_NODELAY as uvicorn's do)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app(payload: Any) -> Starlette:
    async def work_order(_: Request) -> JSONResponse:
        return JSONResponse(payload)

    return Starlette(routes=[Route("/v1/work-orders/{work_order_id}", work_order)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(json.loads(args.payload.read_text(encoding="utf-8")))
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                  log_level="info")).run()


if __name__ == "__main__":
    main()
