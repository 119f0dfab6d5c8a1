"""Procedural rendering of one synthetic travel photo: the pixels really carry the scene, objects and light.

A photo is sky (gradient by time of day) + a scene backdrop (sea and sand, peaks, skyline, trees, dunes, snow,
lake, fields) + objects for its attributes (boats, people, buildings, trees, clouds...) + clutter, blur and noise.
Scenes mix (a city by the sea, a lake below peaks) so that the task is realistically ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class PhotoSpec:
    """What to draw: scene, a mixed-in secondary scene (or None), attributes, light, quality and size."""

    scene: str
    secondary: str | None
    attributes: frozenset[str]
    time_of_day: str
    quality: float
    width: int
    height: int
    seed: int


SKIES = {
    "day": [((90, 150, 230), (190, 220, 250)), ((120, 170, 225), (215, 230, 245)), ((160, 175, 190), (210, 215, 220))],
    "sunset": [((70, 50, 120), (250, 150, 70)), ((110, 60, 110), (255, 120, 60)), ((60, 70, 140), (250, 190, 110))],
    "night": [((5, 8, 25), (25, 35, 70)), ((10, 10, 30), (40, 40, 80)), ((0, 5, 15), (20, 30, 55))],
}
LIGHT = {"day": 1.0, "sunset": 0.75, "night": 0.32}


def _jitter(rng: np.random.Generator, color: tuple[int, int, int], amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)  # type: ignore


def _shade(color: tuple[int, int, int], light: float, tint: tuple[int, int, int] | None = None) -> tuple:
    out = [c * light for c in color]
    if tint is not None:
        out = [0.8 * o + 0.2 * t * light for o, t in zip(out, tint, strict=True)]
    return tuple(int(np.clip(o, 0, 255)) for o in out)


def _sky(arr: np.ndarray, horizon: int, tod: str, rng: np.random.Generator) -> None:
    top, bottom = SKIES[tod][int(rng.integers(len(SKIES[tod])))]
    top, bottom = np.array(_jitter(rng, top)), np.array(_jitter(rng, bottom))
    t = np.linspace(0.0, 1.0, max(horizon, 1))[:, None]
    arr[:horizon] = (top * (1 - t) + bottom * t)[:, None, :]


def _band(draw: ImageDraw.ImageDraw, w: int, y0: int, y1: int, c0: tuple, c1: tuple) -> None:
    for y in range(y0, y1):
        t = (y - y0) / max(1, y1 - y0)
        draw.line([(0, y), (w, y)], fill=tuple(int(a * (1 - t) + b * t) for a, b in zip(c0, c1, strict=True)))


def _ridge(w: int, base: int, amp: float, rng: np.random.Generator, jagged: bool) -> list[tuple[int, int]]:
    n = int(rng.integers(4, 9)) if jagged else int(rng.integers(3, 6))
    xs = np.linspace(0, w, n * 2 + 1)
    pts = []
    for i, x in enumerate(xs):
        if jagged:
            y = base - (amp * rng.uniform(0.5, 1.0) if i % 2 else amp * rng.uniform(0.0, 0.35))
        else:
            y = base - amp * (0.5 + 0.5 * np.sin(i * 0.9 + rng.uniform(0, 6)))
        pts.append((int(x), int(y)))
    return pts


def _mountains(draw, w, h, horizon, light, rng, snowcaps: bool, far: bool = False) -> None:
    amp = h * (0.18 if far else rng.uniform(0.25, 0.42))
    color = (110, 110, 125) if far else _jitter(rng, (95, 85, 80), 20)
    pts = _ridge(w, horizon, amp, rng, jagged=True)
    draw.polygon([(0, horizon)] + pts + [(w, horizon)], fill=_shade(color, light))
    if snowcaps:
        for i in range(1, len(pts) - 1, 2):
            x, y = pts[i]
            dy = (horizon - y) * 0.3
            draw.polygon([(x, y), (x - dy * 0.8, y + dy), (x + dy * 0.8, y + dy)], fill=_shade((240, 240, 250), light))


def _trees(draw, w, y_min, y_max, count, light, rng, snowy: bool = False, size: float = 1.0) -> None:
    for _ in range(count):
        x = int(rng.integers(0, w))
        y = int(rng.integers(y_min, max(y_min + 1, y_max)))
        s = max(3, int((6 + (y - y_min) * 0.25) * size * rng.uniform(0.6, 1.4)))
        green = _shade(_jitter(rng, (30, 90, 40), 20), light)
        draw.rectangle([x - s // 6, y, x + s // 6, y + s // 2], fill=_shade((70, 45, 25), light))
        if rng.random() < 0.6:
            draw.polygon([(x, y - 2 * s), (x - s, y + s // 3), (x + s, y + s // 3)], fill=green)
            if snowy:
                draw.polygon(
                    [(x, y - 2 * s), (x - s // 3, y - s), (x + s // 3, y - s)], fill=_shade((245, 245, 250), light)
                )
        else:
            draw.ellipse([x - s, y - int(1.6 * s), x + s, y + s // 4], fill=green)


def _buildings(draw, w, base, h, light, tod, rng, density: float = 1.0, x0: int = 0, x1: int | None = None) -> None:
    x1 = w if x1 is None else x1
    x = x0 + int(rng.integers(-10, 5))
    while x < x1:
        bw = int(rng.integers(max(6, w // 30), max(12, w // 8)))
        bh = int(h * rng.uniform(0.08, 0.45) * density)
        color = _jitter(
            rng, [(170, 160, 150), (120, 120, 135), (200, 185, 160), (150, 90, 70)][int(rng.integers(4))], 20
        )
        draw.rectangle([x, base - bh, x + bw, base], fill=_shade(color, light))
        win = (250, 220, 120) if tod == "night" else _shade((60, 70, 90), light)
        step = max(4, bw // 4)
        for wx in range(x + 2, x + bw - 2, step):
            for wy in range(base - bh + 3, base - 3, step + 1):
                if tod != "night" or rng.random() < 0.55:
                    draw.rectangle([wx, wy, wx + max(1, step // 2), wy + max(1, step // 2)], fill=win)
        x += bw + int(rng.integers(0, max(2, w // 40)))


def _boats(draw, w, y0, y1, light, rng, count: int) -> None:
    for _ in range(count):
        x = int(rng.integers(0, w))
        y = int(rng.integers(y0, max(y0 + 1, y1)))
        s = max(4, int((y - y0 + 10) * 0.25 * rng.uniform(0.7, 1.5)))
        draw.polygon(
            [(x - s, y), (x + s, y), (x + int(0.7 * s), y + s // 2), (x - int(0.7 * s), y + s // 2)],
            fill=_shade(_jitter(rng, (150, 40, 40), 60), light),
        )
        if rng.random() < 0.7:
            draw.line([(x, y), (x, y - int(1.8 * s))], fill=_shade((60, 50, 40), light), width=max(1, s // 8))
            draw.polygon(
                [(x + 1, y - int(1.7 * s)), (x + 1, y - 2), (x + s, y - 2)], fill=_shade((245, 245, 240), light)
            )


def _people(draw, w, y0, y1, light, rng, count: int) -> None:
    for _ in range(count):
        x = int(rng.integers(0, w))
        y = int(rng.integers(y0, max(y0 + 1, y1)))
        s = max(3, int((y - y0 + 12) * 0.12 * rng.uniform(0.8, 1.6)))
        shirt = _shade(
            _jitter(rng, [(200, 40, 40), (40, 80, 200), (240, 200, 40), (30, 30, 30)][int(rng.integers(4))], 40), light
        )
        skin = _shade(_jitter(rng, (205, 160, 125), 40), light)
        draw.ellipse([x - s, y - 5 * s, x + s, y - 3 * s], fill=skin)
        draw.rectangle([x - s, y - 3 * s, x + s, y - s], fill=shirt)
        draw.line([(x - s // 2, y - s), (x - s, y + s)], fill=_shade((40, 40, 60), light), width=max(1, s // 2))
        draw.line([(x + s // 2, y - s), (x + s, y + s)], fill=_shade((40, 40, 60), light), width=max(1, s // 2))


def _clouds(draw, w, horizon, light, rng, count: int) -> None:
    for _ in range(count):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, max(2, int(horizon * 0.7))))
        r = int(rng.integers(max(4, w // 30), max(8, w // 10)))
        color = _shade((240, 240, 245), max(light, 0.45))
        for _k in range(int(rng.integers(3, 6))):
            dx, dy = int(rng.integers(-r, r + 1)), int(rng.integers(-r // 3, r // 3 + 1))
            draw.ellipse([cx + dx - r, cy + dy - r // 2, cx + dx + r, cy + dy + r // 2], fill=color)


def _water(draw, w, y0, y1, light, tod, rng, lake: bool) -> None:
    c0 = (40, 110, 170) if not lake else (40, 90, 110)
    c1 = (20, 70, 120) if not lake else (25, 60, 70)
    if tod == "sunset":
        c0 = (150, 100, 110)
    _band(draw, w, y0, y1, _shade(_jitter(rng, c0), light), _shade(_jitter(rng, c1), light))
    for _ in range(int((y1 - y0) * 0.6)):
        y = int(rng.integers(y0, max(y0 + 1, y1)))
        x = int(rng.integers(0, w))
        ln = int(rng.integers(4, max(6, w // 12)))
        draw.line([(x, y), (x + ln, y)], fill=_shade((200, 220, 235), light * 0.9), width=1)


def _backdrop(draw, arr_w, h, horizon, scene, light, tod, rng, attrs) -> tuple[int, int]:
    """Draw the scene's ground; return the band (y0, y1) where objects (people, boats) stand."""
    w = arr_w
    if scene == "beach":
        shore = int(horizon + (h - horizon) * rng.uniform(0.3, 0.6))
        _water(draw, w, horizon, shore, light, tod, rng, lake=False)
        _band(
            draw,
            w,
            shore,
            h,
            _shade(_jitter(rng, (225, 200, 150)), light),
            _shade(_jitter(rng, (200, 170, 120)), light),
        )
        return shore, h
    if scene == "lake":
        if "mountains" in attrs:
            _mountains(draw, w, h, horizon, light, rng, snowcaps="snow" in attrs, far=True)
        shore = int(horizon + (h - horizon) * rng.uniform(0.55, 0.8))
        _water(draw, w, horizon, shore, light, tod, rng, lake=True)
        _band(draw, w, shore, h, _shade(_jitter(rng, (70, 110, 50)), light), _shade(_jitter(rng, (50, 80, 40)), light))
        return shore, h
    if scene == "mountain":
        _mountains(draw, w, h, horizon, light, rng, snowcaps="snow" in attrs)
        _band(
            draw, w, horizon, h, _shade(_jitter(rng, (95, 110, 60)), light), _shade(_jitter(rng, (80, 70, 50)), light)
        )
        return horizon + (h - horizon) // 3, h
    if scene == "city":
        _band(
            draw, w, horizon, h, _shade(_jitter(rng, (110, 110, 115)), light), _shade(_jitter(rng, (70, 70, 75)), light)
        )
        _buildings(draw, w, horizon + 2, h, light, tod, rng, density=1.3)
        return horizon, h
    if scene == "forest":
        _band(draw, w, horizon, h, _shade(_jitter(rng, (60, 90, 45)), light), _shade(_jitter(rng, (45, 60, 30)), light))
        _trees(draw, w, int(horizon * 0.8), h, int(rng.integers(25, 60)), light, rng, snowy="snow" in attrs, size=1.6)
        return horizon, h
    if scene == "desert":
        _band(
            draw,
            w,
            horizon,
            h,
            _shade(_jitter(rng, (225, 160, 90)), light),
            _shade(_jitter(rng, (190, 120, 60)), light),
        )
        for k in range(3):
            base = int(horizon + (h - horizon) * (0.2 + 0.3 * k))
            pts = _ridge(w, base, (h - horizon) * 0.15, rng, jagged=False)
            draw.polygon(
                [(0, h)] + pts + [(w, h)], fill=_shade(_jitter(rng, (215, 145, 75), 25), light * (0.95 - 0.1 * k))
            )
        return horizon, h
    if scene == "snow":
        if "mountains" in attrs:
            _mountains(draw, w, h, horizon, light, rng, snowcaps=True, far=True)
        _band(
            draw,
            w,
            horizon,
            h,
            _shade(_jitter(rng, (235, 240, 250), 10), light),
            _shade(_jitter(rng, (200, 210, 230), 10), light),
        )
        return horizon, h
    # countryside
    _band(draw, w, horizon, h, _shade(_jitter(rng, (110, 160, 70)), light), _shade(_jitter(rng, (80, 130, 50)), light))
    for k in range(4):
        base = int(horizon + (h - horizon) * (0.15 + 0.25 * k))
        pts = _ridge(w, base, (h - horizon) * 0.12, rng, jagged=False)
        field = [(150, 180, 70), (200, 190, 90), (90, 140, 60), (170, 120, 170)][int(rng.integers(4))]
        draw.polygon([(0, h)] + pts + [(w, h)], fill=_shade(_jitter(rng, field, 20), light))
    return horizon, h


