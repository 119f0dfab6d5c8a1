"""Ingestion: manifest → validated photos table + quarantine, with every image opened on the executors.

Row checks (required values, timestamps, coordinates, labels) are Spark expressions; image checks run in
`mapInPandas` on the executors; duplicates are ranked with a window. Each unusable row goes to quarantine with
one reason, so rows in = rows kept + rows quarantined, always.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.data.image_probe import ImageProbe
from wanderlens.data.probe import DEFAULT_MAX_PIXELS
from wanderlens.data.schema import (
    IMAGE_COLUMNS,
    LIST_SEPARATOR,
    REASON_BAD_COORDINATES,
    REASON_BAD_TIMESTAMP,
    REASON_DUPLICATE_ID,
    REASON_MISSING_VALUE,
    REASON_UNKNOWN_LABEL,
    REQUIRED_COLUMNS,
    STANDARD_COLUMNS,
    LabelSpec,
    labels_to_dict,
    load_labels,
    parse_labels,
)
from wanderlens.errors import InputError
from wanderlens.io import atomic_write_parquet, output_lock, read_json, staged_output, write_json

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Columns the outputs (or ingest itself) add: a manifest column of the same name, in any case, would clash.
RESERVED_COLUMNS: tuple[str, ...] = (
    "source_row", "reason", "detail", "image_path", *IMAGE_COLUMNS,
    "_reason", "_detail", "_dup", "_pid", "_mid", "probe_reason", "probe_detail",
)
_CHUNK = 1 << 20
_BINARY_VALUES = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0, "no": 0.0, "yes": 1.0}


def _manifest_format(manifest: str) -> str:
    lower = manifest.lower().rstrip("/")
    if lower.endswith(".csv") or lower.endswith(".csv.gz"):
        return "csv"
    if lower.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz")):
        return "json"
    if lower.endswith(".parquet") or (_URI.match(manifest) is None and Path(manifest).is_dir()):
        return "parquet"
    raise InputError(f"manifest {manifest}: unknown format; name it .csv, .jsonl or .parquet")


def check_utf8(path: str) -> None:
    """Refuse a local, uncompressed manifest that is not UTF-8 (a BOM is fine), naming the first bad byte.

    Spark would silently replace undecodable bytes (latin-1 accents, say) with U+FFFD, corrupting ids and captions.
    """
    if _URI.match(path) or path.lower().endswith(".gz") or not Path(path).is_file():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                pos = max(err.start, 0)  # start within this chunk (plus what the decoder had buffered)
                at = offset + pos
                line += chunk[:pos].count(b"\n")
                bad = chunk[pos] if 0 <= pos < len(chunk) else 0
                raise InputError(
                    f"manifest {path} is not UTF-8 text: byte 0x{bad:02x} at line {line} (byte offset {at}) cannot "
                    f"be decoded; re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            if not chunk:
                return
            line += chunk.count(b"\n")
            offset += len(chunk)


def check_columns(columns: list[str], specs: dict[str, LabelSpec], manifest: str) -> None:
    """Refuse a manifest whose columns cannot be told apart or clash with the ones ingestion adds."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(
            f"manifest {manifest} is missing required column(s) {', '.join(missing)}; "
            f"columns present: {', '.join(columns) or '(none)'}"
        )
    undeclared = [name for name in specs if name not in columns]
    if undeclared:
        raise InputError(
            f"manifest {manifest} lacks label column(s) {', '.join(undeclared)} declared in the "
            f"label declaration; columns present: {', '.join(columns)}"
        )
    check_distinct(columns, manifest)
    reserved = [c for c in columns if c.lower() in RESERVED_COLUMNS]
    if reserved:
        raise InputError(
            f"manifest {manifest}: column(s) {', '.join(repr(c) for c in reserved)} are reserved (ingestion adds "
            f"{', '.join(RESERVED_COLUMNS[:9])}); rename them"
        )


def check_distinct(columns: list[str], manifest: str) -> None:
    """Refuse column names Spark cannot tell apart (case, surrounding spaces) or cannot pass to `mapInPandas`."""
    seen: dict[str, str] = {}
    for c in columns:
        key = c.lstrip("\ufeff").strip().lower()
        if key in seen:
            raise InputError(
                f"manifest {manifest}: columns {seen[key]!r} and {c!r} differ only in case or surrounding "
                f"spaces, which Spark treats as the same column; rename one"
            )
        seen[key] = c
        if "`" in c or "." in c:  # Spark's mapInPandas (the image probe) cannot resolve such names
            raise InputError(
                f"manifest {manifest}: column {c!r} has a dot or backtick, which Spark cannot carry; rename it"
            )


