"""One typed configuration: every setting of every job has one name, one type and one default, here.

A wanderlens config file (YAML or TOML) has sections: `tasks` (optional list), `features`, `model`, `training`,
`evaluation`, `travel`, `serving`. Each section is a pydantic model below; unknown keys and wrong types are errors
that name the key and the file. CLI `--set section.key=value` overrides use the same names. The Spark ML stages
keep MLlib's camelCase Param names; `param_name` is the one mapping between the two
(`learning_rate` <-> `learningRate`).

    cfg = load_config("configs/sample.yaml", ["training.epochs=5"])
    cfg.training.learning_rate            # typed, validated, defaulted
    cfg.estimator_params()                # {"learningRate": 0.003, "maxEpochs": 5, ...} for MultiTaskClassifier
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wanderlens.errors import ConfigError

# Config names whose Param is not their plain camelCase (MLlib's `maxIter` style); every other setting maps by
# snake_case -> camelCase.
_PARAM_EXCEPTIONS = {"epochs": "maxEpochs"}


def param_name(key: str) -> str:
    """The Spark ML Param name of a config key: `learning_rate` -> `learningRate`, `epochs` -> `maxEpochs`."""
    if key in _PARAM_EXCEPTIONS:
        return _PARAM_EXCEPTIONS[key]
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Section(BaseModel):
    """A config section: unknown keys and wrong types are errors; assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _none_means_default(cls, data: Any) -> Any:
        """A key written with no value (`checkpoint_dir:` in YAML) takes its default."""
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data

    def params(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """This section's settings as Spark ML Params (camelCase), leaving out None values and `exclude`."""
        return {param_name(k): v for k, v in self.model_dump().items()
                if v is not None and k not in (exclude or set())}


class FeaturesConfig(Section):
    """`wanderlens featurize`: encoders and text features."""

    encoder: str = Field("efficientnet_lite0", description="image encoder: a packaged name or onnx:/path/model.onnx")
    batch_size: int = Field(64, ge=1, description="photos per image-encoder call")
    sentence_batch_size: int = Field(0, ge=0, description="sentences per MiniLM call (0: 32 per encoder thread)")
    image_size: int = Field(0, ge=0, description="encoder input size in pixels (0: the encoder's own)")
    top_k: int = Field(5, ge=0, description="ImageNet tags kept per photo")
    num_features: int = Field(4096, ge=16, description="HashingTF buckets of the TF-IDF block")
    min_doc_freq: int = Field(1, ge=0, description="IDF: terms in fewer documents are dropped")
    cache_dir: str | None = Field(None, description="embedding cache folder (default: OUT/cache)")


class ModelConfig(Section):
    """The multi-task network (MultiTaskClassifier architecture Params)."""

    features_cols: list[str] = Field(["features"], description="vector columns, concatenated in order")
    architecture: Literal["single_task", "shared_bottom", "mmoe", "ple"] = "mmoe"
    expert_hidden: list[int] = Field([64], description="widths of each expert (or of the shared bottom)")
    tower_hidden: list[int] = Field([32], description="widths of each task tower")
    num_experts: int = Field(4, ge=1, description="MMoE experts; PLE: task-specific experts per task")
    num_shared_experts: int = Field(2, ge=0, description="PLE shared experts per level")
    num_levels: int = Field(1, ge=1, description="PLE extraction levels")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout rate in experts and towers")
    layer_norm: bool = Field(False, description="LayerNorm after each hidden Linear of experts and towers")
    linear_head: bool = Field(False, description="add to each task's logits a linear map of the inputs (wide & deep)")
    standardization: bool = Field(False, description="standardise each input column with the training rows' mean and "
                                  "standard deviation (stored in the model), as MLlib LogisticRegression does")
    categorical_cols: list[str] = Field([], description="categorical columns, each a learned embedding (mtl.tabular)")
    numeric_cols: list[str] = Field([], description="numeric columns, each through a numeric feature embedding")
    embedding_dim: int = Field(8, ge=1, description="width of each categorical / numeric embedding")
    numeric_embedding: Literal["none", "piecewise", "periodic"] = Field(
        "piecewise", description="numeric columns: standardised value, piecewise-linear on quantile bins, or periodic")
    numeric_bins: int = Field(16, ge=1, description="quantile bins (piecewise) or frequencies (periodic) per column")
    periodic_sigma: float = Field(0.1, gt=0.0, description="initial spread of the periodic embedding's frequencies")


class TrainingConfig(Section):
    """How the network is trained (MultiTaskClassifier training Params)."""

    loss_weighting: Literal["equal", "uncertainty", "gradnorm", "dwa", "pcgrad", "cagrad"] = "equal"
    cagrad_c: float = Field(0.5, ge=0.0, description="CAGrad conflict-averse radius c")
    gradnorm_alpha: float = Field(1.5, description="GradNorm asymmetry alpha")
    dwa_temperature: float = Field(2.0, gt=0.0, description="DWA temperature")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    epochs: int = Field(10, ge=1, description="maximum passes over the training rows")
    batch_size: int = Field(256, ge=1, description="rows per optimisation step (per process)")
    validation_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="rows held out for early stopping")
    validation_indicator_col: str = Field("", description="boolean column marking validation rows (overrides "
                                          "validation_fraction; empty: unused)")
    patience: int = Field(0, ge=0, description="epochs without improvement before stopping (0: never)")
    monitor: str = Field("loss", description="'loss', 'metric' (mean task metric) or a task name")
    class_weights: Literal["none", "balanced"] = "none"
    seed: int = 0
    num_processes: int = Field(1, ge=1, description="1: in-process; more: TorchDistributor (DDP over gloo)")
    checkpoint_dir: str = Field("", description="folder that makes the fit resumable (empty: none)")
    lr_schedule: Literal["constant", "cosine", "onecycle"] = Field(
        "constant", description="per-step learning-rate schedule (after warm-up)")
    warmup_epochs: float = Field(0.0, ge=0.0, description="linear learning-rate warm-up, in epochs")
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5, description="label smoothing of classification targets")
    modality_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="chance that a modality block of a training row "
                                    "is blanked (with its presence flag); needs modality_blocks")
    modality_blocks: list[list[int]] = Field([], description="input blocks as [start, stop, presence index or -1] "
                                             "column slices of the concatenated features (empty: none known)")
    per_task_selection: bool = Field(True, description="each task keeps the weights of its own best validation "
                                     "epoch (needs validation rows)")
    calibration: bool = Field(True, description="temperature scaling of binary/multiclass probabilities, fitted on "
                              "the validation rows")
    thresholds: Literal["none", "global", "per_label"] = Field(
        "global", description="decision thresholds learned on validation: binary tasks per task; multilabel tasks "
        "one micro-F1 threshold (global) or one per label")
    num_models: int = Field(1, ge=1, description="seed ensemble: average the probabilities of this many networks")
    linear_warm_start: bool = Field(False, description="fit the linear head alone first (L-BFGS, as MLlib "
                                    "LogisticRegression), freeze it, and train the network on what it misses; needs "
                                    "model.linear_head")
    linear_l2: float = Field(0.01, ge=0.0, description="L2 penalty of the linear warm start (MLlib's regParam)")


