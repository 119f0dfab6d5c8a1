"""torch thread counts for Spark workers and for library calls in someone else's process.

One place decides how many intra-op threads torch uses (`default_threads`) and scopes a change to a block
(`torch_threads`), so an encoder, a trainer or the REST service never leaves the caller's process setting changed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def default_threads() -> int:
    """Threads for one encoder: `WANDERLENS_ENCODER_THREADS`, else the Spark task's CPUs, else all cores."""
    env = os.environ.get("WANDERLENS_ENCODER_THREADS")
    if env:
        return max(1, int(env))
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None:
            return max(1, int(ctx.cpus()))
    except Exception:  # noqa: BLE001 - no Spark context: a plain process
        pass
    return os.cpu_count() or 1


def in_spark_worker() -> bool:
    """True inside a Spark task's Python worker: a process Spark started for the job, whose settings are ours."""
    try:
        from pyspark import TaskContext

        return TaskContext.get() is not None
    except Exception:  # noqa: BLE001 - no usable pyspark: a plain process
        return False


class _ThreadScope:
    """Book-keeping of `torch_threads` outside Spark workers: the caller's count, restored by the last block out."""

    lock = threading.Lock()
    depth = 0
    saved = 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block.

    In a Spark Python worker it is set and left (the process is ours; reused workers then pay nothing). Anywhere else
    (the service, a notebook, a test run) the caller's count comes back when the last concurrent block ends, so a
    library call never changes the process-wide setting; concurrent blocks share the first block's count.
    """
    import torch

    if in_spark_worker():
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        yield
        return
    with _ThreadScope.lock:
        if _ThreadScope.depth == 0:
            _ThreadScope.saved = torch.get_num_threads()
            torch.set_num_threads(threads)
        _ThreadScope.depth += 1
    try:
        yield
    finally:
        with _ThreadScope.lock:
            _ThreadScope.depth -= 1
            if _ThreadScope.depth == 0:
                torch.set_num_threads(_ThreadScope.saved)
