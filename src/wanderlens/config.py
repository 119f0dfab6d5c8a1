"""One configuration file (YAML or TOML) names the data, the tasks and the model; CLI flags override it.

`load_config` reads the file into a plain dict; `apply_overrides` sets dotted keys (`model.epochs=5`) on it.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import yaml

from wanderlens.errors import ConfigError


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config file; None gives an empty config."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (pass an existing .yaml or .toml file with --config)")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        else:
            raise ConfigError(f"config file {p}: unknown extension {p.suffix!r}; use .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of `config` with `key.sub=value` overrides applied (values parsed as YAML scalars)."""
    out = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return out