def _col(name: str) -> Column:
    """A column by its exact name, whatever characters (dots, backticks) it holds."""
    return F.col("`" + name.replace("`", "``") + "`")


def _sql_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _local_csv_header(path: str) -> list[str] | None:
    """The header of a local, uncompressed CSV file, so Spark need not run a job to infer it."""
    if _URI.match(path) or not path.lower().endswith(".csv") or not Path(path).is_file():
        return None
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header or len(set(header)) != len(header) or any(not h.strip() for h in header):
        return None  # let Spark report (or rename) odd headers
    return header


def _all_strings(columns: list[str]) -> T.StructType:
    return T.StructType([T.StructField(c, T.StringType()) for c in columns])


def read_manifest(spark: SparkSession, manifest: str | Path) -> DataFrame:
    """Read a CSV, JSONL or Parquet manifest with every column as a string (lists joined with ';')."""
    path = str(manifest)
    if _URI.match(path) is None and not Path(path).exists():
        raise InputError(f"manifest not found: {path} (pass an existing .csv, .jsonl or .parquet file with --manifest)")
    fmt = _manifest_format(path)
    if fmt != "parquet":
        check_utf8(path)
    try:
        if fmt == "csv":
            header = _local_csv_header(path)
            if header is not None:
                check_distinct(header, path)
            reader = spark.read if header is None else spark.read.schema(_all_strings(header))
            df = (
                reader.option("header", True)
                .option("multiLine", True)
                .option("escape", '"')
                .option("inferSchema", False)
                .option("mode", "PERMISSIVE")
                .csv(path)
            )
        elif fmt == "json":
            df = spark.read.option("mode", "PERMISSIVE").json(path)
        else:
            df = spark.read.parquet(path)
    except Exception as exc:
        raise InputError(f"manifest {path} could not be read as {fmt}: {str(exc).splitlines()[0]}") from exc
    if "_corrupt_record" in df.columns:
        raise InputError(f"manifest {path}: some lines are not valid JSON objects (one object per line expected)")
    cols = []
    for field in df.schema.fields:
        c = _col(field.name)
        if isinstance(field.dataType, T.ArrayType) and field.name != "captions":
            joined = F.concat_ws(LIST_SEPARATOR, c.cast("array<string>"))
            c = F.when(c.isNull(), F.lit(None)).when(F.size(c) == 0, F.lit("[]")).otherwise(joined)
        elif isinstance(field.dataType, (T.ArrayType, T.StructType, T.MapType)):
            c = F.to_json(c)
        elif not isinstance(field.dataType, T.StringType):
            c = c.cast("string")
        cols.append(c.alias(field.name.lstrip("\ufeff").strip()))
    return df.select(*cols)


def _with_source_row(df: DataFrame) -> tuple[DataFrame, int]:
    """Add `source_row` (1-based position in the manifest) without moving rows to the driver."""
    tagged = df.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())
    counts = {r["_pid"]: r["n"] for r in tagged.groupBy("_pid").agg(F.count(F.lit(1)).alias("n")).collect()}
    offsets, total = {}, 0
    for pid in sorted(counts):
        offsets[pid] = total
        total += counts[pid]
    mapping = (
        F.create_map(*[x for pid, off in offsets.items() for x in (F.lit(pid), F.lit(off))])
        if offsets
        else F.create_map(F.lit(0), F.lit(0))
    )
    within = F.col("_mid").bitwiseAND(F.lit((1 << 33) - 1))
    out = tagged.withColumn("source_row", (mapping[F.col("_pid")] + within + 1).cast("long")).drop("_pid", "_mid")
    return out, total


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def _resolve_image(c: Column, base: str) -> Column:
    """Paths relative to the manifest's folder become absolute; absolute paths and URIs stay as they are."""
    return (
        F.when(c.rlike(r"^([A-Za-z][A-Za-z0-9+.\-]*://|file:|[A-Za-z]:[\\\\/])"), c)
        .when(c.startswith("/"), c)
        .otherwise(F.concat(F.lit(base.rstrip("/") + "/"), c))
    )


def _split_list(c: Column) -> Column:
    parts = F.transform(F.split(c, LIST_SEPARATOR), lambda x: F.trim(x))
    return F.filter(parts, lambda x: (x != "") & (x != "[]"))


