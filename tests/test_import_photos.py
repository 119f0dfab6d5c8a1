"""`import_photos` on real JPEGs (copies of the coco-cc57 photos) given EXIF, XMP and sidecars at test time.

Covers: times with and without offsets, GPS in each hemisphere, (0, 0) GPS rejected, a Google Takeout sidecar,
an XMP description, a `.txt` caption, a HEIC photo, RAW / video / corrupt / non-image files, a photo without GPS
inside a trip, a burst of near-identical shots, coordinate rounding, the CLI, and the manifest ingested by the
real `ingest` (Spark) with nothing quarantined; then two users in three cities, two countries, two time zones.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED
from PIL import Image

piexif = pytest.importorskip("piexif")

COCO_IMAGES = SHARED / "data" / "coco-cc57" / "images"
# Real positions (lat, lon): each hemisphere is used at least once.
EIFFEL = (48.8584, 2.2945)  # N, E
LOUVRE = (48.8606, 2.3376)
LYON = (45.7640, 4.8357)
LIBERTY = (40.6892, -74.0445)  # N, W
TIMES_SQUARE = (40.7580, -73.9855)
SYDNEY_OPERA = (-33.8568, 151.2153)  # S, E
COPACABANA = (-22.9711, -43.1822)  # S, W
BOSTON = (42.3601, -71.0589)


def _coco(n: int) -> Path:
    photos = sorted(COCO_IMAGES.glob("*.jpg"))
    if len(photos) < 20:
        pytest.skip(f"coco-cc57 photos not found under {COCO_IMAGES}")
    return photos[n % len(photos)]


def _rational(x: float) -> tuple[int, int]:
    return round(x * 10000), 10000


def _gps(lat: float, lon: float, alt: float | None = None) -> dict:
    def dms(v: float) -> tuple:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        s = (v - d - m / 60) * 3600
        return ((d, 1), (m, 1), _rational(s))

    gps = {
        piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
        piexif.GPSIFD.GPSLatitude: dms(lat),
        piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
        piexif.GPSIFD.GPSLongitude: dms(lon),
    }
    if alt is not None:
        gps[piexif.GPSIFD.GPSAltitudeRef] = 0
        gps[piexif.GPSIFD.GPSAltitude] = _rational(alt)
    return gps


def exif_bytes(when: str | None = None, offset: str | None = None, gps: tuple | None = None,
               make: str = "Canon", model: str = "EOS 5D", orientation: int = 1) -> bytes:
    """A real EXIF block (piexif): DateTimeOriginal 'YYYY:MM:DD HH:MM:SS', OffsetTimeOriginal, GPS, camera."""
    zeroth = {piexif.ImageIFD.Make: make.encode(), piexif.ImageIFD.Model: model.encode(),
              piexif.ImageIFD.Orientation: orientation}
    exif = {}
    if when:
        exif[piexif.ExifIFD.DateTimeOriginal] = when.encode()
    if offset:
        exif[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    data = {"0th": zeroth, "Exif": exif}
    if gps is not None:
        data["GPS"] = _gps(*gps)
    return piexif.dump(data)


def write_photo(path: Path, source: Path, exif: bytes | None = None, quality: int | None = None,
                crop: float = 0.0) -> Path:
    """Copy a real JPEG to `path` (re-encoded if quality/crop is given) and insert `exif`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if quality is None and not crop:
        shutil.copyfile(source, path)
    else:
        with Image.open(source) as im:
            w, h = im.size
            dx, dy = int(w * crop), int(h * crop)
            im.crop((dx, dy, w - dx, h - dy)).save(path, "JPEG", quality=quality or 90)
    if exif is not None:
        piexif.insert(exif, str(path))
    return path


def inject_xmp(path: Path, description: str, subjects: list[str]) -> None:
    """Add an XMP packet (APP1, Adobe namespace) with dc:description and dc:subject right after SOI."""
    items = "".join(f"<rdf:li>{s}</rdf:li>" for s in subjects)
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>'
        f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    data = path.read_bytes()
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:])


def write_heic(path: Path, source: Path, exif: bytes) -> None:
    from wanderlens.imaging import register_heif

    assert register_heif()
    with Image.open(source) as im:
        im.convert("RGB").save(path, format="HEIF", exif=exif, quality=70)


