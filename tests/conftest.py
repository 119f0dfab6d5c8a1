"""Shared fixtures: one real SparkSession for the whole test session, and the sample collection built once.

Fixtures that build data (sample, ingest, features, a trained model) are session-scoped so the suite pays
for each stage once; tests must not modify what these fixtures return (copy first).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_shared() -> Path:
    """The read-only shared/ folder: WANDERLENS_SHARED, else beside the checkout (as in CI), else /work/shared."""
    if os.environ.get("WANDERLENS_SHARED"):
        return Path(os.environ["WANDERLENS_SHARED"])
    for candidate in (REPO_ROOT.parent / "shared", Path("/work/shared")):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared"


SHARED = _find_shared()
COCO_DIR = REPO_ROOT / "examples" / "coco-cc57"
ARTIFACTS = REPO_ROOT / "test-artifacts"

# Size of the sample collection the suite uses: big enough for metrics to mean something, small enough for CI.
TEST_SAMPLE_PHOTOS = int(os.environ.get("WANDERLENS_TEST_SAMPLE_PHOTOS", "400"))
TEST_SAMPLE_USERS = int(os.environ.get("WANDERLENS_TEST_SAMPLE_USERS", "24"))


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (local[2])."""
    from wanderlens.session import get_spark

    session = get_spark(master=os.environ.get("WANDERLENS_TEST_MASTER", "local[2]"), app_name="wanderlens-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for files tests keep for people to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The synthetic sample collection (manifest, labels, destinations, images), generated once."""
    from wanderlens.data.sample import generate_sample

    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, photos=TEST_SAMPLE_PHOTOS, users=TEST_SAMPLE_USERS, seed=7)
    return out


@pytest.fixture(scope="session")
def ingested_dir(spark, sample_dir, tmp_path_factory) -> Path:
    """The sample ingested into a photos table + quarantine (see docs/architecture.md for the layout)."""
    from wanderlens.data.ingest import ingest

    out = tmp_path_factory.mktemp("ingested")
    ingest(spark, sample_dir / "manifest.csv", out)
    return out


# --- features: the ingested sample featurized once per test session ---------------------------------------------------
@pytest.fixture(scope="session")
def featurized_dir(spark, ingested_dir, tmp_path_factory) -> Path:
    """The ingested sample featurized (default encoder): OUT/features, OUT/feature_pipeline, OUT/summary.json."""
    from wanderlens.features.featurize import featurize

    out = tmp_path_factory.mktemp("featurized")
    featurize(spark, ingested_dir, out)
    return out


# --- serving: a model registry for the REST service tests -------------------------------------------------------------
@pytest.fixture(scope="session")
def serving_registry(spark, featurized_dir, sample_dir, tmp_path_factory) -> Path:
    """A model registry holding two versions (v1 is `production`) of a small model trained on the sample's
    features, with the travel tables (suggestions, search index) that the REST service answers from."""
    from wanderlens.mtl.train import train_from_config
    from wanderlens.serving.registry import ModelRegistry

    out = tmp_path_factory.mktemp("serving")
    train_from_config(spark, featurized_dir, {"training": {"epochs": 8, "seed": 0}}, out / "model")
    travel_dir = None
    try:
        from wanderlens.travel.job import run_travel
    except ModuleNotFoundError:  # travel stage not landed yet: travel endpoints answer 404
        run_travel = None
    if run_travel is not None:
        run_travel(spark, featurized_dir, out / "model", sample_dir / "destinations.csv", out / "travel")
        travel_dir = out / "travel"
    registry = ModelRegistry(out / "registry")
    for _ in range(2):
        registry.register(Path(featurized_dir) / "feature_pipeline", out / "model", travel_dir=travel_dir,
                          metadata={"source": "tests"})
    registry.promote(1)
    return registry.root