def _label_checks(specs: dict[str, LabelSpec]) -> list[tuple[Column, Column]]:
    """(is-bad, detail) pairs, one per declared label column."""
    checks = []
    for name, spec in specs.items():
        raw = F.trim(_col(name))
        present = ~_blank(_col(name))
        if spec.type == "multiclass":
            bad = present & ~raw.isin(list(spec.classes))
            detail = F.format_string(f"{name}=%s is not among the declared classes {list(spec.classes)}", raw)
        elif spec.type == "multilabel":
            items = _split_list(raw)
            unknown = F.array_except(items, F.array(*[F.lit(c) for c in spec.classes]))
            bad = present & (raw != "[]") & (F.size(unknown) > 0)
            detail = F.format_string(
                f"{name} has %s, not among the declared classes {list(spec.classes)}", F.array_join(unknown, ";")
            )
        elif spec.type == "binary":
            bad = present & ~F.lower(raw).isin(list(_BINARY_VALUES))
            detail = F.format_string(f"{name}=%s is not a binary value (0/1, true/false)", raw)
        else:
            num = F.expr(f"try_cast(trim({_sql_name(name)}) as double)")
            bad = present & (num.isNull() | F.isnan(num) | (F.abs(num) == float("inf")))
            detail = F.format_string(f"{name}=%s is not a finite number", raw)
        checks.append((bad, detail))
    return checks


def _row_reason(df: DataFrame, specs: dict[str, LabelSpec]) -> DataFrame:
    """Add `_reason`/`_detail` for the first row-level problem (cheap checks, before any file is opened)."""
    rules: list[tuple[Column, str, Column]] = []
    for col in REQUIRED_COLUMNS:
        rules.append((_blank(F.col(col)), REASON_MISSING_VALUE, F.lit(f"required column '{col}' is empty on this row")))
    if "taken_at" in df.columns:
        ts = F.expr("try_cast(trim(taken_at) as timestamp)")
        rules.append(
            (
                ~_blank(F.col("taken_at")) & ts.isNull(),
                REASON_BAD_TIMESTAMP,
                F.format_string(
                    "taken_at=%s is not an ISO-8601 timestamp (e.g. 2024-05-01T10:30:00Z)", F.col("taken_at")
                ),
            )
        )
    has_lat, has_lon = "latitude" in df.columns, "longitude" in df.columns
    if has_lat or has_lon:
        lat_raw = F.col("latitude") if has_lat else F.lit(None).cast("string")
        lon_raw = F.col("longitude") if has_lon else F.lit(None).cast("string")
        lat = F.expr("try_cast(trim(latitude) as double)") if has_lat else F.lit(None).cast("double")
        lon = F.expr("try_cast(trim(longitude) as double)") if has_lon else F.lit(None).cast("double")
        one_missing = _blank(lat_raw) != _blank(lon_raw)
        unparsable = (~_blank(lat_raw) & lat.isNull()) | (~_blank(lon_raw) & lon.isNull())
        out_of_range = (F.abs(lat) > 90) | (F.abs(lon) > 180) | F.isnan(lat) | F.isnan(lon)
        rules.append(
            (
                one_missing | unparsable | F.coalesce(out_of_range, F.lit(False)),
                REASON_BAD_COORDINATES,
                F.format_string(
                    "latitude=%s, longitude=%s: need both, latitude in [-90, 90] and longitude in [-180, 180]",
                    F.coalesce(lat_raw, F.lit("")),
                    F.coalesce(lon_raw, F.lit("")),
                ),
            )
        )
    for bad, detail in _label_checks(specs):
        rules.append((bad, REASON_UNKNOWN_LABEL, detail))
    reason: Column = F.lit(None).cast("string")
    detail_col: Column = F.lit(None).cast("string")
    for cond, code, detail in reversed(rules):
        reason = F.when(F.coalesce(cond, F.lit(False)), F.lit(code)).otherwise(reason)
        detail_col = F.when(F.coalesce(cond, F.lit(False)), detail).otherwise(detail_col)
    return df.withColumn("_reason", reason).withColumn("_detail", detail_col)


