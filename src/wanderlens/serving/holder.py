"""Holds the model the service answers with and swaps it when the registry alias moves, without failing a request.

A watcher thread polls the alias pointer file; on a change it loads the new version completely beside the old one,
then replaces one reference. Requests take that reference once at their start, so each finishes on the model it
began with and none waits or fails during the swap. A failed load keeps the old model and is counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanderlens.serving.registry import ModelRegistry

log = logging.getLogger("wanderlens.serving")


class ModelHolder:
    """The current served model for a registry reference (an alias such as `production`, or a fixed version)."""

    def __init__(self, registry: ModelRegistry, ref: str, loader: Callable[[Path], Any],
                 on_swap: Callable[[Any], None] | None = None, on_failure: Callable[[Exception], None] | None = None,
                 ) -> None:
        self.registry = registry
        self.ref = ref
        self.loader = loader
        self.on_swap = on_swap
        self.on_failure = on_failure
        self.current: Any | None = None
        self.last_error: str | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> int | None:
        return getattr(self.current, "version", None)

    def refresh(self) -> bool:
        """Load and swap in the version the reference names now, if it differs; True when a swap happened."""
        with self._load_lock:
            try:
                target = self.registry.resolve(self.ref)
                if self.current is not None and target == self.version:
                    return False
                new = self.loader(self.registry.version_dir(target))
            except Exception as exc:  # noqa: BLE001 - keep serving the old model, report why
                error = f"{type(exc).__name__}: {exc}"
                if error != self.last_error:  # log each new failure once, not every poll
                    log.error("model load for %r failed: %s", self.ref, error)
                self.last_error = error
                if self.on_failure:
                    self.on_failure(exc)
                return False
            self.current = new  # one reference assignment: in-flight requests keep the model they took
            self.last_error = None
            if self.on_swap:
                self.on_swap(new)
            log.info("serving %s = version %s", self.ref, getattr(new, "version", "?"))
            return True

    def start_watching(self, interval_s: float = 0.5) -> None:
        """Poll the registry every `interval_s` seconds in a daemon thread (first load included)."""

        def loop() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="wanderlens-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
