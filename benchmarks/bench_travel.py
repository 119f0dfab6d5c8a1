"""Travel intelligence benchmark: suggestions on held-out trips (two sample seeds), and optionally descriptions and
search on rendered photos.

1. Suggestions (default): the sample's travel histories without pixels (visits planned by the sample generator for
   each seed: user, place, time, trip cut by TripSegmenter; content from the photos' annotated scene and attributes,
   what a perfect photo model would predict). Each user's last trip is held out; `TravelRecommender` (its ranker
   learned on the trips before) against every single signal alone (popularity, ALS, co-visitation, sequence,
   geography, season, kind, content) and random: per-user ndcg@10 and recall@10, the chosen method's gain over each
   with a 95% paired-bootstrap interval, warm and cold-start (first trip only) users apart.
2. `--with-photos`: descriptions (accuracy of the claims stated as facts on test photos) and search (recall@10 of
   held-out caption queries, joint space vs TF-IDF) on a rendered, featurized sample and on coco-cc57.

Last line: `recommend_ndcg10_ranker_minus_best_baseline_ci_low: <lower bound, worst of the seeds>` (the learned
recommender minus the best single signal on the test trips, ndcg@10, 95% paired bootstrap).
Usage: .venv/bin/python benchmarks/bench_travel.py [--users 1500] [--photos 45000] [--seeds 0 1] [--with-photos]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

REPO = Path(__file__).resolve().parents[1]
STOP = set("""a an the of in on at to and or with is are was were be been by for from as it its this that these those
there their his her he she they them we you i up down out over under near next into onto off some two three four
very while other each one another several many few small large big little front top side back of while has have
having sitting standing looking sits stands holding""".split())


def table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a plain-text table."""
    print(f"\n== {title}")
    cells = [header] + [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def content_words(text: str) -> set[str]:
    """Lower-case alphabetic words that are not stop words (mostly the nouns of a caption)."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in STOP}


def tfidf_recall(index_texts: list[str], queries: list[str], targets: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """Recall@k of TF-IDF caption matching; documents without text can never be matched."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    has = np.array([bool(t.strip()) for t in index_texts])
    vec = TfidfVectorizer().fit([t for t in index_texts if t.strip()])
    scores = (vec.transform(queries) @ vec.transform(index_texts).T).toarray()
    scores[:, ~has] = -1.0
    t = scores[np.arange(len(targets)), targets]
    rank = (scores > t[:, None]).sum(axis=1) + ((scores == t[:, None]).sum(axis=1) - 1)  # ties count against
    return float((rank < k).mean()), scores


def photo_benchmarks(args: argparse.Namespace) -> None:
    """Descriptions and search (sections 1 and 3): they need rendered, featurized photos and a trained model."""

    from wanderlens.config import DescriptionConfig
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.features.featurize import featurize
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.mtl.train import train_from_config
    from wanderlens.session import get_spark
    from wanderlens.travel.describe import calibrate_fact_threshold, claim_accuracy, description_builder, task_roles
    from wanderlens.travel.job import prepare_photos, read_catalog
    from wanderlens.travel.search import JointSpaceProjection, joint_vectors, recall_at_k

    t_start = time.time()
    spark = get_spark(app_name="bench-travel")
    out = args.out
    k = 10
    print(f"\nphoto sections: sample {args.photo_count} photos / {args.photo_users} users, seed {args.seeds[0]}")

    # --- data, features, model --------------------------------------------------------------------------------------
    if not (out / "features" / "features").is_dir():
        generate_sample(out / "sample", photos=args.photo_count, users=args.photo_users, seed=args.seeds[0])
        ingest(spark, out / "sample" / "manifest.csv", out / "ingested")
        featurize(spark, out / "ingested", out / "features")
    feats = spark.read.parquet(str(out / "features" / "features"))
    bucket = F.abs(F.hash(F.concat(F.col("photo_id"), F.lit(str(args.seeds[0]))))) % 10
    split = F.when(bucket < 6, "train").when(bucket < 8, "val").otherwise("test")
    feats = feats.withColumn("split", split).cache()
    if not (out / "model").is_dir():
        from wanderlens.config import load_config

        config = load_config(REPO / "configs" / "sample.yaml",
                             [f"training.epochs={args.epochs}", f"training.seed={args.seeds[0]}"])
        train_from_config(spark, out / "features", config, out / "model",
                          df=feats.where("split = 'train'").drop("split"))
    from wanderlens.mtl.estimator import MultiTaskModel

    model = MultiTaskModel.load(str(out / "model"))
    roles = task_roles(model.tasks)
    catalog = read_catalog(spark, out / "sample" / "destinations.csv")
    preds = model.transform(feats)
    photos = prepare_photos(preds, roles, catalog)
    photos = photos.cache()  # model inference once; every section below reads it
    photos.count()
    print(f"setup done in {time.time() - t_start:.0f} s")

    # --- 1. descriptions: confident claims on test photos ------------------------------------------------------------
    truth = {t.name: t.label_col for t in model.tasks if t.type in ("multiclass", "multilabel")}

    def describe(df, fact):
        return description_builder(model.tasks, DescriptionConfig(fact_threshold=fact)).transform(df)

    val_desc = describe(photos.where("split = 'val'"), 0.5).cache()
    fact = calibrate_fact_threshold(val_desc, truth, target=0.93)
    rows = []
    default_fact = DescriptionConfig().fact_threshold
    for name, thr in ((f"default {default_fact:.2f}", default_fact), (f"calibrated {fact:.2f}", fact)):
        acc = claim_accuracy(describe(photos.where("split = 'test'"), thr), truth).collect()
        for r in acc:
            rows.append([name, r["task"], r["stated"], r["claims"], r["correct"], float(r["accuracy"])])
        facts = [r for r in acc if r["stated"] == "fact"]
        n, c = sum(r["claims"] for r in facts), sum(r["correct"] for r in facts)
        rows.append([name, "all", "fact", n, c, c / n if n else float("nan")])
        if thr == fact:
            confident_accuracy = c / n if n else float("nan")
    table("descriptions on the sample (test photos): accuracy of claims by how they are stated",
          ["fact threshold", "task", "stated", "claims", "correct", "accuracy"], rows)
    print(f"confident (stated-as-fact) claim accuracy: {confident_accuracy:.3f} (goal >= 0.90)")
    ex = describe(photos.where("split = 'test'"), fact).select("photo_id", "description").limit(3).collect()
    for r in ex:
        print(f"  {r['photo_id']}: {r['description']}")

    # --- joint space (fit on train + validation captions) ------------------------------------------------------------
    joint = JointSpaceProjection(seed=args.seeds[0]).fit(photos.where("split != 'test'"))

    # --- 3. search on the sample: held-out caption queries -----------------------------------------------------------
    cols = ["photo_id", "split", "caption", "scene", "attributes", "image_embedding", "sentence_embedding", "has_text"]
    pdf = (photos.where(F.col("image_embedding").isNotNull()).select(*cols)
           .withColumn("image_embedding", vector_to_array("image_embedding", "float32"))
           .withColumn("sentence_embedding", vector_to_array("sentence_embedding", "float32"))
           .orderBy("photo_id").toPandas())  # benchmark-sized: a few thousand rows
    img = np.stack(pdf["image_embedding"].to_numpy())
    txt = np.stack(pdf["sentence_embedding"].to_numpy())
    cap = pdf["caption"].fillna("").to_numpy()
    is_test = (pdf["split"] == "test").to_numpy() & (np.char.str_len(cap.astype(str)) > 0)
    targets = np.flatnonzero(is_test)
    if len(targets) > 1500:  # a seeded subset keeps the query x photo score matrices small
        targets = np.sort(np.random.default_rng(args.seeds[0]).choice(targets, 1500, replace=False))
        is_test = np.isin(np.arange(len(pdf)), targets)
    has = pdf["has_text"].fillna(0).to_numpy() * ~is_test      # held-out photos lose their caption
    W, b = joint.weight, joint.bias
    index = joint_vectors(img, txt, has, W, b, 0.5)
    index_img = joint_vectors(img, txt, np.zeros(len(img)), W, b, 0.0)
    queries, _ = embed_sentences(list(cap[targets]))
    r_joint = recall_at_k(index, queries, targets, k)
    r_img = recall_at_k(index_img, queries, targets, k)
    index_texts = [c if not t else "" for c, t in zip(cap, is_test, strict=True)]
    r_tfidf, tf_scores = tfidf_recall(index_texts, list(cap[targets]), targets, k)
    scenes = pdf["scene"].to_numpy()

    def scene_precision(scores: np.ndarray) -> float:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ok = [np.mean(scenes[t] == scenes[q]) for t, q in zip(top, targets, strict=True) if scenes[q] is not None]
        return float(np.mean(ok))

    qn = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    rows = [["joint space (image projected, captions blended)", len(targets), r_joint, scene_precision(qn @ index.T)],
            ["joint space, image only for every photo", len(targets), r_img, scene_precision(qn @ index_img.T)],
            ["TF-IDF caption matching (baseline)", len(targets), r_tfidf, scene_precision(tf_scores)],
            ["random", len(targets), k / len(pdf), float("nan")]]
    table(f"search on the sample: held-out caption queries among {len(pdf)} photos (the target's caption hidden)",
          ["method", "queries", "recall@10", "scene precision@10"], rows)
    concept_rows = concept_search(pdf, index, cap, has > 0, k)
    table("search on the sample: concept queries, precision@10 against the ground truth (all photos / only photos "
          "without a caption)", ["query", "relevant", "joint space", "joint, uncaptioned", "TF-IDF",
                                 "TF-IDF, uncaptioned"], concept_rows)

    # --- coco-cc57: descriptions vs retrieval only, and search ---
    coco_rows, coco_search = coco_benchmark(spark, out, k)
    table("coco-cc57 descriptions: recall of the 5 human captions' content words (leave-one-out retrieval)",
          ["text", "recall", "words per text"], coco_rows)
    table("coco-cc57 search: held-out caption queries, 5-fold (projection fit on the other folds)",
          ["method", "queries", "recall@10"], coco_search)

    print(f"\nphoto sections took {time.time() - t_start:.0f} s")
    print(f"confident_claim_accuracy: {confident_accuracy:.3f}  search_recall10_sample: {r_joint:.3f} "
          f"(tfidf {r_tfidf:.3f})")


# Queries a traveller might type, with the ground truth that makes a photo relevant: (scenes, required attributes).
CONCEPT_QUERIES: list[tuple[str, set[str], set[str]]] = [
    ("sunset over the sea", {"beach"}, {"sunset"}),
    ("boats on a lake", {"lake"}, {"boats"}),
    ("snowy mountains", {"mountain", "snow"}, {"snow"}),
    ("the city at night", {"city"}, {"night"}),
    ("people on the beach", {"beach"}, {"people"}),
    ("a quiet forest", {"forest"}, set()),
    ("sand dunes in the desert", {"desert"}, set()),
    ("a village in the countryside", {"countryside"}, {"buildings"}),
]


def concept_search(pdf, index: np.ndarray, captions: np.ndarray, captioned: np.ndarray, k: int) -> list[list]:
    """precision@k of CONCEPT_QUERIES against the sample's ground truth, over all photos and over the photos the index
    holds without a caption (`captioned` false), which TF-IDF caption matching cannot rank."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from wanderlens.features.sentence import embed_sentences

    scene = pdf["scene"].to_numpy()
    attrs = [set(a) if a is not None else set() for a in pdf["attributes"]]
    captioned = captioned & np.array([bool(str(c).strip()) for c in captions])
    texts = [str(c) if h else "" for c, h in zip(captions, captioned, strict=True)]
    vec = TfidfVectorizer().fit([t for t in texts if t])
    queries = [q for q, _, _ in CONCEPT_QUERIES]
    qv, _ = embed_sentences(queries)
    qv = qv / np.maximum(np.linalg.norm(qv, axis=1, keepdims=True), 1e-12)
    # `index` is the joint space as served: projected image, blended with the caption where the index has one.
    joint = qv @ index.T
    tfidf = (vec.transform(queries) @ vec.transform(texts).T).toarray()

    def prec(scores: np.ndarray, relevant: np.ndarray, mask: np.ndarray) -> float:
        idx = np.flatnonzero(mask)
        order = idx[np.argsort(-scores[idx], kind="stable")[:k]]
        return float(relevant[order].mean()) if len(order) else float("nan")

    rows = []
    for j, (q, scenes, need) in enumerate(CONCEPT_QUERIES):
        relevant = np.array([s in scenes and need <= a for s, a in zip(scene, attrs, strict=True)])
        tf = np.where(captioned, tfidf[j], -1.0)  # TF-IDF has nothing to match for a photo without text
        rows.append([q, int(relevant.sum()), prec(joint[j], relevant, np.ones(len(scene), bool)),
                     prec(joint[j], relevant, ~captioned), prec(tf, relevant, np.ones(len(scene), bool)),
                     prec(tf, relevant, ~captioned) if tf[~captioned].max(initial=-1) > 0 else 0.0])
    means = [float(np.nanmean([r[i] for r in rows])) for i in range(2, 6)]
    rows.append(["mean", "", *means])
    return rows


def coco_benchmark(spark, out: Path, k: int) -> tuple[list[list], list[list]]:
    """Descriptions and search on the 57 real COCO photos."""
    import json

    from wanderlens.data.importers import import_coco
    from wanderlens.data.ingest import ingest
    from wanderlens.features.featurize import featurize
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.travel.captions import nearest_captions
    from wanderlens.travel.describe import describe_photo
    from wanderlens.travel.search import fit_projection, joint_vectors, recall_at_k

    coco = REPO / "examples" / "coco-cc57"
    cdir = out / "coco"
    if not (cdir / "features" / "features").is_dir():
        import_coco(coco / "captions.json", cdir / "import", coco / "instances.json", coco / "images")
        ingest(spark, cdir / "import" / "manifest.jsonl", cdir / "ingested")
        featurize(spark, cdir / "ingested", cdir / "features")
    df = (spark.read.parquet(str(cdir / "features" / "features")).where(F.col("image_embedding").isNotNull())
          .select("photo_id", "image_path", vector_to_array("image_embedding", "float32").alias("img"),
                  "image_tags").orderBy("photo_id").toPandas())
    caps = json.loads((coco / "captions.json").read_text())
    by_file: dict[str, list[str]] = {}
    files = {im["id"]: im["file_name"] for im in caps["images"]}
    for a in caps["annotations"]:
        by_file.setdefault(files[a["image_id"]], []).append(" ".join(a["caption"].split()))
    human = [by_file.get(Path(p).name, []) for p in df["image_path"]]
    img = np.stack(df["img"].to_numpy())
    n = len(df)
    ids = [str(x) for x in df["photo_id"]]
    # Leave-one-out: each photo retrieves captions of the other photos by image similarity.
    ref_caps = [h[0] if h else "" for h in human]
    near = nearest_captions(img, ids, ids, ref_caps, img / np.linalg.norm(img, axis=1, keepdims=True), 2)
    rec_desc, rec_ret, len_desc, len_ret = [], [], [], []
    for i in range(n):
        truth_words = set().union(*[content_words(h) for h in human[i]]) if human[i] else set()
        consensus = {w for w in truth_words if sum(w in content_words(h) for h in human[i]) >= 2}
        if not consensus:
            continue
        raw_tags = df["image_tags"][i]
        tags = [(t["label"], t["prob"]) for t in (raw_tags if raw_tags is not None else [])]
        text, _ = describe_photo(imagenet=tags, captions=near[i], imagenet_min=0.1)
        base = near[i][0] if near[i] else ""
        rec_desc.append(len(consensus & content_words(text)) / len(consensus))
        rec_ret.append(len(consensus & content_words(base)) / len(consensus))
        len_desc.append(len(text.split()))
        len_ret.append(len(base.split()))
    desc_rows = [["our description (ImageNet labels + 2 nearest captions)", float(np.mean(rec_desc)),
                  float(np.mean(len_desc))],
                 ["retrieval only (nearest caption)", float(np.mean(rec_ret)), float(np.mean(len_ret))]]
    # Search: 5 folds; the fold's photos are uncaptioned in the index, queried by one of their human captions.
    rng = np.random.default_rng(0)
    fold = rng.permutation(n) % 5
    all_caps = [h for h in human]
    emb_cache = {}

    def emb(texts):
        missing = [t for t in texts if t not in emb_cache]
        if missing:
            v, _ = embed_sentences(missing)
            emb_cache.update(dict(zip(missing, v, strict=True)))
        return np.stack([emb_cache[t] for t in texts])

    hits_j = hits_t = total = 0
    for f in range(5):
        train_i = [i for i in range(n) if fold[i] != f and all_caps[i]]
        test_i = [i for i in range(n) if fold[i] == f and all_caps[i]]
        pairs_img = np.concatenate([np.repeat(img[i:i + 1], len(all_caps[i]), 0) for i in train_i])
        pairs_txt = emb([c for i in train_i for c in all_caps[i]])
        W, b = fit_projection(pairs_img, pairs_txt, epochs=100, seed=0)
        own = np.zeros((n, pairs_txt.shape[1]), np.float32)
        has = np.zeros(n)
        for i in train_i:
            own[i] = emb([all_caps[i][0]])[0]
            has[i] = 1
        index = joint_vectors(img, own, has, W, b, 0.5)
        q_text = [all_caps[i][1 % len(all_caps[i])] for i in test_i]
        hits_j += recall_at_k(index, emb(q_text), np.array(test_i), k) * len(test_i)
        texts = [all_caps[i][0] if has[i] else "" for i in range(n)]
        hits_t += tfidf_recall(texts, q_text, np.array(test_i), k)[0] * len(test_i)
        total += len(test_i)
    search_rows = [["joint space (projection learned on the other folds)", total, hits_j / total],
                   ["TF-IDF caption matching (baseline)", total, hits_t / total],
                   ["random", total, k / n]]
    return desc_rows, search_rows


def suggestions_benchmark(spark, photos: int, users: int, seed: int, out: Path, k: int = 10) -> float:
    """Section 1 for one seed: prints the tables, returns the lower bound of the gain over the best single signal."""
    import csv

    from wanderlens.data.destinations import DESTINATIONS, SCENES
    from wanderlens.data.sample import ATTRIBUTES, _plan
    from wanderlens.travel.evaluate import CHOSEN, evaluate_visits
    from wanderlens.travel.trips import TripSegmenter

    t0 = time.time()
    labels = list(SCENES) + list(ATTRIBUTES)
    rows = [(r["photo_id"], r["user_id"], r["taken_at"].replace(tzinfo=None), r["lat"], r["lon"],
             r["dest"].destination_id, [1.0 if x == r["scene"] or x in r["attrs"] else 0.0 for x in labels])
            for r in _plan(photos, users, seed)]
    df = spark.createDataFrame(rows, "photo_id string, user_id string, taken_at timestamp, latitude double, "
                                     "longitude double, destination_id string, interest array<double>")
    df = TripSegmenter().transform(df).localCheckpoint()
    out.mkdir(parents=True, exist_ok=True)
    catalog = out / "destinations.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["destination_id", "name", "country", "kind", "latitude", "longitude"])
        for d in DESTINATIONS:
            w.writerow([d.destination_id, d.name, d.country, d.kind, d.latitude, d.longitude])
    ev = evaluate_visits(df, str(catalog), k=k, seed=seed, params={"labels": labels, "sceneCount": len(SCENES)})
    print(f"\n### seed {seed}: {users} travellers, {photos} photos, {df.select('trip_id').distinct().count()} trips; "
          f"method chosen on validation: {ev.method}")
    table(f"validation ndcg@10 (seed {seed}, held-out half of the validation users) by method", ["method", "ndcg@10"],
          sorted(([m, v] for m, v in ev.validation.items()), key=lambda r: -r[1]))
    for group in ("warm", "cold"):
        rows_g = getattr(ev, group)
        if not rows_g:
            continue
        table(f"{group} travellers, last trip held out (seed {seed}; {CHOSEN} = {ev.method})",
              ["method", "users", "ndcg@10", "recall@10"],
              [[r["method"], r["users"], r["ndcg@k"], r["recall@k"]] for r in rows_g])
        table(f"{CHOSEN} minus each baseline, {group} travellers (mean, 95% paired bootstrap)",
              ["baseline", "metric", "users", "gain", "low", "high"],
              [[g["baseline"], g["metric"], g["users"], g["gain"], g["low"], g["high"]] for g in ev.gains[group]])
    warm = {r["method"]: r["ndcg@k"] for r in ev.warm}
    singles = [m for m in warm if m not in (CHOSEN, "ranker", "random")]
    best = max(singles, key=lambda m: warm[m])
    gain = next(g for g in ev.gains["warm"] if g["baseline"] == best and g["metric"] == "ndcg@k")
    print(f"seed {seed}: best single signal on test {best} (ndcg@10 {warm[best]:.3f}); {CHOSEN} minus it "
          f"{gain['gain']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]  ({time.time() - t0:.0f} s)")
    return gain["low"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=45000, help="photos planned per seed (no pixels rendered)")
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--with-photos", action="store_true", help="also descriptions and search on rendered photos")
    ap.add_argument("--photo-count", type=int, default=16000, help="--with-photos: rendered sample size")
    ap.add_argument("--photo-users", type=int, default=550)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_travel")
    args = ap.parse_args()
    from wanderlens.session import get_spark

    spark = get_spark(app_name="bench-travel")
    print(f"machine: 2-core CPU VM, 24 GiB, shared with other jobs; suggestions on {args.users} travellers / "
          f"{args.photos} photos per seed, seeds {args.seeds}")
    lows = [suggestions_benchmark(spark, args.photos, args.users, s, args.out / f"visits-{s}") for s in args.seeds]
    if args.with_photos:
        photo_benchmarks(args)
    print(f"recommend_ndcg10_ranker_minus_best_baseline_ci_low: {min(lows):.4f}")


if __name__ == "__main__":
    main()
