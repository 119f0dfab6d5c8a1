"""Concurrent and interrupted jobs: the output lock, staged commits, and `wanderlens ingest` killed at several points.

The previous output must stay intact after a SIGKILL at any point, the next run must succeed (cleaning up what the
killed one left), and two jobs on one output folder must not mix: the second refuses naming the first, or waits.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wanderlens.data.ingest import ingest
from wanderlens.io import (
    OWNER_FILE,
    OutputLockedError,
    output_lock,
    read_json,
    recover_output,
    staged_output,
    write_json,
)

HOLD = """
import sys, time
from wanderlens.io import output_lock
with output_lock(sys.argv[1], job="holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(out: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_output_lock_refuses_naming_the_holder_then_waits_and_survives_a_killed_holder(tmp_path):
    out = tmp_path / "out"
    proc = _holder(out, 3.0)
    try:
        with pytest.raises(OutputLockedError) as err, output_lock(out, job="second"):
            pass
        msg = str(err.value)
        assert str(out.resolve()) in msg and f"pid {proc.pid}" in msg and "'holder' job" in msg
        t0 = time.monotonic()
        with output_lock(out, job="second", timeout=30) as held:  # waits for the holder to finish
            assert held == out.resolve() and json.loads((out / OWNER_FILE).read_text())["pid"] == os.getpid()
        assert time.monotonic() - t0 > 0.5 and proc.wait(10) == 0
    finally:
        proc.kill()
    proc = _holder(out, 60.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with output_lock(out, job="after-kill", timeout=5):  # the OS released a killed holder's lock
        pass


def test_staged_output_commits_together_and_recovery_finishes_or_discards(tmp_path):
    out = tmp_path / "out"
    with output_lock(out, job="t"), staged_output(out) as stage:
        (stage.path("table")).mkdir()
        (stage.path("table") / "part-0").write_text("v1")
        write_json({"v": 1}, stage.path("summary.json"))
    assert (out / "table" / "part-0").read_text() == "v1" and read_json(out / "summary.json") == {"v": 1}
    with pytest.raises(RuntimeError), output_lock(out, job="t"), staged_output(out) as stage:
        write_json({"v": 2}, stage.path("summary.json"))
        raise RuntimeError("job failed")
    assert read_json(out / "summary.json") == {"v": 1} and not list(out.glob(".staging-*"))
    # a kill after the journal was written, half-way through the moves: the next holder finishes the commit
    stage = out / ".staging-killed1"
    (stage / "table").mkdir(parents=True)
    (stage / "table" / "part-0").write_text("v3")
    write_json({"v": 3}, stage / "summary.json")
    (stage / "COMMIT.json").write_text(json.dumps({"parts": ["table", "summary.json"]}))
    (stage / ".old").mkdir()
    os.replace(out / "table", stage / ".old" / "table")  # killed between the two renames of `table`
    # leftovers of killed runs without a commit, and of an interrupted replace_dir swap
    (out / ".staging-killed2" / "table").mkdir(parents=True)
    (out / ".photos.tmp-1234").mkdir()
    (out / ".quarantine.old-5678").mkdir()
    with output_lock(out, job="t"):
        pass
    assert (out / "table" / "part-0").read_text() == "v3" and read_json(out / "summary.json") == {"v": 3}
    assert (out / "quarantine").is_dir()  # restored from the interrupted swap
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and "lock" not in p.name) == []
    assert recover_output(out) == []


# --- the real job in a subprocess ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> tuple[Path, Path]:
    """Manifest A (the sample, 40 photos) and B (its first 25 rows): two distinguishable outputs."""
    from wanderlens.data.sample import generate_sample

    root = tmp_path_factory.mktemp("kill")
    generate_sample(root, photos=40, users=4, seed=3)
    with open(root / "manifest.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    with open(root / "manifest_b.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows[:26])
    return root / "manifest.csv", root / "manifest_b.csv"


def _state(spark, out: Path) -> tuple:
    """What a reader sees: the summary's counts and the two tables' row ids (must always agree)."""
    summary = read_json(out / "summary.json")
    photos = sorted(r[0] for r in spark.read.parquet(str(out / "photos")).select("photo_id").collect())
    quarantine = spark.read.parquet(str(out / "quarantine")).count()
    assert len(photos) == summary["rows_kept"] and quarantine == summary["rows_quarantined"]
    return summary["manifest"], summary["rows_in"], summary["rows_kept"], tuple(photos), quarantine


def _start_cli(manifest: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "wanderlens.cli.main", "ingest", "--manifest", str(manifest), "--out", str(out),
           "--master", "local[1]"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYSPARK_PYTHON": sys.executable})


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 180.0) -> None:
    t0 = time.monotonic()
    while not condition():
        assert proc.poll() is None, f"the job ended before the kill point: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout, "kill point never reached"
        time.sleep(0.01)


@pytest.mark.slow
def test_killed_ingest_leaves_the_previous_output_and_the_next_run_succeeds(spark, manifests, tmp_path):
    manifest_a, manifest_b = manifests
    out = tmp_path / "out"
    ingest(spark, manifest_a, out)
    before = _state(spark, out)
    points = {
        "after 1 s": lambda t0: time.monotonic() - t0 > 1.0,
        "staging folder appears": lambda t0: bool(list(out.glob(".staging-*"))),
        "photos table staged": lambda t0: bool(list(out.glob(".staging-*/photos"))),
    }
    for name, reached in points.items():
        proc, t0 = _start_cli(manifest_b, out), time.monotonic()
        _wait_for(proc, lambda reached=reached, t0=t0: reached(t0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert _state(spark, out) == before, f"killed at '{name}': the previous output changed"
    summary = ingest(spark, manifest_b, out)  # the next run: cleans the leftovers, then succeeds
    assert not [p.name for p in out.iterdir() if p.name.startswith((".staging-", ".photos.", ".quarantine."))]
    after = _state(spark, out)
    assert after[:3] == (str(manifest_b), 25, summary["rows_kept"]) and after != before


@pytest.mark.slow
def test_two_ingests_into_one_folder_refuse_or_wait_and_never_mix(spark, manifests, tmp_path):
    manifest_a, manifest_b = manifests
    single = tmp_path / "single"
    ingest(spark, manifest_a, single)
    expected = _state(spark, single)
    out = tmp_path / "out"
    proc = _start_cli(manifest_b, out)
    try:
        _wait_for(proc, lambda: (out / OWNER_FILE).is_file())
        with pytest.raises(OutputLockedError) as err:
            ingest(spark, manifest_a, out)
        assert str(out.resolve()) in str(err.value) and f"pid {proc.pid}" in str(err.value)
        ingest(spark, manifest_a, out, lock_timeout=300)  # waits for the other job, then writes its own output
        assert proc.wait(60) == 0, proc.communicate()
    finally:
        proc.kill()
    assert _state(spark, out)[1:] == expected[1:]
    assert read_json(out / "summary.json")["manifest"] == str(manifest_a)
