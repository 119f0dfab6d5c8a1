"""Paper check: MMoE vs shared-bottom vs single-task on census-income (Ma et al., KDD 2018, group 1).

Task 1: income > 50K; task 2: marital status "Never married"; education and marital status are removed from the
inputs. Only the test half of the UCI data is available, so it is re-split 50/25/25 (train/validation/test).
The training rows are written once as Parquet shards (with pyarrow by default, or with the estimator's Spark
code under --spark); each method and seed then runs the estimator's own training loop
(`wanderlens.mtl.trainer.run_training`) with early stopping on validation AUC, and is scored on the test quarter.
scikit-learn LogisticRegression and HistGradientBoostingClassifier, one per task, run on the same split in the
same run.

Usage: python benchmarks/mmoe_census.py [--seeds 5] [--rows N] [--epochs 8]
Last line: mmoe_income_auc_mean: <x> mmoe_marital_auc_mean: <y>
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATA = Path(os.environ.get("WANDERLENS_SHARED", ROOT.parent / "shared")) / "data" / "census-income"
COLUMNS = (
    "age class_worker det_ind_code det_occ_code education wage_per_hour hs_college marital_stat major_ind_code "
    "major_occ_code race hisp_origin sex union_member unemp_reason full_or_part_emp capital_gains capital_losses "
    "stock_dividends tax_filer_stat region_prev_res state_prev_res det_hh_fam_stat det_hh_summ instance_weight "
    "mig_chg_msa mig_chg_reg mig_move_reg mig_same mig_prev_sunbelt num_emp fam_under_18 country_father "
    "country_mother country_self citizenship own_or_self vet_question vet_benefits weeks_worked year income_50k"
).split()
NUMERIC = ["age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp", "weeks_worked"]
DROPPED = ["education", "marital_stat", "income_50k", "instance_weight"]
PAPER = {  # method: (income AUC mean, marital AUC mean), Ma et al. 2018, table for group 1
    "single_task": (0.9337, 0.9933), "shared_bottom": (0.9295, 0.9915), "mmoe": (0.9359, 0.9926),
}
ARCHS = {  # equal first-layer width (64 units) for all three, as the paper compares methods at similar size
    "single_task": {"name": "single_task", "expert_hidden": [32], "tower_hidden": [8]},
    "shared_bottom": {"name": "shared_bottom", "expert_hidden": [64], "tower_hidden": [8]},
    "mmoe": {"name": "mmoe", "expert_hidden": [8], "tower_hidden": [8], "num_experts": 8},
}


def load(rows: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-hot categorical + standardised numeric inputs (education, marital status removed), and both labels."""
    with gzip.open(DATA / "census-income.test.gz", "rt") as fh:
        df = pd.read_csv(fh, header=None, names=COLUMNS, skipinitialspace=True, na_values="?", keep_default_na=False)
    if rows:
        df = df.sample(n=min(rows, len(df)), random_state=0).reset_index(drop=True)
    income = (df["income_50k"].str.strip() == "50000+.").to_numpy(np.float64)
    marital = (df["marital_stat"].str.strip() == "Never married").to_numpy(np.float64)
    cats = [c for c in COLUMNS if c not in NUMERIC + DROPPED]
    onehot = pd.get_dummies(df[cats].astype(str), dtype=np.float32).to_numpy()
    num = df[NUMERIC].to_numpy(np.float64)
    return np.hstack([num, onehot]).astype(np.float32), income, marital


