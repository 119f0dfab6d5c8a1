"""Multimodal features: decoding, encoders, Spark stages, featurize with its cache, the no-Spark path.

Real files, real models (EfficientNet-Lite0 via ONNX Runtime, MiniLM), one real SparkSession.
"""

from __future__ import annotations

import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO_DIR = REPO_ROOT / "examples" / "coco-cc57"
IMAGENET_DIR = SHARED / "data" / "imagenet"

# ImageNet classes that count as seeing a COCO category (for the "sensible labels" check).
COCO_TO_IMAGENET: dict[str, set[str]] = {
    "dog": {"dog"},  # any of the 118 dog classes, matched by index range below
    "cat": {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"},
    "train": {"passenger car", "electric locomotive", "steam locomotive", "freight car", "streetcar",
              "bullet train"},
    "airplane": {"airliner", "warplane", "wing", "airship"},
    "bus": {"school bus", "trolleybus", "minibus", "passenger car", "streetcar"},
    "zebra": {"zebra"},
    "elephant": {"African elephant", "Indian elephant", "tusker"},
    "pizza": {"pizza"},
    "boat": {"speedboat", "canoe", "lifeboat", "gondola", "fireboat", "yawl", "catamaran", "trimaran", "schooner",
             "container ship", "liner", "paddlewheel", "dock", "boathouse"},
    "giraffe": {"ostrich", "hartebeest", "impala", "gazelle"},  # not an ImageNet class: savannah animals
    "bear": {"brown bear", "American black bear", "ice bear", "sloth bear"},
    "toilet": {"toilet seat", "washbasin", "tub"},
    "sheep": {"ram", "bighorn"},
    "horse": {"sorrel", "horse cart"},
    "skis": {"ski"},
    "surfboard": {"surfboard"},
    "motorcycle": {"moped", "motor scooter", "crash helmet"},
    "umbrella": {"umbrella"},
    "broccoli": {"broccoli"},
    "banana": {"banana"},
    "clock": {"analog clock", "wall clock", "digital clock"},
}


def _dog_labels() -> set[str]:
    from wanderlens.features.encoders import imagenet_labels

    return set(imagenet_labels()[151:269])


# --- decoding (no Spark) ---------------------------------------------------------------------------------------------

def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_decode_applies_exif_orientation_and_converts_every_mode_to_rgb():
    from wanderlens.features.preprocess import decode_image, load_and_preprocess

    # A 40x20 image, left half red, stored with EXIF orientation 6 (rotate 90 degrees clockwise to display).
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = decode_image(_encode(Image.fromarray(arr), "JPEG", exif=exif.tobytes(), quality=95))
    assert upright.size == (20, 40) and upright.mode == "RGB"
    top = np.asarray(upright)[:15].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[1] < 60  # the red half is on top after rotating clockwise

    gray16 = Image.fromarray((np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16))
    rgba = Image.new("RGBA", (32, 32), (0, 0, 255, 0))  # fully transparent blue -> white background
    palette = Image.fromarray(arr).convert("P", palette=Image.ADAPTIVE, colors=4)
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red in CMYK
    cases = {
        "L": (_encode(Image.fromarray(arr).convert("L"), "PNG"), None),
        "I;16": (_encode(gray16, "PNG"), None),
        "RGBA": (_encode(rgba, "PNG"), (255, 255, 255)),
        "P": (_encode(palette, "GIF"), None),
        "CMYK": (_encode(cmyk, "JPEG", quality=95), (255, 0, 0)),
        "1": (_encode(Image.new("1", (16, 16), 1), "BMP"), (255, 255, 255)),
    }
    for mode, (data, colour) in cases.items():
        img = decode_image(data)
        assert img.mode == "RGB", mode
        if colour is not None:
            assert np.allclose(np.asarray(img).reshape(-1, 3).mean(axis=0), colour, atol=12), mode
    bright = np.asarray(decode_image(cases["I;16"][0]))
    assert bright.max() >= 250 and bright.min() <= 5  # 16-bit range mapped onto 0..255, not clipped
    x = load_and_preprocess(cases["CMYK"][0], 224)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32 and np.isfinite(x).all()
    with pytest.raises(OSError):
        decode_image(b"not an image")


def test_library_calls_leave_the_process_wide_pillow_and_torch_settings_alone(tmp_path):
    import torch
    from data_corpus import png_header_bomb

    from wanderlens.data.probe import probe_image
    from wanderlens.features.encoders import get_encoder
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.threads import torch_threads

    (tmp_path / "bomb.png").write_bytes(png_header_bomb())
    pixels, threads = Image.MAX_IMAGE_PIXELS, torch.get_num_threads()
    other = 1 if threads != 1 else 2
    assert probe_image(str(tmp_path / "bomb.png")).reason == "decompression_bomb"  # Pillow's limit lifted inside
    with torch_threads(other):
        assert torch.get_num_threads() == other
    emb, _ = get_encoder("torch", threads=other).run(np.zeros((1, 3, 224, 224), np.float32))
    assert emb.shape == (1, 1280)
    assert embed_sentences(["a quiet beach at sunset"])[1].tolist() == [1.0]
    assert Image.MAX_IMAGE_PIXELS == pixels and torch.get_num_threads() == threads


# --- encoders (no Spark) ---------------------------------------------------------------------------------------------

def test_onnx_export_matches_torch_and_labels_the_cat(tmp_path, monkeypatch):
    from wanderlens.errors import ConfigError
    from wanderlens.features import encoders
    from wanderlens.features.image import embed_images

    path = encoders.lite0_onnx_path()
    assert path.is_file() and path.parent == encoders.cache_dir()
    assert encoders.check_onnx_against_torch(path) <= 1e-3
    cat = (IMAGENET_DIR / "cat.bmp").read_bytes()
    embs, tags, errors = embed_images([cat, str(IMAGENET_DIR / "cat.bmp")], "efficientnet_lite0", 0, 5, 8)
    assert errors == [None, None] and embs[0].shape == (1280,) and np.allclose(embs[0], embs[1])
    top3 = {label for label, _ in tags[0][:3]}
    assert top3 == {"Egyptian cat", "tabby", "tiger cat"}, tags[0]
    # The torch encoder gives the same embedding (CPU fp32 here) and the same top labels.
    t_embs, t_tags, _ = embed_images([cat], "torch", 0, 3, 8)
    assert np.abs(t_embs[0] - embs[0]).max() < 1e-3
    assert [lab for lab, _ in t_tags[0]] == [lab for lab, _ in tags[0][:3]]
    # A user ONNX model: input size read from the model, embedding from its 'embedding' output.
    u_embs, _, _ = embed_images([cat], f"onnx:{path}", 0, 0, 8)
    assert np.allclose(u_embs[0], embs[0], atol=1e-5)
    # The no-weights baseline: finite, fixed size, different for different images.
    c_embs, c_tags, _ = embed_images([cat, _encode(Image.new("RGB", (64, 64), (0, 90, 200)), "PNG")],
                                     "color_texture", 0, 5, 8)
    assert c_tags == [None, None] and c_embs[0].shape == c_embs[1].shape and np.isfinite(c_embs[0]).all()
    assert np.abs(c_embs[0] - c_embs[1]).sum() > 0.5
    # Export happens once per cache dir, under a file lock: two racing callers get one checked export.
    monkeypatch.setenv("WANDERLENS_CACHE", str(tmp_path / "cache"))
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: encoders.lite0_onnx_path(), range(2)))
    assert got[0] == got[1] and got[0].parent == tmp_path / "cache" and got[0].stat().st_size > 1_000_000
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".lock", ".onnx"]  # no temp leftovers
    mtime = got[0].stat().st_mtime_ns
    assert encoders.lite0_onnx_path().stat().st_mtime_ns == mtime  # reused, not exported again
    with pytest.raises(ConfigError, match="unknown image encoder"):
        encoders.get_encoder("resnet9000")


