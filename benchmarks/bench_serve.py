"""Load benchmark of the REST service against the hardware's ceiling, in one run.

1. The ceiling: a plain in-process loop over the same photos in batches of 32 (`--loop-batch`) on every core:
   decode (draft mode) -> ONNX image encoder -> MiniLM -> task heads. Images/s with decoding, and without it.
2. The service (`wanderlens serve`, a child process) with N concurrent clients POSTing 224-1024 px JPEGs with their
   sample captions and tags to /v1/describe for S seconds: one at a time (`--batch-size 1`) and micro-batched
   (the defaults): req/s, p50, p99, 5xx, mean batch size, side by side.

Goals on a 2-core machine: micro-batched throughput >= 0.7x the loop's images/s, p99 <= 250 ms, zero 5xx.
Last line: `serve_throughput_vs_batched_loop: <ratio> describe_p99_ms: <ms>`.

    python benchmarks/bench_serve.py                       # builds a small registry under runs/bench_serve
    python benchmarks/bench_serve.py --registry runs/demo/registry --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The in-process loop uses every core; the server sets its own encoder threads (`serve --encoder-threads`).
os.environ["WANDERLENS_ENCODER_THREADS"] = str(os.cpu_count() or 1)

ROOT = Path(__file__).resolve().parents[1]


def build_registry(work: Path, photos: int) -> Path:
    """sample -> ingest -> featurize -> train (few epochs) -> register + promote, under `work`."""
    from wanderlens.config import load_config
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.features.featurize import featurize
    from wanderlens.mtl.train import train_from_config
    from wanderlens.serving.registry import ModelRegistry
    from wanderlens.session import get_spark

    registry = ModelRegistry(work / "registry")
    if registry.alias("production"):
        return registry.root
    spark = get_spark(master="local[2]")
    generate_sample(work / "sample", photos=photos, users=12, seed=3)
    ingest(spark, work / "sample" / "manifest.csv", work / "ingested")
    featurize(spark, work / "ingested", work / "features")
    config = load_config(ROOT / "configs" / "sample.yaml", ["training.epochs=5"])
    train_from_config(spark, work / "features", config, work / "model")
    version = registry.register(work / "features" / "feature_pipeline", work / "model",
                                metadata={"source": "bench_serve"})
    registry.promote(version)
    spark.stop()
    return registry.root


def make_jpegs(source_images: list[Path], n: int, seed: int = 0) -> list[bytes]:
    """`n` JPEGs with the long side drawn uniformly from 224..1024 px, from the sample's rendered photos."""
    from PIL import Image

    rng = random.Random(seed)
    out = []
    usable = []
    for p in source_images:  # the sample keeps a few deliberately broken files: skip them
        try:
            with Image.open(p) as im:
                im.load()
            usable.append(p)
        except Exception:  # noqa: BLE001
            continue
        if len(usable) >= n:
            break
    for i in range(n):
        with Image.open(usable[i % len(usable)]) as im:
            im = im.convert("RGB")
            side = rng.randint(224, 1024)
            w, h = im.size
            scale = side / max(w, h)
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def multipart(photo: bytes, caption: str, tags: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
             f"Content-Type: image/jpeg\r\n\r\n".encode(), photo, b"\r\n",
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n".encode(),
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\n{tags}\r\n".encode(),
             f"--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def run_load(port: int, clients: int, seconds: float, bodies: list[tuple[bytes, str]] | None,
             path: str) -> dict:
    """`clients` threads, each with one keep-alive connection, sending requests back to back for `seconds`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    batch_sizes: list[int] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(idx: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = idx
        local_lat, local_status, local_batch = [], {}, []
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if bodies is None:
                    conn.request("GET", path)
                else:
                    body, ctype = bodies[i % len(bodies)]
                    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
                if status == 200 and bodies is not None:
                    local_batch.append(json.loads(payload)["timing_ms"].get("batch_size", 1))
            except (OSError, http.client.HTTPException):
                status = 599
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            local_lat.append(time.perf_counter() - t0)
            local_status[status] = local_status.get(status, 0) + 1
            i += clients
        conn.close()
        with lock:
            latencies.extend(local_lat)
            batch_sizes.extend(local_batch)
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v

    t_start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    lat_ms = sorted(x * 1000 for x in latencies)
    return {"n": len(lat_ms), "p50": percentile(lat_ms, 50), "p99": percentile(lat_ms, 99),
            "rps": len(lat_ms) / elapsed, "5xx": sum(v for k, v in statuses.items() if k >= 500),
            "statuses": statuses, "batch": sum(batch_sizes) / max(1, len(batch_sizes))}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def sample_texts(work: Path, n: int) -> list[tuple[str, str]]:
    """(caption, tags) of the sample's photos, cycled to `n` (a realistic mix of lengths, some empty)."""
    manifest = work / "sample" / "manifest.csv"
    rows = []
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            rows = [(r.get("caption") or "", r.get("tags") or "") for r in csv.DictReader(fh)]
    rows = rows or [("a sunny beach with boats", "beach;boats"), ("snowy mountains at sunset", ""), ("", "")]
    return [rows[i % len(rows)] for i in range(n)]


