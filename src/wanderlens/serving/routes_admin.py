"""Admin routes (reload, promote, rollback), guarded by a bearer token through FastAPI's `HTTPBearer`.

401 when no `Authorization: Bearer <token>` header is sent (or another scheme is), 403 when the token is wrong or
the server was started without one (then the admin routes are closed to everyone). Tokens are compared in constant
time.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from wanderlens.serving.schemas import AliasResponse, PromoteRequest, ReloadResponse, error_responses
from wanderlens.serving.state import State

bearer = HTTPBearer(auto_error=False, description="The admin token the server was started with (--token or "
                                                  "WANDERLENS_API_TOKEN)")


def require_admin(state: State,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Let the request through only with the server's admin token."""
    if credentials is None:
        raise HTTPException(401, "admin endpoint: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not state.admin_token:
        raise HTTPException(403, "admin endpoints are disabled: start the server with --token or "
                                 f"{state.settings.token_env}")
    if not hmac.compare_digest(credentials.credentials.encode(), state.admin_token.encode()):
        raise HTTPException(403, "admin endpoint: wrong token")


router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


async def _off_loop(fn: Any, *args: Any) -> Any:
    """Run `fn(*args)` in a thread: registry writes wait for the registry lock, which must not stall the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(
        contextvars.copy_context().run, fn, *args))


async def _refresh(state: State) -> bool:
    """Reload the holder now (off the event loop); True when a new version was swapped in."""
    return await _off_loop(state.holder.refresh)


@router.post("/reload", response_model=ReloadResponse, responses=error_responses(401, 403),
             summary="Reload the model now (admin)")
async def admin_reload(state: State) -> dict[str, Any]:
    swapped = await _refresh(state)
    return {"reloaded": swapped, "model_version": state.holder.version, "error": state.holder.last_error}


async def promote_body(request: Request) -> PromoteRequest:
    """The promote body, read only once the token passed (a router dependency runs first): FastAPI would parse a
    declared JSON body before any dependency, so an unauthenticated caller could probe the parser (422 instead of
    401). Malformed JSON or fields answer FastAPI's usual 422 list."""
    raw = await request.body()
    try:
        return PromoteRequest.model_validate_json(raw or b"null")
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        raise RequestValidationError(errors) from None


_PROMOTE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": PromoteRequest.model_json_schema()}}}}


@router.post("/promote", response_model=AliasResponse, responses=error_responses(400, 401, 403, 409, 413, 422),
             summary="Point the alias at a version and reload (admin)", openapi_extra=_PROMOTE_BODY)
async def admin_promote(state: State, body: Annotated[PromoteRequest, Depends(promote_body)]) -> dict[str, Any]:
    if state.model.lstrip("v").isdigit():
        raise HTTPException(409, f"this server serves the fixed version {state.model}, not an alias")
    version = await _off_loop(state.registry.promote, body.version, state.model)
    await _refresh(state)
    return {"alias": state.model, "version": version, "model_version": state.holder.version}


@router.post("/rollback", response_model=AliasResponse, responses=error_responses(400, 401, 403),
             summary="Point the alias back at its previous version and reload (admin)")
async def admin_rollback(state: State) -> dict[str, Any]:
    version = await _off_loop(state.registry.rollback, state.model)
    await _refresh(state)
    return {"alias": state.model, "version": version, "model_version": state.holder.version}