def split(n: int, seed: int = 2018) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = n // 2, n // 2 + n // 4
    return perm[:a], perm[a:b], perm[b:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=0, help="subsample rows (0: all 99,762)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--methods", default="single_task,shared_bottom,mmoe")
    ap.add_argument("--spark", action="store_true", help="prepare the shards with Spark (input checks, encode)")
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from wanderlens.config import TrainingConfig
    from wanderlens.mtl.data import FEATURES
    from wanderlens.mtl.local import LocalMultiTaskModel
    from wanderlens.mtl.metrics import auc
    from wanderlens.mtl.tasks import TaskSpec
    from wanderlens.mtl.trainer import TrainingRun, load_state, run_training

    t0 = time.perf_counter()
    x, income, marital = load(args.rows or None)
    tr, va, te = split(len(x))
    mu, sd = x[tr, :7].mean(axis=0), x[tr, :7].std(axis=0) + 1e-6
    x[:, :7] = (x[:, :7] - mu) / sd
    print(f"census-income test half: {len(x)} rows, {x.shape[1]} inputs; split train/val/test "
          f"{len(tr)}/{len(va)}/{len(te)}; income positives {income.mean():.3f}, never married {marital.mean():.3f}")

    tasks = [TaskSpec("income", "binary"), TaskSpec("marital", "binary")]
    work = tempfile.mkdtemp(prefix="mmoe-census-")
    if args.spark:
        from pyspark.sql import functions as F

        from wanderlens.mtl.data import encode, validate_input, write_shards
        from wanderlens.session import get_spark

        spark = get_spark(master="local[2]", app_name="mmoe-census")
        for name, idx in (("train", tr), ("val", va)):
            # One Arrow column per input (fast to ship), gathered into one array column on the Spark side.
            pdf = pd.DataFrame(x[idx], columns=[f"x{i}" for i in range(x.shape[1])])
            pdf["income"], pdf["marital"] = income[idx], marital[idx]
            df = spark.createDataFrame(pdf)
            df = df.select(F.array(*[F.col(f"x{i}") for i in range(x.shape[1])]).alias("features"), "income",
                           "marital")
            validate_input(df, ["features"], tasks)
            write_shards(encode(df, ["features"], tasks), f"{work}/{name}", 1, 0)
        print(f"Spark: checked and wrote Parquet shards in {time.perf_counter() - t0:.1f} s")
    else:
        # The same Parquet layout `wanderlens.mtl.data.encode` writes, without starting a JVM.
        for name, idx in (("train", tr), ("val", va)):
            os.makedirs(f"{work}/{name}")
            table = pa.table({FEATURES: pa.array(list(x[idx]), pa.list_(pa.float32())),
                              "income": pa.array(income[idx]), "marital": pa.array(marital[idx])})
            pq.write_table(table, f"{work}/{name}/part-00000.parquet")
        print(f"wrote Parquet shards (pyarrow) in {time.perf_counter() - t0:.1f} s")

    results: dict[str, list[tuple[float, float]]] = {}
    for method in args.methods.split(","):
        for seed in range(args.seeds):
            t = time.perf_counter()
            run = TrainingRun(
                tasks=[t_.to_dict() for t_ in tasks], arch={**ARCHS[method], "dropout": 0.0},
                training=TrainingConfig(learning_rate=2e-3, epochs=args.epochs, batch_size=512, patience=2,
                                        monitor="metric", seed=seed),
                input_dim=int(x.shape[1]), train_path=f"{work}/train", val_path=f"{work}/val",
            )
            res = run_training(run)
            model = LocalMultiTaskModel(run.tasks, run.arch, run.input_dim, load_state(res["state"]))
            p = model.predict(x[te])
            aucs = (auc(income[te] > 0, p["income"][:, 1]), auc(marital[te] > 0, p["marital"][:, 1]))
            results.setdefault(method, []).append(aucs)
            print(f"  {method:13s} seed {seed}: income AUC {aucs[0]:.4f}, marital AUC {aucs[1]:.4f} "
                  f"({len(res['history'])} epochs, best at {_best_epoch(res['history'])}, "
                  f"{time.perf_counter() - t:.0f} s)", flush=True)

    base: dict[str, tuple[float, float]] = {}
    for name, make in (("LogisticRegression", lambda: LogisticRegression(max_iter=2000, C=1.0)),
                       ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=0))):
        t = time.perf_counter()
        scores = []
        for y in (income, marital):
            clf = make().fit(x[tr], y[tr])
            scores.append(auc(y[te] > 0, clf.predict_proba(x[te])[:, 1]))
        base[name] = (scores[0], scores[1])
        print(f"  {name}: income AUC {scores[0]:.4f}, marital AUC {scores[1]:.4f} ({time.perf_counter() - t:.0f} s)")

    print()
    print(f"{'method':22s} {'income AUC mean ± sd':>22s} {'paper':>7s} {'marital AUC mean ± sd':>22s} {'paper':>7s}")
    for method, vals in results.items():
        a = np.array(vals)
        print(f"{method:22s} {a[:, 0].mean():>13.4f} ± {a[:, 0].std():.4f} {PAPER[method][0]:>7.4f} "
              f"{a[:, 1].mean():>13.4f} ± {a[:, 1].std():.4f} {PAPER[method][1]:>7.4f}   (n={len(a)})")
    for name, (i, m) in base.items():
        print(f"{name:22s} {i:>22.4f} {'':>7s} {m:>22.4f}")
    mm = np.array(results.get("mmoe", [(float("nan"), float("nan"))]))
    best_i = max(v[0] for v in base.values())
    best_m = max(v[1] for v in base.values())
    print(f"MMoE vs paper mean: income {mm[:, 0].mean() - PAPER['mmoe'][0]:+.4f}, marital "
          f"{mm[:, 1].mean() - PAPER['mmoe'][1]:+.4f}; vs strongest single-task baseline of this run: income "
          f"{mm[:, 0].mean() - best_i:+.4f}, marital {mm[:, 1].mean() - best_m:+.4f}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    print(f"mmoe_income_auc_mean: {mm[:, 0].mean():.4f} mmoe_marital_auc_mean: {mm[:, 1].mean():.4f}")


def _best_epoch(history: list[dict]) -> int:
    vals = [h.get("monitored", float("nan")) for h in history]
    return int(np.nanargmax(vals)) + 1 if vals else 0


if __name__ == "__main__":
    main()
