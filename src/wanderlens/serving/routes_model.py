"""Model routes: `POST /v1/describe` (one photo, no Spark, micro-batched with concurrent requests) and `GET /v1/model`
(what is being served)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from wanderlens.serving.batching import DescribeJob, within_limit
from wanderlens.serving.safety import RejectedInput, check_image
from wanderlens.serving.schemas import DescribeResponse, ModelInfo, error_responses
from wanderlens.serving.state import State

MAX_CAPTION_CHARS = 2000
MAX_TAGS = 64
MAX_TAG_CHARS = 64

router = APIRouter(tags=["model"])


def parse_tags(tags: str | None) -> list[str]:
    """Tags separated by ';' or ',' -> a list; 422 when there are too many or one is too long."""
    tag_list = [t.strip() for t in (tags or "").replace(",", ";").split(";") if t.strip()]
    if len(tag_list) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tag_list):
        raise RejectedInput(422, f"tags: at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters each")
    return tag_list


@router.post("/v1/describe", response_model=DescribeResponse, response_model_exclude_unset=True,
             responses=error_responses(400, 413, 415, 422, 503, 504),
             summary="Describe one photo: per-task predictions, ImageNet labels, a sentence")
async def describe(
    state: State,
    photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF or BMP photo")],
    caption: Annotated[str | None, Form(max_length=MAX_CAPTION_CHARS)] = None,
    tags: Annotated[str | None, Form(max_length=4000, description="tags separated by ';' or ','")] = None,
) -> Response:
    """The photo is decoded on the decode pool as soon as it arrives, then joins the next micro-batch
    (`serving/batching.py`); the answer's JSON is written by the batch worker, so it is sent as it is."""
    data = await photo.read()
    field = f"photo ({photo.filename or 'upload'})"
    check_image(data, max_pixels=state.settings.max_pixels, field=field)
    tag_list = parse_tags(tags)
    current = state.served()  # the whole request runs on this version, whatever a hot swap does meanwhile
    body = await within_limit(_describe(state, current, data, caption or None, tag_list, photo.filename, field),
                              state.settings.request_timeout_s)
    return Response(body, media_type="application/json")


async def _describe(state: State, current: Any, data: bytes, caption: str | None, tags: list[str],
                    filename: str | None, field: str) -> bytes:
    """Decode on the decode pool (422 when the pixels cannot be decoded), then wait for the batch's answer."""
    batchers = state.batchers
    decoded = await asyncio.get_running_loop().run_in_executor(batchers.decode_pool, current.photo, data, caption,
                                                                tags)
    if decoded.image_error:
        raise RejectedInput(422, f"{field}: cannot decode the image ({decoded.image_error}); send a valid image file")
    return await batchers.run(batchers.describe, DescribeJob(current, decoded, filename, time.perf_counter()))


@router.get("/v1/model", response_model=ModelInfo, responses=error_responses(503),
            summary="Metadata of the model being served")
async def model_info(state: State) -> dict[str, Any]:
    current = state.served()
    meta = dict(current.metadata)
    meta.pop("sources", None)
    return {"model": state.model, "model_version": current.version, "metadata": meta}
