"""Model registry: immutable numbered versions under one root, and aliases (`production`) switched atomically.

Layout: `ROOT/versions/v0001/{feature_pipeline,model,travel,metadata.json}` and `ROOT/aliases/<name>.json`, a small
pointer file (`version` plus the `history` that `rollback` walks back) replaced with `os.replace`, so a crash
mid-switch leaves the old or the new pointer, never a half. A version is staged in `ROOT/.staging` and renamed into
place whole; its files are then made read-only and a content checksum is kept in its metadata.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wanderlens.errors import InputError, WanderlensError
from wanderlens.io import output_lock, read_json, read_ml_metadata

DEFAULT_ALIAS = "production"
LOCK_TIMEOUT_S = 120.0  # how long a writer waits for another one (a register copying a big model) before refusing
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION_RE = re.compile(r"^v?(\d{1,6})$")


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def tree_checksum(path: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order: equal trees give equal checksums."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path)).encode())
        digest.update(b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def data_snapshot_hash(path: Path) -> str:
    """Content hash of a table folder that ignores Spark's random part-file names (sorted per-file digests)."""
    digests = []
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))):
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digests.append(h.hexdigest())
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def _fsync_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary sibling, fsync it, then os.replace: old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _make_writable(path: Path) -> None:
    """Give the owner write permission back on a (read-only) tree, so it can be removed."""
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        with contextlib.suppress(OSError):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _make_read_only(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    import wanderlens

    out = {"wanderlens": wanderlens.__version__, "python": platform.python_version()}
    for name in ("pyspark", "torch", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _read_optional_json(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def model_summary(model_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(config, metrics) of a saved MultiTaskModel read without Spark: its Params from the pyspark.ml metadata and
    the last epoch of its training history (from the one-row `data` table); None where absent."""
    config = metrics = None
    with contextlib.suppress(InputError, OSError, ValueError, IndexError):
        meta = read_ml_metadata(model_dir)
        config = {**meta.get("defaultParamMap", {}), **meta.get("paramMap", {})}
    if (model_dir / "data").is_dir():
        with contextlib.suppress(Exception):
            import pyarrow.parquet as pq

            row = pq.read_table(str(model_dir / "data"), columns=["meta"]).to_pylist()[0]
            history = json.loads(row["meta"]).get("history") or []
            if history:
                metrics = {"epochs": len(history), "last_epoch": history[-1]}
    return config, metrics


class ModelRegistry:
    """Versions of (fitted feature pipeline + MultiTaskModel [+ travel tables]) under `root`, with aliases."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- layout -----------------------------------------------------------------------------------------------
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def aliases_dir(self) -> Path:
        return self.root / "aliases"

    def version_dir(self, version: int) -> Path:
        """Folder of one version (it may not exist)."""
        return self.versions_dir / f"v{int(version):04d}"

    def alias_file(self, alias: str) -> Path:
        return self.aliases_dir / f"{self._check_alias(alias)}.json"

    @staticmethod
    def _check_alias(alias: str) -> str:
        if not _ALIAS_RE.match(alias or ""):
            raise InputError(f"alias {alias!r} is not valid: use lower-case letters, digits, '-' or '_' "
                             "(e.g. production)")
        return alias

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive lock on the registry for writers (register, promote, rollback) across processes: the shared
        output lock (`wanderlens.io.output_lock`), waiting up to LOCK_TIMEOUT_S for another writer; an OS lock,
        so a killed holder releases it."""
        with output_lock(self.root, job="registry", timeout=LOCK_TIMEOUT_S, recover=False):
            yield

    # -- reading ----------------------------------------------------------------------------------------------
    def versions(self) -> list[int]:
        """All registered version numbers, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        out = []
        for p in self.versions_dir.iterdir():
            m = re.fullmatch(r"v(\d+)", p.name)
            if m and (p / "metadata.json").is_file():
                out.append(int(m.group(1)))
        return sorted(out)

    def parse_version(self, ref: str | int) -> int:
        """A version number from `3`, `"3"` or `"v3"`; an alias name is not accepted here."""
        m = _VERSION_RE.match(str(ref).strip())
        if not m:
            raise InputError(f"{ref!r} is not a version number (use e.g. 3 or v3; see 'wanderlens models list')")
        return int(m.group(1))

    def resolve(self, ref: str | int = DEFAULT_ALIAS) -> int:
        """The version a reference names: a version number (`3`, `v3`), an alias (`production`) or `latest`."""
        text = str(ref).strip()
        if _VERSION_RE.match(text):
            version = self.parse_version(text)
        elif text == "latest":
            versions = self.versions()
            if not versions:
                raise WanderlensError(f"registry {self.root} has no versions yet (register a model first)")
            version = versions[-1]
        else:
            pointer = self.alias(text)
            if pointer is None:
                raise WanderlensError(
                    f"alias {text!r} is not set in registry {self.root} (run 'wanderlens models promote VERSION')")
            version = int(pointer["version"])
        if not (self.version_dir(version) / "metadata.json").is_file():
            raise WanderlensError(f"version {version} is not in registry {self.root} (see 'wanderlens models list')")
        return version

    def alias(self, alias: str = DEFAULT_ALIAS) -> dict[str, Any] | None:
        """The pointer an alias holds (`version`, `history`, `updated`), or None when unset."""
        path = self.alias_file(alias)
        if not path.is_file():
            return None
        try:
            return read_json(path)
        except ValueError as exc:  # cannot happen with os.replace writers; say so clearly if someone edited it
            raise WanderlensError(f"alias file {path} is not valid JSON ({exc}); promote a version again") from exc

    def aliases(self) -> dict[str, int]:
        """Every alias and the version it points to."""
        if not self.aliases_dir.is_dir():
            return {}
        out = {}
        for p in sorted(self.aliases_dir.glob("*.json")):
            if not p.name.startswith("."):
                pointer = _read_optional_json(p)
                if pointer and "version" in pointer:
                    out[p.stem] = int(pointer["version"])
        return out

    def metadata(self, ref: str | int = DEFAULT_ALIAS) -> dict[str, Any]:
        """The metadata of a version (created, config, data hash, metrics, package versions, checksum...)."""
        version = self.resolve(ref)
        meta = read_json(self.version_dir(version) / "metadata.json")
        meta["aliases"] = sorted(a for a, v in self.aliases().items() if v == version)
        return meta

    def path(self, ref: str | int = DEFAULT_ALIAS) -> Path:
        """Folder of the version a reference names."""
        return self.version_dir(self.resolve(ref))

    def verify(self, ref: str | int = DEFAULT_ALIAS) -> bool:
        """True when a version's files still match the checksum recorded when it was registered."""
        version = self.resolve(ref)
        meta = read_json(self.version_dir(version) / "metadata.json")
        return tree_checksum(self.version_dir(version) / "artifacts") == meta.get("checksum")

    # -- writing ----------------------------------------------------------------------------------------------
    def register(
        self,
        feature_pipeline: str | Path,
        model: str | Path,
        metadata: dict[str, Any] | None = None,
        travel_dir: str | Path | None = None,
        data_dir: str | Path | None = None,
        metrics: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> int:
        """Copy a fitted feature pipeline and MultiTaskModel (and travel tables) into a new immutable version.

        The data snapshot hash is taken from `data_dir` (default: the `features` table beside the pipeline);
        metrics and config default to `metrics.json` / `config.json` in the model folder, else to the model's own
        Params and the last epoch of its training history.

        The whole registration holds the registry lock: a second `register` (or a promote) waits for it, so two
        registrations get distinct numbers and each version is one complete copy. The version is built in
        `.staging/` and renamed into `versions/` whole, so a kill at any point leaves the registry as it was (the
        next writer removes the killed one's staging folder).
        """
        feature_pipeline, model = Path(feature_pipeline), Path(model)
        for name, p in (("feature pipeline", feature_pipeline), ("model", model)):
            if not p.is_dir():
                raise InputError(f"{name} folder not found: {p} (pass the folder a fit wrote)")
        if travel_dir is not None and not Path(travel_dir).is_dir():
            raise InputError(f"travel folder not found: {travel_dir} (run 'wanderlens travel' first or omit it)")
        with self._lock():
            self._remove_stale_staging()
            staging = self.root / ".staging" / uuid.uuid4().hex
            try:
                meta = self._stage(staging, feature_pipeline, model, travel_dir, data_dir, metrics, config)
                meta.update(metadata or {})
                version = (self.versions()[-1] + 1) if self.versions() else 1
                meta["version"] = version
                _fsync_write(staging / "metadata.json", json.dumps(meta, indent=2, sort_keys=True, default=str))
                self.versions_dir.mkdir(parents=True, exist_ok=True)
                os.rename(staging, self.version_dir(version))
                _fsync_dir(self.versions_dir)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return version

    def _remove_stale_staging(self) -> None:
        """Remove what a killed `register` left in `.staging` (only called under the lock, so none is live)."""
        staging_root = self.root / ".staging"
        if staging_root.is_dir():
            for leftover in staging_root.iterdir():
                _make_writable(leftover)
                shutil.rmtree(leftover, ignore_errors=True)

    @staticmethod
    def _stage(staging: Path, feature_pipeline: Path, model: Path, travel_dir: str | Path | None,
               data_dir: str | Path | None, metrics: dict[str, Any] | None, config: dict[str, Any] | None,
               ) -> dict[str, Any]:
        """Copy the artifacts into `staging/artifacts`, make them read-only and return the version's metadata."""
        data = Path(data_dir) if data_dir else feature_pipeline.parent / "features"
        art = staging / "artifacts"
        art.mkdir(parents=True)
        shutil.copytree(feature_pipeline, art / "feature_pipeline")
        shutil.copytree(model, art / "model")
        if travel_dir is not None:
            shutil.copytree(travel_dir, art / "travel")
        labels = feature_pipeline.parent / "labels.json"
        if labels.is_file():
            shutil.copy2(labels, art / "labels.json")
        model_config, model_metrics = model_summary(model)
        if config is None:
            config = _read_optional_json(model / "config.json") or model_config
        if metrics is None:
            metrics = _read_optional_json(model / "metrics.json") or model_metrics
        meta: dict[str, Any] = {
            "created": _utc_now(),
            "config": config,
            "metrics": metrics,
            "data_snapshot_hash": data_snapshot_hash(data) if data.is_dir() else None,
            "data_path": str(data.resolve()) if data.is_dir() else None,
            "packages": _package_versions(),
            "package_version": _package_versions()["wanderlens"],
            "sources": {"feature_pipeline": str(feature_pipeline.resolve()), "model": str(model.resolve()),
                        "travel": str(Path(travel_dir).resolve()) if travel_dir else None},
            "has_travel": travel_dir is not None,
            "checksum": tree_checksum(art),
        }
        _make_read_only(art)
        return meta

    def promote(self, ref: str | int, alias: str = DEFAULT_ALIAS) -> int:
        """Point `alias` at a version (atomically); the version it pointed to goes on the rollback history."""
        with self._lock():
            version = self.resolve(ref)
            current = self.alias(alias)
            history = list(current.get("history", [])) if current else []
            if current and int(current["version"]) != version:
                history.append(int(current["version"]))
            self._write_alias(alias, version, history[-50:])
        return version

    def rollback(self, alias: str = DEFAULT_ALIAS) -> int:
        """Point `alias` back at the version it held before the last promote; returns that version."""
        with self._lock():
            current = self.alias(alias)
            if not current or not current.get("history"):
                raise WanderlensError(f"alias {alias!r} in {self.root} has no earlier version to roll back to")
            history = list(current["history"])
            version = int(history.pop())
            self._write_alias(alias, version, history)
        return version

    def _write_alias(self, alias: str, version: int, history: list[int]) -> None:
        self.aliases_dir.mkdir(parents=True, exist_ok=True)
        pointer = {"alias": alias, "version": version, "history": history, "updated": _utc_now()}
        _fsync_write(self.alias_file(alias), json.dumps(pointer, indent=2))