def _typed_photos(df: DataFrame, manifest_cols: list[str], specs: dict[str, LabelSpec]) -> DataFrame:
    """Cast the kept rows to the photos-table contract (docs/architecture.md)."""

    def text(name: str) -> Column:
        return F.when(~_blank(F.col(name)), F.trim(F.col(name)))

    standard: dict[str, tuple[Any, str]] = {
        "caption": (lambda: F.when(~_blank(F.col("caption")), F.col("caption")), "string"),
        "tags": (lambda: F.coalesce(_split_list(F.col("tags")), F.array().cast("array<string>")), "array<string>"),
        "taken_at": (lambda: F.expr("try_cast(trim(taken_at) as timestamp)"), "timestamp"),
        "latitude": (lambda: F.expr("try_cast(trim(latitude) as double)"), "double"),
        "longitude": (lambda: F.expr("try_cast(trim(longitude) as double)"), "double"),
        "destination_id": (lambda: text("destination_id"), "string"),
    }
    cols: list[Column] = [text("photo_id").alias("photo_id"), text("user_id").alias("user_id"), F.col("image_path")]
    for name, (build, dtype) in standard.items():
        if name in manifest_cols:
            cols.append(build().cast(dtype).alias(name))
        elif name == "tags":
            cols.append(F.array().cast("array<string>").alias(name))
        else:
            cols.append(F.lit(None).cast(dtype).alias(name))
    if "captions" in manifest_cols:  # all captions of a photo (COCO has five); optional, only when given
        raw_caps = F.trim(F.col("captions"))
        parsed = F.when(raw_caps.startswith("["), F.from_json(raw_caps, "array<string>")).when(
            ~_blank(raw_caps), F.array(raw_caps)
        )
        cols.append(parsed.alias("captions"))
    for name, spec in specs.items():
        raw = F.trim(_col(name))
        present = ~_blank(_col(name))
        if spec.type == "multiclass":
            value = F.when(present, raw)
        elif spec.type == "multilabel":
            value = F.when(present & (raw == "[]"), F.array().cast("array<string>")).when(present, _split_list(raw))
        elif spec.type == "binary":
            mapping = F.create_map(*[x for k, v in _BINARY_VALUES.items() for x in (F.lit(k), F.lit(v))])
            value = F.when(present, mapping[F.lower(raw)])
        else:
            value = F.when(present, F.expr(f"try_cast(trim({_sql_name(name)}) as double)"))
        cols.append(value.alias(name))
    known = set(STANDARD_COLUMNS) | set(specs)
    cols += [_col(c) for c in manifest_cols if c not in known]  # undeclared extras pass through
    cols += [F.col(c) for c in IMAGE_COLUMNS]
    return df.select(*cols)


def resolve_labels(labels: Any, manifest: str) -> dict[str, LabelSpec]:
    """The label declaration: a path, a mapping, or None (then labels.yaml/labels.json beside the manifest)."""
    if labels is None:
        if _URI.match(manifest):
            return {}
        folder = Path(manifest).parent
        for name in ("labels.yaml", "labels.yml", "labels.json"):
            if (folder / name).is_file():
                return load_labels(folder / name)
        return {}
    if isinstance(labels, (str, Path)):
        return load_labels(labels)
    if isinstance(labels, dict) and all(isinstance(v, LabelSpec) for v in labels.values()):
        return dict(labels)
    return parse_labels(labels)


def _judge(
    spark: SparkSession, raw: DataFrame, manifest: str, specs: dict[str, LabelSpec], max_pixels: int, decode: bool
) -> tuple[DataFrame, int]:
    """Every manifest row with `_reason`/`_detail` (null when kept) and `source_row`; plus the row count."""
    base = manifest.rsplit("/", 1)[0] if _URI.match(manifest) else str(Path(manifest).resolve().parent)
    df, rows_in = _with_source_row(raw)
    df = df.withColumn("image_path", _resolve_image(F.trim(F.col("image")), base))
    df = _row_reason(df, specs)
    cores = spark.sparkContext.defaultParallelism
    parts = max(1, min(rows_in, max(cores, min(cores * 4, math.ceil(rows_in / 500)))))
    probe = ImageProbe(inputCol="image_path", maxPixels=int(max_pixels), decode=bool(decode), skipCol="_reason")
    probed = probe.transform(df.repartition(parts))
    probed = (
        probed.withColumn("_reason", F.coalesce(F.col("_reason"), F.col("probe_reason")))
        .withColumn("_detail", F.coalesce(F.col("_detail"), F.col("probe_detail")))
        .drop("probe_reason", "probe_detail")
    )
    # rank only among usable rows, so a broken first copy does not push out a good later one
    usable = Window.partitionBy(F.trim(F.col("photo_id")), F.col("_reason").isNull()).orderBy("source_row")
    dup = F.col("_reason").isNull() & (F.row_number().over(usable) > 1)
    judged = (
        probed.withColumn("_dup", dup)
        .withColumn("_reason", F.when(F.col("_dup"), F.lit(REASON_DUPLICATE_ID)).otherwise(F.col("_reason")))
        .withColumn(
            "_detail",
            F.when(
                F.col("_dup"), F.format_string("photo_id %s already used by an earlier row", F.trim(F.col("photo_id")))
            ).otherwise(F.col("_detail")),
        )
        .drop("_dup")
    )
    return judged, rows_in


