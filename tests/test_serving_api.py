"""The REST service as a real `wanderlens serve` process on 127.0.0.1: every endpoint, every error code, the admin
token, hot reload under concurrent requests with zero failures, and single-photo outputs equal to Spark's."""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from server_process import ServerProcess

from wanderlens.serving.registry import ModelRegistry

TOKEN = "s3cret-test-token"


@pytest.fixture(scope="module")
def server(serving_registry, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with ServerProcess(serving_registry, token=TOKEN, log_path=log,
                       extra_args=["--max-mb", "2", "--max-pixels", "30000000"]) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def photo_rows(ingested_dir):
    """A few rows of the photos table (id, path, caption, tags, user) read with pyarrow."""
    import pyarrow.parquet as pq

    rows = pq.read_table(str(ingested_dir / "photos")).to_pylist()
    rows = [r for r in rows if r.get("image_path")]
    return rows


def _jpeg(size=(320, 240), color=(30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return buf.getvalue()


def _png_header_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG signature + IHDR claiming width x height, with one tiny IDAT: no pixels are ever allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        chunk(b"IEND", b"")


def _read(path: str) -> bytes:
    return Path(str(path).removeprefix("file://")).read_bytes()


# -- operations --------------------------------------------------------------------------------------------------
def test_health_ready_metrics_docs_and_page(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == 1
    spec = client.get("/openapi.json").json()
    for path in ("/v1/describe", "/v1/users/{user_id}/suggestions", "/v1/search", "/v1/photos/{photo_id}",
                 "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="photo-input"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    client.get("/healthz")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'wanderlens_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "wanderlens_model_version 1" in text
    assert 'wanderlens_request_duration_seconds_bucket{method="GET",route="/healthz",le="+Inf"}' in text
    meta = client.get("/v1/model").json()["metadata"]
    assert meta["version"] == 1 and meta["data_snapshot_hash"] and meta["package_version"]
    assert meta["config"]["maxEpochs"] == 8 and meta["metrics"]["epochs"] >= 1  # read from the saved model


# -- describe ----------------------------------------------------------------------------------------------------
def test_describe_real_photo(client, photo_rows):
    row = photo_rows[0]
    r = client.post("/v1/describe", files={"photo": ("holiday.jpg", _read(row["image_path"]))},
                    data={"caption": row.get("caption") or "", "tags": ";".join(row.get("tags") or [])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1
    assert body["description"] and body["description"].endswith(".")
    assert len(body["imagenet_labels"]) >= 1 and 0 < body["imagenet_labels"][0]["prob"] <= 1
    for name, task in body["tasks"].items():
        if task["type"] == "multiclass":
            assert abs(sum(task["probability"]) - 1) < 1e-6, name
            assert task["prediction"] == task["classes"][int(np.argmax(task["probability"]))]
        if task["type"] == "multilabel":
            assert set(task["prediction"]) <= set(task["classes"])
    # A PNG under a .jpg name is still accepted (sniffed by content, not name).
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (200, 180, 90)).save(buf, format="PNG")
    r = client.post("/v1/describe", files={"photo": ("not-really.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200, r.text


def test_describe_rejections(client):
    # 415: not an image, whatever the name and the declared type say.
    r = client.post("/v1/describe", files={"photo": ("photo.jpg", b"#!/bin/sh\necho hi\n" * 20, "image/jpeg")})
    assert r.status_code == 415 and "not a supported image" in r.json()["detail"]
    # 413: body over the 2 MB cap (declared by Content-Length) ...
    big = b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024)
    r = client.post("/v1/describe", files={"photo": ("big.jpg", big)})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    # ... and streamed in chunks with no Content-Length.
    def chunks():
        yield (b'--zz\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff")
        for _ in range(40):
            yield b"x" * 100_000

    r = client.post("/v1/describe", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413
    # 413: decompression bomb, refused from the header (50,000 x 50,000) in well under a second.
    t0 = time.perf_counter()
    r = client.post("/v1/describe", files={"photo": ("bomb.png", _png_header_bomb())})
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    assert time.perf_counter() - t0 < 2
    # 422: malformed fields.
    assert client.post("/v1/describe", data={"caption": "no photo"}).status_code == 422
    r = client.post("/v1/describe", files={"photo": ("a.jpg", _jpeg())}, data={"caption": "x" * 3000})
    assert r.status_code == 422
    r = client.post("/v1/describe", files={"photo": ("a.jpg", _jpeg())}, data={"tags": ";".join(["t"] * 100)})
    assert r.status_code == 422
    r = client.post("/v1/describe", files={"photo": ("trunc.jpg", _jpeg()[:40])})
    assert r.status_code == 422
    r = client.post("/v1/describe", files={"photo": ("empty.jpg", b"")})
    assert r.status_code == 422


# -- travel endpoints ------------------------------------------------------------------------------------------------
def test_users_suggestions_search_photos(client, photo_rows):
    users = client.get("/v1/users").json()["users"]
    assert users, "the registry version carries suggestions"
    r = client.get(f"/v1/users/{users[0]}/suggestions", params={"k": 3})
    assert r.status_code == 200, r.text
    sugg = r.json()["suggestions"]
    assert 1 <= len(sugg) <= 3 and all("destination_id" in s for s in sugg)
    assert client.get("/v1/users/nobody-like-this/suggestions").status_code == 404
    for bad_k in ("0", "101", "abc"):
        assert client.get(f"/v1/users/{users[0]}/suggestions", params={"k": bad_k}).status_code == 422
    r = client.get("/v1/search", params={"q": "boats on the sea", "k": 5})
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    assert len(hits) == 5 and all("photo_id" in h for h in hits)
    assert hits[0]["score"] >= hits[-1]["score"]
    assert client.get("/v1/search", params={"q": ""}).status_code == 422
    assert client.get("/v1/search").status_code == 422
    pid = hits[0]["photo_id"]
    info = client.get(f"/v1/photos/{pid}")
    assert info.status_code == 200 and info.json()["photo"]["photo_id"] == pid
    assert "image_path" not in info.json()["photo"]
    img = client.get(f"/v1/photos/{pid}/image")
    assert img.status_code == 200 and img.headers["content-type"].startswith("image/")
    Image.open(io.BytesIO(img.content)).verify()
    assert client.get("/v1/photos/no-such-photo").status_code == 404


def test_no_path_traversal_through_ids(client):
    for path in ("/v1/photos/..%2F..%2F..%2Fetc%2Fpasswd", "/v1/photos/..%2F..%2Fetc%2Fpasswd/image",
                 "/v1/photos/%2E%2E/image", "/v1/photos/..", "/v1/users/..%2F..%2Fetc/suggestions",
                 "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/../../../../etc/passwd",
                 "/v1/photos/a..b/image"):
        r = client.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert "root:" not in r.text


# -- admin -------------------------------------------------------------------------------------------------------------
def test_admin_token(client):
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    r = client.post("/v1/admin/promote", json={"version": "1"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403
    r = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["model_version"] == 1
    r = client.post("/v1/admin/promote", json={"version": 1.5}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422


# -- reload under load ---------------------------------------------------------------------------------------------
def test_hot_reload_under_concurrent_requests(server, serving_registry, photo_rows):
    """Four clients describe photos back to back while production moves v1 -> v2 (CLI-style registry promote)
    and back (admin endpoint): every request succeeds and both versions answer."""
    registry = ModelRegistry(serving_registry)
    photos = [_read(r["image_path"]) for r in photo_rows[:6]]
    results: list[tuple[int, int | None]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def worker(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            n = i
            while not stop.is_set():
                try:
                    r = c.post("/v1/describe", files={"photo": ("p.jpg", photos[n % len(photos)])})
                    outcome = (r.status_code, r.json().get("model_version") if r.status_code == 200 else None)
                except (httpx.HTTPError, ValueError):  # a dropped connection or a broken body is a failure too
                    outcome = (-1, None)
                with lock:
                    results.append(outcome)
                n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        registry.promote(2)  # what `wanderlens models promote 2` does
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(v == 2 for _, v in results[-4:]):
            time.sleep(0.2)
        time.sleep(1.0)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/v1/admin/promote", json={"version": "1"}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200 and r.json()["model_version"] == 1
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    statuses = [s for s, _ in results]
    versions = [v for _, v in results]
    assert len(results) >= 12
    assert statuses.count(200) == len(statuses), f"failed requests during reload: {set(statuses)}"
    assert 1 in versions and 2 in versions
    assert versions[-1] == 1
    with httpx.Client(base_url=server.url) as c:
        metrics = c.get("/metrics").text
    assert "wanderlens_model_reloads_total 2" in metrics


# -- timeout and parity ----------------------------------------------------------------------------------------------
def test_request_timeout_gives_504(serving_registry, tmp_path):
    with ServerProcess(serving_registry, log_path=tmp_path / "s.log", extra_args=["--timeout", "0.001"]) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/v1/describe", files={"photo": ("a.jpg", _jpeg((640, 480)))})
        assert r.status_code == 504 and "longer than" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
        # Without a configured token the admin endpoints are closed to everyone.
        assert c.post("/v1/admin/reload", headers={"Authorization": "Bearer anything"}).status_code == 403


def test_single_photo_outputs_equal_spark_transform(client, spark, serving_registry, ingested_dir, photo_rows):
    """The served single-photo path (no Spark) gives the Spark pipeline's numbers for the same photos."""
    from pyspark.sql import functions as F

    from wanderlens.serving.scoring import photos_from_folder, score_frame

    registry = ModelRegistry(serving_registry)
    picked = [r for r in photo_rows if r.get("caption")][:3] + [r for r in photo_rows if not r.get("caption")][:1]
    ids = [r["photo_id"] for r in picked]
    frame = photos_from_folder(spark, ingested_dir).where(F.col("photo_id").isin(ids))
    spark_rows = {r["photo_id"]: r for r in score_frame(spark, frame, registry.version_dir(1)).collect()}
    assert sorted(spark_rows) == sorted(ids)
    for row in picked:
        r = client.post("/v1/describe", files={"photo": ("p.jpg", _read(row["image_path"]))},
                        data={"caption": row.get("caption") or "", "tags": ";".join(row.get("tags") or [])})
        served = r.json()
        srow = spark_rows[row["photo_id"]]
        for name, task in served["tasks"].items():
            np.testing.assert_allclose(task["probability"], srow[f"{name}_probability"].toArray(), atol=1e-5,
                                       err_msg=f"{row['photo_id']} {name}")
            pred = srow[f"{name}_prediction"]
            if task["type"] == "multilabel":
                assert task["prediction_index"] == list(pred)
            else:
                assert task["prediction_index"] == pred
        spark_tags = [(t["label"], t["prob"]) for t in srow["image_tags"]]
        assert [t["label"] for t in served["imagenet_labels"]] == [t[0] for t in spark_tags]
        np.testing.assert_allclose([t["prob"] for t in served["imagenet_labels"]], [t[1] for t in spark_tags],
                                   atol=1e-5)
    assert json.dumps(served)  # plain JSON all the way down


# -- web page in headless Chromium -------------------------------------------------------------------------------
@pytest.mark.browser
def test_web_page_describe_suggest_search(server, browser, photo_rows, artifacts_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(server.url + "/")
    wait.until(lambda d: "model version" in d.find_element(By.ID, "model-version").text)
    # Upload a photo: its description, labels and task bars appear.
    path = str(photo_rows[1]["image_path"]).removeprefix("file://")
    browser.find_element(By.ID, "photo-input").send_keys(path)
    wait.until(lambda d: d.find_element(By.ID, "description").text.strip() != "")
    description = browser.find_element(By.ID, "description").text
    assert description.endswith(".")
    assert browser.find_elements(By.CSS_SELECTOR, "#imagenet-labels li")
    assert browser.find_elements(By.CSS_SELECTOR, "#task-bars .task .bar-row")
    # Pick a traveller: suggestions with reasons (and destination photos) appear.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-select option")) > 1)
    select = Select(browser.find_element(By.ID, "user-select"))
    select.select_by_index(1)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#suggestions li.suggestion")))
    items = browser.find_elements(By.CSS_SELECTOR, "#suggestions li.suggestion")
    assert 1 <= len(items) <= 5 and items[0].find_element(By.TAG_NAME, "strong").text
    # Search: thumbnails load from /v1/photos/{id}/image.
    box = browser.find_element(By.ID, "search-input")
    box.send_keys("beach with boats")
    browser.find_element(By.ID, "search-button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#search-results figure img")) > 0)
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#search-results img')].every(i => i.complete && i.naturalWidth > 0)"))
    browser.save_screenshot(str(artifacts_dir / "serving-web-page.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
