"""The comparison job on the sample: report.html numbers equal the evaluator's, and it opens in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from wanderlens.evaluation import DataSplitter, MultiTaskEvaluator
from wanderlens.io import read_json

# Small and fast: one seed, few epochs; the recorded run (docs/benchmarks.md) uses 3 seeds and configs/sample.yaml.
FAST_CONFIG = {
    "model": {"architecture": "mmoe", "expert_hidden": [32], "tower_hidden": [16], "num_experts": 2},
    "training": {"epochs": 3, "batch_size": 64, "learning_rate": 0.003},
    "evaluation": {"seeds": [0], "gallery": 8, "logistic": {"max_iter": 10}},
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                  "--v=0"]


@pytest.fixture(scope="module")
def evaluated(spark, featurized_dir, ingested_dir, tmp_path_factory):
    """The comparison job run once on the featurized sample, its tables printed as `wanderlens evaluate` does."""
    from rich.console import Console

    from wanderlens.cli.evaluation import print_result
    from wanderlens.evaluation.job import evaluate_job

    out = tmp_path_factory.mktemp("evaluation")
    config = {**FAST_CONFIG, "evaluation": {**FAST_CONFIG["evaluation"], "photos_dir": str(ingested_dir)}}
    result = evaluate_job(spark, featurized_dir, config, out)
    console = Console(record=True, width=200)
    print_result(result, console)
    return result.report, out, console.export_text()


class _Cells(HTMLParser):
    """Collects data-* attributes of table cells, image sources, links and scripts of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.img_src: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.sections: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-value" in a:
            self.cells.append(a)
        if tag == "img":
            self.img_src.append(a.get("src", ""))
        if tag in ("link", "script", "iframe") or (tag == "a" and not a.get("href", "").startswith("#")):
            self.links.append(a.get("href") or a.get("src") or tag)
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self.sections.append(a.get("id", ""))


def _parse(path: Path) -> _Cells:
    p = _Cells()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_report_numbers_equal_the_evaluator(spark, evaluated, featurized_dir):
    report, out, printed = evaluated
    from wanderlens.mtl import MultiTaskModel, index_labels
    from wanderlens.mtl.data import infer_classes
    from wanderlens.mtl.train import config_tasks

    # Redo the test split from what was recorded with the model, score the saved model, evaluate independently.
    model = MultiTaskModel.load(str(out / "model"))
    splitter = DataSplitter.load(str(out / "model" / "split"))
    assert read_json(out / "model" / "split.json")["seed"] == 0
    features = spark.read.parquet(str(featurized_dir / "features"))
    tasks = infer_classes(features, config_tasks(featurized_dir, {}))
    test = splitter.transform(index_labels(features, tasks)).where(F.col("split") == "test")
    expected = MultiTaskEvaluator(tasks=model.tasks).evaluate_all(model.transform(test))
    assert set(expected["task"]) == {"scene", "attributes", "highlight", "time_of_day"}

    cells = [c for c in _parse(report).cells if "data-metric" in c]
    shown = {(c["data-task"], c["data-metric"]): float(c["data-value"]) for c in cells}
    assert len(shown) == len(expected)
    for r in expected.itertuples():
        assert shown[(r.task, r.metric)] == pytest.approx(r.value, rel=1e-9, abs=1e-12), (r.task, r.metric)
    # The comparison table shows every variant for every task, and the multi-task row is the same model's numbers.
    comparison = pd.read_csv(out / "comparison.csv")
    variants = set(comparison["variant"])
    assert variants == {"multi-task · fused", "single-task · fused", "multi-task · image only",
                        "multi-task · text only", "MLlib LogisticRegression · fused"}
    assert len(comparison) == 5 * 4
    mtl = comparison[comparison["variant"] == "multi-task · fused"].set_index("task")["mean"]
    for r in expected[expected["main"]].itertuples():
        assert mtl[r.task] == pytest.approx(r.value, rel=1e-9)
    # Δm rows are computed from the same metrics table and printed on the terminal with the comparison table.
    deltas = pd.read_csv(out / "deltas.csv")
    assert len(deltas) == 4 and deltas["delta_m_mean"].notna().all()
    assert "multi-task vs single-task" in printed and "mean±std over 1 seed(s)" in printed
    # A learnt model, not noise: even this 3-epoch model is well above chance (1/8) on the 8 scene classes.
    assert mtl["scene"] > 0.2


def test_report_is_self_contained_with_every_section(evaluated):
    report, out, _ = evaluated
    page = _parse(report)
    assert page.scripts == 0 and page.links == []
    assert all(src.startswith("data:image/") for src in page.img_src)
    assert {"data", "results", "comparisons", "tasks", "training", "gallery"} <= set(page.sections)
    text = report.read_text(encoding="utf-8")
    for needle in ("Quarantine reasons", "corrupt_image", "scene: confusion matrix", "attributes: F1 per label",
                   "highlight: reliability diagram", "ECE", "training loss per task", "task weights over epochs",
                   "highlight: ROC and precision-recall", "Δm"):
        assert needle in text, needle
    # Gallery: 8 test photos with embedded JPEG thumbnails.
    assert len(re.findall(r'class="card"', text)) == 8
    assert sum(src.startswith("data:image/jpeg") for src in page.img_src) == 8


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_in_chromium(page: Path, screenshot: Path) -> list[str]:
    """Open `page` in headless Chromium (fresh profile), save a screenshot, return the console messages."""
    with tempfile.TemporaryDirectory(prefix="wl-chromium-") as profile:
        proc = subprocess.run(
            [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
             "--window-size=1300,2400", "--virtual-time-budget=3000", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="chromium missing (make test installs it: tools/ensure_test_deps.py)")
def test_report_opens_in_headless_chromium_without_console_errors(evaluated, artifacts_dir, tmp_path):
    report, _, _ = evaluated
    # The check itself can fail: a page with a console error and a broken script is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missingFn();</script></body></html>")
    caught = render_in_chromium(bad, tmp_path / "bad.png")
    assert any("boom" in m for m in caught) and any("missingFn" in m for m in caught)

    shot = artifacts_dir / "evaluation_report.png"
    shot.unlink(missing_ok=True)
    messages = render_in_chromium(report, shot)
    assert messages == []
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copyfile(report, artifacts_dir / "evaluation_report.html")


def test_cli_bad_features_path_names_the_folder(tmp_path):
    # Through the registered Typer app (cli/main.py prints a WanderlensError as one line, exit 2).
    from wanderlens.cli.main import app
    from wanderlens.errors import InputError

    with pytest.raises(InputError) as exc:
        app(args=["evaluate", "--features", str(tmp_path / "nope"), "--out", str(tmp_path / "r")],
            standalone_mode=False)
    msg = str(exc.value)
    assert msg.startswith(f"features table not found at {tmp_path / 'nope'}") and "\n" not in msg
    assert "wanderlens featurize --out" in msg
