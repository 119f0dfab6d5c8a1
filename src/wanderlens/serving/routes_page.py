"""The web page: `/` (plain HTML, CSS and JS, no build step) and its files under `/static`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("wanderlens.serving") / "static"))

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


def add_page(app: FastAPI) -> None:
    """Serve the page at `/` and its files at `/static` (a mount, which a router cannot carry)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
