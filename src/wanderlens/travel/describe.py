"""Visual descriptions: one or two sentences per photo from the model's predictions, hedged by confidence.

A claim the model is sure of (probability at or above the fact threshold) is stated plainly, a likely one gets
"probably", a possible one "perhaps", and anything below is left out: a low-confidence guess is never a fact.
`describe_predictions` is the one description path, plain Python: `task_roles(tasks)` says which task is the scene,
the attributes and the time of day, and the REST service (one photo) and `DescriptionBuilder` (a DataFrame of
predictions, also emitting the claims it made so their accuracy can be measured) both call it with those roles.
Thresholds come from `wanderlens.config.DescriptionConfig`.

A photo flagged novel (`wanderlens.travel.novelty`: unlike the photos the model was trained on) gets none of the
trained tasks' claims: its description says so and keeps what does transfer (the camera clock, the place, the
ImageNet labels of the pretrained encoder and the photo's own caption).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.config import DescriptionConfig
from wanderlens.errors import InputError
from wanderlens.travel.trips import join_words

# Attributes that say when rather than what: rendered as "at sunset" / "at night" instead of "with sunset".
TIME_ATTRIBUTES = {"sunset": "at sunset", "night": "at night", "sunrise": "at sunrise", "dusk": "at dusk"}
SCENE_PHRASES = {"city": "a city scene", "countryside": "a countryside scene", "snow": "a snowy landscape",
                 "desert": "a desert", "lake": "a lake", "forest": "a forest", "mountain": "a mountain view",
                 "beach": "a beach"}

CLAIM_TYPE = T.ArrayType(T.StructType([
    T.StructField("task", T.StringType()),
    T.StructField("label", T.StringType()),
    T.StructField("probability", T.DoubleType()),
    T.StructField("stated", T.StringType()),
]))
DESCRIPTION_TYPE = T.StructType([
    T.StructField("description", T.StringType()),
    T.StructField("claims", CLAIM_TYPE),
])


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def scene_phrase(label: str) -> str:
    """"beach" -> "a beach"; unknown labels get an article."""
    return SCENE_PHRASES.get(label, _article(label.replace("_", " ")))


def time_of_day(local_hour: float | None) -> str | None:
    """Clock time of day from a local hour (0-24), or None when unknown."""
    if local_hour is None:
        return None
    h = local_hour % 24
    if 5 <= h < 12:
        return "in the morning"
    if 12 <= h < 17:
        return "in the afternoon"
    if 17 <= h < 21:
        return "in the evening"
    return "at night"


def _imagenet_name(label: str) -> str:
    return label.split(",")[0].strip().replace("_", " ")


@dataclass(frozen=True)
class TaskRoles:
    """Which of a model's tasks says what in a description: the scene (multiclass), the attributes (multi-label)
    and the time of day (multiclass), each with its class names in the model's class order; None when absent."""

    scene: str | None = None
    scene_classes: tuple[str, ...] = ()
    attributes: str | None = None
    attribute_classes: tuple[str, ...] = ()
    time: str | None = None
    time_classes: tuple[str, ...] = ()

    @property
    def interest_labels(self) -> list[str]:
        """The labels of a photo's interest vector: scene classes, then attribute labels."""
        return list(self.scene_classes) + list(self.attribute_classes)


def _task_field(task: Any, name: str) -> Any:
    return task[name] if isinstance(task, dict) else getattr(task, name)


def task_roles(tasks: Sequence[Any]) -> TaskRoles:
    """The roles of a model's tasks (TaskSpec objects or dicts with name, type, classes).

    Time of day: the multiclass task named `time_of_day`. Scene: the multiclass task named `scene`, else the first
    other multiclass task. Attributes: the multi-label task named `attributes`, else the first multi-label task.
    The Spark batch job and the REST service both describe photos with these roles."""
    named = [(str(_task_field(t, "name")), _task_field(t, "type"), [str(c) for c in _task_field(t, "classes") or []])
             for t in tasks]
    multi = [t for t in named if t[1] == "multiclass" and t[0] != "time_of_day"]
    labels = [t for t in named if t[1] == "multilabel"]
    scene = next((t for t in multi if t[0] == "scene"), multi[0] if multi else None)
    attrs = next((t for t in labels if t[0] == "attributes"), labels[0] if labels else None)
    tod = next((t for t in named if t[1] == "multiclass" and t[0] == "time_of_day"), None)
    return TaskRoles(scene=scene[0] if scene else None, scene_classes=tuple(scene[2]) if scene else (),
                     attributes=attrs[0] if attrs else None, attribute_classes=tuple(attrs[2]) if attrs else (),
                     time=tod[0] if tod else None, time_classes=tuple(tod[2]) if tod else ())


