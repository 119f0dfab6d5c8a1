"""Soak test of the REST service: mixed traffic from several clients for a long time, a hot model swap every minute.

Clients send describe (photo uploads), suggestions, search and health requests back to back, with a few malformed
requests mixed in (non-image uploads, bad ids, k out of range, an empty query; they must answer 4xx). Every minute
the admin API promotes the other of two registered versions (the model is reloaded while traffic flows). Per
minute: p99 latency per endpoint and the server's RSS (psutil). Goals: zero 5xx, zero failed swaps, the last
minute's RSS within 10 % of the second's (the first minute includes warm-up).

    python benchmarks/soak_serve.py                      # 10 minutes; builds a registry under runs/soak_serve
    python benchmarks/soak_serve.py --minutes 3 --clients 4 --registry DIR

Last line: `soak_5xx: <n> soak_rss_growth: <fraction> soak_p99_ms: <max over minutes>`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "soak-admin-token"


def build_registry(work: Path, photos: int, destinations: bool = True) -> Path:
    """sample -> ingest -> featurize -> train -> travel -> two registered versions (production = v1), reusing
    every stage already under `work`. `destinations` False derives the catalog from the photos' cities."""
    from wanderlens.config import load_config
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.features.featurize import featurize
    from wanderlens.mtl.train import train_from_config
    from wanderlens.serving.registry import ModelRegistry
    from wanderlens.session import get_spark
    from wanderlens.travel.job import run_travel

    registry = ModelRegistry(work / "registry")
    if len(registry.versions()) >= 2 and registry.alias("production"):
        return registry.root
    spark = get_spark(master="local[2]")
    if not (work / "sample" / "manifest.csv").is_file():
        generate_sample(work / "sample", photos=photos, users=12, seed=3)
    if not (work / "ingested" / "photos").is_dir():
        ingest(spark, work / "sample" / "manifest.csv", work / "ingested")
    if not (work / "features" / "feature_pipeline").is_dir():
        featurize(spark, work / "ingested", work / "features")
    if not (work / "model" / "metadata").is_dir():
        config = load_config(ROOT / "configs" / "sample.yaml", ["training.epochs=5"])
        train_from_config(spark, work / "features", config, work / "model")
    if not (work / "travel" / "summary.json").is_file():
        catalog = work / "sample" / "destinations.csv" if destinations else None
        run_travel(spark, work / "features", work / "model", catalog, work / "travel")
    while len(registry.versions()) < 2:
        registry.register(work / "features" / "feature_pipeline", work / "model", travel_dir=work / "travel",
                          metadata={"source": "soak_serve"})
    registry.promote(1)
    spark.stop()
    return registry.root


