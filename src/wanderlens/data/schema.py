"""The manifest's columns and the label declaration (`labels.yaml`): what ingestion checks and what it emits.

Column names are the API between stages (docs/architecture.md); this module is the one place that lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wanderlens.errors import ConfigError

REQUIRED_COLUMNS: tuple[str, ...] = ("photo_id", "user_id", "image")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "caption",
    "tags",
    "taken_at",
    "latitude",
    "longitude",
    "destination_id",
    "captions",
)
STANDARD_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DESTINATION_COLUMNS: tuple[str, ...] = (
    "destination_id",
    "name",
    "country",
    "kind",
    "description",
    "tags",
    "latitude",
    "longitude",
)
# Columns ingestion adds from each image's header.
IMAGE_COLUMNS: tuple[str, ...] = ("width", "height", "format", "num_bytes", "sha256")
LABEL_TYPES: tuple[str, ...] = ("multiclass", "multilabel", "binary", "regression")
LIST_SEPARATOR = ";"

# Quarantine reasons: a short code per kind of unusable row (docs/data-format.md explains each).
REASON_MISSING_VALUE = "missing_value"
REASON_FILE_MISSING = "file_missing"
REASON_EMPTY_FILE = "empty_file"
REASON_NOT_AN_IMAGE = "not_an_image"
REASON_CORRUPT_IMAGE = "corrupt_image"
REASON_DECOMPRESSION_BOMB = "decompression_bomb"
REASON_DUPLICATE_ID = "duplicate_photo_id"
REASON_BAD_TIMESTAMP = "bad_taken_at"
REASON_BAD_COORDINATES = "coordinates_out_of_range"
REASON_UNKNOWN_LABEL = "unknown_label"
REASONS: tuple[str, ...] = (
    REASON_MISSING_VALUE,
    REASON_FILE_MISSING,
    REASON_EMPTY_FILE,
    REASON_NOT_AN_IMAGE,
    REASON_CORRUPT_IMAGE,
    REASON_DECOMPRESSION_BOMB,
    REASON_DUPLICATE_ID,
    REASON_BAD_TIMESTAMP,
    REASON_BAD_COORDINATES,
    REASON_UNKNOWN_LABEL,
)


@dataclass(frozen=True)
class LabelSpec:
    """One declared label column: its task type and, for classification, its classes in index order."""

    name: str
    type: str
    classes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form: `{type: ..., classes: [...]}` (classes only for multiclass/multilabel)."""
        d: dict[str, Any] = {"type": self.type}
        if self.type in ("multiclass", "multilabel"):
            d["classes"] = list(self.classes)
        return d


def parse_labels(decl: dict[str, Any] | None, source: str = "labels") -> dict[str, LabelSpec]:
    """Validate a label declaration mapping (as in labels.yaml) into LabelSpecs, in declaration order."""
    if decl is None:
        return {}
    if not isinstance(decl, dict):
        raise ConfigError(f"{source}: the label declaration must be a mapping of column -> {{type, classes}}")
    specs: dict[str, LabelSpec] = {}
    for name, body in decl.items():
        if not isinstance(body, dict) or "type" not in body:
            raise ConfigError(f"{source}: label {name!r} needs a 'type' (one of {', '.join(LABEL_TYPES)})")
        kind = str(body["type"])
        if kind not in LABEL_TYPES:
            raise ConfigError(
                f"{source}: label {name!r} has unknown type {kind!r}; use one of {', '.join(LABEL_TYPES)}"
            )
        if name in STANDARD_COLUMNS:
            raise ConfigError(f"{source}: {name!r} is a standard manifest column and cannot be a label")
        classes: tuple[str, ...] = ()
        if kind in ("multiclass", "multilabel"):
            raw = body.get("classes")
            if not isinstance(raw, list) or len(raw) < 2:
                raise ConfigError(f"{source}: {kind} label {name!r} needs a 'classes' list of at least 2 names")
            classes = tuple(str(c) for c in raw)
            if len(set(classes)) != len(classes):
                raise ConfigError(f"{source}: label {name!r} lists a class twice")
            bad = [c for c in classes if LIST_SEPARATOR in c or not c.strip()]
            if bad:
                raise ConfigError(f"{source}: label {name!r} class names must be non-empty and without ';': {bad}")
        specs[str(name)] = LabelSpec(str(name), kind, classes)
    return specs


def load_labels(path: str | Path) -> dict[str, LabelSpec]:
    """Read a labels.yaml (or .json) file into LabelSpecs."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"label declaration not found: {p} (write a labels.yaml, see docs/data-format.md)")
    try:
        decl = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"label declaration {p} is not valid YAML/JSON: {exc}") from exc
    return parse_labels(decl, source=str(p))


def labels_to_dict(specs: dict[str, LabelSpec]) -> dict[str, Any]:
    """The declaration as a plain mapping (what labels.yaml / labels.json hold)."""
    return {name: spec.to_dict() for name, spec in specs.items()}


def dump_labels(specs: dict[str, LabelSpec], path: str | Path) -> None:
    """Write a labels.yaml file."""
    Path(path).write_text(yaml.safe_dump(labels_to_dict(specs), sort_keys=False), encoding="utf-8")
