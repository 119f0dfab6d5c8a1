"""Progress of the CLI commands when the output is not a terminal: plain `[command] ...` lines, never silence."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

from rich.console import Console

from wanderlens.cli.progress import CommandProgress

LINE = re.compile(r"^\[(\w+)\] (.+?) (\d+) s$")


def _plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=200), buffer


def test_plain_lines_at_each_stage_and_at_most_every_n_seconds():
    console, buffer = _plain_console()
    with CommandProgress("featurize", console, every=0.3) as progress:
        assert not progress.interactive
        progress.stage("images: computing 2000 new (0 cached)", total=2000)
        t0 = time.monotonic()
        for done in range(0, 2001, 100):  # 21 updates in ~0.4 s: only those 0.3 s apart are written
            progress.update(done)
            time.sleep(0.02)
        counting = time.monotonic() - t0
        progress.stage("text features and fusion")
        time.sleep(0.9)  # nothing changes: the heartbeat still writes a line
    lines = buffer.getvalue().splitlines()
    assert all(LINE.match(line) and line.startswith("[featurize] ") for line in lines), lines
    assert lines[0].startswith("[featurize] images: computing 2000 new (0 cached): 0/2000 (0%)")
    updates = [line for line in lines if line.startswith("[featurize] images:")]
    assert 2 <= len(updates) <= 2 + counting / 0.3, lines
    assert any(line.startswith("[featurize] text features and fusion") for line in lines)
    heartbeats = [line for line in lines if line.startswith("[featurize] text features and fusion")]
    assert len(heartbeats) >= 2, lines  # the stage change, then at least one heartbeat
    assert lines[-1].startswith("[featurize] done (text features and fusion)")


def test_counts_read_like_a_log_line():
    console, _ = _plain_console()
    progress = CommandProgress("featurize", console, total=2000, every=60)
    progress.update(1200, description="images")
    assert re.fullmatch(r"\[featurize\] images: 1200/2000 \(60%\) \d+ s", progress.text())


def test_featurize_in_a_pipe_prints_progress_lines(featurized_dir, ingested_dir, tmp_path):
    # A real `wanderlens featurize` process with stdout and stderr to pipes (as in a log file); the embeddings come
    # from the session's cache so the run is short. Progress goes to stderr, so --json keeps stdout parseable.
    env = dict(os.environ, WANDERLENS_PROGRESS_SECONDS="2", PYTHONWARNINGS="ignore", PYSPARK_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, "-m", "wanderlens.cli.main", "featurize", "--photos", str(ingested_dir),
         "--out", str(tmp_path / "features"), "--cache-dir", str(featurized_dir / "cache"), "--master", "local[1]",
         "--json"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["images_computed"] == 0 and summary["rows"] > 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[featurize] ")]
    assert any("fitting text features (TF-IDF)" in line for line in lines), proc.stderr[-3000:]
    assert any(line.startswith("[featurize] images: all ") for line in lines), lines
    assert lines[-1].startswith("[featurize] done ("), lines
    assert all(LINE.match(line) for line in lines), lines