def render_photo(spec: PhotoSpec) -> Image.Image:
    """Render one RGB photo from its spec; the same spec always gives the same pixels."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.width, spec.height
    tod, attrs, light = spec.time_of_day, spec.attributes, LIGHT[spec.time_of_day]
    horizon = int(h * rng.uniform(0.3, 0.6))
    arr = np.zeros((h, w, 3), dtype=np.float32)
    _sky(arr, horizon, tod, rng)
    img = Image.fromarray(arr.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if tod == "night":
        for _ in range(int(rng.integers(10, 60))):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, max(1, horizon)))
            draw.point((x, y), fill=(255, 255, 230))
    if tod == "sunset" and rng.random() < 0.8:
        r = int(w * rng.uniform(0.03, 0.08))
        cx = int(rng.integers(r, max(r + 1, w - r)))
        draw.ellipse([cx - r, horizon - 2 * r, cx + r, horizon], fill=(255, 200, 90))
    if "clouds" in attrs:
        _clouds(draw, w, horizon, light, rng, int(rng.integers(2, 7)))
    # the secondary scene shows as a far layer on part of the horizon (city by the sea, peaks behind a lake...)
    if spec.secondary == "mountain" and spec.scene != "mountain":
        _mountains(draw, w, h, horizon, light, rng, snowcaps="snow" in attrs, far=True)
    if spec.secondary == "forest" and spec.scene != "forest":
        _trees(draw, w, horizon - 4, horizon + 4, int(rng.integers(8, 20)), light, rng, size=0.7)
    y0, y1 = _backdrop(draw, w, h, horizon, spec.scene, light, tod, rng, attrs)
    if spec.secondary in ("beach", "lake") and spec.scene not in ("beach", "lake"):
        _water(draw, w, y1 - int((y1 - y0) * rng.uniform(0.2, 0.4)), y1, light, tod, rng, lake=spec.secondary == "lake")
    if spec.secondary == "city" and spec.scene != "city":
        x0 = int(rng.integers(0, w // 2))
        _buildings(draw, w, horizon + 2, h, light, tod, rng, density=0.6, x0=x0, x1=x0 + w // 2)
    if spec.secondary == "desert" and spec.scene != "desert":
        _band(draw, w, y1 - (y1 - y0) // 4, y1, _shade((220, 160, 90), light), _shade((200, 130, 70), light))
    if "buildings" in attrs and spec.scene != "city":
        x0 = int(rng.integers(0, max(1, w - w // 3)))
        _buildings(draw, w, y0 + 2, h, light, tod, rng, density=0.5, x0=x0, x1=x0 + w // 3)
    if "trees" in attrs and spec.scene != "forest":
        _trees(draw, w, y0, y1, int(rng.integers(3, 12)), light, rng, snowy="snow" in attrs)
    if "snow" in attrs and spec.scene not in ("snow",):
        for _ in range(int(rng.integers(150, 400))):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            draw.ellipse([x, y, x + 2, y + 2], fill=(245, 245, 250))
    if "boats" in attrs:
        if spec.scene in ("beach", "lake"):
            band = (horizon + 3, y0)
        else:
            band = (y1 - (y1 - y0) // 4, y1)
        _boats(draw, w, band[0], band[1], light, rng, int(rng.integers(1, 5)))
    if "people" in attrs:
        _people(draw, w, y0 + (y1 - y0) // 6, y1, light, rng, int(rng.integers(1, 7)))
    # clutter: signposts, litter, random blobs in the foreground
    for _ in range(int(rng.integers(0, 6))):
        x, y = int(rng.integers(0, w)), int(rng.integers(horizon, h))
        s = int(rng.integers(2, max(3, w // 25)))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + s, y + s], fill=color)
        else:
            draw.ellipse([x, y, x + s, y + s], fill=color)
    # camera: quality drives blur, noise, tilt and exposure (highlights tend to be sharp, well-exposed shots)
    q = spec.quality
    if q < 0.45:
        img = img.filter(ImageFilter.GaussianBlur(radius=(0.45 - q) * 6))
    if rng.random() < 0.25:
        img = img.rotate(float(rng.uniform(-6, 6)), resample=Image.BILINEAR, expand=False, fillcolor=(0, 0, 0))
    out = np.asarray(img, dtype=np.float32)
    exposure = 1.0 + (rng.uniform(-0.35, 0.35) * (1.0 - q))
    sigma = 3.0 + 14.0 * (1.0 - q)
    out = out * exposure + rng.normal(0.0, sigma, size=(h, w, 1)).astype(np.float32)
    if tod == "sunset":
        out[..., 0] += 12.0
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