def test_hashing_matches_spark_hashingtf(spark):
    from pyspark.ml.feature import HashingTF

    from wanderlens.features.hashing import hashing_tf

    docs = [["beach", "sunset", "beach"], ["café", "東京", "ß", "x" * 33], ["a", "ab", "abc", "abcd", "abcde"], []]
    df = spark.createDataFrame([(d,) for d in docs], "t array<string>")
    for n in (1 << 18, 4096, 7):
        rows = HashingTF(inputCol="t", outputCol="v", numFeatures=n).transform(df).collect()
        for doc, row in zip(docs, rows, strict=True):
            assert np.array_equal(row.v.toArray(), hashing_tf(doc, n)), (doc, n)


# --- Spark stages on coco-cc57 ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def heic_photo(tmp_path_factory) -> tuple[Path, str]:
    """The first coco-cc57 photo saved again as HEIC, as a phone would (path, name of the JPEG it came from)."""
    from wanderlens.imaging import register_heif

    assert register_heif(), "pillow-heif is a dependency"
    source = sorted((COCO_DIR / "images").glob("*.jpg"))[0]
    path = tmp_path_factory.mktemp("heic") / "phone.heic"
    with Image.open(source) as im:
        im.convert("RGB").save(path, format="HEIF", quality=90)
    return path, source.name


