"""`register` under concurrency and interruption: two registrations at once give two complete, distinct versions
(one waits for the registry lock), a registration SIGKILLed at several points leaves the registry readable (earlier
versions intact, the production alias untouched) and the next one succeeds. Real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wanderlens.io import OutputLockedError, output_lock
from wanderlens.serving import registry as registry_mod
from wanderlens.serving.registry import ModelRegistry, tree_checksum

# A child that registers one model and prints the version; "ready" once imports are done, so kill delays count
# from the start of the registration itself.
_REGISTER = """
import json, sys, time
from wanderlens.serving.registry import ModelRegistry
reg = ModelRegistry(sys.argv[1])
print("ready", flush=True)
t0 = time.time()
v = reg.register(sys.argv[2], sys.argv[3])
print(json.dumps({"version": v, "start": t0, "end": time.time()}), flush=True)
"""


def _training_output(root: Path, seed: int, files: int = 8, size: int = 1024) -> tuple[Path, Path]:
    """A feature-pipeline folder and a model folder whose bytes depend on `seed` (`files` files of `size` bytes)."""
    fp = root / f"out{seed}" / "feature_pipeline"
    (fp / "metadata").mkdir(parents=True)
    (fp / "metadata" / "part-00000").write_text(json.dumps({"class": "PipelineModel", "seed": seed}))
    model = root / f"out{seed}" / "model"
    (model / "data").mkdir(parents=True)
    (model / "metadata").mkdir()
    (model / "metadata" / "part-00000").write_text(json.dumps({"class": "MultiTaskModel", "seed": seed}))
    rng = __import__("random").Random(seed)
    for i in range(files):
        (model / "data" / f"part-{i:05d}.bin").write_bytes(rng.randbytes(size))
    return fp, model


def _start(reg_root: Path, fp: Path, model: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _REGISTER, str(reg_root), str(fp), str(model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _assert_intact(reg: ModelRegistry, sources: dict[int, Path]) -> None:
    """Every listed version is complete, matches its checksum and is a copy of exactly one source model."""
    for v in reg.versions():
        assert reg.verify(v), f"version {v} does not match its checksum"
        copied = tree_checksum(reg.path(v) / "artifacts" / "model")
        assert copied == tree_checksum(sources[v]), f"version {v} is not a whole copy of its model"


def test_two_registers_at_once_give_two_complete_distinct_versions(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    fp_a, model_a = _training_output(tmp_path, 1, files=200, size=64 * 1024)
    fp_b, model_b = _training_output(tmp_path, 2, files=200, size=64 * 1024)
    procs = [_start(reg.root, fp_a, model_a), _start(reg.root, fp_b, model_b)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["version"] for o in outs) == [1, 2]
    # They did run at the same time (the second started before the first had finished).
    assert max(o["start"] for o in outs) < min(o["end"] for o in outs)
    sources = {outs[0]["version"]: model_a, outs[1]["version"]: model_b}
    _assert_intact(reg, sources)
    assert not any((reg.root / ".staging").iterdir())


def test_register_waits_for_the_lock_then_refuses_with_a_clear_message(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path / "registry")
    fp, model = _training_output(tmp_path, 1)
    monkeypatch.setattr(registry_mod, "LOCK_TIMEOUT_S", 0.5)
    with output_lock(reg.root, job="test holder", timeout=0, recover=False):
        t0 = time.monotonic()
        with pytest.raises(OutputLockedError) as err:
            reg.register(fp, model)
        assert time.monotonic() - t0 >= 0.4
    assert "in use by another wanderlens 'test holder' job" in str(err.value)
    assert str(reg.root) in str(err.value)
    assert reg.versions() == []
    assert reg.register(fp, model) == 1  # free again


def test_register_killed_at_several_points_leaves_the_registry_readable(tmp_path):
    reg = ModelRegistry(tmp_path / "registry")
    fp1, model1 = _training_output(tmp_path, 1)
    assert reg.register(fp1, model1) == 1
    reg.promote(1)
    alias_before = reg.alias_file("production").read_bytes()
    fp, model = _training_output(tmp_path, 9, files=300, size=64 * 1024)
    sources = {1: model1}
    mid_registration = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2, 2.0):
        proc = _start(reg.root, fp, model)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        staging = reg.root / ".staging"
        if staging.is_dir() and any(staging.iterdir()):
            mid_registration += 1
        # Readable: the earlier versions and the alias are as they were; a version is listed only when whole.
        for v in reg.versions():
            sources.setdefault(v, model)
        _assert_intact(reg, sources)
        assert reg.resolve("production") == 1
        assert reg.alias_file("production").read_bytes() == alias_before
        assert sorted(os.listdir(reg.versions_dir)) == [f"v{v:04d}" for v in reg.versions()]
    assert mid_registration >= 2, "no kill landed while a version was being copied"
    # The lock died with the killed processes: the next registration neither waits nor fails, and cleans up.
    t0 = time.monotonic()
    version = reg.register(fp, model)
    assert time.monotonic() - t0 < 60
    assert version == reg.versions()[-1] and version >= 2
    sources[version] = model
    _assert_intact(reg, sources)
    assert not any((reg.root / ".staging").iterdir())
    assert reg.promote(version) == version and reg.rollback() == 1
