"""Load benchmark of the REST service: N concurrent clients POST 224-1024 px JPEGs to /v1/describe for S seconds.

Prints p50 / p99 latency, requests/s and 5xx count, beside two baselines measured in the same run: the same photos
described in-process with no HTTP (one at a time), and GET /healthz under the same concurrency (HTTP overhead).
Goal on a 2-core machine: p50 <= 60 ms, p99 <= 250 ms, zero 5xx. Last line: `describe_p99_ms: <x>`.

    python benchmarks/bench_serve.py                       # builds a small registry under runs/bench_serve
    python benchmarks/bench_serve.py --registry runs/demo/registry --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDERLENS_ENCODER_THREADS", "1")  # as `wanderlens serve` runs them (one thread per request)

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


def multipart(photo: bytes, caption: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
             f"Content-Type: image/jpeg\r\n\r\n".encode(), photo, b"\r\n",
             f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n".encode(),
             f"--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def run_load(port: int, clients: int, seconds: float, bodies: list[tuple[bytes, str]] | None,
             path: str) -> dict:
    """`clients` threads, each with one keep-alive connection, sending requests back to back for `seconds`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(idx: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = idx
        local_lat, local_status = [], {}
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if bodies is None:
                    conn.request("GET", path)
                else:
                    body, ctype = bodies[i % len(bodies)]
                    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
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
            "statuses": statuses}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", type=Path, default=None, help="existing registry (default: build one)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_serve")
    ap.add_argument("--photos", type=int, default=300, help="sample size when building the registry")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--images", type=int, default=48, help="distinct JPEGs in the request mix")
    ap.add_argument("--workers", type=int, default=2, help="server inference threads")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper that runs `wanderlens serve`
    from server_process import ServerProcess

    from wanderlens.serving.model import ServedModel
    from wanderlens.serving.registry import ModelRegistry

    registry_root = args.registry or build_registry(args.work, args.photos)
    registry = ModelRegistry(registry_root)
    version = registry.resolve("production")
    sample_images = sorted((args.work / "sample" / "images").rglob("*.jpg"))
    if not sample_images:
        sample_images = sorted((ROOT / "examples" / "coco-cc57" / "images").glob("*.jpg"))
    jpegs = make_jpegs(sample_images, args.images)
    captions = ["a sunny beach with boats", "snowy mountains at sunset", "old town streets", ""]
    bodies = [multipart(j, captions[i % len(captions)]) for i, j in enumerate(jpegs)]
    print(f"registry {registry.root} version {version}; {len(jpegs)} JPEGs "
          f"{min(len(j) for j in jpegs) // 1024}-{max(len(j) for j in jpegs) // 1024} KiB; "
          f"{args.clients} clients x {args.seconds:g} s; cpu cores {os.cpu_count()}", flush=True)

    # Baseline 1: the same describe work in this process, one photo at a time, no HTTP.
    served = ServedModel.load(registry.version_dir(version))
    direct = []
    for i, j in enumerate(jpegs * 2):
        t0 = time.perf_counter()
        served.describe(j, captions[i % len(captions)] or None, [])
        direct.append((time.perf_counter() - t0) * 1000)
    direct.sort()
    del served
    base = {"p50": percentile(direct, 50), "p99": percentile(direct, 99), "rps": 1000 / statistics.mean(direct)}

    log = args.work / "server.log"
    args.work.mkdir(parents=True, exist_ok=True)
    with ServerProcess(registry.root, log_path=log, extra_args=["--workers", str(args.workers)]) as server:
        run_load(server.port, args.clients, 3.0, bodies, "/v1/describe")  # warm-up, not counted
        health = run_load(server.port, args.clients, min(10.0, args.seconds), None, "/healthz")
        load = run_load(server.port, args.clients, args.seconds, bodies, "/v1/describe")

    print()
    print(f"{'':34s}{'p50 ms':>10s}{'p99 ms':>10s}{'req/s':>10s}{'5xx':>7s}{'n':>8s}")
    print(f"{'in-process describe, 1 at a time':34s}{base['p50']:10.1f}{base['p99']:10.1f}{base['rps']:10.1f}"
          f"{'-':>7s}{len(direct):8d}")
    print(f"{'GET /healthz, same clients':34s}{health['p50']:10.1f}{health['p99']:10.1f}{health['rps']:10.1f}"
          f"{health['5xx']:7d}{health['n']:8d}")
    print(f"{'POST /v1/describe, same clients':34s}{load['p50']:10.1f}{load['p99']:10.1f}{load['rps']:10.1f}"
          f"{load['5xx']:7d}{load['n']:8d}")
    print(f"ratios vs in-process baseline: p50 x{load['p50'] / base['p50']:.2f}, p99 x{load['p99'] / base['p99']:.2f}, "
          f"throughput x{load['rps'] / base['rps']:.2f}")
    print(f"statuses: {load['statuses']}")
    print(f"goal p50 <= 60 ms: {'met' if load['p50'] <= 60 else 'MISSED'}; p99 <= 250 ms: "
          f"{'met' if load['p99'] <= 250 else 'MISSED'}; zero 5xx: {'met' if load['5xx'] == 0 else 'MISSED'}")
    print(f"describe_p99_ms: {load['p99']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
