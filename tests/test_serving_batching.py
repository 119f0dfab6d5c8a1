"""Micro-batching in the REST service: the batcher's rules (a lone request waits for nothing, concurrent ones share a
batch, one failure stays its own), batch-independent text embeddings, and a real `wanderlens serve` answering the
same JSON for a photo whether it came alone or inside a batch, with a bad photo in the batch getting its own 422."""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from server_process import ServerProcess

from wanderlens.serving.batching import MicroBatcher, embed_texts


# -- the batcher -------------------------------------------------------------------------------------------------
def _slow_double(delay_s: float, sizes: list[int]):
    def run(items: list[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        time.sleep(delay_s)
        return [ValueError(f"bad item {x}") if x < 0 else 2 * x for x in items]
    return run


def test_lone_request_on_idle_batcher_waits_for_nothing():
    sizes: list[int] = []
    batcher = MicroBatcher(_slow_double(0.0, sizes), max_size=8, max_wait_ms=1000, workers=1)
    try:
        for x in range(3):
            t0 = time.perf_counter()
            assert batcher.submit(x).result(timeout=10) == 2 * x
            assert time.perf_counter() - t0 < 0.5, "an idle server must not wait max_wait_ms"
        assert sizes == [1, 1, 1]
    finally:
        batcher.close()


def test_concurrent_requests_share_batches_and_failures_stay_their_own():
    sizes: list[int] = []
    batcher = MicroBatcher(_slow_double(0.2, sizes), max_size=4, max_wait_ms=5, workers=1)
    try:
        first = batcher.submit(100)  # occupies the worker while the next ten queue up
        time.sleep(0.05)
        futures = [batcher.submit(x) for x in [1, 2, -3, 4, 5, 6, 7, 8, 9, 10]]
        assert first.result(timeout=10) == 200
        for x, fut in zip([1, 2, -3, 4, 5, 6, 7, 8, 9, 10], futures, strict=True):
            if x < 0:
                with pytest.raises(ValueError, match="bad item -3"):
                    fut.result(timeout=10)
            else:
                assert fut.result(timeout=10) == 2 * x
        assert sizes[0] == 1 and max(sizes) == 4 and all(s <= 4 for s in sizes)
        assert sum(sizes) == 11
    finally:
        batcher.close()


def test_a_batch_that_fails_as_a_whole_fails_its_jobs_only_and_cancelled_jobs_are_skipped():
    seen: list[list[int]] = []
    gate = threading.Event()

    def run(items: list[int]) -> list[int]:
        seen.append(list(items))
        gate.wait(5)
        if 13 in items:
            raise RuntimeError("boom")
        return items

    batcher = MicroBatcher(run, max_size=1, max_wait_ms=0, workers=1)
    try:
        busy = batcher.submit(1)
        time.sleep(0.05)
        dropped, failing, fine = batcher.submit(2), batcher.submit(13), batcher.submit(3)
        assert dropped.cancel()  # the caller gave up before its batch started
        gate.set()
        assert busy.result(timeout=10) == 1 and fine.result(timeout=10) == 3
        with pytest.raises(RuntimeError, match="boom"):
            failing.result(timeout=10)
        assert [2] not in seen
    finally:
        batcher.close()


def test_text_embeddings_do_not_depend_on_the_batch():
    from wanderlens.features.sentence import embed_sentences

    rng = np.random.default_rng(0)
    words = "a sunny beach with boats snowy mountains at sunset old town streets x market harbour".split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(40)] + ["", "   ", "y"]
    alone = np.stack([embed_texts([t])[0][0] for t in texts])
    together, present = embed_texts(texts)
    assert np.array_equal(alone, together)
    for start in range(0, len(texts), 7):  # other batch compositions
        assert np.array_equal(embed_texts(texts[start:start + 7])[0], alone[start:start + 7])
    assert present.tolist() == [1.0] * 40 + [0.0, 0.0, 1.0]
    reference, _ = embed_sentences(texts)
    assert np.abs(reference - together).max() < 1e-5


# -- the service -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch_server(serving_registry, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-batch") / "server.log"
    # A long wait so that concurrent requests surely meet in one batch even on a loaded test machine.
    with ServerProcess(serving_registry, log_path=log,
                       extra_args=["--batch-size", "16", "--batch-wait-ms", "150", "--max-uploads", "32"]) as proc:
        yield proc


def _photos(ingested_dir: Path, n: int) -> list[tuple[bytes, str, str]]:
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(str(ingested_dir / "photos")).to_pylist() if r.get("image_path")]
    out = []
    for r in rows:
        data = Path(str(r["image_path"]).removeprefix("file://")).read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except Exception:  # noqa: BLE001 - the sample keeps a few broken files on purpose
            continue
        out.append((data, r.get("caption") or "", ";".join(r.get("tags") or [])))
        if len(out) == n:
            break
    return out


def _truncated_jpeg() -> bytes:
    """A JPEG whose header reads fine but whose pixels stop half-way: it can only fail at decoding."""
    buf = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) // 2]


def _stable(body: dict) -> str:
    body = dict(body)
    body.pop("timing_ms")
    return json.dumps(body, sort_keys=True)


def test_batched_answers_equal_one_at_a_time_and_a_bad_photo_fails_alone(batch_server, ingested_dir):
    photos = _photos(ingested_dir, 10)
    bad = _truncated_jpeg()
    requests = [(f"p{i}.jpg", data, caption, tags) for i, (data, caption, tags) in enumerate(photos)]
    requests.insert(4, ("broken.jpg", bad, "a broken photo", ""))

    def post(client: httpx.Client, req: tuple[str, bytes, str, str]) -> httpx.Response:
        name, data, caption, tags = req
        return client.post("/v1/describe", files={"photo": (name, data)}, data={"caption": caption, "tags": tags})

    with httpx.Client(base_url=batch_server.url, timeout=120) as client:
        barrier = threading.Barrier(len(requests))

        def together(req):
            barrier.wait(30)
            return post(client, req)

        with ThreadPoolExecutor(len(requests)) as pool:
            batched = list(pool.map(together, requests))
        alone = [post(client, req) for req in requests]  # one at a time: each a batch of one

    assert batched[4].status_code == 422 and "broken.jpg" in batched[4].json()["detail"]
    assert alone[4].status_code == 422
    good = [i for i in range(len(requests)) if i != 4]
    assert all(batched[i].status_code == 200 for i in good), [batched[i].text for i in good]
    sizes = [batched[i].json()["timing_ms"]["batch_size"] for i in good]
    assert max(sizes) > 1, f"concurrent requests never shared a batch: {sizes}"
    assert all(alone[i].json()["timing_ms"]["batch_size"] == 1 for i in good)
    for i in good:
        assert batched[i].json()["filename"] == requests[i][0]
        assert _stable(batched[i].json()) == _stable(alone[i].json()), requests[i][0]


def test_batched_search_queries_equal_one_at_a_time(batch_server):
    queries = ["beach at sunset", "snowy mountains", "old town streets at night", "boats", "a museum", "x"]
    with httpx.Client(base_url=batch_server.url, timeout=120) as client:
        with ThreadPoolExecutor(len(queries)) as pool:
            batched = list(pool.map(lambda q: client.get("/v1/search", params={"q": q, "k": 5}), queries))
        alone = [client.get("/v1/search", params={"q": q, "k": 5}) for q in queries]
    for q, b, a in zip(queries, batched, alone, strict=True):
        assert b.status_code == 200 and a.status_code == 200, (q, b.text)
        assert b.json() == a.json(), q
