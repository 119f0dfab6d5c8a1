"""Visual descriptions: one or two sentences per photo from the model's predictions, hedged by confidence.

A claim the model is sure of (probability at or above the fact threshold) is stated plainly, a likely one gets
"probably", a possible one "perhaps", and anything below is left out: a low-confidence guess is never a fact.
`describe_photo` is plain Python (the REST service calls it for one photo); `DescriptionBuilder` runs it over a
DataFrame of predictions and also emits the claims it made, so their accuracy can be measured.
"""

from __future__ import annotations

from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

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


def describe_photo(
    scene: list[tuple[str, float]] | None = None,
    attributes: list[tuple[str, float]] | None = None,
    imagenet: list[tuple[str, float]] | None = None,
    local_hour: float | None = None,
    place: str | None = None,
    captions: list[str] | None = None,
    fact: float = 0.8,
    likely: float = 0.5,
    possible: float = 0.3,
    imagenet_min: float = 0.25,
    scene_task: str = "scene",
    attribute_task: str = "attributes",
    time_of_day_probs: list[tuple[str, float]] | None = None,
    time_task: str = "time_of_day",
) -> tuple[str, list[dict[str, Any]]]:
    """Return (description, claims) for one photo.

    `scene`: (class, probability) for every class of the multiclass task; `attributes`: (label, probability) of
    the multi-label task; `time_of_day_probs`: a predicted time-of-day task (e.g. day/sunset/night); `imagenet`: top
    ImageNet labels; `local_hour`: the camera clock; `captions`: nearest training captions.
    Claims are dicts (task, label, probability, stated in {"fact", "hedged"}).
    """
    claims: list[dict[str, Any]] = []
    when_model = None
    if time_of_day_probs:
        label, p = max(time_of_day_probs, key=lambda x: x[1])
        if p >= likely:
            stated = "fact" if p >= fact else "hedged"
            claims.append({"task": time_task, "label": label, "probability": float(p), "stated": stated})
            phrase = TIME_ATTRIBUTES.get(label, "in daylight" if label == "day" else f"at {label}")
            when_model = phrase if stated == "fact" else "probably " + phrase
    # Sentence one: what, when, where.
    subject = "a photo"
    if scene:
        ranked = sorted(scene, key=lambda x: -x[1])
        (top, p), second = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        if p >= fact:
            subject = scene_phrase(top)
            claims.append({"task": scene_task, "label": top, "probability": float(p), "stated": "fact"})
        elif p >= likely:
            subject = "probably " + scene_phrase(top)
            claims.append({"task": scene_task, "label": top, "probability": float(p), "stated": "hedged"})
        elif p >= possible:
            alt = f" or {scene_phrase(second[0])}" if second and second[1] >= possible / 2 else ""
            subject = "perhaps " + scene_phrase(top) + alt
            claims.append({"task": scene_task, "label": top, "probability": float(p), "stated": "hedged"})
    sure, maybe, when = [], [], None
    for label, p in sorted(attributes or [], key=lambda x: -x[1]):
        if p < likely or (label in TIME_ATTRIBUTES and when_model is not None):
            continue
        stated = "fact" if p >= fact else "hedged"
        claims.append({"task": attribute_task, "label": label, "probability": float(p), "stated": stated})
        if label in TIME_ATTRIBUTES:
            if when is None:
                when = TIME_ATTRIBUTES[label] if stated == "fact" else "probably " + TIME_ATTRIBUTES[label]
            continue
        (sure if stated == "fact" else maybe).append(label.replace("_", " "))
    text = subject
    if sure:
        text += " with " + join_words(sure)
    if maybe:
        # After a hedged subject, a second "probably" reads badly: "Probably a desert, likely with boats".
        hedge = ", probably" if sure else (", likely" if subject.startswith(("probably", "perhaps")) else " probably")
        text += hedge + " with " + join_words(maybe)
    when = when_model or when or time_of_day(local_hour)
    if when:
        text += " " + when
    if place:
        text += " in " + place
    sentences = [text[:1].upper() + text[1:] + "."]
    # Sentence two: what the ImageNet classifier sees, and what similar photos were called.
    extra = []
    seen = [_imagenet_name(lbl) for lbl, p in (imagenet or []) if p >= imagenet_min][:2]
    if seen:
        extra.append("it looks like " + join_words([_article(s) for s in seen]))
    caps = [c.strip().rstrip(".") for c in (captions or []) if c and c.strip()][:2]
    if caps:
        quoted = " and ".join(f'"{c}"' for c in caps)
        extra.append(f"similar photo{'s were' if len(caps) > 1 else ' was'} captioned {quoted}")
    if extra:
        s = "; ".join(extra)
        sentences.append(s[:1].upper() + s[1:] + ".")
    return " ".join(sentences), claims