def build_collection(root: Path) -> None:
    """alice: Paris (trip with a GPS-less photo and a burst), Lyon, XMP, HEIC and broken files; bob: New York,
    Google Takeout sidecars; carol: Sydney, Rio, a scan with no time zone, a photo with nothing."""
    a, b, c = root / "alice", root / "bob", root / "carol"
    write_photo(a / "paris_1.jpg", _coco(0), exif_bytes("2024:05:01 10:00:00", "+02:00", EIFFEL + (35.0,)))
    write_photo(a / "paris_2.jpg", _coco(1), exif_bytes("2024:05:01 12:30:00", None, LOUVRE))
    write_photo(a / "paris_nogps.jpg", _coco(2), exif_bytes("2024:05:01 11:15:00"))
    for k, (quality, crop) in enumerate([(None, 0.0), (75, 0.0), (88, 0.02)]):
        write_photo(a / f"burst_{k}.jpg", _coco(3), exif_bytes(f"2024:05:01 14:00:0{2 * k}", "+02:00", EIFFEL),
                    quality=quality, crop=crop)
    write_photo(a / "lyon.jpg", _coco(4), exif_bytes("2024:05:03 09:00:00", "+02:00", LYON, orientation=6))
    (a / "lyon.txt").write_text("Old town of Lyon\nat dawn\n", encoding="utf-8")
    write_photo(a / "xmp_zero_gps.jpg", _coco(5), exif_bytes("2024:05:03 18:00:00", "+02:00", (0.0, 0.0)))
    inject_xmp(a / "xmp_zero_gps.jpg", "Sunset over the Saone", ["sunset", "river", "Lyon"])
    write_heic(a / "phone.heic", _coco(6), exif_bytes("2024:05:03 19:00:00", "+02:00", LYON, make="Apple",
                                                      model="iPhone 15"))
    (a / "IMG_0001.CR2").write_bytes(b"II*\x00" + bytes(2000))
    (a / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    good = _coco(7).read_bytes()
    (a / "broken.jpg").write_bytes(good[: len(good) // 2])
    (a / "notes.jpg").write_text("this is not a photo", encoding="utf-8")
    write_photo(b / "nyc_1.jpg", _coco(8), exif_bytes("2024:07:04 09:00:00", "-04:00", LIBERTY))
    write_photo(b / "nyc_2.jpg", _coco(9), exif_bytes("2024:07:04 15:00:00", None, TIMES_SQUARE))
    write_photo(b / "IMG_2000.jpg", _coco(10))  # no EXIF at all: Takeout knows
    (b / "IMG_2000.jpg.supplemental-metadata.json").write_text(json.dumps({
        "title": "IMG_2000.jpg", "description": "Harbor walk in Boston",
        "photoTakenTime": {"timestamp": "1720360800", "formatted": "Jul 7, 2024, 2:00:00 PM UTC"},
        "geoData": {"latitude": BOSTON[0], "longitude": BOSTON[1], "altitude": 10.0},
    }), encoding="utf-8")
    write_photo(b / "IMG_2001.jpg", _coco(11))
    (b / "IMG_2001.jpg.json").write_text(json.dumps({
        "title": "IMG_2001.jpg", "photoTakenTime": {"timestamp": "1720447200"},
        "geoData": {"latitude": 0.0, "longitude": 0.0, "altitude": 0.0},
    }), encoding="utf-8")
    write_photo(c / "sydney.jpg", _coco(12), exif_bytes("2024:05:20 08:00:00", None, SYDNEY_OPERA))
    write_photo(c / "rio.jpg", _coco(13), exif_bytes("2024:06:10 17:30:00", "-03:00", COPACABANA))
    write_photo(c / "old_scan.jpg", _coco(14), exif_bytes("1999:08:01 12:00:00"))
    write_photo(c / "plain.jpg", _coco(15))


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from wanderlens.data.photos import import_photos

    root = tmp_path_factory.mktemp("photos")
    build_collection(root)
    out = tmp_path_factory.mktemp("imported")
    report = import_photos(root, out)
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = {r["photo_id"]: r for r in csv.DictReader(fh)}
    return root, out, report, rows


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_counts_reconcile_and_every_unusable_file_has_one_reason(imported):
    _, out, report, rows = imported
    assert report.files_found == 24
    assert report.sidecars_used == 3  # lyon.txt and the two Takeout JSONs
    assert report.usable == len(rows) == 17
    assert report.files_found == report.sidecars_used + report.usable + report.unusable
    reasons = {u["file"]: u["reason"] for u in report.unusable_files}
    assert reasons == {"alice/IMG_0001.CR2": "raw_not_supported", "alice/clip.mp4": "video",
                       "alice/broken.jpg": "corrupt_image", "alice/notes.jpg": "not_an_image"}
    assert len(report.unusable_files) == report.unusable == 4
    saved = json.loads((out / "import_report.json").read_text())
    assert saved["by_reason"] == {"corrupt_image": 1, "not_an_image": 1, "raw_not_supported": 1, "video": 1}
    assert saved["photos_found"] == 21
    text = (out / "import_report.txt").read_text()
    assert "alice/broken.jpg: corrupt_image" in text and "(0, 0)" in text


def test_times_resolve_to_utc_and_never_silently(imported):
    rows = imported[3]
    paris = rows["alice/paris_1.jpg"]
    assert _utc(paris["taken_at"]) == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert paris["time_note"] == "exif_offset" and paris["local_time"] == "2024-05-01T10:00:00"
    no_offset = rows["alice/paris_2.jpg"]  # no offset: the GPS position's zone (CEST, +2)
    assert _utc(no_offset["taken_at"]) == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert (no_offset["time_note"], no_offset["time_zone"]) == ("gps_time_zone", "Europe/Paris")
    assert _utc(rows["bob/nyc_1.jpg"]["taken_at"]) == datetime(2024, 7, 4, 13, 0, tzinfo=UTC)
    assert _utc(rows["bob/nyc_2.jpg"]["taken_at"]) == datetime(2024, 7, 4, 19, 0, tzinfo=UTC)  # EDT, -4
    assert _utc(rows["carol/sydney.jpg"]["taken_at"]) == datetime(2024, 5, 19, 22, 0, tzinfo=UTC)  # AEST, +10
    assert _utc(rows["carol/rio.jpg"]["taken_at"]) == datetime(2024, 6, 10, 20, 30, tzinfo=UTC)
    takeout = rows["bob/IMG_2000.jpg"]
    assert _utc(takeout["taken_at"]) == datetime(2024, 7, 7, 14, 0, tzinfo=UTC)
    assert takeout["time_note"] == "takeout_utc" and takeout["local_time"] == "2024-07-07T10:00:00"
    scan = rows["carol/old_scan.jpg"]  # local time, no offset, no GPS, nobody to inherit from
    assert (scan["taken_at"], scan["time_note"], scan["local_time"]) == ("", "time_zone_unknown",
                                                                        "1999-08-01T12:00:00")
    assert (rows["carol/plain.jpg"]["taken_at"], rows["carol/plain.jpg"]["time_note"]) == ("", "no_time")


def test_positions_places_and_hemispheres(imported):
    rows = imported[3]
    expected = {
        "alice/paris_1.jpg": (EIFFEL, "Paris, France", "Île-de-France"),
        "alice/lyon.jpg": (LYON, "Lyon, France", "Auvergne-Rhône-Alpes"),
        "bob/nyc_1.jpg": (LIBERTY, "New York City, United States", "New York"),
        "carol/sydney.jpg": (SYDNEY_OPERA, "Sydney, Australia", "New South Wales"),
        "carol/rio.jpg": (COPACABANA, "Rio de Janeiro, Brazil", "Rio de Janeiro"),
        "bob/IMG_2000.jpg": (BOSTON, "Boston, United States", "Massachusetts"),
    }
    for photo, ((lat, lon), place, region) in expected.items():
        row = rows[photo]
        assert float(row["latitude"]) == pytest.approx(lat, abs=1e-4), photo
        assert float(row["longitude"]) == pytest.approx(lon, abs=1e-4), photo
        assert (row["place"], row["region"]) == (place, region), photo
    assert rows["alice/paris_1.jpg"]["position_source"] == "exif"
    assert float(rows["alice/paris_1.jpg"]["altitude"]) == pytest.approx(35.0)
    assert rows["bob/IMG_2000.jpg"]["position_source"] == "takeout"
    zero = rows["alice/xmp_zero_gps.jpg"]  # (0, 0) rejected with a reason; the photo stays usable and, taken
    assert "(0, 0)" in zero["position_note"]  # an hour before the Lyon HEIC, inherits that one's position
    assert zero["position_source"] == "inherited" and zero["place"] == "Lyon, France"
    assert "inherited from alice/phone.heic (60 min apart)" in zero["position_note"]
    assert rows["bob/IMG_2001.jpg"]["latitude"] == ""  # Takeout's 0, 0 means "no location"
    rejected = {r["file"] for r in imported[2].positions_rejected}
    assert "alice/xmp_zero_gps.jpg" in rejected


def test_photo_without_gps_inherits_its_trip(imported):
    row = imported[3]["alice/paris_nogps.jpg"]
    assert row["position_source"] == "inherited" and row["place"] == "Paris, France"
    assert "inherited from alice/paris_1.jpg" in row["position_note"]  # 75 min after it, 75 min before paris_2
    assert row["time_note"] == "inherited_time_zone"
    assert _utc(row["taken_at"]) == datetime(2024, 5, 1, 9, 15, tzinfo=UTC)
    assert imported[2].positions_inherited == 2  # and alice/xmp_zero_gps.jpg (see above)


def test_captions_tags_camera_and_heic(imported):
    rows = imported[3]
    xmp = rows["alice/xmp_zero_gps.jpg"]
    assert xmp["caption"] == "Sunset over the Saone" and xmp["tags"] == "sunset;river;Lyon"
    assert rows["alice/lyon.jpg"]["caption"] == "Old town of Lyon at dawn"
    assert rows["bob/IMG_2000.jpg"]["caption"] == "Harbor walk in Boston"
    lyon = rows["alice/lyon.jpg"]
    assert (lyon["camera_make"], lyon["camera_model"], lyon["orientation"]) == ("Canon", "EOS 5D", "6")
    with Image.open(lyon["image"]) as im:
        assert (int(lyon["display_width"]), int(lyon["display_height"])) == (im.size[1], im.size[0])
    heic = rows["alice/phone.heic"]
    assert (heic["camera_make"], heic["camera_model"]) == ("Apple", "iPhone 15")
    assert _utc(heic["taken_at"]) == datetime(2024, 5, 3, 17, 0, tzinfo=UTC)
    assert heic["place"] == "Lyon, France"


def test_burst_of_near_identical_shots(imported):
    rows = imported[3]
    burst = [rows[f"alice/burst_{k}.jpg"] for k in range(3)]
    assert len({r["burst_id"] for r in burst}) == 1 and burst[0]["burst_id"].startswith("burst-")
    assert sum(r["burst_representative"] == "true" for r in burst) == 1
    assert burst[0]["burst_representative"] == "true"  # the uncropped one has the most pixels
    others = [r for pid, r in rows.items() if not pid.startswith("alice/burst_")]
    assert all(r["burst_id"] == "" and r["burst_representative"] == "true" for r in others)
    assert (imported[2].bursts, imported[2].photos_in_bursts) == (1, 3)


@pytest.fixture(scope="module")
def ingested(imported, spark, tmp_path_factory):
    from wanderlens.data.ingest import ingest

    out = tmp_path_factory.mktemp("ingested")
    summary = ingest(spark, imported[1] / "manifest.csv", out)
    quarantined = {r["photo_id"]: r["reason"] for r in spark.read.parquet(summary["quarantine"]).collect()}
    return summary, quarantined


def test_manifest_ingests_unchanged(imported, ingested, spark):
    report = imported[2]
    summary, quarantined = ingested
    assert summary["rows_in"] == report.usable
    assert set(quarantined) <= {"alice/phone.heic"}, quarantined  # HEIC: see the next test
    photos = spark.read.parquet(summary["photos"])
    got = {r["photo_id"]: r for r in photos.select("photo_id", "taken_at", "latitude", "place", "tags").collect()}
    assert got["alice/paris_1.jpg"]["place"] == "Paris, France"
    assert got["alice/xmp_zero_gps.jpg"]["tags"] == ["sunset", "river", "Lyon"]
    assert got["carol/old_scan.jpg"]["taken_at"] is None
    assert got["carol/sydney.jpg"]["latitude"] == pytest.approx(SYDNEY_OPERA[0], abs=1e-4)


def test_manifest_ingests_with_nothing_quarantined_heic_included(ingested):
    summary, quarantined = ingested
    assert summary["rows_quarantined"] == 0, quarantined


def test_round_coordinates_and_cli(imported, tmp_path):
    import typer
    from typer.testing import CliRunner

    from wanderlens.cli.photos import register

    root = imported[0]
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer in sub-command mode
        pass

    result = CliRunner().invoke(app, ["import-photos", str(root / "carol"), "--out", str(tmp_path / "o"),
                                      "--user", "carol", "--round-coordinates", "2"])
    assert result.exit_code == 0, result.output
    assert "4 usable photos + 0 unusable" in result.output
    with open(tmp_path / "o" / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = {r["photo_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"sydney.jpg", "rio.jpg", "old_scan.jpg", "plain.jpg"}
    assert {r["user_id"] for r in rows.values()} == {"carol"}
    assert rows["sydney.jpg"]["latitude"] == "-33.86" and rows["sydney.jpg"]["longitude"] == "151.22"
    assert rows["sydney.jpg"]["place"] == "Sydney, Australia"  # named before rounding


def test_two_users_three_cities_two_countries_two_time_zones(tmp_path):
    from wanderlens.data.photos import import_photos

    root = tmp_path / "photos"
    shots = {  # user/file: (local time, offset or None, position)
        "ana/day1_a.jpg": ("2023:09:10 09:00:00", "+02:00", EIFFEL),
        "ana/day1_b.jpg": ("2023:09:10 16:00:00", None, LOUVRE),
        "ana/day3.jpg": ("2023:09:12 10:00:00", "+02:00", LYON),
        "ben/trip/nyc_a.jpg": ("2023:10:01 08:00:00", None, LIBERTY),
        "ben/trip/nyc_b.jpg": ("2023:10:01 20:00:00", "-04:00", TIMES_SQUARE),
        "ben/trip/paris.jpg": ("2023:11:05 12:00:00", None, EIFFEL),
    }
    for k, (name, (when, offset, pos)) in enumerate(shots.items()):
        write_photo(root / name, _coco(20 + k), exif_bytes(when, offset, pos))
    report = import_photos(root, tmp_path / "out")
    assert report.users == ["ana", "ben"] and report.usable == 6 and report.unusable == 0
    with open(tmp_path / "out" / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = {r["photo_id"]: r for r in csv.DictReader(fh)}
    places = {pid: (r["user_id"], r["city"], r["country"], r["time_zone"]) for pid, r in rows.items()}
    assert places == {
        "ana/day1_a.jpg": ("ana", "Paris", "France", "Europe/Paris"),
        "ana/day1_b.jpg": ("ana", "Paris", "France", "Europe/Paris"),
        "ana/day3.jpg": ("ana", "Lyon", "France", "Europe/Paris"),
        "ben/trip/nyc_a.jpg": ("ben", "New York City", "United States", "America/New_York"),
        "ben/trip/nyc_b.jpg": ("ben", "New York City", "United States", "America/New_York"),
        "ben/trip/paris.jpg": ("ben", "Paris", "France", "Europe/Paris"),
    }
    assert _utc(rows["ben/trip/nyc_a.jpg"]["taken_at"]) == datetime(2023, 10, 1, 12, 0, tzinfo=UTC)
    assert _utc(rows["ben/trip/paris.jpg"]["taken_at"]) == datetime(2023, 11, 5, 11, 0, tzinfo=UTC)  # CET again
    assert sum(r["burst_id"] != "" for r in rows.values()) == 0


def test_exif_parser_matches_pillow_and_rejects_impossible_gps():
    from wanderlens.data.exif import gps_position, parse_exif

    data = exif_bytes("2024:01:02 03:04:05", "-05:30", COPACABANA)
    block = parse_exif(data)
    ifd0, exif, gps = block.ifd0, block.exif, block.gps
    pil = Image.Exif()
    pil.load(data)
    assert ifd0[0x010F] == pil[0x010F] and exif[0x9003] == pil.get_ifd(0x8769)[0x9003]
    lat, lon, _, why = gps_position(gps)
    assert why is None and lat == pytest.approx(COPACABANA[0], abs=1e-4) and lon < 0
    bad = {1: "N", 2: (91.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}
    assert "outside the globe" in gps_position(bad)[3]
    assert "minutes" in gps_position({1: "N", 2: (10.0, 75.0, 0.0), 3: "E", 4: (1.0, 0.0, 0.0)})[3]
    assert "zero denominator" in gps_position({1: "N", 2: (10.0, None, 0.0), 3: "E", 4: (1.0, 0.0, 0.0)})[3]
    assert "hemisphere" in gps_position({2: (10.0, 0.0, 0.0), 3: "E", 4: (1.0, 0.0, 0.0)})[3]


def test_open_image_reads_heic_from_bytes(tmp_path):
    from wanderlens.imaging import open_image

    path = tmp_path / "x.heic"
    write_heic(path, _coco(30), exif_bytes("2024:01:01 00:00:00"))
    with open_image(path.read_bytes()) as im:
        assert im.format == "HEIF" and im.size[0] > 0
        im.load()
    buf = io.BytesIO(path.read_bytes())
    with open_image(buf) as im:
        assert im.convert("RGB").size == im.size


def test_phash_equals_imagehash():
    import imagehash

    from wanderlens.data.bursts import phash

    for n in range(5):
        with Image.open(_coco(n)) as im:
            assert phash(im) - imagehash.phash(im) <= 1  # same bits up to float rounding at the median
