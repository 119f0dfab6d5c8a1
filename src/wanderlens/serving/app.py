"""The REST service and web page: `create_app(registry_root, model="production", token=...)` builds the FastAPI app.

The routes live in one router per concern: `routes_model` (POST /v1/describe, GET /v1/model), `routes_travel`
(/v1/users, /v1/users/{id}/suggestions, /v1/search, /v1/photos/{id} and its /image), `routes_ops` (/healthz, /readyz,
/metrics), `routes_admin` (POST /v1/admin/reload|promote|rollback, bearer token) and `routes_page` (the web page at
`/` and /static); OpenAPI docs at /docs. They share one `ServiceState` (`state.py`). A single photo is answered
without Spark by `ServedModel`; the model follows the registry alias (hot reload with no failed request, see
`holder.py`). Settings come from `wanderlens.config.ServingConfig`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import wanderlens
from wanderlens.config import ServingConfig
from wanderlens.errors import WanderlensError
from wanderlens.serving import routes_admin, routes_model, routes_ops, routes_page, routes_travel
from wanderlens.serving.batching import ServiceBatchers
from wanderlens.serving.holder import ModelHolder
from wanderlens.serving.metrics import ServiceMetrics
from wanderlens.serving.registry import DEFAULT_ALIAS, ModelRegistry
from wanderlens.serving.safety import REQUEST_ID, BodySizeLimit, RejectedInput, UploadLimit, error_body
from wanderlens.serving.state import ServiceState

log = logging.getLogger("wanderlens.serving")
access_log = logging.getLogger("wanderlens.serving.access")


def _default_loader(path: Path) -> Any:
    from wanderlens.serving.model import ServedModel

    return ServedModel.load(path)


def _holder(registry: ModelRegistry, model: str, loader: Any, metrics: ServiceMetrics) -> ModelHolder:
    """A holder for `model` that counts swaps and failed loads in `metrics`."""

    def on_swap(served: Any) -> None:
        if metrics.model_version is not None:
            metrics.reloads += 1
        metrics.model_version = served.version

    def on_failure(_exc: Exception) -> None:
        metrics.reload_failures += 1

    return ModelHolder(registry, model, loader or _default_loader, on_swap=on_swap, on_failure=on_failure)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error body is `{"detail": ..., "request_id": ...}`: refused input answers its own status, a user error
    (bad version, no earlier version...) 400, FastAPI's checks 422 with the per-field list."""

    @app.exception_handler(RejectedInput)
    async def _rejected(_request: Request, exc: RejectedInput) -> JSONResponse:
        return JSONResponse(error_body(exc.detail), status_code=exc.status)

    @app.exception_handler(WanderlensError)
    async def _user_error(_request: Request, exc: WanderlensError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = _UNPARSABLE.get(exc.detail, exc.detail) if exc.status_code == 400 else exc.detail
        return JSONResponse(error_body(detail), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(_field_errors(exc)), status_code=422)


# FastAPI's words for a body it cannot parse, said with the fix.
_UNPARSABLE = {msg: "the body is not valid multipart/form-data; send the photo as a form upload field named 'photo' "
                    "(e.g. curl -F photo=@trip.jpg)"
               for msg in ("Invalid multipart data.", "There was an error parsing the body")}


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's per-field errors without echoing big or binary input back (a 2 MB caption, photo bytes)."""
    out = []
    for err in exc.errors():
        err = dict(err)
        value = err.pop("input", None)
        if isinstance(value, int | float | bool) or (isinstance(value, str) and len(value) <= 200):
            err["input"] = value
        if not _plain(err.get("ctx")):
            err.pop("ctx", None)
        out.append(jsonable_encoder(err, custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")}))
    return out


def _plain(value: Any) -> bool:
    """True for a value JSON writes as it is (so an exception object in `ctx` is dropped, not stringified)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# -- request ids, access lines, last-resort 500 ----------------------------------------------------------------------
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,128}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` when it is a plain token (letters, digits, `._:@+=/-`, at most 128), else a new
    one: an id goes into logs and headers, so nothing else is taken from the client."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID_RE.match(text):
                return text
    return uuid.uuid4().hex


class RequestContext:
    """Outermost ASGI middleware: gives every request an id (the client's X-Request-ID or a new one), returns it in
    the `X-Request-ID` header (error bodies carry it too), writes one access line per request (method, path without
    the query string, status, milliseconds; never bodies, captions, queries or tokens) and turns an unhandled
    exception into a 500 JSON body with the id, logged with its traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = request_id_from(scope.get("headers") or [])
        token = REQUEST_ID.set(rid)
        t0, status = time.perf_counter(), 0

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # the last line of defence: answer 500 with the id, log the traceback
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if status == 0:
                status = 500
                body = json.dumps(error_body("internal error; quote the request id when reporting it")).encode()
                await send_with_id({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json"),
                                                (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            ms = (time.perf_counter() - t0) * 1000
            access_log.info("%s %s %s %.1f ms", scope.get("method"), scope.get("path"), status, ms,
                            extra={"method": scope.get("method"), "path": scope.get("path"), "status": status,
                                   "duration_ms": round(ms, 2)})
            REQUEST_ID.reset(token)


# -- logging ----------------------------------------------------------------------------------------------------------
class _RequestIdFilter(logging.Filter):
    """Puts the current request's id (or '-') on every record, whichever logger wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id",
                                                                             "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage(),
               "request_id": getattr(record, "request_id", "-")}
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(settings: ServingConfig, stream: Any = None) -> logging.Handler:
    """Send every log line (the service's and uvicorn's) to stderr as text or JSON (`serving.log_format`), each with
    the request id. Returns the handler (installed on the root logger, replacing one installed before)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_wanderlens", False)]:
        root.removeHandler(old)
    handler._wanderlens = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.captureWarnings(True)  # Python warnings become log lines too (JSON when asked)
    level = settings.log_level.upper()
    for name in ("wanderlens", "uvicorn"):
        logging.getLogger(name).setLevel(level)
    return handler


def run_server(app: FastAPI, settings: ServingConfig) -> None:
    """Serve `app` with uvicorn on `settings.host:port`. On SIGTERM or Ctrl-C uvicorn stops accepting connections
    and lets the requests in flight finish (at most `shutdown_timeout_s`) before the model watcher and the pool
    stop."""
    import uvicorn

    configure_logging(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, log_level=settings.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=settings.shutdown_timeout_s)


def _add_observability(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Count every request and its latency by method, route template and status (in-flight too)."""

    @app.middleware("http")
    async def _observe(request: Request, call_next):
        t0 = time.perf_counter()
        metrics.add_in_flight(1)
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.add_in_flight(-1)
            route = request.scope.get("route")
            path = getattr(route, "path", None) or ("/static" if request.url.path.startswith("/static")
                                                    else "unmatched")
            metrics.observe(request.method, path, status, time.perf_counter() - t0)


def create_app(
    registry_root: str | Path,
    model: str = DEFAULT_ALIAS,
    token: str | None = None,
    settings: ServingConfig | None = None,
    loader: Any = None,
) -> FastAPI:
    """Build the service for the registry at `registry_root`, serving the version `model` names (alias or number).

    `token` (default: the environment variable `settings.token_env`, WANDERLENS_API_TOKEN) guards the admin
    endpoints; without one they answer 403. `settings` holds the limits (body size, pixels, time) and the pool size;
    `loader(version_dir)` loads a version (default `ServedModel.load`).
    """
    settings = settings or ServingConfig()
    registry = ModelRegistry(registry_root)
    metrics = ServiceMetrics()
    state = ServiceState(
        registry=registry, holder=_holder(registry, model, loader, metrics), metrics=metrics, settings=settings,
        model=model, admin_token=token if token is not None else os.environ.get(settings.token_env),
        pool=ThreadPoolExecutor(max_workers=settings.inference_workers, thread_name_prefix="wanderlens-infer"),
        batchers=ServiceBatchers(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state.holder.start_watching(settings.poll_interval_s)
        yield
        state.holder.stop()
        state.pool.shutdown(wait=False, cancel_futures=True)
        state.batchers.close()

    app = FastAPI(title="wanderlens", version=wanderlens.__version__, lifespan=lifespan,
                  description="Describe travel photos, suggest destinations, search photos by text.")
    app.state.service = state
    app.state.holder, app.state.metrics, app.state.registry = state.holder, metrics, registry
    _add_error_handlers(app)
    _add_observability(app, metrics)
    app.add_middleware(UploadLimit, max_concurrent=settings.max_concurrent_uploads,
                       retry_after_s=settings.retry_after_s)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_bytes)
    app.add_middleware(RequestContext)  # outermost: the id exists for everything inside
    for router in (routes_model.router, routes_travel.router, routes_ops.router, routes_admin.router):
        app.include_router(router)
    routes_page.add_page(app)
    return app
