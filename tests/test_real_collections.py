"""Real photo collections through the travel job: two users' folders (copies of coco-cc57 photos given EXIF with
piexif) spanning Paris, Lyon and New York (two countries, two time zones), run by `wanderlens demo --photos-dir`
with the sample's registry model -> trips with city names and days, bursts counted once, a GPS-less photo taking
its trip's place, suggestions naming real cities, and novelty: the COCO photos (unlike the sample's drawings) get
no trained-task claims while the sample's own photos keep them; and the web page of a service answering from that
run shows each traveller's trips with their place names and suggestions naming real cities (headless Chromium).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pyspark.sql import functions as F
from server_process import ServerProcess
from test_import_photos import EIFFEL, LIBERTY, LOUVRE, LYON, TIMES_SQUARE, _coco, exif_bytes, write_photo

pytest.importorskip("piexif")


def build_two_users(root: Path) -> None:
    """ana: Paris (a burst of three shots, a photo without GPS) then Lyon, 4 days; ben: New York 2 days (local
    times, no offsets: the time zone of the position), then Paris a month later."""
    ana, ben = root / "ana", root / "ben"
    write_photo(ana / "p1.jpg", _coco(30), exif_bytes("2023:09:10 09:00:00", "+02:00", EIFFEL))
    write_photo(ana / "p2_nogps.jpg", _coco(31), exif_bytes("2023:09:10 11:00:00"))
    write_photo(ana / "p3.jpg", _coco(32), exif_bytes("2023:09:10 12:00:00", None, LOUVRE))
    for k, (quality, crop) in enumerate([(None, 0.0), (75, 0.0), (88, 0.02)]):
        write_photo(ana / f"burst_{k}.jpg", _coco(33), exif_bytes(f"2023:09:11 18:00:0{2 * k}", "+02:00", EIFFEL),
                    quality=quality, crop=crop)
    write_photo(ana / "lyon_1.jpg", _coco(34), exif_bytes("2023:09:12 20:00:00", "+02:00", LYON))
    write_photo(ana / "lyon_2.jpg", _coco(35), exif_bytes("2023:09:13 10:00:00", "+02:00", LYON))
    write_photo(ben / "nyc_1.jpg", _coco(36), exif_bytes("2023:10:01 14:00:00", None, LIBERTY))
    write_photo(ben / "nyc_2.jpg", _coco(37), exif_bytes("2023:10:02 22:30:00", "-04:00", TIMES_SQUARE))
    write_photo(ben / "paris.jpg", _coco(38), exif_bytes("2023:11:05 12:00:00", None, EIFFEL))


@pytest.fixture(scope="module")
def photos_run(spark, serving_registry, tmp_path_factory):
    from wanderlens.cli.demo import run_photos_demo

    root = tmp_path_factory.mktemp("two_users")
    build_two_users(root)
    out = tmp_path_factory.mktemp("photos_demo")
    ctx = run_photos_demo(root, out, serving_registry, model="production")
    return out / "travel", ctx


def _rows(spark, path: Path, table: str) -> list:
    return spark.read.parquet(str(path / table)).collect()


def test_trips_days_and_city_names(spark, photos_run):
    travel, _ = photos_run
    trips = sorted(_rows(spark, travel, "trips"), key=lambda r: (r["user_id"], r["start"]))
    got = [(r["user_id"], r["days"], r["photos"], list(r["places"])) for r in trips]
    assert got == [
        ("ana", 4, 6, ["Paris, France", "Lyon, France"]),  # 8 photos, a burst of 3 counts once
        ("ben", 2, 2, ["New York City, United States"]),  # 22:30 local on Oct 2 is Oct 3 in UTC: 2 local days
        ("ben", 1, 1, ["Paris, France"]),
    ]
    assert trips[0]["summary"].startswith("Four days in Paris and Lyon, France")
    assert trips[1]["summary"].startswith("Two days in New York City, United States")


def test_photo_without_gps_takes_its_trip_place_and_bursts_show_once(spark, photos_run):
    travel, _ = photos_run
    photos = {r["photo_id"]: r for r in _rows(spark, travel, "photos")}
    assert photos["ana/p2_nogps.jpg"]["place"] == "Paris, France"
    assert photos["ana/p2_nogps.jpg"]["city"] == "Paris"
    desc = {r["photo_id"]: r for r in _rows(spark, travel, "descriptions")}
    bursts = [pid for pid in desc if "burst_" in pid]
    assert len(bursts) == 1 and desc[bursts[0]]["burst_size"] == 3
    assert len(desc) == len(photos) - 2
    assert "in Paris, France" in desc["ana/p1.jpg"]["description"]


def test_suggestions_name_real_cities(spark, photos_run):
    travel, _ = photos_run
    catalog = {r["destination_id"]: r["name"] for r in _rows(spark, travel, "catalog")}
    assert sorted(catalog.values()) == ["Lyon", "New York City", "Paris"]
    sugg = {}
    for r in _rows(spark, travel, "suggestions"):
        sugg.setdefault(r["user_id"], []).append(r["name"])
    assert sugg["ana"] == ["New York City"] and sugg["ben"] == ["Lyon"]
    profiles = {r["user_id"]: list(r["places"]) for r in _rows(spark, travel, "profiles")}
    assert profiles["ana"][0] == "Paris, France" and set(profiles["ben"]) == {"New York City, United States",
                                                                                "Paris, France"}


def test_photos_unlike_the_training_data_get_no_trained_claims(spark, photos_run, serving_registry):
    travel, _ = photos_run
    desc = _rows(spark, travel, "descriptions")
    assert all(r["is_novel"] for r in desc), [(r["photo_id"], r["novelty"]) for r in desc]
    assert all(not r["claims"] for r in desc)
    assert all("not guessed" in r["description"] for r in desc)
    # The sample's own photos (the training data of the registry model) keep their claims.
    sample = spark.read.parquet(str(serving_registry / "versions" / "v0001" / "artifacts" / "travel" /
                                    "descriptions"))
    total = sample.count()
    novel = sample.where(F.col("is_novel")).count()
    assert novel / total < 0.05
    assert sample.where(F.size("claims") > 0).count() / total > 0.5


@pytest.mark.browser
def test_web_page_shows_trips_and_places_of_an_imported_folder(photos_run, browser, tmp_path, artifacts_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    travel, ctx = photos_run
    assert "wanderlens serve --registry" in ctx["serve it"]
    with ServerProcess(travel.parent / "registry", log_path=tmp_path / "server.log") as server:
        trips = httpx.get(f"{server.url}/v1/users/ana/trips", timeout=30).json()["trips"]
        assert [t["places"] for t in trips] == [["Paris, France", "Lyon, France"]]
        assert httpx.get(f"{server.url}/v1/users/nobody/trips", timeout=30).status_code == 404
        # Imported photo ids are relative paths: "ana/p1.jpg" is one id, in the URL encoded or not.
        info = httpx.get(f"{server.url}/v1/photos/ana%2Fp1.jpg", timeout=30).json()["photo"]
        assert info["photo_id"] == "ana/p1.jpg" and info["place"] == "Paris, France"
        image = httpx.get(server.url + info["image_url"], timeout=30)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        wait = WebDriverWait(browser, 60)
        browser.get(server.url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#user-select option")) == 3)
        Select(browser.find_element(By.ID, "user-select")).select_by_value("ben")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#trips li.trip")) == 2)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions li.suggestion"))
        trips_text = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#trips li.trip .places")]
        assert trips_text == ["New York City, United States", "Paris, France"]
        summaries = browser.find_elements(By.CSS_SELECTOR, "#trips li.trip .summary")
        assert summaries[0].text.startswith("Two days in New York City, United States")
        first = browser.find_element(By.CSS_SELECTOR, "#suggestions li.suggestion strong").text
        assert first == "Lyon"
        browser.save_screenshot(str(artifacts_dir / "serving-web-page-imported-folder.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
