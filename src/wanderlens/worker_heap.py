"""What a Python process loads once and keeps (encoders, models, boosters), and keeping Spark's collection cheap.

Spark's daemon (`pyspark/daemon.py`) runs a full `gc.collect()` in a reused Python worker after every task, before
the worker takes the next one. Once torch and a model are loaded, that collection walks about 500,000 objects: 0.23 s
a task on a 2-core machine, as much as a whole small job. Objects that live as long as the worker (the libraries, the
encoders, the models) are therefore moved to the collector's permanent generation once they are loaded, and the
collection between tasks walks only what the tasks themselves create.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Hashable, MutableMapping
from typing import TypeVar

from wanderlens.threads import in_spark_worker

T = TypeVar("T")
# Re-entrant, so a build may itself load something through `load_once` without deadlocking (none does today).
_LOCK = threading.RLock()


def load_once(cache: MutableMapping[Hashable, T], key: Hashable, build: Callable[[], T]) -> T:
    """`cache[key]`, built by `build()` the first time this process asks for it, then kept.

    Concurrent callers (the REST service's threads) build it once. A new entry is followed by
    `freeze_loaded_objects`, so in a Spark worker it costs nothing in the collections between tasks.
    """
    value = cache.get(key)
    if value is None:
        with _LOCK:
            value = cache.get(key)
            if value is None:
                value = cache[key] = build()
                freeze_loaded_objects()
    return value


def freeze_loaded_objects() -> bool:
    """In a Spark Python worker, exempt every object alive now from later collections; True when it did.

    Call it right after loading something that stays for the worker's life. What the loading left behind is
    collected first, so no garbage is kept forever. Outside Spark workers (a driver, the REST service, a notebook)
    it does nothing: there the process, and its collector, belong to somebody else.
    """
    if not in_spark_worker():
        return False
    gc.collect()
    gc.freeze()
    return True