class SplitConfig(Section):
    """How `wanderlens evaluate` splits rows into train / validation / test."""

    by: str = Field("photo", description="photo | user | trip, or any column: rows sharing it stay together")
    seed: int = 0
    fractions: list[float] = Field([0.7, 0.15, 0.15], min_length=3, max_length=3)
    column: str | None = Field(None, description="an existing train / validation / test column of the data (an "
                               "official split; val, valid, dev mean validation), used instead of by/seed/fractions")


class ModalityConfig(Section):
    """The feature columns and presence flags of one modality (for the single-modality variants)."""

    columns: list[str]
    presence: list[str] = []


class LogisticConfig(Section):
    """The MLlib LogisticRegression baseline."""

    reg_param: float = Field(0.01, ge=0.0)
    elastic_net: float = Field(0.0, ge=0.0, le=1.0)
    max_iter: int = Field(100, ge=1)


class XGBoostConfig(Section):
    """The gradient-boosted trees baseline (`xgboost.spark.SparkXGBClassifier`, one model per task or label)."""

    max_depth: int = Field(5, ge=1)
    n_estimators: int = Field(150, ge=1, description="boosting rounds")
    learning_rate: float = Field(0.1, gt=0.0)
    min_child_weight: float = Field(1.0, ge=0.0)
    subsample: float = Field(0.8, gt=0.0, le=1.0, description="rows sampled per tree")
    colsample_bytree: float = Field(0.5, gt=0.0, le=1.0, description="features sampled per tree")
    reg_lambda: float = Field(1.0, ge=0.0, description="L2 regularisation of leaf weights")
    tree_method: Literal["hist", "approx", "exact"] = "hist"
    sparse: bool = Field(True, description="pass vectors as sparse matrices (zeros are 'missing', learned per "
                         "split): much faster on the mostly-zero TF-IDF block")
    num_workers: int = Field(1, ge=1, description="Spark tasks (xgboost workers) per fit; at most the cluster's cores")


