"""Do descriptions know when they do not know? The demo's model (trained on the synthetic sample with
configs/sample.yaml, as `wanderlens demo` does) describes the real COCO photos of coco-cc57 with and without the
novelty model (`wanderlens.travel.novelty`, fitted on the sample's photos as the travel job does).

Claims about people, boats, water, buildings and trees are checked against the COCO object labels (person, boat)
and the five captions (words such as "man", "boat", "lake", "building", "tree"). Reports: stated claims right
(goal >= 0.9) and the fraction of COCO photos whose trained claims are withheld; and, on fresh photos of the
sample's own distribution (a second sample, another seed, never seen by the model or the novelty model), the
fraction withheld (should be about 1%).

    python benchmarks/bench_novelty.py [--photos 2000] [--out runs/bench_novelty]

Last line: `novelty_claims_right: <x> withheld_coco: <f> withheld_sample: <g>`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHECKED = ("people", "boats", "water", "buildings", "trees")
WORDS = {
    "people": r"\b(man|men|woman|women|person|people|boy|girl|child|children|kid|kids|player|guy|lady|crowd|"
              r"skier|surfer|rider|someone|couple|family)\b",
    "boats": r"\b(boat|boats|ship|ships|canoe|kayak|sailboat|yacht|ferry)\b",
    "water": r"\b(water|sea|ocean|lake|river|beach|harbor|harbour|wave|waves|surf|pond|bay|shore)\b",
    "buildings": r"\b(building|buildings|city|street|tower|house|houses|church|skyscraper|downtown|store|shop)\b",
    "trees": r"\b(tree|trees|forest|woods|palm|palms)\b",
}
OBJECTS = {"people": {"person"}, "boats": {"boat"}, "water": {"boat", "surfboard"}}


def truth(label: str, objects: list[str] | None, captions: list[str] | None) -> bool:
    """Is `label` in the photo, by its COCO objects or any of its captions."""
    if set(objects or ()) & OBJECTS.get(label, set()):
        return True
    return any(re.search(WORDS[label], c.lower()) for c in captions or ())


def prepare(spark, out: Path, photos: int) -> tuple[Path, Path]:
    """Sample -> ingest -> featurize -> train as the demo does; returns (features dir, model dir)."""
    from wanderlens.cli.demo import demo_config
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.features.featurize import featurize
    from wanderlens.mtl.train import train_from_config

    cfg = demo_config(0)
    if not (out / "model").is_dir():
        generate_sample(out / "sample", photos=photos, users=max(10, photos // 33), seed=0)
        ingest(spark, out / "sample" / "manifest.csv", out / "ingested")
        featurize(spark, out / "ingested", out / "features", cfg)
        train_from_config(spark, out / "features", cfg, out / "model")
    return out / "features", out / "model"


def unseen_features(spark, out: Path, pipeline: Path, coco: Path) -> tuple[Path, Path]:
    """Features of coco-cc57 and of a fresh sample (seed 1), through the sample's fitted feature pipeline."""
    from wanderlens.data.importers import import_coco
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.travel.job import apply_feature_pipeline

    if not (out / "coco_features").is_dir():
        instances = coco / "instances.json"
        import_coco(coco / "captions.json", out / "coco", instances=instances if instances.is_file() else None,
                    images_dir=coco / "images")
        ingest(spark, out / "coco" / "manifest.jsonl", out / "coco_ingested")
        apply_feature_pipeline(spark, out / "coco_ingested", pipeline, out / "coco_features")
    if not (out / "fresh_features").is_dir():
        generate_sample(out / "fresh", photos=300, users=10, seed=1)
        ingest(spark, out / "fresh" / "manifest.csv", out / "fresh_ingested")
        apply_feature_pipeline(spark, out / "fresh_ingested", pipeline, out / "fresh_features")
    return out / "coco_features" / "features", out / "fresh_features" / "features"


