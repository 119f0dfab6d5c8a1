"""Operations routes: liveness (`/healthz`), readiness (`/readyz`, 503 until a model is loaded), Prometheus
`/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from wanderlens.serving.schemas import HealthResponse, ReadyResponse
from wanderlens.serving.state import State

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness: the process answers")
async def healthz(state: State) -> dict[str, Any]:
    return {"status": "ok", "model_version": state.holder.version}


@router.get("/readyz", response_model=ReadyResponse, response_model_exclude_unset=True,
            responses={503: {"model": ReadyResponse, "description": "No model loaded yet (with the load error)"}},
            summary="Readiness: a model is loaded")
async def readyz(state: State) -> Any:
    if state.holder.current is None:
        return JSONResponse({"ready": False, "error": state.holder.last_error}, status_code=503)
    return {"ready": True, "model": state.model, "model_version": state.holder.version}


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"description": "Prometheus text exposition format 0.0.4",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus(state: State) -> PlainTextResponse:
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
