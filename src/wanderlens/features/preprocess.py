"""Image decoding and preprocessing shared by the Spark path and the single-photo path.

Decoding applies the EXIF orientation and converts every Pillow mode (grayscale, RGBA, palette, CMYK, 16-bit) to
8-bit RGB, so encoders always see the same kind of input whatever the file held. Files are opened through
`wanderlens.imaging.open_image`, so HEIC/HEIF phone photos decode in Spark workers and in the no-Spark path alike
(pillow_heif applies the HEIF rotation itself and resets the EXIF orientation, so nothing is rotated twice).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from wanderlens.imaging import open_image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Evaluation crop: resize the shorter side to size / CROP_FRACTION, then take the central size x size square.
CROP_FRACTION = 0.875


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent pixels are composited on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr8 = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, draft_size: int | None = None) -> Image.Image:
    """Decode image bytes into an upright 8-bit RGB Pillow image (raises on a corrupt or unknown file).

    `draft_size` lets JPEG decoding scale down in the DCT (much faster for big photos) while keeping both sides
    at least that many pixels.
    """
    image = open_image(data)
    if draft_size and image.format == "JPEG":
        image.draft("RGB", (draft_size, draft_size))
    image.load()
    image = ImageOps.exif_transpose(image)
    return _to_rgb(image)


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to size / CROP_FRACTION (bilinear) and cut the central size x size square."""
    w, h = image.size
    short = max(size, int(round(size / CROP_FRACTION)))
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    image = image.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_model_input(image: Image.Image, size: int, normalize: bool = True) -> np.ndarray:
    """RGB image -> float32 CHW array at `size` (ImageNet mean/std normalised unless `normalize` is False)."""
    arr = np.asarray(resize_center_crop(image, size), dtype=np.float32) / 255.0
    if normalize:
        arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_and_preprocess(data: bytes, size: int, normalize: bool = True) -> np.ndarray:
    """Decode bytes and return the model input array (see `to_model_input`)."""
    draft = int(round(size / CROP_FRACTION))
    return to_model_input(decode_image(data, draft_size=draft), size, normalize)