def _default_modalities() -> dict[str, ModalityConfig]:
    return {"image": ModalityConfig(columns=["image_embedding"], presence=["has_image"]),
            "text": ModalityConfig(columns=["text_tfidf", "sentence_embedding"], presence=["has_text"])}


class EvaluationConfig(Section):
    """`wanderlens evaluate`: the split, the seeds and the comparisons of the report."""

    split: SplitConfig = SplitConfig()
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    compare: list[Literal["single_task", "modality", "logistic", "xgboost"]] = ["single_task", "modality", "logistic"]
    features_col: str = "features"
    modalities: dict[str, ModalityConfig] = Field(default_factory=_default_modalities)
    logistic: LogisticConfig = LogisticConfig()
    xgboost: XGBoostConfig = XGBoostConfig()
    gallery: int = Field(24, ge=0, description="photos shown in the report's gallery")
    photos_dir: str | None = None


class DescriptionConfig(Section):
    """How sure the model must be before a description states, hedges or mentions a claim."""

    fact_threshold: float = Field(0.8, ge=0.0, le=1.0, description="stated as fact at or above")
    likely_threshold: float = Field(0.5, ge=0.0, le=1.0, description="'likely' at or above")
    possible_threshold: float = Field(0.3, ge=0.0, le=1.0, description="'perhaps' at or above")


class NoveltyConfig(Section):
    """When a photo is too unlike the training photos for the trained tasks' claims (travel.novelty)."""

    enabled: bool = Field(True, description="score every photo's distance to the training photos")
    features_col: str = Field("image_embedding", description="vector compared with the training photos'")
    k: int = Field(5, ge=1, description="nearest training photos averaged into the score")
    percentile: float = Field(99.0, gt=0.0, le=100.0, description="threshold: this percentile of held-out "
                              "training photos' scores; above it the trained tasks' claims are withheld")
    held_out_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="training photos held out to calibrate")
    max_reference: int = Field(5000, ge=10, description="most training photos kept as reference (sampled)")


