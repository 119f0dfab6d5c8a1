"""Importers: turn other photo collections into a wanderlens manifest + labels.yaml that `ingest` reads.

- COCO: captions + instances JSON → one row per image, its captions and a multilabel `objects` column.
- Folder-per-class: ROOT/<class>/<image> → one row per image, a multiclass label named after the folder.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from wanderlens.data.schema import LabelSpec, dump_labels
from wanderlens.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def _load_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "images" not in data:
        raise InputError(f"{what} {path} is not a COCO file (no 'images' list)")
    return data


def import_coco(
    captions: str | Path,
    out_dir: str | Path,
    instances: str | Path | None = None,
    images_dir: str | Path | None = None,
    user_id: str = "coco",
) -> dict[str, Any]:
    """Write OUT/manifest.jsonl and OUT/labels.yaml from COCO captions (+ instances) JSON.

    Each image becomes a row: `caption` is its first caption, `captions` all of them, `objects` the names of the
    categories annotated in it (a multilabel column over every COCO category). Images default to
    `<captions folder>/images`.
    """
    cap_path = Path(captions)
    cap = _load_json(cap_path, "COCO captions file")
    inst = _load_json(Path(instances), "COCO instances file") if instances else None
    img_dir = Path(images_dir) if images_dir else cap_path.parent / "images"
    if not img_dir.is_dir():
        raise InputError(f"COCO images folder not found: {img_dir} (pass --images DIR)")
    images: dict[int, str] = {}
    for source in (cap, inst) if inst else (cap,):
        for im in source["images"]:
            images[int(im["id"])] = str(im["file_name"])
    texts: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for ann in cap.get("annotations", []):
        texts[int(ann["image_id"])].append((int(ann.get("id", 0)), " ".join(str(ann["caption"]).split())))
    objects: dict[int, set[str]] = defaultdict(set)
    categories: list[str] = []
    if inst:
        cats = sorted(inst.get("categories", []), key=lambda c: int(c["id"]))
        names = {int(c["id"]): str(c["name"]) for c in cats}
        categories = [names[k] for k in sorted(names)]
        for ann in inst.get("annotations", []):
            cid = int(ann["category_id"])
            if cid not in names:
                raise InputError(f"COCO instances file {instances}: annotation uses unknown category_id {cid}")
            objects[int(ann["image_id"])].add(names[cid])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as fh:
        for image_id in sorted(images):
            caps = [t for _, t in sorted(texts.get(image_id, []))]
            row: dict[str, Any] = {
                "photo_id": f"coco-{image_id}",
                "user_id": user_id,
                "image": str((img_dir / images[image_id]).resolve()),
                "caption": caps[0] if caps else None,
                "captions": caps,
            }
            if inst:
                row["objects"] = [c for c in categories if c in objects.get(image_id, set())]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    specs = {"objects": LabelSpec("objects", "multilabel", tuple(categories))} if categories else {}
    dump_labels(specs, out / "labels.yaml")
    with_objects = sum(1 for i in images if objects.get(i))
    return {
        "manifest": str(manifest),
        "labels": str(out / "labels.yaml"),
        "photos": len(images),
        "captions": sum(len(texts.get(i, [])) for i in images),
        "photos_with_objects": with_objects,
        "categories": len(categories),
    }


def import_folder(
    root: str | Path,
    out_dir: str | Path,
    label: str = "label",
    user_id: str | None = None,
) -> dict[str, Any]:
    """Write OUT/manifest.csv and OUT/labels.yaml from ROOT/<class>/<image> (a sidecar .txt is the caption).

    Classes are the sub-folder names, sorted; files without an image extension are skipped and counted.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"image folder not found: {base} (expected ROOT/<class>/<image files>)")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(f"{base} needs at least 2 class sub-folders (ROOT/<class>/<image>), found {classes}")
    if any(";" in c for c in classes):
        raise InputError(f"{base}: class folder names must not contain ';': {classes}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.csv"
    owner = user_id or base.resolve().name
    rows, skipped = 0, 0
    per_class: dict[str, int] = {}
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["photo_id", "user_id", "image", "caption", label])
        for cls in classes:
            for dirpath, dirnames, filenames in os.walk(base / cls):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                        skipped += path.suffix.lower() != ".txt" and not name.startswith(".")
                        continue
                    rel = path.relative_to(base).as_posix()
                    sidecar = path.with_suffix(".txt")
                    caption = " ".join(sidecar.read_text(encoding="utf-8").split()) if sidecar.is_file() else ""
                    writer.writerow([rel, owner, str(path.resolve()), caption, cls])
                    rows += 1
                    per_class[cls] = per_class.get(cls, 0) + 1
    dump_labels({label: LabelSpec(label, "multiclass", tuple(classes))}, out / "labels.yaml")
    return {
        "manifest": str(manifest),
        "labels": str(out / "labels.yaml"),
        "photos": rows,
        "skipped_files": int(skipped),
        "classes": classes,
        "by_class": per_class,
    }
