"""The FastAPI app: `create_app()` (uvicorn's factory), its startup, error handling and request metrics.

Errors: a mistake in a request gets a 4xx whose `detail` says what and
where; anything else is logged with its traceback and answered with a 500
that names an error id, never the traceback. Routes raise domain errors
(`shelfcast.errors`) and one handler maps them: a `LookupError` one
(unknown series, model) is a 404, a `ValueError` one (unknown feature, data
the request cannot be scored on) a 422, any other a 500. Bodies larger than
`serve.max_body_bytes` are refused with 413 before they are read whole, and
unknown query parameters with 422, as unknown body fields are. The error
bodies are documented in the OpenAPI schema (`schemas.ERRORS`).

Metrics label each request with its route template, also when it was
refused before reaching the route (413) and for the documentation pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from prometheus_client import disable_created_metrics
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match

from shelfcast.errors import ShelfcastError
from shelfcast.io.policy_log import monitoring_dir
from shelfcast.io.tracking import crash_point
from shelfcast.service import routes_explain, routes_ops, routes_predict, routes_read
from shelfcast.service.metrics import ServiceMetrics
from shelfcast.service.schemas import ERRORS
from shelfcast.service.state import ServiceState
from shelfcast.settings import Settings, get_settings

log = logging.getLogger(__name__)
DOCS_ASSETS = "/docs-assets"  # where the documentation pages' scripts and styles are served
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def create_app(settings: Settings | None = None, *, load_in_background: bool = False) -> FastAPI:
    """The service over the workspace in `settings` (default: the process settings, as the CLI reads them).

    Data and models load at start-up; with `load_in_background` (as `shelfcast serve` runs it) the server answers
    meanwhile (/health 200, /ready and the data routes 503 "loading ..."), instead of starting once they are in.
    """
    settings = settings or get_settings()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double what a scrape carries for no use here
    metrics = ServiceMetrics(monitoring_dir(settings))
    state = ServiceState(settings, metrics)
    # The documentation pages load Swagger UI and ReDoc from the package (fastapi-offline), not from a CDN: a
    # retailer's service often runs on a network without internet.
    app = FastAPIOffline(
        title="shelfcast",
        summary="Stockout risk, demand forecasts and reorder advice per store and item.",
        version="1",
        lifespan=_lifespan,
        static_url=DOCS_ASSETS,
        dependencies=[Depends(_known_query)],
        responses=ERRORS,
    )
    app.state.shelfcast = state
    app.state.load_in_background = load_in_background
    app.include_router(routes_ops.router)
    app.include_router(routes_predict.router)
    app.include_router(routes_read.router)
    app.include_router(routes_explain.router)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ShelfcastError, _domain)
    app.add_exception_handler(Exception, _crash)
    # The routes by their templates, for the metrics' labels (FastAPI keeps included routers as one entry each).
    routes = [r for r in app.router.routes if hasattr(r, "path")]
    routes += [
        *routes_ops.router.routes,
        *routes_predict.router.routes,
        *routes_read.router.routes,
        *routes_explain.router.routes,
    ]
    app.add_middleware(Observe, metrics=metrics, max_body=settings.serve.max_body_bytes, routes=routes)
    return app


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route and its dependencies declare."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query(request: Request) -> None:
    """Unknown query parameters are refused with 422, as unknown body fields are (a typo is not silently ignored)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:  # the documented API, not the docs pages
        return
    known = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "Extra inputs are not permitted",
                    "input": None,
                }
                for name in unknown
            ]
        )


def served_app() -> FastAPI:
    """`shelfcast serve`'s app (uvicorn's factory): it answers /health while data and models load."""
    return create_app(load_in_background=True)


def _load(state: ServiceState) -> None:
    state.problem = f"loading data and models (since {dt.datetime.now(dt.UTC):%H:%M:%S} UTC)"
    crash_point("serve load")
    try:
        state.reload()
    except ShelfcastError as exc:
        log.error("serving without data or model: %s", exc)
    state.predictions.refresh()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServiceState = app.state.shelfcast
    loading = asyncio.create_task(run_in_threadpool(_load, state))
    if not app.state.load_in_background:
        await loading
    refresher = asyncio.create_task(_refresh(state))
    if state.live is not None:
        state.live.start(lambda: state.snapshot)
    try:
        yield
    finally:
        refresher.cancel()
        loading.cancel()
        if state.live is not None:
            state.live.stop()


async def _refresh(state: ServiceState) -> None:
    """Look for a newer scoring day in the store every `serve.refresh_seconds`."""
    while True:
        await asyncio.sleep(state.settings.serve.refresh_seconds)
        await run_in_threadpool(state.predictions.refresh)


def _where(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if len(parts) > 1 and parts[0] in ("body", "query", "header", "path") else parts)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")).removeprefix("Value error, "),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request", "type": None}
    if first["type"] == "json_invalid":
        loc = first["loc"]
        position = f" at character {loc[-1]}" if isinstance(loc, list) and len(loc) > 1 else ""
        summary = f"the body is not valid JSON{position}"
    else:
        where = _where(first["loc"])
        summary = f"{where}: {first['msg']}" if where else str(first["msg"])
    if len(errors) > 1:
        summary += f" (and {len(errors) - 1} more problem(s), see `errors`)"
    return JSONResponse({"detail": summary, "errors": errors}, status_code=422)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    """A domain error from a route: its message is the `detail` (it names the bad value and the fix)."""
    if isinstance(exc, LookupError):
        status = 404
    elif isinstance(exc, ValueError):
        status = 422
    else:  # a store or registry that failed (RuntimeError ones) is the server's problem, not the request's
        return await _crash(request, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.exception("error %s on %s %s", error_id, request.method, request.url.path)
    return JSONResponse({"detail": f"internal error {error_id}; the server log has the details"}, status_code=500)


# The two errors below stay here, not in `shelfcast.errors`: they are HTTP transport signals inside the ASGI
# middleware (a 413 raised from the body reader, a 400 for a bad header), never raised by shelfcast's code.
class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes (setting serve_max_body_bytes)")


class Observe:
    """Pure ASGI middleware: request metrics per route template, and the body size limit."""

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        metrics: ServiceMetrics,
        max_body: int,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = False
        name = self._route(scope)  # before routing, which rewrites the scope's paths inside a mount

        async def observe_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                sent = True
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await _reply(observe_send, 413, _TooLarge(self.max_body).detail)
                return
            await self.app(scope, self._limited(receive), observe_send)
        except _BadLengthError as exc:
            await _reply(observe_send, 400, str(exc))
        finally:
            method = scope.get("method", "")
            self.metrics.requests.labels(route=name, method=method, status=str(status)).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.errors.labels(route=name, kind="server" if status >= 500 else "client").inc()
            if not sent:
                log.debug("no response sent for %s %s", method, scope.get("path"))

    def _route(self, scope: Scope) -> str:
        """The route template the request matched (also when it was refused before routing): its metrics label."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "unmatched"))
            if match is Match.PARTIAL and partial is None:
                partial = route
        return str(getattr(partial, "path", "unmatched"))

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)  # FastAPI re-raises an HTTPException met while reading the body
            return message

        return limited


class _BadLengthError(ValueError):
    pass


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise _BadLengthError(f"Content-Length header is not a number: {value[:40]!r}") from None
            if length < 0:
                raise _BadLengthError("Content-Length header is negative")
            return length
    return None


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
