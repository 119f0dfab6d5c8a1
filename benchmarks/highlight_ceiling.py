"""Analysis: how high can any model's highlight AUC go on the demo sample? Context for `bench_quality.py`'s Δm.

The sample generator draws `highlight` from a logistic model of the photo's quality (drawn as blur, noise, tilt and
exposure), its light (sunset, night), whether people are in it, and whether its scene is one of the traveller's
favourite kinds. The last is a per-traveller preference that no photo feature carries. This script reads the
generator's hidden variables for every planned photo (`wanderlens.data.sample._plan`: no pixels) and fits scikit-
learn's LogisticRegression on what a perfect perception of the photo could know, scored by 5-fold cross-validated
AUC over all photos:

- light, people and scene (the other tasks' true labels);
- the same plus the true quality: about the most a model of the photo alone can reach. (The favourite-kind term
  is left out: it needs the traveller, whom the features do not name.)

Multi-task and single-task networks reach about 0.64-0.67 (docs/mtl.md), so the room left on highlight is a few
hundredths of AUC; the other three tasks are within about 0.01 of LogisticRegression in the same runs. The last line
is `highlight_auc_ceiling_photo_only: <min over sample seeds>`.

    python benchmarks/highlight_ceiling.py [--sample-seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def oracle_inputs(recs: list[dict]) -> dict[str, np.ndarray]:
    """Design matrices of increasing knowledge, one row per planned photo."""
    from wanderlens.data.destinations import SCENES

    labels = np.array([[r["tod"] == "sunset", r["tod"] == "night", "people" in r["attrs"]]
                       + [r["scene"] == s for s in SCENES] for r in recs], float)
    quality = np.array([[r["quality"]] for r in recs])
    return {"light, people, scene": labels, "+ true quality (photo only)": np.c_[labels, quality]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--users", type=int, default=60)
    args = ap.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from wanderlens.data.sample import _plan

    photo_only = []
    print(f"{'sample seed':<13}{'inputs':<36}{'highlight AUC':>14}")
    for seed in args.sample_seeds:
        recs = _plan(args.photos, args.users, seed)
        y = np.array([r["highlight"] for r in recs])
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        for name, x in oracle_inputs(recs).items():
            p = cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=folds, method="predict_proba")[:, 1]
            auc = roc_auc_score(y, p)
            if name.startswith("+ true quality"):
                photo_only.append(auc)
            print(f"{seed:<13}{name:<36}{auc:>14.3f}")
    print(f"highlight_auc_ceiling_photo_only: {min(photo_only):.3f}")


if __name__ == "__main__":
    main()