class TravelConfig(Section):
    """`wanderlens travel`: descriptions, trips, suggestions and the search space."""

    description: DescriptionConfig = DescriptionConfig()
    captions_per_photo: int = Field(2, ge=0)
    max_gap_hours: float = Field(36.0, gt=0.0, description="a longer gap between photos starts a new trip")
    max_distance_km: float = Field(400.0, gt=0.0, description="a longer jump between photos starts a new trip")
    suggestions_per_user: int = Field(10, ge=1)
    # The recommender: "auto" keeps the learned ranker only when it beats every single signal on
    # validation; the rest are the settings measured best by bench_travel.
    recommender_method: str = Field("auto", description="'auto', 'ranker' or one signal name (travel.signals)")
    halflife_days: float = Field(365.0, gt=0.0, description="popularity: a visit's weight halves every this many days")
    ranker_trees: int = Field(100, ge=1, description="boosted trees of the learned ranker")
    ranker_depth: int = Field(4, ge=1, description="depth of each tree of the learned ranker")
    ranker_queries: int = Field(3, ge=1, description="validation queries per user the learned ranker trains on: "
                                "their last training trips, each hidden in turn with the trips before it as history")
    projection_epochs: int = Field(150, ge=0)
    caption_weight: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0
    novelty: NoveltyConfig = NoveltyConfig()
    place_names: bool = Field(True, description="name places (city, region, country) from coordinates when the "
                              "photos carry no place columns (offline gazetteer, wanderlens.data.places)")


