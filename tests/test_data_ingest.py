"""Ingestion on real files through the real SparkSession: the sample, and a corpus of broken inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from data_corpus import LABELS, build_corpus

from wanderlens.data.ingest import ingest
from wanderlens.data.probe import probe_image
from wanderlens.data.schema import REASONS
from wanderlens.errors import ConfigError, InputError
from wanderlens.io import read_json

MANIFEST_COLS = ["photo_id", "user_id", "image", "caption", "tags", "taken_at", "latitude", "longitude",
                 "destination_id", "scene", "attributes", "highlight"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("corpus")
    rows = build_corpus(root)
    (root / "labels.yaml").write_text(yaml.safe_dump(LABELS), encoding="utf-8")
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return root, rows


def _write_manifest(root: Path, rows: list[dict], fmt: str) -> Path:
    """The corpus manifest as JSONL or Parquet, with list columns as real arrays."""
    records = []
    for r in rows:
        rec: dict = {k: (r[k] if r[k] != "" else None) for k in MANIFEST_COLS}
        rec["tags"] = r["tags"].split(";") if r["tags"] else None
        rec["attributes"] = [] if r["attributes"] == "[]" else (r["attributes"].split(";") if r["attributes"] else None)
        records.append(rec)
    if fmt == "jsonl":
        path = root / "manifest.jsonl"
        path.write_text("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records), encoding="utf-8")
    else:
        path = root / "manifest.parquet"
        pd.DataFrame(records).to_parquet(path)
    return path


def test_sample_ingest_reconciles_and_follows_the_contract(spark, ingested_dir, sample_dir):
    summary = read_json(ingested_dir / "summary.json")
    with open(sample_dir / "manifest.csv", encoding="utf-8") as fh:
        manifest_rows = sum(1 for _ in csv.DictReader(fh))
    assert summary["rows_in"] == manifest_rows
    assert summary["rows_in"] == summary["rows_kept"] + summary["rows_quarantined"]
    assert summary["by_reason"] == {"bad_taken_at": 1, "corrupt_image": 1, "duplicate_photo_id": 1, "empty_file": 1,
                                    "file_missing": 1, "not_an_image": 1}
    photos = spark.read.parquet(str(ingested_dir / "photos"))
    types = dict(photos.dtypes)
    expected = {"photo_id": "string", "user_id": "string", "image_path": "string", "caption": "string",
                "tags": "array<string>", "taken_at": "timestamp", "latitude": "double", "longitude": "double",
                "destination_id": "string", "scene": "string", "attributes": "array<string>", "highlight": "double",
                "width": "int", "height": "int", "format": "string", "num_bytes": "bigint", "sha256": "string"}
    assert {k: types.get(k) for k in expected} == expected
    assert photos.count() == summary["rows_kept"]
    assert photos.select("photo_id").distinct().count() == summary["rows_kept"]
    pdf = photos.select("image_path", "width", "height", "format", "num_bytes", "sha256", "highlight",
                        "scene").toPandas()
    assert pdf["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert set(pdf["format"]) == {"JPEG", "PNG"}
    assert (pdf["width"] >= 160).all() and (pdf["width"] <= 640).all()
    assert pdf["image_path"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()
    assert (pdf["num_bytes"] == pdf["image_path"].map(lambda p: Path(p).stat().st_size)).all()
    assert set(pdf["highlight"].dropna()) == {0.0, 1.0} and pdf["highlight"].isna().any()
    assert pdf["scene"].isna().any()  # missing labels stay null, never a class
    labels = read_json(ingested_dir / "labels.json")
    assert labels["scene"]["type"] == "multiclass" and len(labels["scene"]["classes"]) >= 8
    qdf = spark.read.parquet(str(ingested_dir / "quarantine"))
    qtypes = dict(qdf.dtypes)
    assert {c: qtypes[c] for c in MANIFEST_COLS} == dict.fromkeys(MANIFEST_COLS, "string")
    assert (qtypes["reason"], qtypes["detail"], qtypes["source_row"]) == ("string", "string", "bigint")
    quarantine = qdf.toPandas()
    assert quarantine["source_row"].between(1, manifest_rows).all()
    assert quarantine["detail"].str.len().gt(10).all()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_broken_corpus_each_row_gets_its_reason(spark, corpus, tmp_path, fmt):
    root, rows = corpus
    manifest = root / "manifest.csv" if fmt == "csv" else _write_manifest(root, rows, fmt)
    summary = ingest(spark, manifest, tmp_path / "out", labels=root / "labels.yaml")
    assert summary["rows_in"] == len(rows)
    assert summary["rows_kept"] + summary["rows_quarantined"] == summary["rows_in"]
    quarantine = spark.read.parquet(str(tmp_path / "out" / "quarantine")).toPandas()
    got = {int(r.source_row): r.reason for r in quarantine.itertuples()}
    expected = {i + 1: r["expect"] for i, r in enumerate(rows) if r["expect"] is not None}
    assert got == expected
    assert set(got.values()) <= set(REASONS)
    assert set(summary["by_reason"]) == set(expected.values())
    photos = spark.read.parquet(str(tmp_path / "out" / "photos")).toPandas().set_index("photo_id")
    kept_ids = sorted({r["photo_id"] for r in rows if r["expect"] is None})
    assert sorted(photos.index) == kept_ids
    assert photos.loc["dup", "format"] == "JPEG"  # the first of the duplicates is kept
    assert photos.loc["dup-first-broken", "format"] == "JPEG"  # a broken first copy does not block a good one
    assert photos.loc["ok-cmyk", "format"] == "JPEG" and photos.loc["ok-16bit", "format"] == "PNG"
    assert photos.loc["ok-unicode", "caption"] == "Café in Beijing 😀, 北京"
    assert photos.loc["ok-alpha-png", "attributes"].tolist() == []  # "[]": known to have none
    assert photos.loc["ok-cmyk", "attributes"] is None and pd.isna(photos.loc["ok-cmyk", "highlight"])
    assert photos.loc["ok-alpha-png", "highlight"] == 0.0 and photos.loc["ok-relative", "highlight"] == 1.0
    assert photos.loc["ok-relative", "tags"].tolist() == ["a", "b"]
    assert str(photos.loc["ok-gif", "taken_at"]) == "2024-05-01 10:30:00"  # +02:00 converted to UTC
    assert pd.isna(photos.loc["ok-file-uri", "latitude"])
    bomb = quarantine[quarantine["photo_id"] == "bomb-png"].iloc[0]
    assert "50000x50000" in bomb["detail"]


def test_missing_required_column_fails_the_job_naming_it(spark, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("photo_id,user_id,caption\np1,u1,hello\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        ingest(spark, manifest, tmp_path / "out")
    msg = str(err.value)
    assert "missing required column(s) image" in msg and "columns present: photo_id, user_id, caption" in msg
    assert not (tmp_path / "out" / "photos").exists()


def test_declared_label_absent_from_manifest_is_a_job_error(spark, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("photo_id,user_id,image\np1,u1,a.jpg\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks label column"):
        ingest(spark, manifest, tmp_path / "out", labels={"scene": {"type": "multiclass", "classes": ["a", "b"]}})
    with pytest.raises(ConfigError, match="unknown type"):
        ingest(spark, manifest, tmp_path / "out", labels={"scene": {"type": "ranking"}})
    odd = tmp_path / "manifest.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(InputError, match="unknown format"):
        ingest(spark, odd, tmp_path / "out")
    with pytest.raises(InputError, match="manifest not found"):
        ingest(spark, tmp_path / "nowhere.csv", tmp_path / "out")


def test_probe_finds_problems_in_header_only_mode_and_honours_the_cap(corpus):
    root, _ = corpus
    img = root / "img"
    assert probe_image(str(img / "truncated.jpg"), decode=False).reason == "corrupt_image"
    assert probe_image(str(img / "truncated.png"), decode=False).reason == "corrupt_image"
    assert probe_image(str(img / "bomb.jpg"), decode=False).reason == "decompression_bomb"
    ok = probe_image(str(img / "good.jpg"), decode=False)
    assert ok.reason is None and (ok.width, ok.height) == (64, 48)
    capped = probe_image(str(img / "good.jpg"), max_pixels=64 * 48 - 1)
    assert capped.reason == "decompression_bomb" and "3,072 pixels" in capped.detail
    assert probe_image(str(img / "good.jpg"), max_pixels=64 * 48).reason is None
    remote = probe_image("s3://bucket/photo.jpg")
    assert remote.reason == "file_missing" and "file://" in remote.detail


def test_image_probe_is_a_persistable_pipeline_stage(spark, corpus, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel

    from wanderlens.data.image_probe import ImageProbe

    img = corpus[0] / "img"
    probe = ImageProbe(inputCol="path", maxPixels=5000, decode=False)
    model = Pipeline(stages=[probe]).fit(spark.range(1))
    model.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline")).stages[0]
    assert isinstance(loaded, ImageProbe)
    assert (loaded.getInputCol(), loaded.getOrDefault("maxPixels"), loaded.getOrDefault("decode")) == ("path", 5000,
                                                                                                      False)
    df = spark.createDataFrame([(str(img / "good.jpg"),), (str(img / "alpha.png"),), (str(img / "bomb.png"),),
                                (None,)], "path string")
    got = {r["path"]: r for r in loaded.transform(df).collect()}
    good = got[str(img / "good.jpg")]
    assert (good["width"], good["height"], good["format"], good["probe_reason"]) == (64, 48, "JPEG", None)
    assert good["sha256"] == __import__("hashlib").sha256((img / "good.jpg").read_bytes()).hexdigest()
    assert got[str(img / "alpha.png")]["probe_reason"] is None
    assert got[str(img / "bomb.png")]["probe_reason"] == "decompression_bomb"
    assert got[None]["sha256"] is None and got[None]["probe_reason"] is None
    with pytest.raises(InputError, match="column\\(s\\) image_path not in the table"):
        ImageProbe().transform(df)


# --- defects found by the property-based test (tests/test_ingest_properties.py), kept as examples -----------------
def _good_jpeg(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), (10, 120, 200)).save(path, format="JPEG")


def test_latin1_manifest_is_refused_naming_the_byte_not_silently_mangled(spark, tmp_path):
    _good_jpeg(tmp_path / "a.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("photo_id,user_id,image,caption\np1,u1,a.jpg,ok\np2,u1,a.jpg,Café\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not UTF-8 text: byte 0xe9 at line 3 .*re-save the file as UTF-8"):
        ingest(spark, manifest, tmp_path / "out")
    manifest.write_bytes(b"\xef\xbb\xbf" + "photo_id,user_id,image,caption\np1,u1,a.jpg,Café\n".encode())  # BOM: fine
    assert ingest(spark, manifest, tmp_path / "out")["rows_kept"] == 1


@pytest.mark.parametrize("extra", ["Photo_ID", "WIDTH", "sha256", "image_path", "Detail", " caption", "a`b",
                                   "exif.make"])
def test_columns_that_clash_by_case_or_with_added_ones_are_refused_clearly(spark, tmp_path, extra):
    _good_jpeg(tmp_path / "a.jpg")
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["photo_id", "user_id", "image", "caption", extra], ["p1", "u1", "a.jpg", "c", "x"]])
    with pytest.raises(InputError, match=f"manifest {manifest}: column") as err:
        ingest(spark, manifest, tmp_path / "out")
    assert extra.strip() in str(err.value) and "rename" in str(err.value)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_odd_names_nan_regression_labels_and_colons_in_file_names(spark, tmp_path):
    _good_jpeg(tmp_path / "a:b.jpg")  # a relative file name with a colon is not a URI
    manifest = tmp_path / "m.jsonl"
    rows = [{"photo_id": "p1", "user_id": "u", "image": "a:b.jpg", "sco re": "1.5", "odd col x": "v"},
            {"photo_id": "p2", "user_id": "u", "image": "a:b.jpg", "sco re": "NaN", "odd col x": "v"},
            {"photo_id": "p3", "user_id": "u", "image": "a:b.jpg", "sco re": "-Infinity", "odd col x": "v"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = ingest(spark, manifest, tmp_path / "out", labels={"sco re": {"type": "regression"}})
    assert (summary["rows_kept"], summary["by_reason"]) == (1, {"unknown_label": 2})
    row = spark.read.parquet(str(tmp_path / "out" / "photos")).first()
    assert (row["photo_id"], row["sco re"], row["odd col x"], row["format"]) == ("p1", 1.5, "v", "JPEG")