def described(spark, features: Path, model, novelty) -> list[dict]:
    """Rows (objects, captions, is_novel, claims) of photos described with the novelty flag."""
    from pyspark.sql import functions as F

    from wanderlens.travel.describe import description_builder

    predicted = model.transform(spark.read.parquet(str(features)))
    # The same photos described without the novelty flag: the claims the model would state on its own.
    plain = description_builder(model.tasks).transform(predicted).select(
        "photo_id", F.col("claims").alias("plain_claims"))
    df = description_builder(model.tasks).transform(novelty.transform(predicted)).join(plain, "photo_id")
    cols = ["photo_id", "is_novel", "novelty", "claims", "plain_claims", "description"]
    cols += [c for c in ("objects", "captions", "caption") if c in df.columns]
    return [r.asDict() for r in df.select(*cols).collect()]


def claims_right(rows: list[dict], withhold: bool) -> tuple[int, int]:
    """(right, stated) over the checked attribute claims: with `withhold`, the claims stated with the novelty flag
    (novel photos state none); without, the claims the model states on its own."""
    right = stated = 0
    for r in rows:
        caps = list(r["captions"] or []) if "captions" in r else [r["caption"] or ""]
        objs = list(r["objects"] or []) if "objects" in r else []
        for c in (r["claims"] if withhold else r["plain_claims"]) or []:
            if c["label"] in CHECKED:
                stated += 1
                right += truth(c["label"], objs, caps)
    return right, stated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000, help="sample photos the model is trained on")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_novelty")
    parser.add_argument("--coco", type=Path, default=None, help="coco-cc57 folder (default: shared, else examples)")
    args = parser.parse_args()
    from wanderlens.config import TravelConfig
    from wanderlens.mtl.estimator import MultiTaskModel
    from wanderlens.session import get_spark
    from wanderlens.travel.novelty import NoveltyDetector, novelty_params

    coco = args.coco or next(p for p in (ROOT.parent / "shared" / "data" / "coco-cc57",
                                         Path("/work/shared/data/coco-cc57"), ROOT / "examples" / "coco-cc57")
                             if (p / "captions.json").is_file())
    spark = get_spark(master="local[*]")
    out = args.out.resolve()
    features, model_dir = prepare(spark, out, args.photos)
    model = MultiTaskModel.load(str(model_dir))
    cfg = TravelConfig().novelty
    novelty = NoveltyDetector(**novelty_params(cfg)).fit(spark.read.parquet(str(features / "features")))
    coco_features, fresh_features = unseen_features(spark, out, features / "feature_pipeline", coco)
    coco_rows = described(spark, coco_features, model, novelty)
    fresh_rows = described(spark, fresh_features, model, novelty)
    base_right, base_stated = claims_right(coco_rows, withhold=False)
    right, stated = claims_right(coco_rows, withhold=True)
    withheld_coco = sum(bool(r["is_novel"]) for r in coco_rows) / max(1, len(coco_rows))
    withheld_sample = sum(bool(r["is_novel"]) for r in fresh_rows) / max(1, len(fresh_rows))
    print(f"novelty threshold {novelty.threshold:.4f} (p{cfg.percentile:g} of held-out training photos, k={cfg.k})")
    print(f"coco-cc57: {len(coco_rows)} photos; without novelty {base_right}/{base_stated} checked claims right; "
          f"with novelty {right}/{stated} stated claims right")
    for r in coco_rows[:3]:
        print(f"  {r['photo_id']}: {r['description']}")
    print(f"fresh sample photos: {len(fresh_rows)}, withheld {withheld_sample:.3f}")
    accuracy = right / stated if stated else 1.0  # nothing stated: nothing stated wrongly
    print(f"novelty_claims_right: {accuracy:.3f} withheld_coco: {withheld_coco:.3f} withheld_sample: "
          f"{withheld_sample:.3f}")


if __name__ == "__main__":
    main()