@pytest.fixture(scope="module")
def coco_embedded(spark, sample_dir, heic_photo):
    """coco-cc57 photos, one HEIC copy and the sample's broken files through ImageEmbedder (rows by file name)."""
    from wanderlens.features import ImageEmbedder

    broken = sorted(str(p) for p in (sample_dir / "images" / "broken").iterdir())
    broken.append(str(sample_dir / "images" / "broken" / "missing.jpg"))
    paths = sorted(str(p) for p in (COCO_DIR / "images").glob("*.jpg")) + [str(heic_photo[0])] + broken
    df = spark.createDataFrame([(p,) for p in paths], "image_path string")
    rows = ImageEmbedder(numPartitions=2, batchSize=16).transform(df).collect()
    return {Path(r.image_path).name: r for r in rows}


def test_coco_embeddings_have_right_dimension_and_broken_images_do_not_fail(coco_embedded):
    good = [r for name, r in coco_embedded.items() if name.startswith("0")]
    assert len(good) == 57
    for r in good:
        v = r.image_embedding.toArray()
        assert v.shape == (1280,) and np.isfinite(v).all() and np.linalg.norm(v) > 0
        assert r.image_error is None and r.has_image == 1.0 and len(r.image_tags) == 5
        probs = [t.prob for t in r.image_tags]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-9
    for name in ("empty.jpg", "notes.jpg", "truncated.jpg", "missing.jpg"):
        r = coco_embedded[name]
        assert r.image_embedding is None and r.image_tags is None and r.has_image == 0.0
        assert r.image_error, name
    assert "FileNotFoundError" in coco_embedded["missing.jpg"].image_error


def test_heic_photo_gets_an_image_embedding_with_and_without_spark(coco_embedded, heic_photo):
    from wanderlens.features.encoders import DEFAULT_ENCODER
    from wanderlens.features.image import embed_images

    path, jpeg_name = heic_photo
    row = coco_embedded[path.name]
    assert row.image_error is None and row.has_image == 1.0 and len(row.image_tags) == 5
    heic, jpeg = row.image_embedding.toArray(), coco_embedded[jpeg_name].image_embedding.toArray()
    cosine = float(heic @ jpeg / (np.linalg.norm(heic) * np.linalg.norm(jpeg)))
    assert cosine > 0.9, cosine  # the same photo, re-encoded: the same content
    assert row.image_tags[0].label in {t.label for t in coco_embedded[jpeg_name].image_tags}
    # The service / LocalFeaturizer path decodes uploaded bytes the same way.
    embs, tags, errors = embed_images([path.read_bytes()], DEFAULT_ENCODER, 0, 5, 16)
    assert errors == [None] and tags[0][0][0] == row.image_tags[0].label
    assert np.allclose(embs[0], heic, atol=1e-4)