class ServingConfig(Section):
    """`wanderlens serve`: where the REST service listens, its input limits and its request concurrency."""

    host: str = Field("127.0.0.1", description="interface to bind (loopback only unless set)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port")
    max_upload_mb: float = Field(10.0, gt=0.0, description="largest request body in MB (413 above)")
    max_pixels: int = Field(40_000_000, ge=1, description="largest image in pixels (413 above)")
    request_timeout_s: float = Field(10.0, gt=0.0, description="per-request time limit in seconds (504 above)")
    poll_interval_s: float = Field(0.5, gt=0.0, description="how often the registry alias is checked for a move")
    inference_workers: int = Field(2, ge=1, description="batches of requests computed at once (one per core is best)")
    encoder_threads: int = Field(1, ge=1, description="threads per batch inside the ONNX/torch encoders")
    batch_max_size: int = Field(16, ge=1, description="most describe requests (or search queries) run as one batch "
                                                      "(1 = one at a time)")
    batch_max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0, description="how long a batch waits for more requests "
                                                                         "while the server is busy (never when idle)")
    decode_threads: int = Field(0, ge=0, description="threads decoding uploaded photos (0 = one per core)")
    token_env: str = Field("WANDERLENS_API_TOKEN", description="environment variable holding the admin token")
    max_concurrent_uploads: int = Field(8, ge=1, description="photo uploads received at once (503 + Retry-After "
                                                             "above)")
    retry_after_s: int = Field(1, ge=1, description="Retry-After seconds sent with a 503 for too many uploads")
    log_format: Literal["text", "json"] = Field("text", description="log lines as text or one JSON object each")
    log_level: str = Field("info", description="log level of the service (access lines are INFO)")
    shutdown_timeout_s: float = Field(30.0, gt=0.0, description="on SIGTERM, how long in-flight requests may "
                                                                "finish")

    @property
    def max_bytes(self) -> int:
        """`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)


class PhotosConfig(Section):
    """`wanderlens import-photos`: reading a folder of real photos (docs/your-photos.md explains each rule)."""

    burst_seconds: float = Field(30.0, ge=0.0, description="photos of one user this close in time may form a burst")
    burst_hash_distance: int = Field(10, ge=0, le=64, description="most differing phash bits of one burst")
    inherit_hours: float = Field(3.0, ge=0.0, description="a photo without GPS inherits between neighbours this close")
    inherit_single_hours: float = Field(1.0, ge=0.0, description="... or from a lone neighbour this close")
    inherit_max_km: float = Field(30.0, gt=0.0, description="neighbours farther apart are not the same place")
    round_coordinates: int | None = Field(None, ge=0, le=8, description="decimals kept in outputs (None: all)")
    verify_pixels: bool = Field(False, description="decode every photo to find corrupt data (slower)")


_TUNABLE = {"model", "training"}
# Settings a trial cannot change: they decide the shards and the input encoding, which are written once per search.
_FIXED_IN_SEARCH = {"features_cols", "categorical_cols", "numeric_cols", "numeric_bins", "num_processes",
                    "checkpoint_dir", "validation_fraction", "validation_indicator_col"}


class TuningConfig(Section):
    """`wanderlens tune`: a hyperparameter search (optuna TPE; trials run as Spark tasks on the executors).

    `space` maps `section.key` (of `model` or `training`) to a list of choices, or to `{low, high, log, step}`
    (a float range; an int range when low and high are ints).
    """

    trials: int = Field(20, ge=1, description="trials in all")
    parallelism: int = Field(2, ge=1, description="trials asked at once and run side by side as Spark tasks")
    space: dict[str, Any] = Field(default_factory=dict, description="search space: section.key -> choices | range")
    metric: str = Field("mean", description="'mean' (mean main validation metric over tasks) or a task name")
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="validation rows when `training` holds "
                                       "none out")
    seed: int = Field(0, description="sampler seed")

    @model_validator(mode="after")
    def _check_space(self) -> TuningConfig:
        for key, dom in self.space.items():
            section, _, name = key.partition(".")
            fields = (ModelConfig if section == "model" else TrainingConfig).model_fields
            if section not in _TUNABLE or name not in fields:
                raise ValueError(f"space key {key!r}: use model.<key> or training.<key> of an existing setting")
            if name in _FIXED_IN_SEARCH:
                raise ValueError(f"space key {key!r}: fixed for a whole search (set it in its section)")
            if isinstance(dom, dict):
                if set(dom) - {"low", "high", "log", "step"} or not {"low", "high"} <= set(dom):
                    raise ValueError(f"space key {key!r}: a range is {{low, high, log, step}}, got {sorted(dom)}")
                if not dom["low"] < dom["high"]:
                    raise ValueError(f"space key {key!r}: low must be below high")
            elif not isinstance(dom, list) or not dom:
                raise ValueError(f"space key {key!r}: give a non-empty list of choices or a {{low, high}} range")
        return self


class WanderlensConfig(Section):
    """A whole wanderlens config file."""

    tasks: list[dict[str, Any]] | None = None
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    travel: TravelConfig = TravelConfig()
    serving: ServingConfig = ServingConfig()
    photos: PhotosConfig = PhotosConfig()
    tuning: TuningConfig = TuningConfig()

    def estimator_params(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """MultiTaskClassifier Params (camelCase) from the `model` and `training` sections."""
        return {**self.model.params(exclude), **self.training.params(exclude)}


def _error_text(exc: ValidationError, source: str) -> str:
    """One line per bad key: `<file>: training.learning_rate: Input should be a valid number (got 'fast')`."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key (check its spelling; docs/mtl.md lists every setting)")
        else:
            lines.append(f"{source}: {key}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)


def parse_config(data: dict[str, Any] | WanderlensConfig | None, source: str = "config") -> WanderlensConfig:
    """A WanderlensConfig from a plain mapping (as read from a file); errors name the key and `source`."""
    if isinstance(data, WanderlensConfig):
        return data
    try:
        return WanderlensConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(_error_text(exc, source)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML (.yaml/.yml) or TOML (.toml) config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (pass an existing .yaml or .toml file with --config)")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        else:
            raise ConfigError(f"config file {p}: unknown extension {p.suffix!r}; use .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of the raw mapping `config` with `section.key=value` overrides set (values parsed as YAML)."""
    import copy

    out = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> WanderlensConfig:
    """Read, override and validate a config file; None gives every default. The one way jobs get settings."""
    raw = read_config_file(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    if overrides:
        source += " with --set " + " ".join(overrides)
    return parse_config(apply_overrides(raw, overrides), source)


__all__ = [
    "DescriptionConfig", "EvaluationConfig", "FeaturesConfig", "ModelConfig", "PhotosConfig", "ServingConfig",
    "TrainingConfig", "TravelConfig", "TuningConfig",
    "WanderlensConfig", "apply_overrides", "load_config", "param_name", "parse_config", "read_config_file",
]
