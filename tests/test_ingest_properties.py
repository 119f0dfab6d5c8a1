"""Property-based ingestion: generated manifests (CSV and JSONL) through the real `ingest` on the real SparkSession.

Each example writes a manifest with random extra columns, quoting, embedded newlines/commas/quotes, encodings (UTF-8,
UTF-8 with BOM, latin-1), empty values, duplicate ids, random label values against a random label declaration,
random bytes as image files and truncations of real photos. The properties:

- `ingest` either succeeds or raises a `WanderlensError` for a whole-file problem (and only when the manifest has one);
- every row is kept or quarantined with exactly one reason, the one an independent oracle computes;
- rows_in = rows_kept + rows_quarantined = the number of rows written;
- a kept row's photo_id, user_id, caption, tags and label values round-trip.

`make test` runs the "ci" profile (few examples, derandomized so CI is deterministic); `make fuzz` sets
WANDERLENS_FUZZ=1 for the "fuzz" profile (WANDERLENS_FUZZ_EXAMPLES examples, default 300, random seeds).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SHARED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from wanderlens.data.ingest import ingest
from wanderlens.data.probe import local_path, probe_image
from wanderlens.errors import WanderlensError

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.large_base_example])
settings.register_profile("ci", max_examples=15, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("WANDERLENS_FUZZ_EXAMPLES", "300")), **_COMMON)
PROFILE = settings.get_profile("fuzz" if os.environ.get("WANDERLENS_FUZZ") else "ci")

COCO_IMAGES = SHARED / "data" / "coco-cc57" / "images"
STANDARD = ["photo_id", "user_id", "image", "caption", "tags", "taken_at", "latitude", "longitude"]
# names a manifest must not use (the outputs add them); the ingest must refuse them clearly, any case
CLASHING = ["Photo_ID", "width", "SHA256", "image_path", "reason", "Detail", "source_row", " caption", "_reason"]
BINARY = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0, "no": 0.0, "yes": 1.0}
CLASSES = ["beach", "city", "snow", "a b", "Café", "北京"]
TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019 ,;\"'\n\r\t\\#|éü北😀[]{}:.") + ["\u00a0", "\u2028"]),
               max_size=14)
NAME = st.text(alphabet=st.sampled_from(list("abcdefxyz0_ -.é北#%:'`")), min_size=1, max_size=8)
TAG = st.text(alphabet=st.sampled_from(list("abcxyz é北,\"'")), min_size=1, max_size=6)
# (raw value, quarantined?) for optional columns whose parsing the oracle does not reimplement
TIMES = [("", False), ("2024-05-01T10:30:00Z", False), ("2024-05-01", False), (" 2024-05-01 10:30:00 ", False),
         ("last summer", True), ("2024-13-45", True)]
COORDS = [(("", ""), False), (("48.85", "2.35"), False), ((" -33.9 ", "151.2"), False), (("91", "0"), True),
          (("10", ""), True), (("abc", "1"), True), (("NaN", "0"), True), (("0", "-Infinity"), True)]
REGRESSION = [("1.5", 1.5), ("-2", -2.0), (" 1e3 ", 1000.0), ("abc", None), ("NaN", None), ("inf", None),
              ("-Infinity", None)]
IMAGE_KINDS = ["good_jpg", "good_png", "random", "truncated", "empty", "missing", "dir", "blank"]


class _Photos(dict):
    def __repr__(self) -> str:  # keep hypothesis' reports short
        return f"<{len(self)} photos>"


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    """Real photos (the COCO subset when shared/ is there, else Pillow-made ones) as bytes."""
    real = sorted(COCO_IMAGES.glob("*.jpg"))[:3] if COCO_IMAGES.is_dir() else []
    out = _Photos({p.name: p.read_bytes() for p in real})
    if not out:
        buf = io.BytesIO()
        Image.effect_mandelbrot((96, 64), (-2, -1, 1, 1), 60).convert("RGB").save(buf, format="JPEG")
        out["mandel.jpg"] = buf.getvalue()
    png = io.BytesIO()
    Image.new("RGBA", (20, 10), (10, 200, 30, 128)).save(png, format="PNG")
    out["small.png"] = png.getvalue()
    return out


def _label_decl(draw) -> dict[str, dict]:
    names = draw(st.lists(st.sampled_from(["scene", "attrs", "hl", "score", "Label X"]), unique=True, max_size=3))
    decl = {}
    for name in names:
        kind = draw(st.sampled_from(["multiclass", "multilabel", "binary", "regression"]))
        decl[name] = {"type": kind}
        if kind in ("multiclass", "multilabel"):
            decl[name]["classes"] = draw(st.lists(st.sampled_from(CLASSES), unique=True, min_size=2, max_size=4))
    return decl


def _label_value(draw, spec: dict):
    """(manifest value: str | list | None, expected kept value, is_bad)."""
    kind = spec["type"]
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(["", "  ", None])), None, False
    if kind == "multiclass":
        good = draw(st.booleans())
        v = draw(st.sampled_from(spec["classes"])) if good else draw(st.sampled_from(["Beach", "other", "x;y"]))
        pad = draw(st.sampled_from(["", " "]))
        return pad + v + pad, v, not good
    if kind == "multilabel":
        items = draw(st.lists(st.sampled_from([*spec["classes"], "bad"]), max_size=3))
        if not items and draw(st.booleans()):
            return "[]", [], False
        return items, [i for i in items], "bad" in items
    if kind == "binary":
        v = draw(st.sampled_from([*BINARY, "TRUE", " Yes ", "2", "maybe"]))
        parsed = BINARY.get(v.strip(" ").lower())
        return v, parsed, parsed is None
    raw, parsed = draw(st.sampled_from(REGRESSION))
    return raw, parsed, parsed is None


@st.composite
def manifests(draw):
    """A generated manifest description: rows of raw values, plus how to write it."""
    decl = _label_decl(draw)
    has_time, has_coords = draw(st.booleans()), draw(st.booleans())
    extras = draw(st.lists(NAME.filter(lambda n: n.strip(" ").lower() not in
                                       {*STANDARD, *(x.lower() for x in decl), *(c.strip().lower() for c in CLASHING),
                                        "width", "height", "format", "num_bytes", "captions", "destination_id"}),
                           unique_by=lambda n: n.strip(" ").lower(), max_size=2))
    clash = draw(st.sampled_from([None] * 8 + CLASHING))
    rows = []
    for _ in range(draw(st.integers(0, 7))):
        blank = draw(st.sampled_from(["", " ", None]))
        row = {
            "photo_id": draw(st.one_of(st.sampled_from(["p1", "p2", " p1 "]), TEXT, st.just(blank))),
            "user_id": draw(st.one_of(TEXT.filter(lambda t: t.strip(" ")), st.just(blank))),
            "image": (draw(st.sampled_from(IMAGE_KINDS)), draw(NAME),
                      draw(st.sampled_from(["rel", "bare", "abs", "uri"]))),
            "caption": draw(TEXT),
            "tags": draw(st.lists(TAG, max_size=3)),
            "labels": {n: _label_value(draw, s) for n, s in decl.items()},
            "extras": {n: draw(TEXT) for n in extras},
        }
        if has_time:
            row["taken_at"] = draw(st.sampled_from(TIMES))
        if has_coords:
            row["coords"] = draw(st.sampled_from(COORDS))
        if row["image"][0] in ("random", "truncated"):
            row["bytes"] = draw(st.binary(max_size=64)) if row["image"][0] == "random" else draw(st.integers(0, 10**6))
        rows.append(row)
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    write = {"encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])), "crlf": draw(st.booleans()),
             "quote_all": draw(st.booleans()), "ascii": draw(st.booleans()), "tags_as_array": draw(st.booleans())}
    return {"decl": decl, "rows": rows, "fmt": fmt, "write": write, "extras": extras, "clash": clash,
            "has_time": has_time, "has_coords": has_coords}


def _materialise_image(root: Path, row: dict, photos: dict[str, bytes], idx: int) -> tuple[str, Path | None]:
    """Write the row's image file; return (manifest value, absolute path or None)."""
    kind, name, style = row["image"]
    if kind == "blank":
        return " ", None
    fname = f"f{idx}{name}" + (".png" if kind == "good_png" else ".jpg")
    path = root / fname if style == "bare" else root / "img" / fname
    path.parent.mkdir(exist_ok=True)
    real = list(photos.values())
    if kind == "good_jpg":
        path.write_bytes(real[idx % max(1, len(real) - 1)])
    elif kind == "good_png":
        path.write_bytes(photos["small.png"])
    elif kind == "random":
        path.write_bytes(row["bytes"])
    elif kind == "truncated":
        data = real[idx % max(1, len(real) - 1)]
        path.write_bytes(data[: row["bytes"] % len(data)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "dir":
        path.mkdir()
    value = {"rel": f"img/{fname}", "bare": fname, "abs": str(path), "uri": "file://" + quote(str(path))}[style]
    return value, path


def _write(root: Path, m: dict, photos: dict[str, bytes]) -> tuple[Path, list[dict]]:
    """Write images and the manifest; return its path and the rows as written (strings) plus image paths."""
    flat: list[dict] = []
    for i, row in enumerate(m["rows"]):
        image, path = _materialise_image(root, row, photos, i)
        rec: dict = {"photo_id": row["photo_id"], "user_id": row["user_id"], "image": image,
                     "caption": row["caption"], "tags": row["tags"], **row["extras"]}
        for name, (value, _, _) in row["labels"].items():
            rec[name] = value
        if m["has_time"]:
            rec["taken_at"] = row["taken_at"][0]
        if m["has_coords"]:
            rec["latitude"], rec["longitude"] = row["coords"][0]
        if m["clash"]:
            rec[m["clash"]] = "x"
        flat.append({"rec": rec, "path": path})
    columns = list(dict.fromkeys([*(k for f in flat for k in f["rec"]), "photo_id", "user_id", "image", "caption",
                                  *m["decl"], *m["extras"], *([m["clash"]] if m["clash"] else [])]))
    w = m["write"]
    if m["fmt"] == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n" if w["crlf"] else "\n",
                            quoting=csv.QUOTE_ALL if w["quote_all"] else csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for f in flat:
            writer.writerow([_csv_cell(f["rec"].get(c)) for c in columns])
        text, path = buf.getvalue(), root / "manifest.csv"
    else:
        lines = []
        for f in flat:
            rec = {k: (v if isinstance(v, list) and (w["tags_as_array"] or k != "tags") else _csv_cell(v))
                   for k, v in f["rec"].items()}
            lines.append(json.dumps(rec, ensure_ascii=w["ascii"]))
        text, path = "".join(line + ("\r\n" if w["crlf"] else "\n") for line in lines), root / "manifest.jsonl"
    try:
        path.write_bytes(text.encode(w["encoding"]))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8"))
    return path, flat


def _csv_cell(v) -> str:
    if v is None:
        return ""
    return ";".join(v) if isinstance(v, list) else v


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and v.strip(" ") == "")


def _expected(m: dict, flat: list[dict], max_pixels: int) -> list[str | None]:
    """The oracle: the reason each row must get (None: kept), in the documented order."""
    reasons: list[str | None] = []
    for row, f in zip(m["rows"], flat, strict=True):
        rec = f["rec"]
        if any(_blank(rec[c]) for c in ("photo_id", "user_id", "image")):
            reasons.append("missing_value")
        elif m["has_time"] and row["taken_at"][1]:
            reasons.append("bad_taken_at")
        elif m["has_coords"] and row["coords"][1]:
            reasons.append("coordinates_out_of_range")
        elif any(bad for _, _, bad in row["labels"].values()):
            reasons.append("unknown_label")
        else:
            reasons.append(probe_image(str(f["path"]), max_pixels=max_pixels).reason)
    seen: set[str] = set()
    for i, f in enumerate(flat):
        if reasons[i] is None:
            pid = f["rec"]["photo_id"].strip(" ")
            reasons[i] = "duplicate_photo_id" if pid in seen else None
            seen.add(pid)
    return reasons


def _whole_file_problem(m: dict, manifest: Path) -> str | None:
    """Why the manifest as a whole must be refused (None: it must be ingested)."""
    raw = manifest.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "UTF-8"
    if m["fmt"] == "jsonl" and not m["rows"]:
        return "missing required column"
    problems = [m["clash"].strip()] if m["clash"] else []
    if any("`" in name or "." in name for name in m["extras"]):
        problems.append("dot or backtick")
    return "|".join(problems) or None


@settings(PROFILE)
@given(m=manifests())
def test_generated_manifests_are_kept_or_quarantined_with_one_reason(spark, tmp_path, photos, m):
    root = tmp_path / uuid.uuid4().hex[:8]
    root.mkdir()
    (root / "labels.yaml").write_text(json.dumps(m["decl"]), encoding="utf-8")
    manifest, flat = _write(root, m, photos)
    for row, f in zip(m["rows"], flat, strict=True):  # a truncated real photo is never usable
        if row["image"][0] == "truncated" and f["path"].stat().st_size:
            assert probe_image(str(f["path"])).reason in ("corrupt_image", "not_an_image"), f["path"]
    problem = _whole_file_problem(m, manifest)
    out = root / "out"
    try:
        summary = ingest(spark, manifest, out)
    except WanderlensError as err:
        assert problem is not None, f"refused a manifest without a whole-file problem: {err}"
        assert str(manifest) in str(err) and len(str(err).splitlines()) == 1
        assert any(p.lower() in str(err).lower() for p in problem.split("|")), (problem, str(err))
        assert not (out / "summary.json").exists()
        return
    assert problem is None, f"accepted a manifest it must refuse ({problem})"
    expected = _expected(m, flat, summary["max_pixels"])
    assert summary["rows_in"] == len(m["rows"]) == summary["rows_kept"] + summary["rows_quarantined"]
    quarantine = spark.read.parquet(str(out / "quarantine")).toPandas()
    got = {int(r.source_row): r.reason for r in quarantine.itertuples()}
    assert len(got) == len(quarantine) and quarantine["reason"].notna().all()
    assert got == {i + 1: r for i, r in enumerate(expected) if r is not None}
    photos_df = spark.read.parquet(str(out / "photos")).toPandas()
    assert len(photos_df) == summary["rows_kept"] == sum(r is None for r in expected)
    kept = [(row, f) for row, f, r in zip(m["rows"], flat, expected, strict=True) if r is None]
    by_id = {r["photo_id"]: r for r in photos_df.to_dict("records")}
    assert len(by_id) == len(kept)
    for row, f in kept:
        got = by_id[f["rec"]["photo_id"].strip(" ")]
        assert Path(local_path(got["image_path"])).samefile(f["path"]), (got["image_path"], f["path"])
        _assert_round_trip(got, row, f["rec"], m)
    shutil.rmtree(root, ignore_errors=True)


def _assert_round_trip(got: dict, row: dict, rec: dict, m: dict) -> None:
    assert got["user_id"] == rec["user_id"].strip(" ")
    assert got["caption"] == (None if _blank(rec["caption"]) else rec["caption"])
    assert list(got["tags"]) == [t.strip(" ") for t in rec["tags"] if t.strip(" ") not in ("", "[]")]
    for name, (value, expect, _) in row["labels"].items():
        if value == [] and m["fmt"] == "csv":
            expect = None  # an empty list is an empty CSV cell: unknown
        if expect is None:
            assert got[name] is None or (isinstance(got[name], float) and math.isnan(got[name])), (name, got[name])
        elif isinstance(expect, list):
            assert list(got[name]) == [e.strip(" ") for e in expect], (name, got[name], value)
        else:
            assert got[name] == expect, (name, got[name], value)
    for name in m["extras"]:
        value = rec[name]
        assert got[name.strip(" ")] == (None if value == "" else value), (name, got[name.strip(" ")])
