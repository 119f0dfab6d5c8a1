"""Benchmark (GPU machine only): featurize with the torch encoder on CUDA, end to end, beside the model alone.

One run: generates N distinct 224-px JPEGs from coco-cc57 (cycled, each a different crop/flip so the content-hash
cache cannot fold them together), then for each batch size (default 256, 512, 1024):

- model alone: EfficientNet-Lite0 forward on a batch already on the GPU (bf16 autocast, channels_last, as
  `encoders.TorchEncoder` runs it), timed with CUDA synchronisation; and `TorchEncoder.run` from a host float32
  batch to host numpy (adds the copies and the softmax);
- end to end, Spark (when pyspark and Java are there): the `ImageEmbedder` stage alone over the JPEGs (local[cores],
  one partition per core, decoding on the executors' CPU cores, noop sink), and the whole `featurize` job
  (TF-IDF, image and sentence embeddings, fusion, Parquet written, fresh cache);
- end to end, no Spark (`--no-spark`, or automatically without pyspark): the same decode + preprocess functions on a
  thread pool of all cores feeding `TorchEncoder.run` in the main process.

The last line is `gpu_featurize_end_to_end_img_s: <x> model_alone_img_s: <y>` (best batch size of each; x is the
ImageEmbedder stage through Spark when it ran, else the no-Spark pipeline). Without a CUDA device it says so and
exits with status 2; it is never run by the tests. See docs/features.md ("GPU featurization benchmark").

    python benchmarks/bench_gpu_featurize.py [--images 8192] [--batch-sizes 256,512,1024] [--no-spark]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # runs from a bare checkout too (the GPU machine's own Python)


def find_coco() -> Path:
    """coco-cc57: WANDERLENS_SHARED/data, ../shared/data beside the repo, /work/shared/data, shared/ in the repo,
    else the copy in examples/."""
    env = os.environ.get("WANDERLENS_SHARED")
    bases = ([Path(env)] if env else []) + [ROOT.parent / "shared", Path("/work/shared"), ROOT / "shared"]
    for base in bases:
        if (base / "data" / "coco-cc57" / "images").is_dir():
            return base / "data" / "coco-cc57"
    return ROOT / "examples" / "coco-cc57"


def _make_one(job: tuple[str, int, int, str]) -> str:
    """Crop variant `variant` of `source`, resized to 224 x 224, flipped on odd variants, saved as JPEG q90."""
    from PIL import Image, ImageOps

    source, variant, index, out_dir = job
    with Image.open(source) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        side = int(min(w, h) * (1.0 - 0.04 * (variant % 8)))
        span_x, span_y = w - side, h - side
        left = span_x * ((variant // 8) % 5) // 4
        top = span_y * ((variant // 40) % 5) // 4
        im = im.crop((left, top, left + side, top + side)).resize((224, 224), Image.BILINEAR)
        if variant % 2:
            im = ImageOps.mirror(im)
        path = os.path.join(out_dir, f"img_{index:06d}.jpg")
        im.save(path, "JPEG", quality=90)
    return path


def make_jpegs(coco: Path, n: int, out_dir: Path, workers: int) -> list[str]:
    """n distinct 224-px JPEGs from coco-cc57's photos, cycled (made in parallel on `workers` threads)."""
    sources = sorted(str(p) for p in (coco / "images").glob("*.jpg"))
    if not sources:
        sys.exit(f"no coco-cc57 photos under {coco / 'images'}; set WANDERLENS_SHARED to the shared/ folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(sources[i % len(sources)], i // len(sources), i, str(out_dir)) for i in range(n)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_make_one, jobs, chunksize=32))


def write_photos_table(paths: list[str], coco: Path, out_dir: Path) -> Path:
    """A photos table as ingest writes it, reduced to what featurize reads (id, path, sha256, caption, tags)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    captions = [a["caption"] for a in json.loads((coco / "captions.json").read_text())["annotations"]]
    table = pa.table({
        "photo_id": [Path(p).stem for p in paths],
        "image_path": paths,
        "sha256": [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths],
        "caption": [captions[i % len(captions)] for i in range(len(paths))],
        "tags": pa.array([[] for _ in paths], type=pa.list_(pa.string())),
    })
    (out_dir / "photos").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out_dir / "photos" / "part-00000.parquet")
    return out_dir


def model_alone(batch: int, seconds: float) -> tuple[float, float]:
    """(images/s of the forward pass on a GPU-resident batch, images/s of TorchEncoder.run from host to host)."""
    import numpy as np
    import torch

    from wanderlens.features.encoders import get_encoder

    enc = get_encoder("torch", threads=1)
    x = torch.randn(batch, 3, 224, 224, device="cuda").contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            enc.model(x)

    def timed(fn, sync: bool) -> float:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        runs, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fn()
            runs += 1
            if sync:
                torch.cuda.synchronize()
        torch.cuda.synchronize()
        return runs * batch / (time.perf_counter() - t0)

    host = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    return timed(forward, sync=False), timed(lambda: enc.run(host), sync=True)


def no_spark_pipeline(paths: list[str], batch: int, workers: int) -> float:
    """images/s: decode + preprocess on `workers` threads (Pillow releases the GIL), TorchEncoder.run on CUDA."""
    import numpy as np

    from wanderlens.features.encoders import get_encoder
    from wanderlens.features.preprocess import load_and_preprocess

    enc = get_encoder("torch", threads=1)

    def prep(path: str):
        return load_and_preprocess(Path(path).read_bytes(), 224, enc.normalize)

    chunks = [paths[i:i + batch] for i in range(0, len(paths), batch)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(prep, p) for p in chunks[0]]
        for k in range(len(chunks)):
            arrays = [f.result() for f in pending]
            # queue the next batch's decoding before this one runs, so the CPU decodes while the GPU computes
            pending = [pool.submit(prep, p) for p in chunks[k + 1]] if k + 1 < len(chunks) else []
            enc.run(np.stack(arrays))
    return len(paths) / (time.perf_counter() - t0)


def spark_end_to_end(spark, table_dir: Path, paths: list[str], batch: int, work: Path) -> tuple[float, float]:
    """(images/s of the ImageEmbedder stage alone, images/s of the whole featurize job) at this batch size."""
    from wanderlens.features import ImageEmbedder
    from wanderlens.features.featurize import featurize

    cores = spark.sparkContext.defaultParallelism
    df = spark.read.parquet(str(table_dir / "photos")).select("image_path").repartition(cores).cache()
    df.count()
    stage = ImageEmbedder(encoder="torch", batchSize=batch)
    t0 = time.perf_counter()
    stage.transform(df).select("image_embedding", "image_tags").write.format("noop").mode("overwrite").save()
    stage_img_s = len(paths) / (time.perf_counter() - t0)
    df.unpersist()
    out = work / f"features_b{batch}"
    shutil.rmtree(out, ignore_errors=True)
    config = {"features": {"encoder": "torch", "batch_size": batch, "cache_dir": str(out / "cache")}}
    t0 = time.perf_counter()
    summary = featurize(spark, table_dir, out, config)
    job_img_s = summary["images_computed"] / (time.perf_counter() - t0)
    return stage_img_s, job_img_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=8192, help="distinct JPEGs to generate (coco-cc57 cycled)")
    ap.add_argument("--batch-sizes", default="256,512,1024")
    ap.add_argument("--model-seconds", type=float, default=5.0, help="timing window per model-alone figure")
    ap.add_argument("--no-spark", action="store_true", help="skip Spark: thread-pool decoding + GPU encoder only")
    ap.add_argument("--work", default="", help="scratch folder (default: a temporary one, removed at the end)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("bench_gpu_featurize: torch is not installed; run it on a GPU machine with CUDA torch")
    if not torch.cuda.is_available():
        print("bench_gpu_featurize: no CUDA device found (torch.cuda.is_available() is False); this benchmark only "
              "runs on a GPU machine, see docs/features.md", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    cores = os.cpu_count() or 1
    work = Path(args.work or tempfile.mkdtemp(prefix="wl-gpu-bench-"))
    coco = find_coco()
    t0 = time.perf_counter()
    paths = make_jpegs(coco, args.images, work / "jpegs", cores)
    table_dir = write_photos_table(paths, coco, work / "ingested")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {cores} CPU cores; "
          f"{len(paths)} JPEGs 224 px from {coco} in {time.perf_counter() - t0:.1f} s", flush=True)

    use_spark = not args.no_spark
    if use_spark:
        try:
            from wanderlens.session import get_spark

            spark = get_spark(master=f"local[{cores}]", app_name="bench-gpu-featurize")
        except Exception as exc:  # noqa: BLE001 - no pyspark or no Java: measure without Spark
            print(f"Spark unavailable ({type(exc).__name__}: {exc}); measuring without Spark", flush=True)
            use_spark = False
    rows = []
    for b in batches:
        alone, run_host = model_alone(b, args.model_seconds)
        pipe = no_spark_pipeline(paths, b, cores)
        stage, job = spark_end_to_end(spark, table_dir, paths, b, work) if use_spark else (float("nan"),) * 2
        per_part = -(-len(paths) // cores)
        rows.append((b, alone, run_host, pipe, stage, job))
        print(f"batch {b:>5} (Spark batches <= {min(b, per_part)}): model alone {alone:,.0f} img/s, "
              f"TorchEncoder.run host->host {run_host:,.0f}, no-Spark pipeline {pipe:,.0f}, "
              f"Spark ImageEmbedder {stage:,.0f}, Spark featurize job {job:,.0f}", flush=True)
    print(f"{'batch':>6}{'model alone':>14}{'enc.run':>10}{'no-Spark':>10}{'Spark stage':>13}{'featurize':>11}")
    for b, alone, run_host, pipe, stage, job in rows:
        print(f"{b:>6}{alone:>14,.0f}{run_host:>10,.0f}{pipe:>10,.0f}{stage:>13,.0f}{job:>11,.0f}")
    if use_spark:
        spark.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    end_to_end = max(r[4] if use_spark else r[3] for r in rows)
    print(f"gpu_featurize_end_to_end_img_s: {end_to_end:.1f} model_alone_img_s: {max(r[1] for r in rows):.1f}")


if __name__ == "__main__":
    main()