def describe_predictions(roles: TaskRoles, probabilities: Mapping[str, Sequence[float] | None],
                         imagenet: list[tuple[str, float]] | None = None, local_hour: float | None = None,
                         place: str | None = None, captions: list[str] | None = None,
                         thresholds: DescriptionConfig | None = None, novel: bool = False,
                         caption: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(description, claims) of one photo from its per-task probabilities ({task name: probabilities in class
    order}). The one description path: `DescriptionBuilder` (Spark) and the REST service both call it.

    `novel`: the photo is unlike the training photos (`NoveltyModel`): no trained-task claim is made, and the
    description keeps what transfers (clock time, place, ImageNet labels, the photo's own `caption`)."""
    if novel:
        return withheld_description(imagenet, local_hour, place, caption), []

    def pairs(task: str | None, classes: tuple[str, ...]) -> list[tuple[str, float]] | None:
        probs = probabilities.get(task) if task is not None and classes else None
        return list(zip(classes, (float(p) for p in probs), strict=False)) if probs is not None else None

    return describe_photo(
        pairs(roles.scene, roles.scene_classes), pairs(roles.attributes, roles.attribute_classes), imagenet,
        local_hour, place, captions, thresholds=thresholds, scene_task=roles.scene or "scene",
        attribute_task=roles.attributes or "attributes",
        time_of_day_probs=pairs(roles.time, roles.time_classes), time_task=roles.time or "time_of_day")


def _claim(task: str, label: str, p: float, stated: str) -> dict[str, Any]:
    return {"task": task, "label": label, "probability": float(p), "stated": stated}


def _time_phrase(time_probs: list[tuple[str, float]] | None, task: str, th: DescriptionConfig,
                 claims: list[dict[str, Any]]) -> str | None:
    """"at sunset" / "probably at night" from a predicted time-of-day task, when at least likely."""
    if not time_probs:
        return None
    label, p = max(time_probs, key=lambda x: x[1])
    if p < th.likely_threshold:
        return None
    stated = "fact" if p >= th.fact_threshold else "hedged"
    claims.append(_claim(task, label, p, stated))
    phrase = TIME_ATTRIBUTES.get(label, "in daylight" if label == "day" else f"at {label}")
    return phrase if stated == "fact" else "probably " + phrase


def _subject(scene: list[tuple[str, float]] | None, task: str, th: DescriptionConfig,
             claims: list[dict[str, Any]]) -> str:
    """The sentence's subject: the scene stated, hedged with "probably" / "perhaps ... or ...", or "a photo"."""
    if not scene:
        return "a photo"
    ranked = sorted(scene, key=lambda x: -x[1])
    (top, p), second = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    if p >= th.fact_threshold:
        claims.append(_claim(task, top, p, "fact"))
        return scene_phrase(top)
    if p >= th.likely_threshold:
        claims.append(_claim(task, top, p, "hedged"))
        return "probably " + scene_phrase(top)
    if p >= th.possible_threshold:
        claims.append(_claim(task, top, p, "hedged"))
        alt = f" or {scene_phrase(second[0])}" if second and second[1] >= th.possible_threshold / 2 else ""
        return "perhaps " + scene_phrase(top) + alt
    return "a photo"


def _attribute_parts(attributes: list[tuple[str, float]] | None, task: str, th: DescriptionConfig,
                     time_known: bool, claims: list[dict[str, Any]]) -> tuple[list[str], list[str], str | None]:
    """(sure attributes, likely attributes, time phrase from a time-like attribute) of the likely attributes; a
    time-like attribute is skipped when the time-of-day task already said when."""
    sure, maybe, when = [], [], None
    for label, p in sorted(attributes or [], key=lambda x: -x[1]):
        if p < th.likely_threshold or (label in TIME_ATTRIBUTES and time_known):
            continue
        stated = "fact" if p >= th.fact_threshold else "hedged"
        claims.append(_claim(task, label, p, stated))
        if label in TIME_ATTRIBUTES:
            if when is None:
                when = TIME_ATTRIBUTES[label] if stated == "fact" else "probably " + TIME_ATTRIBUTES[label]
            continue
        (sure if stated == "fact" else maybe).append(label.replace("_", " "))
    return sure, maybe, when


def _second_sentence(imagenet: list[tuple[str, float]] | None, captions: list[str] | None,
                     imagenet_min: float) -> str | None:
    """What the ImageNet classifier sees and what similar photos were called, or None."""
    extra = []
    seen = [_imagenet_name(lbl) for lbl, p in (imagenet or []) if p >= imagenet_min][:2]
    if seen:
        extra.append("it looks like " + join_words([_article(s) for s in seen]))
    caps = [c.strip().rstrip(".") for c in (captions or []) if c and c.strip()][:2]
    if caps:
        quoted = " and ".join(f'"{c}"' for c in caps)
        extra.append(f"similar photo{'s were' if len(caps) > 1 else ' was'} captioned {quoted}")
    if not extra:
        return None
    s = "; ".join(extra)
    return s[:1].upper() + s[1:] + "."


def withheld_description(imagenet: list[tuple[str, float]] | None = None, local_hour: float | None = None,
                         place: str | None = None, caption: str | None = None, imagenet_min: float = 0.25) -> str:
    """The description of a photo unlike the training photos: what transfers, and that the rest is not guessed."""
    text = "A photo"
    when = time_of_day(local_hour)
    if when:
        text += " " + when
    if place:
        text += " in " + place
    text += ", unlike the photos the model was trained on, so its scene and contents are not guessed."
    extra = []
    seen = [_imagenet_name(lbl) for lbl, p in (imagenet or []) if p >= imagenet_min][:2]
    if seen:
        extra.append("it looks like " + join_words([_article(s) for s in seen]))
    own = (caption or "").strip().rstrip(".")
    if own:
        extra.append(f'its caption reads "{own}"')
    if extra:
        s = "; ".join(extra)
        text += " " + s[:1].upper() + s[1:] + "."
    return text


def describe_photo(
    scene: list[tuple[str, float]] | None = None,
    attributes: list[tuple[str, float]] | None = None,
    imagenet: list[tuple[str, float]] | None = None,
    local_hour: float | None = None,
    place: str | None = None,
    captions: list[str] | None = None,
    thresholds: DescriptionConfig | None = None,
    imagenet_min: float = 0.25,
    scene_task: str = "scene",
    attribute_task: str = "attributes",
    time_of_day_probs: list[tuple[str, float]] | None = None,
    time_task: str = "time_of_day",
) -> tuple[str, list[dict[str, Any]]]:
    """Return (description, claims) for one photo.

    `scene`: (class, probability) for every class of the multiclass task; `attributes`: (label, probability) of
    the multi-label task; `time_of_day_probs`: a predicted time-of-day task (e.g. day/sunset/night); `imagenet`: top
    ImageNet labels; `local_hour`: the camera clock; `captions`: nearest training captions; `thresholds`: when a
    claim is stated, hedged or left out (default: `DescriptionConfig()`).
    Claims are dicts (task, label, probability, stated in {"fact", "hedged"}).
    """
    th = thresholds or DescriptionConfig()
    claims: list[dict[str, Any]] = []
    when_model = _time_phrase(time_of_day_probs, time_task, th, claims)
    # Sentence one: what, when, where.
    subject = _subject(scene, scene_task, th, claims)
    sure, maybe, when_attr = _attribute_parts(attributes, attribute_task, th, when_model is not None, claims)
    text = subject
    if sure:
        text += " with " + join_words(sure)
    if maybe:
        # After a hedged subject, a second "probably" reads badly: "Probably a desert, likely with boats".
        hedge = ", probably" if sure else (", likely" if subject.startswith(("probably", "perhaps")) else " probably")
        text += hedge + " with " + join_words(maybe)
    when = when_model or when_attr or time_of_day(local_hour)
    if when:
        text += " " + when
    if place:
        text += " in " + place
    sentences = [text[:1].upper() + text[1:] + "."]
    second = _second_sentence(imagenet, captions, imagenet_min)
    if second:
        sentences.append(second)
    return " ".join(sentences), claims


class DescriptionBuilder(Transformer, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Adds `description` (one or two sentences) and `claims` (what the description asserts, and how firmly).

    Each photo goes through `describe_predictions` (the REST service's path too); `description_builder(tasks)`
    wires one to a model's task roles. Threshold defaults come from `DescriptionConfig`."""

    sceneTask = Param(Params._dummy(), "sceneTask", "multiclass task giving the scene", TypeConverters.toString)
    sceneClasses = Param(Params._dummy(), "sceneClasses", "class names of the scene task", TypeConverters.toListString)
    attributeTask = Param(Params._dummy(), "attributeTask", "multi-label task giving attributes",
                          TypeConverters.toString)
    attributeClasses = Param(Params._dummy(), "attributeClasses", "label names of the attribute task",
                             TypeConverters.toListString)
    factThreshold = Param(Params._dummy(), "factThreshold", "probability from which a claim is stated plainly",
                          TypeConverters.toFloat)
    likelyThreshold = Param(Params._dummy(), "likelyThreshold", "probability from which a claim gets 'probably'",
                            TypeConverters.toFloat)
    possibleThreshold = Param(Params._dummy(), "possibleThreshold", "probability from which a scene gets 'perhaps'",
                              TypeConverters.toFloat)
    timeTask = Param(Params._dummy(), "timeTask", "multiclass task giving the time of day (optional)",
                     TypeConverters.toString)
    timeClasses = Param(Params._dummy(), "timeClasses", "class names of the time-of-day task",
                        TypeConverters.toListString)
    placeCol = Param(Params._dummy(), "placeCol", "column with the place name (optional)", TypeConverters.toString)
    captionsCol = Param(Params._dummy(), "captionsCol", "column with nearest captions (optional)",
                        TypeConverters.toString)
    claimsCol = Param(Params._dummy(), "claimsCol", "claims column", TypeConverters.toString)
    novelCol = Param(Params._dummy(), "novelCol", "boolean column: photo unlike the training photos, its trained "
                     "claims withheld (optional)", TypeConverters.toString)
    captionCol = Param(Params._dummy(), "captionCol", "the photo's own caption, shown for novel photos (optional)",
                       TypeConverters.toString)

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        th = DescriptionConfig()
        self._setDefault(sceneTask="scene", sceneClasses=[], attributeTask="attributes", attributeClasses=[],
                         timeTask="time_of_day", timeClasses=[], factThreshold=th.fact_threshold,
                         likelyThreshold=th.likely_threshold, possibleThreshold=th.possible_threshold,
                         placeCol="place", captionsCol="nearest_captions", outputCol="description",
                         claimsCol="claims", novelCol="is_novel", captionCol="caption")
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    @keyword_only
    def setParams(self, **kwargs: Any) -> DescriptionBuilder:
        """Set any of the Params by name."""
        return self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def roles(self) -> TaskRoles:
        """The task roles this builder describes with (a task without classes plays no role)."""
        g = self.getOrDefault
        s, a, t = (tuple(g(p)) for p in (self.sceneClasses, self.attributeClasses, self.timeClasses))
        return TaskRoles(scene=g(self.sceneTask) if s else None, scene_classes=s,
                         attributes=g(self.attributeTask) if a else None, attribute_classes=a,
                         time=g(self.timeTask) if t else None, time_classes=t)

    def thresholds(self) -> DescriptionConfig:
        """The thresholds as a DescriptionConfig."""
        g = self.getOrDefault
        return DescriptionConfig(fact_threshold=g(self.factThreshold), likely_threshold=g(self.likelyThreshold),
                                 possible_threshold=g(self.possibleThreshold))

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        roles, th = self.roles(), self.thresholds()
        tasks = [task for task in (roles.scene, roles.attributes, roles.time)
                 if task is not None and f"{task}_probability" in df.columns]

        def col_or_null(name: str, typ: str) -> Column:
            return F.col(name) if name in df.columns else F.lit(None).cast(typ)

        probs = F.struct(*[vector_to_array(F.col(f"{t}_probability"), "float64").alias(t) for t in tasks]) \
            if tasks else F.lit(None).cast("struct<_none:double>")
        tags = col_or_null("image_tags", "array<struct<label:string,prob:double>>")
        # The camera's local clock when the photos carry it (imported photos: `local_time`), else taken_at.
        clock = F.col("taken_at").cast("timestamp") if "taken_at" in df.columns else None
        if "local_time" in df.columns:
            clock = F.coalesce(F.col("local_time").cast("timestamp"), clock) if clock is not None else \
                F.col("local_time").cast("timestamp")
        hour = (F.hour(clock) + F.minute(clock) / 60.0) if clock is not None else F.lit(None)

        def build(pr, tg, hr, place, caps, novel, caption):
            probabilities = {t: pr[t] for t in tasks} if pr is not None else {}
            inet = [(x["label"], x["prob"]) for x in tg] if tg is not None else None
            return describe_predictions(roles, probabilities, inet, hr, place,
                                        list(caps) if caps is not None else None, th, novel=bool(novel),
                                        caption=caption)

        udf = F.udf(build, DESCRIPTION_TYPE)
        out = df.withColumn("_desc", udf(probs, tags, hour.cast("double"), col_or_null(g(self.placeCol), "string"),
                                         col_or_null(g(self.captionsCol), "array<string>"),
                                         col_or_null(g(self.novelCol), "boolean"),
                                         col_or_null(g(self.captionCol), "string")))
        return out.withColumn(g(self.outputCol), F.col("_desc.description")).withColumn(
            g(self.claimsCol), F.col("_desc.claims")).drop("_desc")


def description_builder(tasks: Sequence[Any], thresholds: DescriptionConfig | None = None) -> DescriptionBuilder:
    """A DescriptionBuilder wired to a model's task roles (`task_roles`) and thresholds (default: the config's)."""
    roles, th = task_roles(tasks), thresholds or DescriptionConfig()
    params: dict[str, Any] = {"sceneClasses": list(roles.scene_classes),
                              "attributeClasses": list(roles.attribute_classes),
                              "timeClasses": list(roles.time_classes), "factThreshold": th.fact_threshold,
                              "likelyThreshold": th.likely_threshold, "possibleThreshold": th.possible_threshold}
    for param, task in (("sceneTask", roles.scene), ("attributeTask", roles.attributes), ("timeTask", roles.time)):
        if task is not None:
            params[param] = task
    return DescriptionBuilder(**params)


def _claim_hits(df: DataFrame, truth: dict[str, str], claims_col: str) -> DataFrame:
    """One row per claim whose ground truth is known: task, stated, probability, hit (1 when right)."""
    exploded = df.select(F.explode(claims_col).alias("c"),
                         *[F.col(c).alias(f"_truth_{t}") for t, c in truth.items() if c in df.columns])
    parts = []
    for task in truth:
        col = f"_truth_{task}"
        if col not in exploded.columns:
            continue
        dtype = exploded.schema[col].dataType
        hit = (F.array_contains(F.col(col), F.col("c.label")) if isinstance(dtype, T.ArrayType)
               else F.col(col).cast("string") == F.col("c.label"))
        parts.append(exploded.where((F.col("c.task") == task) & F.col(col).isNotNull())
                     .select(F.col("c.task").alias("task"), F.col("c.stated").alias("stated"),
                             F.col("c.probability").alias("probability"), hit.cast("int").alias("hit")))
    if not parts:
        raise InputError(f"no ground-truth column found for any described task (looked for {sorted(truth.values())})")
    return reduce(DataFrame.unionByName, parts)


def claim_accuracy(df: DataFrame, truth: dict[str, str], claims_col: str = "claims") -> DataFrame:
    """Per (task, stated) accuracy of the claims where the ground truth is known.

    `truth` maps a task to its label column (string class for multiclass, array<string> for multi-label).
    Returns rows task, stated, claims, correct, accuracy.
    """
    return (_claim_hits(df, truth, claims_col).groupBy("task", "stated")
            .agg(F.count("*").alias("claims"), F.sum("hit").alias("correct"))
            .withColumn("accuracy", F.col("correct") / F.col("claims")).orderBy("task", "stated"))


def calibrate_fact_threshold(df: DataFrame, truth: dict[str, str], claims_col: str = "claims",
                             target: float = 0.93, floor: float = 0.5) -> float:
    """Smallest probability threshold whose claims (on a validation DataFrame described with a low fact
    threshold) are right at least `target` of the time; the builder then states only those as facts.
    Without any ground truth: the configured default."""
    try:
        hits = _claim_hits(df, truth, claims_col)
    except InputError:
        return DescriptionConfig().fact_threshold
    bins = {r["bin"]: (r["n"], r["h"]) for r in hits.groupBy(F.floor(F.col("probability") * 100).alias("bin")).agg(
        F.count("*").alias("n"), F.sum("hit").alias("h")).collect()}
    n = h = 0
    best = 1.0
    for b in range(100, int(floor * 100) - 1, -1):
        bn, bh = bins.get(b, (0, 0))
        n, h = n + bn, h + bh
        if n and h / n >= target:
            best = b / 100.0
    return max(best, floor)
