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

    # One JVM runs the whole suite's thousands of jobs: a larger heap, fewer retained job/SQL records, and a
    # periodic GC so the context cleaner frees the caches and broadcasts of DataFrames tests no longer hold.
    session = get_spark(master=os.environ.get("WANDERLENS_TEST_MASTER", "local[2]"), app_name="wanderlens-tests",
                        driver_memory=os.environ.get("WANDERLENS_DRIVER_MEMORY", "4g"),
                        extra_conf={"spark.sql.ui.retainedExecutions": "50", "spark.ui.retainedJobs": "100",
                                    "spark.ui.retainedStages": "100", "spark.cleaner.periodicGC.interval": "2min"})
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
def travel_run(spark, featurized_dir, sample_dir, tmp_path_factory):
    """A small MultiTaskModel trained on the featurized sample (`<travel dir>/../model`) and the travel job's tables
    from it, built once for the travel tests and the serving registry."""
    from wanderlens.config import TravelConfig
    from wanderlens.mtl.train import train_from_config
    from wanderlens.travel.job import run_travel

    out = tmp_path_factory.mktemp("travel")
    train_from_config(spark, featurized_dir, {"training": {"epochs": 8, "seed": 0}}, out / "model")
    paths = run_travel(spark, featurized_dir, out / "model", sample_dir / "destinations.csv", out / "travel",
                       TravelConfig(projection_epochs=60))
    return out / "travel", paths


@pytest.fixture(scope="session")
def serving_registry(featurized_dir, travel_run, tmp_path_factory) -> Path:
    """A model registry holding two versions (v1 is `production`) of the travel run's model, with the travel tables
    (suggestions, search index) that the REST service answers from."""
    from wanderlens.serving.registry import ModelRegistry

    travel_dir, _ = travel_run
    registry = ModelRegistry(tmp_path_factory.mktemp("serving") / "registry")
    for _ in range(2):
        registry.register(Path(featurized_dir) / "feature_pipeline", travel_dir.parent / "model",
                          travel_dir=travel_dir, metadata={"source": "tests"})
    registry.promote(1)
    return registry.root


# --- the web page in headless Chromium -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One headless Chromium driven by Selenium for every browser test (Debian chromium + chromedriver)."""
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian chromium / chromium-driver not installed (tools/ensure_test_deps.py installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