class DescriptionBuilder(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Adds `description` (one or two sentences) and `claims` (what the description asserts, and how firmly)."""

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
    outputCol = Param(Params._dummy(), "outputCol", "description column", TypeConverters.toString)
    claimsCol = Param(Params._dummy(), "claimsCol", "claims column", TypeConverters.toString)

    @keyword_only
    def __init__(self, *, sceneTask: str = "scene", sceneClasses: list[str] | None = None,
                 attributeTask: str = "attributes", attributeClasses: list[str] | None = None,
                 timeTask: str = "time_of_day", timeClasses: list[str] | None = None, factThreshold: float = 0.8,
                 likelyThreshold: float = 0.5, possibleThreshold: float = 0.3,
                 placeCol: str = "place", captionsCol: str = "nearest_captions", outputCol: str = "description",
                 claimsCol: str = "claims") -> None:
        super().__init__()
        self._setDefault(sceneTask="scene", sceneClasses=[], attributeTask="attributes", attributeClasses=[],
                         timeTask="time_of_day", timeClasses=[], factThreshold=0.8, likelyThreshold=0.5,
                         possibleThreshold=0.3, placeCol="place",
                         captionsCol="nearest_captions", outputCol="description", claimsCol="claims")
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        st, at = g("sceneTask"), g("attributeTask")
        s_classes, a_classes = list(g("sceneClasses")), list(g("attributeClasses"))
        tt, t_classes = g("timeTask"), list(g("timeClasses"))
        fact, likely, possible = g("factThreshold"), g("likelyThreshold"), g("possibleThreshold")

        def col_or_null(name: str, typ: str):
            return F.col(name) if name in df.columns else F.lit(None).cast(typ)

        s_prob = (vector_to_array(F.col(f"{st}_probability"), "float64")
                  if f"{st}_probability" in df.columns and s_classes else F.lit(None).cast("array<double>"))
        a_prob = (vector_to_array(F.col(f"{at}_probability"), "float64")
                  if f"{at}_probability" in df.columns and a_classes else F.lit(None).cast("array<double>"))
        t_prob = (vector_to_array(F.col(f"{tt}_probability"), "float64")
                  if f"{tt}_probability" in df.columns and t_classes else F.lit(None).cast("array<double>"))
        tags = col_or_null("image_tags", "array<struct<label:string,prob:double>>")
        hour = (F.hour("taken_at") + F.minute("taken_at") / 60.0) if "taken_at" in df.columns else F.lit(None)

        def build(sp, ap, tp, tg, hr, place, caps):
            scene = list(zip(s_classes, sp, strict=False)) if sp is not None else None
            attrs = list(zip(a_classes, ap, strict=False)) if ap is not None else None
            inet = [(t["label"], t["prob"]) for t in tg] if tg is not None else None
            tod = list(zip(t_classes, tp, strict=False)) if tp is not None else None
            text, claims = describe_photo(
                scene, attrs, inet, hr, place, list(caps) if caps is not None else None,
                fact=fact, likely=likely, possible=possible, scene_task=st, attribute_task=at,
                time_of_day_probs=tod, time_task=tt,
            )
            return text, claims

        udf = F.udf(build, DESCRIPTION_TYPE)
        out = df.withColumn("_desc", udf(s_prob, a_prob, t_prob, tags, hour.cast("double"),
                                         col_or_null(g("placeCol"), "string"),
                                         col_or_null(g("captionsCol"), "array<string>")))
        return out.withColumn(g("outputCol"), F.col("_desc.description")).withColumn(
            g("claimsCol"), F.col("_desc.claims")).drop("_desc")


def claim_accuracy(df: DataFrame, truth: dict[str, str], claims_col: str = "claims") -> DataFrame:
    """Per (task, stated) accuracy of the claims where the ground truth is known.

    `truth` maps a task to its label column (string class for multiclass, array<string> for multi-label).
    Returns rows task, stated, claims, correct, accuracy.
    """
    exploded = df.select(F.explode(claims_col).alias("c"),
                         *[F.col(c).alias(f"_truth_{t}") for t, c in truth.items() if c in df.columns])
    parts = []
    for task in truth:
        col = f"_truth_{task}"
        if col not in exploded.columns:
            continue
        dtype = exploded.schema[col].dataType
        sub = exploded.where((F.col("c.task") == task) & F.col(col).isNotNull())
        hit = (F.array_contains(F.col(col), F.col("c.label")) if isinstance(dtype, T.ArrayType)
               else F.col(col).cast("string") == F.col("c.label"))
        parts.append(sub.select(F.col("c.task").alias("task"), F.col("c.stated").alias("stated"),
                                hit.cast("int").alias("hit")))
    if not parts:
        raise ValueError("no ground-truth column found for any described task")
    allp = parts[0]
    for p in parts[1:]:
        allp = allp.unionByName(p)
    return (allp.groupBy("task", "stated")
            .agg(F.count("*").alias("claims"), F.sum("hit").alias("correct"))
            .withColumn("accuracy", F.col("correct") / F.col("claims")).orderBy("task", "stated"))


def calibrate_fact_threshold(df: DataFrame, truth: dict[str, str], claims_col: str = "claims",
                             target: float = 0.93, floor: float = 0.5) -> float:
    """Smallest probability threshold whose claims (on a validation DataFrame described with a low fact
    threshold) are right at least `target` of the time; the builder then states only those as facts."""
    exploded = df.select(F.explode(claims_col).alias("c"), *[F.col(c).alias(f"_t_{t}") for t, c in truth.items()
                                                             if c in df.columns])
    rows = []
    for task in truth:
        col = f"_t_{task}"
        if col not in exploded.columns:
            continue
        dtype = exploded.schema[col].dataType
        hit = (F.array_contains(F.col(col), F.col("c.label")) if isinstance(dtype, T.ArrayType)
               else F.col(col).cast("string") == F.col("c.label"))
        rows.append(exploded.where((F.col("c.task") == task) & F.col(col).isNotNull())
                    .select(F.floor(F.col("c.probability") * 100).alias("bin"), hit.cast("int").alias("hit")))
    if not rows:
        return 0.8
    allr = rows[0]
    for r in rows[1:]:
        allr = allr.unionByName(r)
    bins = {r["bin"]: (r["n"], r["h"]) for r in allr.groupBy("bin").agg(
        F.count("*").alias("n"), F.sum("hit").alias("h")).collect()}
    n = h = 0
    best = 1.0
    for b in range(100, int(floor * 100) - 1, -1):
        bn, bh = bins.get(b, (0, 0))
        n, h = n + bn, h + bh
        if n and h / n >= target:
            best = b / 100.0
    return max(best, floor)