def _multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, value) in fields.items():
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts += [f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode(), value, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Traffic:
    """The request mix: (endpoint name, method, path, body, headers, expected status family)."""

    def __init__(self, photos: list[bytes], users: list[str], rng: random.Random) -> None:
        self.photos, self.users, self.rng = photos, users, rng
        self.queries = ["beach at sunset", "snowy mountains", "old town", "harbour with boats", "museum", "forest"]

    def next(self) -> tuple[str, str, str, bytes | None, dict[str, str], int]:
        r = self.rng.random()
        if r < 0.03:
            return self._malformed()
        if r < 0.38:
            body, ctype = _multipart({"photo": ("p.jpg", self.rng.choice(self.photos)),
                                      "caption": (None, b"a day out"), "tags": (None, b"travel;city")})
            return "describe", "POST", "/v1/describe", body, {"Content-Type": ctype}, 2
        if r < 0.60:
            user = self.rng.choice(self.users)
            return "suggestions", "GET", f"/v1/users/{user}/suggestions?k={self.rng.randint(1, 10)}", None, {}, 2
        if r < 0.85:
            q = self.rng.choice(self.queries).replace(" ", "+")
            return "search", "GET", f"/v1/search?q={q}&k={self.rng.randint(1, 20)}", None, {}, 2
        return "health", "GET", "/healthz", None, {}, 2

    def _malformed(self) -> tuple[str, str, str, bytes | None, dict[str, str], int]:
        kind = self.rng.randrange(5)
        if kind == 0:
            body, ctype = _multipart({"photo": ("x.jpg", os.urandom(600))})
            return "malformed", "POST", "/v1/describe", body, {"Content-Type": ctype}, 4
        if kind == 1:
            return "malformed", "GET", "/v1/users/..%2Fetc/suggestions", None, {}, 4
        if kind == 2:
            return "malformed", "GET", "/v1/search?q=boats&k=100000", None, {}, 4
        if kind == 3:
            return "malformed", "GET", "/v1/search?q=", None, {}, 4
        return "malformed", "POST", "/v1/describe", b"{not multipart", {"Content-Type": "application/json"}, 4


class Recorder:
    """Latencies and statuses per (minute, endpoint), shared by the client threads."""

    def __init__(self, t0: float, minutes: float) -> None:
        self.t0 = t0
        self.last_minute = max(int(-(-minutes // 1)) - 1, 0)  # requests finishing after the end join the last one
        self.lock = threading.Lock()
        self.latency: dict[tuple[int, str], list[float]] = defaultdict(list)
        self.statuses: dict[int, int] = defaultdict(int)
        self.unexpected: list[str] = []

    def add(self, endpoint: str, status: int, seconds: float, expected: int, path: str) -> None:
        minute = min(int((time.monotonic() - self.t0) // 60), self.last_minute)
        with self.lock:
            self.latency[(minute, endpoint)].append(seconds * 1000)
            self.statuses[status] += 1
            if status // 100 != expected and len(self.unexpected) < 20:
                self.unexpected.append(f"{endpoint} {path[:60]} -> {status}")


def client_loop(port: int, traffic: Traffic, rec: Recorder, stop: threading.Event) -> None:
    """One keep-alive connection sending the mix back to back; a dropped connection counts as status 599."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        endpoint, method, path, body, headers, expected = traffic.next()
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException):
            status = 599
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        rec.add(endpoint, status, time.perf_counter() - t0, expected, path)
    conn.close()


def swap(port: int, version: int) -> tuple[bool, str]:
    """Promote `version` through the admin API; True when the server answers 200 serving it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/v1/admin/promote", body=json.dumps({"version": str(version)}),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        text = resp.read().decode()
        ok = resp.status == 200 and json.loads(text).get("model_version") == version
        return ok, f"{resp.status} {text[:200]}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return False, repr(exc)
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def load_photos(work: Path) -> list[bytes]:
    """Up to 24 decodable sample photos (the sample keeps a few broken files on purpose)."""
    from PIL import Image

    candidates = sorted((work / "sample" / "images").rglob("*.jpg"))[:200] or \
        sorted((ROOT / "examples" / "coco-cc57" / "images").glob("*.jpg"))
    photos = []
    for p in candidates:
        try:
            with Image.open(p) as im:
                im.load()
            photos.append(p.read_bytes())
        except Exception:  # noqa: BLE001 - a broken sample file is skipped
            continue
        if len(photos) >= 24:
            break
    return photos


def get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def run(args: argparse.Namespace) -> dict:
    import psutil

    sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helper that runs `wanderlens serve`
    from server_process import ServerProcess

    from wanderlens.serving.registry import ModelRegistry

    registry_root = args.registry or build_registry(args.work, args.photos, not args.derive_catalog)
    registry = ModelRegistry(registry_root)
    pair = registry.versions()[-2:]
    assert len(pair) == 2, f"the soak swaps between two versions; {registry_root} has {registry.versions()}"
    registry.promote(pair[0])
    photos = load_photos(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    with ServerProcess(registry_root, token=TOKEN, log_path=args.work / "soak_server.log",
                       extra_args=["--workers", str(args.workers)]) as server:
        users = get_json(server.port, "/v1/users")["users"][:50] or ["nobody"]
        print(f"registry {registry_root} versions {pair}; {len(photos)} photos, {len(users)} users; "
              f"{args.clients} clients x {args.minutes:g} min; swap every {args.swap_s:g} s", flush=True)
        proc = psutil.Process(server.proc.pid)
        t0 = time.monotonic()
        rec, stop = Recorder(t0, args.minutes), threading.Event()
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(server.port, Traffic(photos, users, random.Random(i)), rec, stop))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        rss, swaps, failed_swaps, version = [], 0, [], pair[0]
        end, next_swap, next_rss = t0 + args.minutes * 60, t0 + args.swap_s, t0 + 60
        while time.monotonic() < end:
            time.sleep(0.5)
            now = time.monotonic()
            if now >= next_rss:
                rss.append(proc.memory_info().rss)
                next_rss += 60
                print(f"minute {len(rss)}: rss {rss[-1] / 2**20:.0f} MiB, requests {sum(rec.statuses.values())}",
                      flush=True)
            if now >= next_swap and now < end - 5:
                version = pair[1] if version == pair[0] else pair[0]
                ok, detail = swap(server.port, version)
                swaps += 1
                if not ok:
                    failed_swaps.append(detail)
                next_swap += args.swap_s
        stop.set()
        for t in threads:
            t.join(timeout=120)
    return {"rec": rec, "rss": rss, "swaps": swaps, "failed_swaps": failed_swaps}


def report(result: dict) -> int:
    rec, rss = result["rec"], result["rss"]
    minutes = sorted({m for m, _ in rec.latency})
    endpoints = sorted({e for _, e in rec.latency})
    print(f"\n{'minute':>6} " + " ".join(f"{e + ' p99 ms':>18}" for e in endpoints) + f" {'rss MiB':>8}")
    worst = 0.0
    for m in minutes:
        cells = []
        for e in endpoints:
            values = rec.latency.get((m, e), [])
            p99 = percentile(values, 99)
            if values and e != "malformed":
                worst = max(worst, p99)
            cells.append(f"{p99:>10.1f} (n={len(values):>4})" if values else f"{'-':>18}")
        mem = f"{rss[m] / 2**20:>8.0f}" if m < len(rss) else f"{'-':>8}"
        print(f"{m + 1:>6} " + " ".join(cells) + f" {mem}")
    n5xx = sum(v for k, v in rec.statuses.items() if k >= 500)
    growth = (rss[-1] - rss[1]) / rss[1] if len(rss) >= 3 else float("nan")
    print(f"\nstatuses {dict(sorted(rec.statuses.items()))}; swaps {result['swaps']}, failed "
          f"{len(result['failed_swaps'])} {result['failed_swaps'][:3]}")
    if rec.unexpected:
        print("unexpected answers:", rec.unexpected[:10])
    print(f"rss per minute (MiB): {[round(r / 2**20) for r in rss]}; last vs second minute {growth:+.3f} "
          "(goal within 0.10)")
    print(f"soak_5xx: {n5xx} soak_rss_growth: {growth:.4f} soak_p99_ms: {worst:.1f}")
    return 0 if n5xx == 0 and not result["failed_swaps"] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (one keep-alive connection each)")
    ap.add_argument("--swap-s", type=float, default=60.0, help="seconds between hot model swaps")
    ap.add_argument("--registry", type=Path, default=None, help="registry with two versions (default: build one)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "soak_serve")
    ap.add_argument("--photos", type=int, default=300, help="sample size when building the registry")
    ap.add_argument("--workers", type=int, default=2, help="server inference threads")
    ap.add_argument("--derive-catalog", action="store_true",
                    help="build the travel tables with the catalog derived from the photos (no destinations.csv)")
    return report(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
