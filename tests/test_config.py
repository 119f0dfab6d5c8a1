"""The typed configuration: unknown keys and wrong types fail naming the key and the file, `--set` overrides,
and the defaults are the estimator's Param defaults (one source)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from wanderlens.config import (
    FeaturesConfig,
    ModelConfig,
    TrainingConfig,
    WanderlensConfig,
    load_config,
    param_name,
    parse_config,
)
from wanderlens.errors import ConfigError
from wanderlens.features.featurize import features_config
from wanderlens.mtl import MultiTaskClassifier
from wanderlens.mtl.architectures import ARCHITECTURES
from wanderlens.mtl.weighting import WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "training:\n  epochs: 3\n  learning_rat: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "training.learning_rat: unknown key" in str(err.value)
    toml = write(tmp_path, "[model]\narchitecture = 'mmoe'\nexperts = 3\n", "c.toml")
    with pytest.raises(ConfigError, match=r"c\.toml.*model\.experts: unknown key"):
        load_config(toml)


def test_wrong_type_names_the_key(tmp_path):
    path = write(tmp_path, "training:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: training\.epochs: .*integer.*'many'"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"model\.architecture: .*'transformer'"):
        load_config(write(tmp_path, "model: {architecture: transformer}\n"))


def test_set_overrides(tmp_path):
    path = write(tmp_path, "training:\n  epochs: 3\n  learning_rate: 0.1\n")
    cfg = load_config(path, ["training.epochs=5", "model.expert_hidden=[8, 4]", "features.encoder=onnx:/m.onnx"])
    assert cfg.training.epochs == 5 and cfg.training.learning_rate == 0.1
    assert cfg.model.expert_hidden == [8, 4] and cfg.features.encoder == "onnx:/m.onnx"
    assert cfg.estimator_params()["maxEpochs"] == 5
    with pytest.raises(ConfigError, match=r"--set training\.epoch=5: training\.epoch: unknown key"):
        load_config(path, ["training.epoch=5"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["training.epochs"])


def test_defaults_are_the_estimator_param_defaults():
    est = MultiTaskClassifier()
    params = WanderlensConfig().estimator_params()
    assert params == {**ModelConfig().params(), **TrainingConfig().params()}
    assert {p.name for p in est.params if est.hasDefault(p)} == set(params)
    for name, value in params.items():
        assert est.getOrDefault(name) == value, name
    assert param_name("learning_rate") == "learningRate" and param_name("epochs") == "maxEpochs"
    # the names a config may choose from are the ones the trainer knows
    assert typing.get_args(TrainingConfig.model_fields["loss_weighting"].annotation) == WEIGHTINGS
    assert typing.get_args(ModelConfig.model_fields["architecture"].annotation) == ARCHITECTURES


def test_sample_config_and_features_section(tmp_path):
    cfg = load_config(ROOT / "configs" / "sample.yaml")
    assert cfg.model.dropout == 0.1 and cfg.training.monitor == "metric"
    assert features_config(None) == FeaturesConfig()
    assert features_config(cfg) is cfg.features
    assert features_config({"features": {"top_k": 3}}).top_k == 3
    with pytest.raises(ConfigError, match=r"features\.encodr: unknown key"):
        features_config({"features": {"encodr": "x"}})
    assert parse_config(cfg) is cfg


def test_train_command_reports_a_bad_config_before_starting_spark(tmp_path, capsys):
    from wanderlens.cli.main import main

    path = write(tmp_path, "training: {batch_size: 0}\n")
    with pytest.raises(SystemExit) as ex:
        main(["train", "--features", str(tmp_path), "--config", str(path), "--out", str(tmp_path / "m")])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "training.batch_size" in err


def test_docs_list_every_setting_the_model_reads():
    text = (ROOT / "docs" / "mtl.md").read_text()
    for section, cls in (("features", FeaturesConfig), ("model", ModelConfig), ("training", TrainingConfig)):
        for key in cls.model_fields:
            assert f"| `{key}` |" in text, f"docs/mtl.md does not list {section}.{key}"
