"""The REST service and web page: `create_app(registry_root, model="production", token=...)` builds the FastAPI app.

Endpoints: POST /v1/describe, GET /v1/users, /v1/users/{id}/suggestions, /v1/search, /v1/photos/{id} (+ /image),
/healthz, /readyz, /metrics, admin POST /v1/admin/reload|promote|rollback (Bearer token), the web page at `/` and the
OpenAPI docs at /docs. A single photo is answered without Spark by `ServedModel`; the model follows the registry
alias (hot reload with no failed request, see `holder.py`).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

import wanderlens
from wanderlens.errors import WanderlensError
from wanderlens.serving.holder import ModelHolder
from wanderlens.serving.metrics import ServiceMetrics
from wanderlens.serving.registry import DEFAULT_ALIAS, ModelRegistry
from wanderlens.serving.safety import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    BodySizeLimit,
    RejectedInput,
    check_id,
    check_image,
    sniff_image_type,
)

STATIC_DIR = Path(str(files("wanderlens.serving") / "static"))
MAX_CAPTION_CHARS = 2000
MAX_TAGS = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"


class PromoteRequest(BaseModel):
    version: str


def _default_loader(path: Path) -> Any:
    from wanderlens.serving.model import ServedModel

    return ServedModel.load(path)


def create_app(
    registry_root: str | Path,
    model: str = DEFAULT_ALIAS,
    token: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    request_timeout_s: float = 10.0,
    poll_interval_s: float = 0.5,
    inference_workers: int = 2,
    loader: Any = None,
) -> FastAPI:
    """Build the service for the registry at `registry_root`, serving the version `model` names (alias or number).

    `token` (default: env `WANDERLENS_API_TOKEN`) guards the admin endpoints; without one they answer 403.
    """
    registry = ModelRegistry(registry_root)
    admin_token = token if token is not None else os.environ.get("WANDERLENS_API_TOKEN")
    metrics = ServiceMetrics()

    def on_swap(served: Any) -> None:
        if metrics.model_version is not None:
            metrics.reloads += 1
        metrics.model_version = served.version

    def on_failure(_exc: Exception) -> None:
        metrics.reload_failures += 1

    holder = ModelHolder(registry, model, loader or _default_loader, on_swap=on_swap, on_failure=on_failure)
    pool = ThreadPoolExecutor(max_workers=inference_workers, thread_name_prefix="wanderlens-infer")

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Pillow's own bomb guard as a second line behind the header check.
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = max_pixels
        holder.start_watching(poll_interval_s)
        yield
        holder.stop()
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="wanderlens", version=wanderlens.__version__, lifespan=lifespan,
                  description="Describe travel photos, suggest destinations, search photos by text.")
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.registry = registry

    @app.exception_handler(RejectedInput)
    async def _rejected(_request: Request, exc: RejectedInput) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(WanderlensError)
    async def _user_error(_request: Request, exc: WanderlensError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

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

    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)

    def served() -> Any:
        current = holder.current
        if current is None:
            raise HTTPException(503, f"no model loaded yet for {model!r}"
                                     + (f" ({holder.last_error})" if holder.last_error else ""))
        return current

    def travel(current: Any) -> Any:
        if current.travel is None:
            raise HTTPException(404, f"model version {current.version} was registered without travel tables "
                                     "(register it with --travel DIR)")
        return current.travel

    async def run_timed(fn, *args) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(pool, fn, *args), timeout=request_timeout_s)
        except TimeoutError as exc:
            raise HTTPException(504, f"the request took longer than {request_timeout_s:g} s; try a smaller "
                                     "photo or retry later") from exc

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not authorization:
            raise HTTPException(401, "admin endpoint: send 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(401, "admin endpoint: the Authorization header must be 'Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not admin_token:
            raise HTTPException(403, "admin endpoints are disabled: start the server with --token or "
                                     "WANDERLENS_API_TOKEN")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            raise HTTPException(403, "admin endpoint: wrong token")

    # -- model endpoints -------------------------------------------------------------------------------------
    @app.post("/v1/describe", summary="Describe one photo: per-task predictions, ImageNet labels, a sentence")
    async def describe(
        photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF or BMP photo")],
        caption: Annotated[str | None, Form(max_length=MAX_CAPTION_CHARS)] = None,
        tags: Annotated[str | None, Form(max_length=4000, description="tags separated by ';' or ','")] = None,
    ) -> dict[str, Any]:
        data = await photo.read()
        check_image(data, max_pixels=max_pixels, field=f"photo ({photo.filename or 'upload'})")
        tag_list = [t.strip() for t in (tags or "").replace(",", ";").split(";") if t.strip()]
        if len(tag_list) > MAX_TAGS or any(len(t) > 64 for t in tag_list):
            raise RejectedInput(422, f"tags: at most {MAX_TAGS} tags of at most 64 characters each")
        current = served()
        result = await run_timed(current.describe, data, caption or None, tag_list)
        result["filename"] = photo.filename
        return result

    @app.get("/v1/users", summary="Travellers that have suggestions")
    async def users() -> dict[str, Any]:
        current = served()
        return {"model_version": current.version, "users": travel(current).users()}

    @app.get("/v1/users/{user_id}/suggestions", summary="Destination suggestions for one traveller, with reasons")
    async def suggestions(user_id: Annotated[str, PathParam(pattern=ID_PATTERN)],
                          k: Annotated[int, Query(ge=1, le=100)] = 5) -> dict[str, Any]:
        check_id(user_id, "user id")
        current = served()
        rows = travel(current).suggestions(user_id, k)
        if rows is None:
            raise HTTPException(404, f"user {user_id!r} is unknown to model version {current.version}")
        return {"model_version": current.version, "user_id": user_id, "k": k, "suggestions": rows}

    @app.get("/v1/search", summary="Photos matching a text query")
    async def search(q: Annotated[str, Query(min_length=1, max_length=500)],
                     k: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
        current = served()
        tables = travel(current)
        results = await run_timed(tables.search, q, k)
        return {"model_version": current.version, "query": q, "k": k, "results": results}

    @app.get("/v1/photos/{photo_id}", summary="One photo's details and predictions")
    async def photo_info(photo_id: Annotated[str, PathParam(pattern=ID_PATTERN)]) -> dict[str, Any]:
        check_id(photo_id, "photo id")
        current = served()
        row = travel(current).photo(photo_id)
        if row is None:
            raise HTTPException(404, f"photo {photo_id!r} is not in model version {current.version}")
        out = {k: v for k, v in row.items() if k != "image_path"}
        out["image_url"] = f"/v1/photos/{photo_id}/image"
        return {"model_version": current.version, "photo": out}

    @app.get("/v1/photos/{photo_id}/image", summary="The photo file itself")
    async def photo_image(photo_id: Annotated[str, PathParam(pattern=ID_PATTERN)]) -> FileResponse:
        check_id(photo_id, "photo id")
        current = served()
        row = travel(current).photo(photo_id)
        if row is None or not row.get("image_path"):
            raise HTTPException(404, f"photo {photo_id!r} is not in model version {current.version}")
        path = Path(str(row["image_path"]).removeprefix("file://"))
        if not path.is_file():
            raise HTTPException(404, f"photo {photo_id!r}: its file is no longer at the recorded path")
        with path.open("rb") as fh:
            media_type = sniff_image_type(fh.read(16)) or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

    # -- operations ------------------------------------------------------------------------------------------
    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_version": holder.version}

    @app.get("/readyz", summary="Readiness: a model is loaded")
    async def readyz() -> JSONResponse:
        if holder.current is None:
            return JSONResponse({"ready": False, "error": holder.last_error}, status_code=503)
        return JSONResponse({"ready": True, "model": model, "model_version": holder.version})

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/model", summary="Metadata of the model being served")
    async def model_info() -> dict[str, Any]:
        current = served()
        meta = dict(current.metadata)
        meta.pop("sources", None)
        return {"model": model, "model_version": current.version, "metadata": meta}

    @app.post("/v1/admin/reload", dependencies=[Depends(require_admin)], summary="Reload the model now (admin)")
    async def admin_reload() -> dict[str, Any]:
        swapped = await asyncio.get_running_loop().run_in_executor(None, holder.refresh)
        return {"reloaded": swapped, "model_version": holder.version, "error": holder.last_error}

    @app.post("/v1/admin/promote", dependencies=[Depends(require_admin)],
              summary="Point the alias at a version and reload (admin)")
    async def admin_promote(body: PromoteRequest) -> dict[str, Any]:
        if model.lstrip("v").isdigit():
            raise HTTPException(409, f"this server serves the fixed version {model}, not an alias")
        version = registry.promote(body.version, alias=model)
        await asyncio.get_running_loop().run_in_executor(None, holder.refresh)
        return {"alias": model, "version": version, "model_version": holder.version}

    @app.post("/v1/admin/rollback", dependencies=[Depends(require_admin)],
              summary="Point the alias back at its previous version and reload (admin)")
    async def admin_rollback() -> dict[str, Any]:
        version = registry.rollback(alias=model)
        await asyncio.get_running_loop().run_in_executor(None, holder.refresh)
        return {"alias": model, "version": version, "model_version": holder.version}

    # -- web page --------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
