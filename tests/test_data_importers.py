"""Importers: the 57 real COCO photos (coco-cc57) and a folder-per-class tree, each ingested through Spark."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from conftest import COCO_DIR
from PIL import Image

from wanderlens.data.importers import import_coco, import_folder
from wanderlens.data.ingest import ingest
from wanderlens.errors import InputError


def test_coco_cc57_gives_57_photos_with_5_captions_and_their_objects(spark, tmp_path):
    summary = import_coco(COCO_DIR / "captions.json", tmp_path / "coco", instances=COCO_DIR / "instances.json")
    assert (summary["photos"], summary["captions"], summary["categories"]) == (57, 285, 80)
    instances = json.loads((COCO_DIR / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    truth: dict[str, set[str]] = defaultdict(set)
    for ann in instances["annotations"]:
        truth[f"coco-{ann['image_id']}"].add(names[ann["category_id"]])
    captions = json.loads((COCO_DIR / "captions.json").read_text())
    first: dict[str, str] = {}
    for ann in sorted(captions["annotations"], key=lambda a: a["id"]):
        first.setdefault(f"coco-{ann['image_id']}", " ".join(ann["caption"].split()))

    result = ingest(spark, tmp_path / "coco" / "manifest.jsonl", tmp_path / "ingested")
    assert (result["rows_in"], result["rows_kept"], result["rows_quarantined"]) == (57, 57, 0)
    assert result["labels"]["objects"]["type"] == "multilabel"
    photos = spark.read.parquet(str(tmp_path / "ingested" / "photos")).toPandas().set_index("photo_id")
    assert len(photos) == 57
    assert photos["captions"].map(len).eq(5).all()
    assert all(photos.loc[pid, "caption"] == first[pid] for pid in photos.index)
    assert {pid: set(objs) for pid, objs in photos["objects"].items()} == dict(truth)
    assert photos["format"].eq("JPEG").all() and photos["width"].gt(100).all()
    assert (COCO_DIR / "ATTRIBUTION.md").is_file()


def test_folder_per_class_tree(spark, tmp_path):
    root = tmp_path / "trips"
    for cls, color in [("beach", (230, 200, 140)), ("city", (120, 120, 130)), ("forest", (40, 110, 50))]:
        (root / cls / "day 1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (48 + i, 32), color).save(root / cls / f"{cls}_{i}.jpg")
        Image.new("RGB", (20, 20), color).save(root / cls / "day 1" / "nested.png")
    (root / "beach" / "beach_0.txt").write_text("  Sunny  afternoon by the sea \n", encoding="utf-8")
    (root / "city" / "notes.md").write_text("not a photo", encoding="utf-8")
    (root / "forest" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    (root / ".hidden").mkdir()
    summary = import_folder(root, tmp_path / "out", label="scene")
    assert summary["classes"] == ["beach", "city", "forest"]
    assert summary["photos"] == 13 and summary["skipped_files"] == 1
    assert summary["by_class"] == {"beach": 4, "city": 4, "forest": 5}
    result = ingest(spark, tmp_path / "out" / "manifest.csv", tmp_path / "ingested")
    assert (result["rows_kept"], result["by_reason"]) == (12, {"corrupt_image": 1})
    photos = spark.read.parquet(str(tmp_path / "ingested" / "photos")).toPandas().set_index("photo_id")
    assert photos.loc["beach/beach_0.jpg", "caption"] == "Sunny afternoon by the sea"
    assert photos.loc["city/day 1/nested.png", "scene"] == "city"
    assert photos["user_id"].eq("trips").all()


def test_importers_reject_bad_inputs_clearly(tmp_path):
    with pytest.raises(InputError, match="needs at least 2 class sub-folders"):
        (tmp_path / "one" / "only").mkdir(parents=True)
        import_folder(tmp_path / "one", tmp_path / "out")
    with pytest.raises(InputError, match="image folder not found"):
        import_folder(tmp_path / "nowhere", tmp_path / "out")
    bad = tmp_path / "captions.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="is not valid JSON"):
        import_coco(bad, tmp_path / "out")
    bad.write_text('{"annotations": []}', encoding="utf-8")
    with pytest.raises(InputError, match="is not a COCO file"):
        import_coco(bad, tmp_path / "out")
