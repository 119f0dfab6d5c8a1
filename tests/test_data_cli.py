"""The data commands through the real CLI entry point: outputs, summary, and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from wanderlens.cli.main import main

PROGRESS_LINE = re.compile(r"^\[[\w-]+\] .* \d+ s$")


def _run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _one_error_line(err: str) -> str:
    """The error, one line starting `error: `; progress lines (`[ingest] ...`, written when stderr is not a
    terminal) may come before it."""
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_sample_then_ingest_print_the_summary(spark, tmp_path, capsys):
    code, _, err = _run(["sample", "--out", str(tmp_path / "s"), "--photos", "70", "--users", "3", "--seed", "5"],
                        capsys)
    assert code == 0 and (tmp_path / "s" / "manifest.csv").is_file()
    assert "70 rows (6 deliberately broken)" in err
    assert "[sample] rendering photos: 0/70 (0%)" in err  # stderr is not a terminal here: plain progress lines
    code, out, _ = _run(["ingest", "--manifest", str(tmp_path / "s" / "manifest.csv"), "--out", str(tmp_path / "i")],
                        capsys)
    assert code == 0
    assert "in" in out and "70" in out and "64" in out and "empty_file" in out
    assert (tmp_path / "i" / "summary.json").is_file()


def test_user_errors_are_one_line_and_non_zero(spark, tmp_path, capsys):
    code, _, err = _run(["ingest", "--manifest", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")], capsys)
    assert code != 0 and "manifest not found" in _one_error_line(err)
    manifest = tmp_path / "m.csv"
    manifest.write_text("photo_id,image\np1,a.jpg\n", encoding="utf-8")
    code, _, err = _run(["ingest", "--manifest", str(manifest), "--out", str(tmp_path / "o")], capsys)
    assert code != 0 and "missing required column(s) user_id" in _one_error_line(err)
    code, _, err = _run(["sample", "--out", str(tmp_path / "x"), "--photos", "many"], capsys)
    assert code != 0 and "--photos" in _one_error_line(err)
    code, _, err = _run(["import-folder", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "x")], capsys)
    assert code != 0 and "image folder not found" in _one_error_line(err)


def test_bad_flag_in_a_fresh_process():
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "wanderlens.cli.main", "ingest", "--no-such-flag"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "no-such-flag" in _one_error_line(proc.stderr)
