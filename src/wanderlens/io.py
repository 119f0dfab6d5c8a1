"""Atomic outputs: a table or file appears whole at its final path or not at all.

Writers go to a hidden temporary sibling and are renamed into place, so a crashed job leaves the previous output
(or none), never a half-written table that a later stage would read. A job that writes several parts into one
output folder holds `output_lock` on it (a second job waits or refuses, naming the holder) and writes the parts
into a `staged_output`, which moves them into place together, journaled, so a kill at any point leaves either
the previous output or the new one; leftovers of a killed job are cleaned up (or finished) by the next one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pyspark.sql import DataFrame

from wanderlens.errors import InputError, WanderlensError

LOCK_FILE = ".wanderlens.lock"
OWNER_FILE = ".wanderlens.lock.owner"
STAGING_PREFIX = ".staging-"
_JOURNAL = "COMMIT.json"
_OLD = ".old"


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


class OutputLockedError(WanderlensError):
    """Another job holds the output folder: wait for it, or write elsewhere."""


def _read_owner(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextmanager
def output_lock(out_dir: str | Path, job: str, timeout: float = 0.0, recover: bool = True) -> Iterator[Path | None]:
    """Hold the exclusive writer lock of output folder `out_dir` for the duration of a job.

    A second job on the same folder waits up to `timeout` seconds (0: refuse at once) and then fails with an
    `OutputLockedError` naming the folder and the holder's job and pid. The lock is an OS file lock, so a killed
    holder releases it. With `recover`, leftovers of an earlier killed job are cleaned up (or, for a staged output
    that had started its commit, finished) once the lock is held. Yields the local folder; for a remote URI
    (HDFS, S3) yields None and locks nothing (those writers rely on Spark's commit protocol).
    """
    local = _local_path(out_dir)
    if local is None:
        yield None
        return
    local = local.resolve()
    local.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(local / LOCK_FILE), thread_local=False)
    try:
        lock.acquire(timeout=max(float(timeout), 0.0), poll_interval=0.2)
    except Timeout:
        owner = _read_owner(local)
        holder = f"'{owner.get('job', '?')}' job, pid {owner.get('pid', '?')} on {owner.get('host', '?')}, " \
                 f"since {owner.get('started', '?')}"
        waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
        raise OutputLockedError(
            f"output folder {local} is in use by another wanderlens {holder}{waited}; wait for it to finish "
            f"or pass a different output folder"
        ) from None
    try:
        owner = {"job": job, "pid": os.getpid(), "host": socket.gethostname(),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (local / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
        if recover:
            recover_output(local)
        yield local
    finally:
        (local / OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover_output(out_dir: str | Path) -> list[str]:
    """Clean up after a killed writer of `out_dir`; call it only while holding `output_lock`.

    A staging folder whose commit had started is rolled forward (the new output wins); one that had not is removed,
    as are temporary siblings (`.NAME.tmp-*`). An interrupted `replace_dir` swap (`.NAME.old-*` with NAME gone) is
    rolled back. Returns what was done, one line per item.
    """
    out, done = Path(out_dir), []
    if not out.is_dir():
        return done
    for entry in sorted(out.iterdir()):
        name = entry.name
        if name.startswith(STAGING_PREFIX):
            if (entry / _JOURNAL).is_file():
                _roll_forward(entry, out)
                done.append(f"finished the interrupted commit {name}")
            else:
                _remove(entry)
                done.append(f"removed unfinished {name}")
        elif name.startswith(".") and ".tmp-" in name:
            _remove(entry)
            done.append(f"removed temporary {name}")
        elif name.startswith(".") and ".old-" in name:
            final = out / name[1:].rsplit(".old-", 1)[0]
            if final.exists():
                _remove(entry)
                done.append(f"removed old copy {name}")
            else:
                os.replace(entry, final)
                done.append(f"restored {final.name} from {name}")
    return done


def _roll_forward(stage: Path, out: Path) -> None:
    """Move each journaled part of `stage` to `out` (idempotent: safe to repeat after a kill), then drop `stage`."""
    parts = json.loads((stage / _JOURNAL).read_text(encoding="utf-8"))["parts"]
    old = stage / _OLD
    old.mkdir(exist_ok=True)
    for name in parts:
        src, dst = stage / name, out / name
        if not src.exists():
            continue  # moved before the kill
        if src.is_dir() and (dst.exists() or dst.is_symlink()):
            _remove(old / name)
            os.replace(dst, old / name)
        os.replace(src, dst)  # a file replaces the old one atomically
    shutil.rmtree(stage, ignore_errors=True)


class StagedOutput:
    """The parts (tables, JSON files) of one output folder, written under `OUT/.staging-<id>/` first.

    `path(name)` is where a part is written; `commit()` journals the part names, then moves each into `OUT`
    (summary.json last), so readers never see a new table beside an old summary once the commit finishes, and
    `recover_output` finishes a commit a kill interrupted. Parts not written keep their previous version.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out = Path(out_dir)
        self.root = self.out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self.root.mkdir(parents=True)

    def path(self, name: str) -> Path:
        """Where to write part `name` (e.g. "photos", "summary.json") before the commit."""
        return self.root / name

    def commit(self) -> None:
        """Move every written part into the output folder (journaled, so a kill mid-way is finished later)."""
        parts = sorted((p.name for p in self.root.iterdir() if not p.name.startswith(".")),
                       key=lambda n: (n == "summary.json", n))
        journal = self.root / _JOURNAL
        with open(journal.with_suffix(".tmp"), "w", encoding="utf-8") as fh:
            json.dump({"parts": parts}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(journal.with_suffix(".tmp"), journal)
        _roll_forward(self.root, self.out)

    def abort(self) -> None:
        """Drop everything written so far; the previous output stays as it was."""
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def staged_output(out_dir: str | Path) -> Iterator[StagedOutput]:
    """Write the parts of an output folder under a staging folder; commit them together when the block succeeds.

    Use it inside `output_lock(out_dir, ...)`. On an exception nothing of the new output becomes visible.
    """
    stage = StagedOutput(out_dir)
    try:
        yield stage
    except BaseException:
        stage.abort()
        raise
    stage.commit()


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