def _write_tables(judged: DataFrame, present: list[str], specs: dict[str, LabelSpec], photos: str,
                  quarantine: str) -> dict[str | None, int]:
    """Write the photos and quarantine tables; return the row count per reason (None: kept)."""
    kept = _typed_photos(judged.where(F.col("_reason").isNull()), present, specs)
    quarantined = judged.where(F.col("_reason").isNotNull()).select(
        *[_col(c) for c in present],
        F.col("_reason").alias("reason"),
        F.col("_detail").alias("detail"),
        F.col("source_row"),
    )
    atomic_write_parquet(kept, photos)
    atomic_write_parquet(quarantined.coalesce(1).sortWithinPartitions("source_row"), quarantine)
    tally = judged.groupBy("_reason").agg(F.count(F.lit(1)).alias("n")).collect()
    return {r["_reason"]: int(r["n"]) for r in tally}


def ingest(
    spark: SparkSession,
    manifest: str | Path,
    out_dir: str | Path,
    labels: Any = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decode: bool = True,
    lock_timeout: float = 0.0,
) -> dict[str, Any]:
    """Validate `manifest` and its images; write OUT/photos, OUT/quarantine, OUT/labels.json, OUT/summary.json.

    The job holds OUT's output lock (a second job on OUT waits `lock_timeout` seconds, then refuses naming this
    one) and writes all four parts to a staging folder that is committed at the end, so a killed run leaves the
    previous output intact. Returns the summary: rows_in, rows_kept, rows_quarantined, by_reason (and the paths).
    """
    manifest_str = str(manifest)
    specs = resolve_labels(labels, manifest_str)
    raw = read_manifest(spark, manifest_str)
    present = raw.columns
    check_columns(present, specs, manifest_str)
    root = str(out_dir).rstrip("/") if _URI.match(str(out_dir)) else str(Path(out_dir).resolve())
    with output_lock(out_dir, job="ingest", timeout=lock_timeout) as local:
        judged, rows_in = _judge(spark, raw, manifest_str, specs, max_pixels, decode)
        judged = judged.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if local is None:  # remote output: Spark's commit protocol, table by table
                counts = _write_tables(judged, present, specs, f"{root}/photos", f"{root}/quarantine")
                return _summary(manifest_str, root, rows_in, counts, specs, max_pixels)
            with staged_output(local) as stage:
                counts = _write_tables(judged, present, specs, str(stage.path("photos")),
                                       str(stage.path("quarantine")))
                summary = _summary(manifest_str, root, rows_in, counts, specs, max_pixels)
                write_json(labels_to_dict(specs), stage.path("labels.json"))
                write_json(summary, stage.path("summary.json"))
            return summary
        finally:
            judged.unpersist()


def _summary(manifest: str, root: str, rows_in: int, counts: dict[str | None, int], specs: dict[str, LabelSpec],
             max_pixels: int) -> dict[str, Any]:
    """The summary.json content; checks that rows in = kept + quarantined."""
    rows_kept = counts.pop(None, 0)
    rows_quarantined = sum(counts.values())
    if rows_kept + rows_quarantined != rows_in:  # a bug, never a user error
        raise RuntimeError(f"ingest counts do not reconcile: {rows_in} in, {rows_kept} kept, {rows_quarantined} out")
    return {
        "manifest": manifest,
        "rows_in": rows_in,
        "rows_kept": rows_kept,
        "rows_quarantined": rows_quarantined,
        "by_reason": dict(sorted(counts.items())),
        "photos": f"{root}/photos",
        "quarantine": f"{root}/quarantine",
        "labels": labels_to_dict(specs),
        "max_pixels": int(max_pixels),
    }


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary.json an earlier `ingest` wrote."""
    return read_json(Path(out_dir) / "summary.json")
