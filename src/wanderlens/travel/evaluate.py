"""Evaluating suggestions on held-out trips: each user's last trip is hidden, and the places of that trip they had
not been to before are what a recommender should find.

One fit of `TravelRecommender` on the rest (which itself learns its ranker on the trip before, see
`wanderlens.travel.ranker`) ranks every evaluated user with the learned ranker, with the method it chose, and with
every single signal alone (popularity, ALS, co-visitation, sequence, geography, season, kind, content) and a random
order, in one pass without reasons. Per-user ndcg@k and recall@k (MLlib's definitions) give each method's mean and
the chosen method's gain over each baseline with a 95% paired-bootstrap interval, so a gain can be told from noise.
A seeded share of the evaluated users are simulated newcomers (only their first trip kept) and are reported apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.travel.ranker import RANKER, ndcg_at_k, per_user_metrics, recall_at_k
from wanderlens.travel.recommend import TravelRecommender
from wanderlens.travel.signals import SIGNALS
from wanderlens.travel.visits import first_trips_only, last_trip_split, visits_from_rows

__all__ = ["RecommendEvaluation", "evaluate_visits", "ndcg_at_k", "paired_bootstrap", "recall_at_k"]
CHOSEN = "wanderlens"


@dataclass
class RecommendEvaluation:
    """Rows of one evaluation: per method {method, users, ndcg@k, recall@k} for warm and cold-start users; gains of
    the chosen method over each baseline ({baseline, metric, gain, low, high, users}); the validation comparison the
    recommender made when it chose its method; `per_user` {group: {method: {user: {ndcg, recall}}}}."""

    method: str = ""
    warm: list[dict] = field(default_factory=list)
    cold: list[dict] = field(default_factory=list)
    gains: dict[str, list[dict]] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    per_user: dict[str, Any] = field(default_factory=dict)
    k: int = 10


def evaluate_visits(rows: DataFrame, catalog_path: str, k: int = 10, seed: int = 0, cold_fraction: float = 0.25,
                    params: dict | None = None) -> RecommendEvaluation:
    """Held-out-last-trip evaluation of the recommender against every single signal, warm and cold users apart.

    `rows`: visits (user_id, destination_id, trip_id, visited_at) or photos (taken_at; `interest` adds content);
    `params`: TravelRecommender Params besides catalogPath (labels, sceneCount when there is `interest`)."""
    visits = visits_from_rows(rows).localCheckpoint()
    history, relevant = last_trip_split(visits)
    relevant = relevant.where(F.size("relevant") > 0).localCheckpoint()
    users = relevant.select("user_id")
    cold = [r["user_id"] for r in users.where(F.abs(F.hash(F.concat("user_id", F.lit(f"cold{seed}")))) % 1000
                                              < cold_fraction * 1000).collect()]
    history = first_trips_only(history, cold)
    keep = history.select("user_id", "trip_id").distinct()
    train = rows.join(keep, ["user_id", "trip_id"]) if "interest" in rows.columns else history
    model = TravelRecommender(catalogPath=str(catalog_path), seed=seed, **(params or {})).fit(train.localCheckpoint())
    methods = ([RANKER] if model.choice.booster else []) + list(SIGNALS) + ["random"]
    lists = model.ranked_lists(users, methods, k).localCheckpoint()
    chosen = lists.where(F.col("method") == model.choice.method).withColumn("method", F.lit(CHOSEN))
    metrics = per_user_metrics(lists.unionByName(chosen), relevant, k)
    result = RecommendEvaluation(method=model.choice.method, validation=dict(model.choice.validation), k=k)
    cold_set = set(cold)
    for group in ("warm", "cold"):
        per = {m: {u: v for u, v in by_user.items() if (u in cold_set) == (group == "cold")}
               for m, by_user in metrics.items()}
        if not per.get(CHOSEN):
            continue
        result.per_user[group] = per
        order = [CHOSEN] + [m for m in methods if m in per]
        setattr(result, group, [{"method": m, "users": len(per[m]), "ndcg@k": _mean(per[m], "ndcg"),
                                 "recall@k": _mean(per[m], "recall")} for m in order])
        result.gains[group] = _gains(per, [m for m in order if m != CHOSEN], seed)
    model.unpersist()
    return result


def _mean(per_user: dict[str, dict[str, float]], metric: str) -> float:
    return float(np.mean([v[metric] for v in per_user.values()])) if per_user else float("nan")


def _gains(per: dict[str, dict[str, dict[str, float]]], baselines: list[str], seed: int) -> list[dict]:
    """The chosen method minus each baseline, per user, ndcg and recall: mean and 95% paired-bootstrap interval."""
    users = sorted(per[CHOSEN])
    out = []
    for b in baselines:
        for metric in ("ndcg", "recall"):
            a = [per[CHOSEN][u][metric] for u in users]
            c = [per[b].get(u, {}).get(metric, 0.0) for u in users]
            out.append({"baseline": b, "metric": f"{metric}@k", **paired_bootstrap(a, c, seed=seed)})
    return out


def paired_bootstrap(a: list[float], b: list[float], draws: int = 4000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over paired samples and its 95% bootstrap interval (users resampled with replacement)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"gain": float(d.mean()), "low": float(lo), "high": float(hi), "users": len(d)}
