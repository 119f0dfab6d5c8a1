"""The REST service and web page: `create_app(registry_root, model="production", token=...)` builds the FastAPI app.

The routes live in one router per concern: `routes_model` (POST /v1/describe, GET /v1/model), `routes_travel`
(/v1/users, /v1/users/{id}/suggestions, /v1/search, /v1/photos/{id} and its /image), `routes_ops` (/healthz, /readyz,
/metrics), `routes_admin` (POST /v1/admin/reload|promote|rollback, bearer token) and `routes_page` (the web page at
`/` and /static); OpenAPI docs at /docs. They share one `ServiceState` (`state.py`). A single photo is answered
without Spark by `ServedModel`; the model follows the registry alias (hot reload with no failed request, see
`holder.py`). Settings come from `wanderlens.config.ServingConfig`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import wanderlens
from wanderlens.config import ServingConfig
from wanderlens.errors import WanderlensError
from wanderlens.serving import routes_admin, routes_model, routes_ops, routes_page, routes_travel
from wanderlens.serving.holder import ModelHolder
from wanderlens.serving.metrics import ServiceMetrics
from wanderlens.serving.registry import DEFAULT_ALIAS, ModelRegistry
from wanderlens.serving.safety import BodySizeLimit, RejectedInput
from wanderlens.serving.state import ServiceState


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
    """Refused input answers its own status; a user error (bad version, no earlier version...) answers 400."""

    @app.exception_handler(RejectedInput)
    async def _rejected(_request: Request, exc: RejectedInput) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(WanderlensError)
    async def _user_error(_request: Request, exc: WanderlensError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


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
        pool=ThreadPoolExecutor(max_workers=settings.inference_workers, thread_name_prefix="wanderlens-infer"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state.holder.start_watching(settings.poll_interval_s)
        yield
        state.holder.stop()
        state.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="wanderlens", version=wanderlens.__version__, lifespan=lifespan,
                  description="Describe travel photos, suggest destinations, search photos by text.")
    app.state.service = state
    app.state.holder, app.state.metrics, app.state.registry = state.holder, metrics, registry
    _add_error_handlers(app)
    _add_observability(app, metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_bytes)
    for router in (routes_model.router, routes_travel.router, routes_ops.router, routes_admin.router):
        app.include_router(router)
    routes_page.add_page(app)
    return app
