"""Model registry: immutable versions with metadata, atomic alias switch (even when killed mid-switch), rollback,
and the `wanderlens models` commands. Uses small real folders as the artifacts: the registry only copies them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wanderlens.errors import WanderlensError
from wanderlens.serving.registry import ModelRegistry, data_snapshot_hash


def _fake_training_output(root: Path, seed: int) -> tuple[Path, Path]:
    """A features_out-like folder (feature_pipeline, features table, labels.json) and a model folder."""
    fo = root / f"features_out{seed}"
    (fo / "feature_pipeline" / "metadata").mkdir(parents=True)
    (fo / "feature_pipeline" / "metadata" / "part-00000").write_text(json.dumps({"class": "PipelineModel"}))
    (fo / "features").mkdir()
    (fo / "features" / f"part-{seed:05d}-abc.parquet").write_bytes(b"PAR1" + bytes([seed]) * 100)
    (fo / "features" / "_SUCCESS").write_text("")
    (fo / "labels.json").write_text(json.dumps({"scene": {"type": "multiclass", "classes": ["a", "b"]}}))
    model = root / f"model{seed}"
    (model / "metadata").mkdir(parents=True)
    (model / "metadata" / "part-00000").write_text(json.dumps({"class": "MultiTaskModel", "seed": seed}))
    (model / "metrics.json").write_text(json.dumps({"scene_accuracy": 0.5 + seed / 100}))
    return fo / "feature_pipeline", model


@pytest.fixture()
def registry_with_two(tmp_path) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "registry")
    for seed in (1, 2):
        fp, model = _fake_training_output(tmp_path, seed)
        reg.register(fp, model, metadata={"note": f"seed {seed}"})
    return reg


def test_register_makes_immutable_numbered_versions_with_metadata(registry_with_two, tmp_path):
    reg = registry_with_two
    assert reg.versions() == [1, 2]
    meta = reg.metadata(2)
    assert meta["version"] == 2 and meta["note"] == "seed 2"
    assert meta["metrics"] == {"scene_accuracy": 0.52}
    assert meta["package_version"] == "0.1.0" and "pyspark" in meta["packages"]
    assert meta["created"].endswith("+00:00")
    # The data hash is the features table's content hash, stable across copies with other part-file names.
    assert meta["data_snapshot_hash"] == data_snapshot_hash(tmp_path / "features_out2" / "features")
    assert meta["data_snapshot_hash"] != reg.metadata(1)["data_snapshot_hash"]
    art = reg.path(2) / "artifacts"
    assert (art / "model" / "metadata" / "part-00000").is_file() and (art / "labels.json").is_file()
    # Files are read-only and covered by a checksum: tampering is detected.
    f = art / "model" / "metrics.json"
    assert not (f.stat().st_mode & 0o222)
    assert reg.verify(2)
    f.chmod(0o644)
    f.write_text("{}")
    assert not reg.verify(2)
    assert reg.verify(1)
    # Nothing half-made is left in the staging area.
    assert not any((reg.root / ".staging").iterdir())


def test_promote_rollback_and_resolve(registry_with_two):
    reg = registry_with_two
    with pytest.raises(WanderlensError, match="alias 'production' is not set"):
        reg.resolve("production")
    assert reg.promote(1) == 1
    assert reg.promote("v2") == 2
    assert reg.resolve("production") == 2 and reg.resolve("latest") == 2
    assert reg.metadata("production")["aliases"] == ["production"]
    assert reg.alias()["history"] == [1]
    assert reg.rollback() == 1
    assert reg.resolve("production") == 1
    with pytest.raises(WanderlensError, match="no earlier version"):
        reg.rollback()
    with pytest.raises(WanderlensError, match="version 9 is not in registry"):
        reg.promote(9)
    with pytest.raises(WanderlensError, match="not valid"):
        reg.promote(1, alias="../etc")
    with pytest.raises(WanderlensError, match="feature pipeline folder not found"):
        reg.register(reg.root / "nope", reg.root / "nope2")


_FLIPPER = """
import sys
from wanderlens.serving.registry import ModelRegistry
reg = ModelRegistry(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    reg.promote(1 + i % 2)
    i += 1
"""


def test_alias_switch_killed_midway_leaves_old_or_new(registry_with_two):
    """SIGKILL a process that promotes in a tight loop, many times: the alias is always a whole pointer to v1/v2."""
    reg = registry_with_two
    reg.promote(1)
    seen = set()
    for i in range(12):
        proc = subprocess.Popen([sys.executable, "-c", _FLIPPER, str(reg.root)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.013 * i)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        pointer = json.loads(reg.alias_file("production").read_text())  # always parses: old or new file
        assert pointer["version"] in (1, 2)
        seen.add(pointer["version"])
        assert reg.resolve("production") == pointer["version"]
    assert seen == {1, 2}  # the kills did land at different points of the loop
    # Leftover temp files from a kill never shadow the alias.
    assert sorted(p.name for p in reg.aliases_dir.glob("*.json")) == ["production.json"]


def test_parallel_registers_get_distinct_versions(tmp_path):
    fp, model = _fake_training_output(tmp_path, 3)
    code = ("import sys; from wanderlens.serving.registry import ModelRegistry; "
            "print(ModelRegistry(sys.argv[1]).register(sys.argv[2], sys.argv[3]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "reg"), str(fp), str(model)],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    got = sorted(int(p.communicate()[0]) for p in procs)
    assert got == [1, 2, 3]
    assert ModelRegistry(tmp_path / "reg").versions() == [1, 2, 3]


def test_models_cli(registry_with_two, tmp_path):
    from wanderlens.cli.main import app

    runner = CliRunner()
    root = str(registry_with_two.root)
    env = {"COLUMNS": "200"}
    r = runner.invoke(app, ["models", "promote", "1", "--registry", root], env=env)
    assert r.exit_code == 0, r.output
    assert "production -> version 1" in r.output
    r = runner.invoke(app, ["models", "promote", "latest", "--registry", root], env=env)
    assert "production -> version 2" in r.output
    r = runner.invoke(app, ["models", "list", "--registry", root], env=env)
    assert r.exit_code == 0 and "production" in r.output and "scene_accuracy=0.520" in r.output
    r = runner.invoke(app, ["models", "show", "production", "--registry", root], env=env)
    shown = json.loads(r.output)
    assert shown["version"] == 2 and shown["files_intact"] is True
    r = runner.invoke(app, ["models", "rollback", "--registry", root], env=env)
    assert "production -> version 1" in r.output
    fp, model = _fake_training_output(tmp_path, 4)
    r = runner.invoke(app, ["models", "register", "--feature-pipeline", str(fp), "--model", str(model), "--promote",
                            "--registry", root], env=env)
    assert r.exit_code == 0, r.output
    assert "registered version 3" in r.output and registry_with_two.resolve("production") == 3
    # A user error through the real entry point: one line, exit 2.
    proc = subprocess.run([sys.executable, "-m", "wanderlens.cli.main", "models", "promote", "7", "--registry", root],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: version 7 is not in registry {root} (see 'wanderlens "
                                                "models list')"]
