"""Command-line flags as config overrides: a flag left out (None) means the config's value.

A command's own flags (`--encoder`, `--seeds`, ...) are shortcuts for `--set section.key=value`; turning them into
the same override strings keeps one path (`load_config(path, overrides)`) and one error message for every setting.
"""

from __future__ import annotations

import json


def flag_overrides(section: str, flags: dict[str, object]) -> list[str]:
    """`section.key=value` overrides for the flags that were given (not None); values JSON-encoded (valid YAML)."""
    return [f"{section}.{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
