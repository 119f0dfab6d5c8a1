"""Progress of a long CLI command, on a terminal and in a log file alike.

On a terminal, `CommandProgress` draws a rich progress bar (and, given a SparkSession, a second bar with the
running Spark stages' finished / total tasks). When the output is not a terminal (a log file, a pipe, CI), a live
bar would print nothing until the end, so it writes plain lines instead:

    [featurize] images: computing 1200 new (0 cached): spark tasks 3/8 (38%) 42 s
    [train] epoch 3: scene=0.8123 attributes=0.2011: 3/30 (10%) 17 s

one at each stage change and otherwise at most every `every` seconds (default 30; the environment variable
WANDERLENS_PROGRESS_SECONDS sets it), with a heartbeat line when nothing changed, so a long step is never silent.

    with CommandProgress("featurize", console, spark=spark) as progress:
        featurize(spark, photos, out, cfg, progress=progress.stage)
"""

from __future__ import annotations

import math
import os
import threading
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

EVERY_ENV = "WANDERLENS_PROGRESS_SECONDS"
DEFAULT_EVERY = 30.0
_POLL = 0.5


def _every_from_env() -> float:
    raw = os.environ.get(EVERY_ENV, "")
    try:
        return max(float(raw), 0.0) if raw else DEFAULT_EVERY
    except ValueError:
        return DEFAULT_EVERY


class CommandProgress:
    """A command's progress: stages (`stage`), counts within a stage (`update` / `advance`), Spark task counts.

    `interactive` (default: whether `console` is a terminal) picks the rich bar or the plain lines.
    """

    def __init__(self, command: str, console: Console, *, total: int | None = None, spark: Any = None,
                 every: float | None = None, interactive: bool | None = None, log_stages: bool = True) -> None:
        self.command = command
        self.console = console
        self.interactive = console.is_terminal if interactive is None else interactive
        self.every = _every_from_env() if every is None else every
        self.log_stages = log_stages
        self._tracker = spark.sparkContext.statusTracker() if spark is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Progress | None = None
        self._step: TaskID | None = None
        self._spark_step: TaskID | None = None
        self._description = "starting"
        self._completed = 0
        self._total = total
        self._tasks: tuple[int, int] = (0, 0)
        self._t0 = time.monotonic()
        self._last_line = -math.inf

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> CommandProgress:
        self._t0 = time.monotonic()
        if self.interactive:
            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._step = self._bar.add_task(f"{self.command}: {self._description}", total=self._total)
            if self._tracker is not None:
                self._spark_step = self._bar.add_task("spark tasks", total=None)
        if self._tracker is not None or not self.interactive:
            self._thread = threading.Thread(target=self._watch, name=f"{self.command}-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._bar is not None:
            self._bar.stop()
        elif exc_type is None:
            self._line(f"done ({self._description})")

    # --- what commands call ----------------------------------------------------------------------------------------
    def stage(self, message: str, total: int | None = None, completed: int = 0) -> None:
        """A new step: its description (and how many units it has and has done, if known); always shown."""
        with self._lock:
            self._description, self._completed, self._total = message, completed, total
        if self._bar is not None:
            self._bar.update(self._step, description=f"{self.command}: {message}", completed=completed, total=total)
            if self.log_stages:
                self._bar.console.print(f"[dim]-[/] {message}")
        else:
            self._line()

    def update(self, completed: int, total: int | None = None, description: str | None = None) -> None:
        """Units done in the current step (and its total / detail); plain lines at most every `every` seconds."""
        with self._lock:
            self._completed = completed
            self._total = total if total is not None else self._total
            self._description = description if description is not None else self._description
        if self._bar is not None:
            self._bar.update(self._step, completed=completed, total=self._total,
                             description=f"{self.command}: {self._description}")
        elif time.monotonic() - self._last_line >= self.every:
            self._line()

    def advance(self, units: int = 1) -> None:
        """One (or `units`) more unit done in the current step."""
        self.update(self._completed + units)

    def print(self, *objects: Any) -> None:
        """Print through the progress display (above a live bar on a terminal)."""
        (self._bar.console if self._bar is not None else self.console).print(*objects)

    # --- internals -------------------------------------------------------------------------------------------------
    def _poll_spark(self) -> None:
        """Finished / total tasks of the running Spark stages; a failure here must never break the job."""
        if self._tracker is None:
            return
        from py4j.protocol import Py4JError

        try:
            done = total = 0
            for sid in self._tracker.getActiveStageIds():
                info = self._tracker.getStageInfo(sid)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
        except (Py4JError, OSError):  # progress display only: the Spark gateway may be shutting down
            return
        self._tasks = (done, total)
        if self._bar is not None and self._spark_step is not None:
            self._bar.update(self._spark_step, completed=done, total=total or None)

    def _watch(self) -> None:
        while not self._stop.wait(_POLL):
            self._poll_spark()
            if self._bar is None and time.monotonic() - self._last_line >= self.every:
                self._line()

    def text(self, description: str | None = None) -> str:
        """The plain progress line: `[command] step: done/total (pct%) · spark tasks d/t (pct%) elapsed s`."""
        with self._lock:
            desc, done, total = description or self._description, self._completed, self._total
        parts = [f"[{self.command}] {desc}"]
        if total:
            parts.append(f"{done}/{total} ({100 * done / total:.0f}%)")
        elif done:
            parts.append(str(done))
        tasks_done, tasks_total = self._tasks
        if tasks_total:
            parts.append(f"spark tasks {tasks_done}/{tasks_total} ({100 * tasks_done / tasks_total:.0f}%)")
        return ": ".join(parts) + f" {time.monotonic() - self._t0:.0f} s"

    def _line(self, description: str | None = None) -> None:
        line = self.text(description)
        with self._lock:
            self._last_line = time.monotonic()
            print(line, file=self.console.file, flush=True)