def test_coco_imagenet_labels_overlap_coco_categories(coco_embedded):
    inst = json.loads((COCO_DIR / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in inst["categories"]}
    files = {im["id"]: im["file_name"] for im in inst["images"]}
    area: dict[str, dict[str, float]] = {}
    for a in inst["annotations"]:
        cats = area.setdefault(files[a["image_id"]], {})
        cats[names[a["category_id"]]] = cats.get(names[a["category_id"]], 0.0) + a["area"]
    dogs = _dog_labels()
    checked, hits, report = 0, 0, []
    for fname, cats in sorted(area.items()):
        main = max(cats, key=cats.get)  # the photo's dominant object
        if main not in COCO_TO_IMAGENET:
            continue
        expected = dogs if main == "dog" else COCO_TO_IMAGENET[main]
        labels = [t.label for t in coco_embedded[fname].image_tags]
        hit = bool(expected & set(labels))
        checked += 1
        hits += hit
        report.append(f"{fname} {main}: {labels[:3]} {'ok' if hit else 'MISS'}")
    print("\n".join(report))
    assert checked >= 8, report
    assert hits / checked >= 0.6, report


def test_text_and_sentence_stages_give_zero_vectors_and_flags_for_missing_text(spark):
    from wanderlens.features import SentenceEmbedder, TextFeaturizer

    rows = [("a", "Sunset over the beach at Nice", ["beach", "sunset"]), ("b", None, None), ("c", "   ", []),
            ("d", None, ["mountains", "snow"]), ("e", "the and of", None)]
    df = spark.createDataFrame(rows, "id string, caption string, tags array<string>").coalesce(1)
    model = TextFeaturizer(numFeatures=256).fit(df)
    out = SentenceEmbedder().transform(model.transform(df)).orderBy("id").collect()
    assert [c for c in out[0].asDict() if c.startswith("__")] == []
    by_id = {r.id: r for r in out}
    for i in ("a", "d"):
        assert abs(np.linalg.norm(by_id[i].text_tfidf.toArray()) - 1) < 1e-9
        assert abs(np.linalg.norm(by_id[i].sentence_embedding.toArray()) - 1) < 1e-4 and by_id[i].has_text == 1.0
    for i in ("b", "c"):
        assert by_id[i].text_tfidf.numNonzeros() == 0 and by_id[i].text_tfidf.size == 256
        assert not by_id[i].sentence_embedding.toArray().any() and by_id[i].has_text == 0.0
    assert by_id["e"].text_tfidf.numNonzeros() == 0  # only stop words: no TF-IDF terms, but there is text
    assert by_id["e"].has_text == 1.0
    # Similar texts are closer than unrelated ones in MiniLM space.
    a, d = by_id["a"].sentence_embedding.toArray(), by_id["d"].sentence_embedding.toArray()
    assert float(a @ a) > float(a @ d)


def test_sentence_call_size_does_not_change_the_embeddings():
    from wanderlens.features.sentence import SENTENCES_PER_THREAD, embed_sentences

    texts = [f"photo {i}: " + "a quiet street by the harbour at dusk " * (1 + i % 5) for i in range(2 * 32 + 7)]
    auto, present = embed_sentences(texts)  # SENTENCES_PER_THREAD per thread a call
    for size in (1, SENTENCES_PER_THREAD + 3, 128):
        other, _ = embed_sentences(texts, size)
        np.testing.assert_allclose(other, auto, atol=1e-5)
    assert present.all() and np.allclose(np.linalg.norm(auto, axis=1), 1, atol=1e-4)


def test_spark_workers_freeze_what_they_load_so_the_collection_between_tasks_stays_small(spark):
    import gc

    from pyspark.sql import functions as F

    from wanderlens.worker_heap import freeze_loaded_objects

    frozen_here = gc.get_freeze_count()
    assert freeze_loaded_objects() is False and gc.get_freeze_count() == frozen_here  # the driver is not ours

    @F.pandas_udf("string")
    def heap(ids: pd.Series) -> pd.Series:
        from wanderlens.features.sentence import get_sentence_model

        get_sentence_model()
        return pd.Series([f"{gc.get_freeze_count()} {len(gc.get_objects())}"] * len(ids))

    for row in spark.range(2).repartition(2).select(heap("id").alias("h")).collect():
        frozen, tracked = map(int, row.h.split())
        # torch and MiniLM are about 500,000 objects; Spark's daemon collects after every task, and what it then
        # walks is only what the task itself made.
        assert frozen > 200_000 and tracked < frozen // 10, row.h


# --- featurize on the sample -----------------------------------------------------------------------------------------

def test_featurize_writes_the_features_contract(spark, featurized_dir, ingested_dir):
    from pyspark.ml.linalg import VectorUDT

    summary = json.loads((featurized_dir / "summary.json").read_text())
    photos = spark.read.parquet(str(ingested_dir / "photos"))
    table = spark.read.parquet(str(featurized_dir / "features"))
    n = photos.count()
    assert summary["rows"] == table.count() == n
    assert summary["images_computed"] + summary["images_cached"] == photos.select("sha256").distinct().count()
    assert set(photos.columns) < set(table.columns)
    for col in ("image_embedding", "text_tfidf", "sentence_embedding", "features"):
        assert isinstance(table.schema[col].dataType, VectorUDT), col
    assert table.schema["image_tags"].dataType.simpleString() == "array<struct<label:string,prob:double>>"
    assert (featurized_dir / "labels.json").is_file() and (featurized_dir / "feature_pipeline" / "metadata").is_dir()
    dims = summary["image_dim"], summary["text_dim"], summary["sentence_dim"]
    assert dims == (1280, 4096, 384) and summary["features_dim"] == sum(dims) + 2
    rows = table.select("image_embedding", "sentence_embedding", "features", "has_image", "has_text", "caption",
                        "tags").collect()
    for r in rows:
        f = r.features.toArray()
        assert f.shape == (summary["features_dim"],) and np.isfinite(f).all()
        assert (f[-2], f[-1]) == (r.has_image, r.has_text)
        if r.has_image:
            assert np.isfinite(r.image_embedding.toArray()).all()
            assert abs(np.linalg.norm(f[:1280]) - 1) < 1e-6
    no_text = [r for r in rows if not (r.caption or "").strip() and not r.tags]
    assert len(no_text) == summary["text_missing"] > 0
    assert all(r.has_text == 0.0 and not r.sentence_embedding.toArray().any() for r in no_text)


def test_cli_featurize_rerun_recomputes_nothing_and_matches(spark, featurized_dir, ingested_dir, tmp_path, capsys):
    from wanderlens.cli.main import main

    out = tmp_path / "again"
    with pytest.raises(SystemExit) as exit_info:
        main(["featurize", "--photos", str(ingested_dir), "--out", str(out), "--cache-dir",
              str(featurized_dir / "cache"), "--json"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    first = json.loads((featurized_dir / "summary.json").read_text())
    assert summary["images_computed"] == 0 and summary["sentences_computed"] == 0
    assert summary["images_cached"] == first["images_computed"] + first["images_cached"]
    assert summary["sentences_cached"] == first["sentences_computed"] + first["sentences_cached"]
    a = {r.photo_id: r.features for r in spark.read.parquet(str(featurized_dir / "features")).collect()}
    b = {r.photo_id: r.features for r in spark.read.parquet(str(out / "features")).collect()}
    assert a.keys() == b.keys() and all(np.allclose(a[k].toArray(), b[k].toArray()) for k in a)

    with pytest.raises(SystemExit) as bad:
        main(["featurize", "--photos", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and "photos table not found" in err and str(tmp_path / "nowhere") in err


def test_saved_pipeline_round_trips_and_local_path_matches_spark(spark, featurized_dir):
    from pyspark.ml import PipelineModel

    from wanderlens.features.local import LocalFeaturizer

    table = spark.read.parquet(str(featurized_dir / "features"))
    no_text = table.where("has_text = 0").orderBy("photo_id").limit(1)
    sample = table.where("has_text = 1").orderBy("photo_id").limit(3).unionByName(no_text).coalesce(1)
    expected = {r.photo_id: r for r in sample.collect()}
    inputs = sample.select(*[c for c in table.columns if c not in (
        "image_embedding", "image_tags", "image_error", "has_image", "text_tfidf", "sentence_embedding", "has_text",
        "features")])
    reloaded = PipelineModel.load(str(featurized_dir / "feature_pipeline"))
    again = {r.photo_id: r for r in reloaded.transform(inputs).collect()}
    local = LocalFeaturizer.load(featurized_dir / "feature_pipeline")
    assert len(expected) == 4
    for pid, r in expected.items():
        assert np.allclose(again[pid].features.toArray(), r.features.toArray(), atol=1e-5)
        one = local.transform_one(Path(r.image_path).read_bytes(), r.caption, r.tags)
        for col in ("image_embedding", "text_tfidf", "sentence_embedding", "features"):
            assert np.abs(one[col] - r[col].toArray()).max() < 1e-5, (pid, col)
        assert (one["has_image"], one["has_text"]) == (r.has_image, r.has_text)
        assert [t[0] for t in one["image_tags"]] == [t.label for t in r.image_tags]
    broken = local.transform_one(b"\xff\xd8 broken", "a caption", None)
    assert broken["image_embedding"] is None and broken["has_image"] == 0.0 and broken["image_error"]
    assert broken["features"][-2:].tolist() == [0.0, 1.0]


def test_linear_probe_fused_at_least_as_good_as_best_single_modality(spark, featurized_dir):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import StringIndexer

    from wanderlens.features import ModalityFusion

    table = spark.read.parquet(str(featurized_dir / "features")).where("scene IS NOT NULL AND has_image = 1")
    table = StringIndexer(inputCol="scene", outputCol="label").fit(table).transform(table)
    table = ModalityFusion(inputCols=["image_embedding"], inputSizes=[1280], outputCol="f_image").transform(table)
    table = ModalityFusion(inputCols=["text_tfidf", "sentence_embedding"], inputSizes=[4096, 384],
                           presenceCols=["has_text"], outputCol="f_text").transform(table)
    table = table.select("label", "f_image", "f_text", "features").cache()
    train, test = table.randomSplit([0.7, 0.3], seed=11)
    evaluator = MulticlassClassificationEvaluator(labelCol="label", metricName="accuracy")
    scores = {}
    for name, col in (("image", "f_image"), ("text", "f_text"), ("fused", "features")):
        lr = LogisticRegression(featuresCol=col, labelCol="label", regParam=0.01, maxIter=60)
        scores[name] = evaluator.evaluate(lr.fit(train).transform(test))
    print("\nscene linear probe accuracy:  " + "  ".join(f"{k}={v:.3f}" for k, v in scores.items()))
    table.unpersist()
    assert scores["fused"] >= max(scores["image"], scores["text"])
    assert min(scores.values()) > 1.0 / 8  # every modality beats chance over 8 scenes


def test_featurize_rejects_bad_input(spark, tmp_path):
    from wanderlens.errors import ConfigError, InputError
    from wanderlens.features.featurize import featurize

    with pytest.raises(InputError, match="photos table not found"):
        featurize(spark, tmp_path / "missing", tmp_path / "out")
    table = tmp_path / "t" / "photos"
    spark.createDataFrame([("p1", "x")], "photo_id string, caption string").write.parquet(str(table))
    with pytest.raises(InputError, match="no image_path column"):
        featurize(spark, tmp_path / "t", tmp_path / "out")
    empty = tmp_path / "e" / "photos"
    spark.createDataFrame([], "photo_id string, image_path string").write.parquet(str(empty))
    with pytest.raises(InputError, match="has no rows"):
        featurize(spark, tmp_path / "e", tmp_path / "out")
    with pytest.raises(ConfigError, match=r"features\.encodr: unknown key"):
        featurize(spark, tmp_path / "t", tmp_path / "out", {"features": {"encodr": "x"}})
    shutil.rmtree(tmp_path / "t")
