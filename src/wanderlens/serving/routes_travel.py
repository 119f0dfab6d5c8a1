"""Travel routes, answered from the travel tables a registry version carries: travellers, their trips and
suggestions, text search over photos, and one photo's details and file. Ids in URLs are only ever dictionary keys,
never paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from wanderlens.serving.batching import SearchJob, within_limit
from wanderlens.serving.safety import ID_PATTERN, check_id, sniff_image_type
from wanderlens.serving.schemas import (
    PhotoResponse,
    SearchResponse,
    SuggestionsResponse,
    TripsResponse,
    UsersResponse,
    error_responses,
)
from wanderlens.serving.state import State

router = APIRouter(tags=["travel"])

UserId = Annotated[str, PathParam(pattern=ID_PATTERN)]
PhotoId = Annotated[str, PathParam(pattern=ID_PATTERN)]


@router.get("/v1/users", response_model=UsersResponse, responses=error_responses(404, 503),
            summary="Travellers that have suggestions")
async def users(state: State) -> dict[str, Any]:
    current = state.served()
    return {"model_version": current.version, "users": state.travel(current).users()}


@router.get("/v1/users/{user_id}/suggestions", response_model=SuggestionsResponse,
            responses=error_responses(404, 422, 503),
            summary="Destination suggestions for one traveller, with reasons")
async def suggestions(state: State, user_id: UserId, k: Annotated[int, Query(ge=1, le=100)] = 5) -> dict[str, Any]:
    check_id(user_id, "user id")
    current = state.served()
    rows = state.travel(current).suggestions(user_id, k)
    if rows is None:
        raise HTTPException(404, f"user {user_id!r} is unknown to model version {current.version}")
    return {"model_version": current.version, "user_id": user_id, "k": k, "suggestions": rows}


@router.get("/v1/users/{user_id}/trips", response_model=TripsResponse, responses=error_responses(404, 422, 503),
            summary="One traveller's trips: dates, place names and a summary, earliest first")
async def trips(state: State, user_id: UserId) -> dict[str, Any]:
    check_id(user_id, "user id")
    current = state.served()
    rows = state.travel(current).trips(user_id)
    if rows is None:
        raise HTTPException(404, f"user {user_id!r} is unknown to model version {current.version}")
    return {"model_version": current.version, "user_id": user_id, "trips": rows}


@router.get("/v1/search", response_model=SearchResponse, responses=error_responses(404, 422, 503, 504),
            summary="Photos matching a text query")
async def search(state: State, q: Annotated[str, Query(min_length=1, max_length=500)],
                 k: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
    current = state.served()
    state.travel(current)  # 404 without travel tables
    batchers = state.batchers
    results = await within_limit(batchers.run(batchers.search, SearchJob(current, q, k)),
                                 state.settings.request_timeout_s)
    return {"model_version": current.version, "query": q, "k": k, "results": results}


def _photo_row(state: State, photo_id: str) -> tuple[Any, dict[str, Any]]:
    """(served version, the photo's row) or 404."""
    check_id(photo_id, "photo id")
    current = state.served()
    row = state.travel(current).photo(photo_id)
    if row is None:
        raise HTTPException(404, f"photo {photo_id!r} is not in model version {current.version}")
    return current, row


# Before the details route: "{photo_id:path}" there would also match ".../image".
@router.get("/v1/photos/{photo_id:path}/image", response_class=FileResponse, summary="The photo file itself",
            responses={200: {"description": "The image bytes (type sniffed from the content)",
                             "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
                       **error_responses(404, 422, 503)})
async def photo_image(state: State, photo_id: PhotoId) -> FileResponse:
    current, row = _photo_row(state, photo_id)
    if not row.get("image_path"):
        raise HTTPException(404, f"photo {photo_id!r} is not in model version {current.version}")
    path = Path(str(row["image_path"]).removeprefix("file://"))
    if not path.is_file():
        raise HTTPException(404, f"photo {photo_id!r}: its file is no longer at the recorded path")
    with path.open("rb") as fh:
        media_type = sniff_image_type(fh.read(16)) or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


@router.get("/v1/photos/{photo_id:path}", response_model=PhotoResponse, responses=error_responses(404, 422, 503),
            summary="One photo's details and predictions")
async def photo_info(state: State, photo_id: PhotoId) -> dict[str, Any]:
    current, row = _photo_row(state, photo_id)
    out = {k: v for k, v in row.items() if k != "image_path"}
    out["image_url"] = f"/v1/photos/{quote(photo_id, safe='/')}/image"
    return {"model_version": current.version, "photo": out}
