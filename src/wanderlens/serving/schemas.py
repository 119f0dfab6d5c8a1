"""The REST service's request and response bodies as pydantic models, so the OpenAPI schema says what is answered.

Rows that come straight from the travel tables (photos, suggestions, search hits) name the fields every row has
and allow the table's other columns (`extra="allow"`); errors are `{"detail": ...}` as FastAPI writes them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    """A row whose known fields are declared; other columns of its table pass through."""

    model_config = ConfigDict(extra="allow")


# -- errors ---------------------------------------------------------------------------------------------------------
class ErrorResponse(BaseModel):
    """Any refused request: one message naming the field or the thing at fault, and the fix."""

    detail: str
    request_id: str = Field(description="the request's id (the X-Request-ID header): quote it when reporting")


class FieldError(_Open):
    """One failed field check of FastAPI's request validation."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422: a message (the service's own checks) or FastAPI's per-field list (request validation)."""

    detail: str | list[FieldError]
    request_id: str = Field(description="the request's id (the X-Request-ID header)")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer the given error status codes (each with its schema)."""
    what = {400: "The body cannot be parsed (malformed multipart), or the request names something the registry "
                 "refuses (bad or unknown version, no earlier version)",
            401: "No 'Authorization: Bearer <token>' header", 403: "Wrong token, or the server has no admin token",
            404: "Not found (unknown id, or the served version has no travel tables)",
            409: "The server serves a fixed version, not an alias", 413: "Body or image over the server's limit",
            415: "The upload is not a supported image", 422: "A field is missing or malformed",
            503: "No model loaded yet, or too many photo uploads at once: retry after `Retry-After` seconds",
            504: "The request ran past the server's time limit"}
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ValidationErrorResponse if code == 422 else ErrorResponse, "description": what[code]}
        for code in codes}
    if 503 in out:
        out[503]["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                               "schema": {"type": "integer"}}}
    return out


# -- model ----------------------------------------------------------------------------------------------------------
class TaskOutput(BaseModel):
    """One task's prediction for a photo; `classes` and `prediction_index` are absent for a regression task."""

    type: str
    probability: list[float]
    rawPrediction: list[float]
    prediction: float | str | list[str]
    classes: list[str] | None = None
    prediction_index: float | list[float] | None = None


class ImageNetLabel(BaseModel):
    label: str
    prob: float


class DescribeResponse(BaseModel):
    """Everything `/v1/describe` answers for one photo."""

    model_version: int
    tasks: dict[str, TaskOutput]
    imagenet_labels: list[ImageNetLabel]
    description: str
    claims: list[dict[str, Any]]
    image_error: str | None
    timing_ms: dict[str, float]
    filename: str | None
    novelty: dict[str, Any] | None = None  # {score, threshold, novel}: trained claims withheld when novel


class ModelInfo(BaseModel):
    model: str
    model_version: int
    metadata: dict[str, Any] = Field(description="registry metadata of the version (created, config, metrics...)")


# -- travel ---------------------------------------------------------------------------------------------------------
class UsersResponse(BaseModel):
    model_version: int
    users: list[str]


class Suggestion(_Open):
    """One suggested destination with its score, rank, reasons and up to three photo ids."""

    destination_id: str


class SuggestionsResponse(BaseModel):
    model_version: int
    user_id: str
    k: int
    suggestions: list[Suggestion]


class Trip(_Open):
    """One trip of a traveller: when, where (place names in the order first visited) and a summary sentence."""

    trip_id: str
    start: str | None = None
    end: str | None = None
    days: int | None = None
    photos: int | None = None
    places: list[str] = Field(default_factory=list)
    summary: str | None = None


class TripsResponse(BaseModel):
    model_version: int
    user_id: str
    trips: list[Trip]


class SearchHit(_Open):
    """One photo matching a text query (higher `score` is closer)."""

    photo_id: str
    score: float
    caption: str | None
    description: str | None
    destination_id: str | None


class SearchResponse(BaseModel):
    model_version: int
    query: str
    k: int
    results: list[SearchHit]


class Photo(_Open):
    """A photo's row of the travel tables (predictions, description, trip...) and the URL of its file."""

    photo_id: str
    image_url: str


class PhotoResponse(BaseModel):
    model_version: int
    photo: Photo


# -- operations and admin -------------------------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: str
    model_version: int | None


class ReadyResponse(BaseModel):
    """`ready` with the served alias and version, or not ready with the last load error."""

    ready: bool
    model: str | None = None
    model_version: int | None = None
    error: str | None = None


class PromoteRequest(BaseModel):
    version: str = Field(description="version number to point the alias at, e.g. '3' or 'v3'")


class ReloadResponse(BaseModel):
    reloaded: bool
    model_version: int | None
    error: str | None


class AliasResponse(BaseModel):
    alias: str
    version: int
    model_version: int | None
