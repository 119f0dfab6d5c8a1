"""Atomic outputs: a table or file appears whole at its final path or not at all.

Writers go to a hidden temporary sibling and are renamed into place, so a crashed job leaves the previous output
(or none), never a half-written table that a later stage would read.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from wanderlens.errors import InputError


def _local_path(path: str | Path) -> Path | None:
    s = str(path)
    if s.startswith("file://"):
        return Path(s[len("file://"):])
    if "://" in s:
        return None
    return Path(s)


def atomic_write_parquet(df: DataFrame, path: str | Path, partitions: int | None = None) -> None:
    """Write `df` as Parquet at `path`, replacing what was there only once the new table is complete.

    Local paths use a rename; other file systems (HDFS, S3) fall back to Spark's own overwrite commit.
    """
    out = df.coalesce(partitions) if partitions else df
    local = _local_path(path)
    if local is None:
        out.write.mode("overwrite").parquet(str(path))
        return
    local = local.resolve()
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.parent / f".{local.name}.tmp-{uuid.uuid4().hex[:8]}"
    out.write.mode("overwrite").parquet(str(tmp))
    replace_dir(tmp, local)


def replace_dir(new: Path, final: Path) -> None:
    """Move the complete folder `new` to `final`, swapping out any old one with renames only."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, p)


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by `write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_ml_metadata(stage_dir: str | Path) -> dict[str, Any]:
    """The metadata JSON of a saved pyspark.ml stage, read without Spark (for the no-Spark serving paths).

    Spark 3 names the file `metadata/part-00000`, Spark 4 `metadata/part-00000-<uuid>.txt`: the first `part-*` is it.
    """
    files = sorted((Path(str(stage_dir).removeprefix("file://")) / "metadata").glob("part-*"))
    if not files:
        raise InputError(f"{stage_dir} is not a saved pyspark.ml stage (no metadata/part-* file)")
    return json.loads(files[0].read_text(encoding="utf-8").splitlines()[0])
