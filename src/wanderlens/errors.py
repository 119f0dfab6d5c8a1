"""User-facing errors: one clear message that names the thing at fault and the fix.

The CLI prints a `WanderlensError` as a single line and exits non-zero; anything else is a bug.
"""

from __future__ import annotations


class WanderlensError(Exception):
    """An error the user can cause and fix (bad path, missing column, bad config...)."""


class InputError(WanderlensError):
    """Input data is unusable as a whole (missing column, unreadable manifest, wrong types)."""


class ConfigError(WanderlensError):
    """The configuration file or a flag holds an unknown or inconsistent value."""