def batched_loop(version_dir: Path, jpegs: list[bytes], texts: list[tuple[str, str]], batch: int,
                 passes: int) -> tuple[float, float]:
    """The ceiling: (images/s with decoding, images/s of the models alone) of a plain in-process loop on batches."""
    import numpy as np

    from wanderlens.features.preprocess import load_and_preprocess
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.features.text import join_text
    from wanderlens.serving.batching import Photo
    from wanderlens.serving.model import ServedModel

    served = ServedModel.load(version_dir)
    image = served.batch_featurizer.image
    enc, size = image["encoder"], image["size"]
    joined = [join_text(c, t.split(";") if t else []).strip() for c, t in texts]
    photos = [Photo(served.batch_featurizer.preprocess(j), None, c, t.split(";") if t else [])
              for j, (c, t) in zip(jpegs, texts, strict=True)]
    features = np.stack([r["features"] for r in served.batch_featurizer.featurize(photos)])
    order = list(range(len(jpegs))) * passes
    decode_s = model_s = 0.0
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        t0 = time.perf_counter()
        arrays = np.stack([load_and_preprocess(jpegs[i], size, enc.normalize) for i in idx])
        t1 = time.perf_counter()
        enc.run(arrays)
        embed_sentences([joined[i] for i in idx], batch_size=batch)
        served.mtl.predict_full(features[idx])
        t2 = time.perf_counter()
        decode_s, model_s = decode_s + (t1 - t0), model_s + (t2 - t1)
    return len(order) / (decode_s + model_s), len(order) / model_s


def serve_run(registry_root: Path, log: Path, extra: list[str], bodies, clients: int, seconds: float) -> dict:
    """Start `wanderlens serve` with `extra` options, warm it up, and load /v1/describe with `clients` clients."""
    from server_process import ServerProcess

    with ServerProcess(registry_root, log_path=log, extra_args=extra) as server:
        run_load(server.port, clients, 3.0, bodies, "/v1/describe")  # warm-up, not counted
        return run_load(server.port, clients, seconds, bodies, "/v1/describe")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", type=Path, default=None, help="existing registry (default: build one)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_serve")
    ap.add_argument("--photos", type=int, default=300, help="sample size when building the registry")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--images", type=int, default=48, help="distinct JPEGs in the request mix")
    ap.add_argument("--workers", type=int, default=None, help="server batch workers (default: serve's)")
    ap.add_argument("--batch-size", type=int, default=None, help="micro-batch size (default: serve's)")
    ap.add_argument("--loop-batch", type=int, default=32, help="batch size of the in-process ceiling loop")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper that runs `wanderlens serve`
    from wanderlens.serving.registry import ModelRegistry

    registry_root = args.registry or build_registry(args.work, args.photos)
    registry = ModelRegistry(registry_root)
    version = registry.resolve("production")
    sample_images = sorted((args.work / "sample" / "images").rglob("*.jpg"))
    if not sample_images:
        sample_images = sorted((ROOT / "examples" / "coco-cc57" / "images").glob("*.jpg"))
    jpegs = make_jpegs(sample_images, args.images)
    texts = sample_texts(args.work, len(jpegs))
    bodies = [multipart(j, c, t) for j, (c, t) in zip(jpegs, texts, strict=True)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"registry {registry.root} version {version}; {len(jpegs)} JPEGs "
          f"{min(len(j) for j in jpegs) // 1024}-{max(len(j) for j in jpegs) // 1024} KiB with sample captions; "
          f"{args.clients} clients x {args.seconds:g} s; cpu cores {os.cpu_count()}; load average {load:.2f}",
          flush=True)

    loop_img_s, model_img_s = batched_loop(registry.version_dir(version), jpegs, texts, args.loop_batch, passes=3)
    print(f"ceiling loop: {loop_img_s:.1f} images/s (decode + encoders + heads), {model_img_s:.1f} images/s "
          f"(encoders + heads alone), batches of {args.loop_batch}", flush=True)

    args.work.mkdir(parents=True, exist_ok=True)
    # Room above the clients in the upload limiter (`--max-uploads`, default 8): with exactly 8 back-to-back
    # clients, a new request can arrive before the previous one has left the middleware and get a 503.
    common = ["--max-uploads", str(2 * args.clients)] + (["--workers", str(args.workers)] if args.workers else [])
    batched_opts = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    single = serve_run(registry.root, args.work / "server-single.log", [*common, "--batch-size", "1"], bodies,
                       args.clients, args.seconds)
    batched = serve_run(registry.root, args.work / "server-batched.log", [*common, *batched_opts], bodies,
                        args.clients, args.seconds)

    print()
    print(f"{'':40s}{'img|req/s':>10s}{'p50 ms':>9s}{'p99 ms':>9s}{'5xx':>6s}{'batch':>7s}{'n':>7s}")
    print(f"{'batched loop in-process (ceiling)':40s}{loop_img_s:10.1f}{'-':>9s}{'-':>9s}{'-':>6s}"
          f"{args.loop_batch:7d}{'-':>7s}")
    for label, r in (("POST /v1/describe one at a time", single), ("POST /v1/describe micro-batched", batched)):
        print(f"{label:40s}{r['rps']:10.1f}{r['p50']:9.1f}{r['p99']:9.1f}{r['5xx']:6d}{r['batch']:7.1f}{r['n']:7d}")
    ratio = batched["rps"] / loop_img_s
    print(f"statuses: one at a time {single['statuses']}, micro-batched {batched['statuses']}")
    print(f"micro-batched vs one at a time: throughput x{batched['rps'] / single['rps']:.2f}, "
          f"p50 x{batched['p50'] / single['p50']:.2f}, p99 x{batched['p99'] / single['p99']:.2f}")
    print(f"goal throughput >= 0.7x loop: {'met' if ratio >= 0.7 else 'MISSED'} ({ratio:.2f}); p99 <= 250 ms: "
          f"{'met' if batched['p99'] <= 250 else 'MISSED'}; zero 5xx: {'met' if batched['5xx'] == 0 else 'MISSED'}")
    print(f"serve_throughput_vs_batched_loop: {ratio:.2f} describe_p99_ms: {batched['p99']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
