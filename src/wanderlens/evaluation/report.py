"""The self-contained `report.html`: data summary, per-task metrics and plots, comparisons, training curves, gallery.

Everything (figures, photo thumbnails, styles) is embedded in the one file, with no script and no external link,
so it opens anywhere, offline, and can be attached or archived as is. Metric cells carry their exact value in a
`data-value` attribute so the report can be checked against the evaluator.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from wanderlens.evaluation.evaluator import is_larger_better
from wanderlens.imaging import open_image


@dataclass
class Figure:
    """One embedded plot: a caption and its base64 PNG."""

    caption: str
    png_b64: str


@dataclass
class TaskSection:
    """Plots and notes of one task (ROC/PR, confusion matrix, per-label F1, reliability)."""

    name: str
    type: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class GalleryItem:
    """One test photo: thumbnail, text, true labels and predictions (with confidence), optional description."""

    photo_id: str
    thumbnail_b64: str | None
    caption: str | None
    truth: dict[str, str]
    predicted: dict[str, str]
    description: str | None = None


@dataclass
class ReportContent:
    """Everything the report shows; built by `wanderlens.evaluation.job` (or by hand for any prediction table)."""

    title: str
    facts: dict[str, Any]
    data_summary: dict[str, Any]
    metrics: pd.DataFrame
    metrics_caption: str = ""
    comparison: pd.DataFrame | None = None
    deltas: pd.DataFrame | None = None
    comparison_figure: Figure | None = None
    tasks: list[TaskSection] = field(default_factory=list)
    training: list[Figure] = field(default_factory=list)
    gallery: list[GalleryItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def thumbnail_b64(image_path: str | None, size: int = 180) -> str | None:
    """A JPEG thumbnail of a photo as base64, or None when the file cannot be read (the gallery shows a note)."""
    if not image_path:
        return None
    path = image_path[len("file://"):] if image_path.startswith("file://") else image_path
    try:
        with open_image(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7fb}
header{background:#1d3557;color:#fff;padding:22px 32px}header h1{margin:0 0 6px;font-size:24px}
header p{margin:0;opacity:.85}main{padding:8px 32px 40px;max-width:1280px}
section{background:#fff;border-radius:8px;padding:16px 22px;margin:18px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin:0 0 12px;font-size:19px;color:#1d3557}h3{font-size:16px;margin:16px 0 8px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}th,td{border:1px solid #dde2ea;padding:4px 9px}
th{background:#eef1f7;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.better{background:#e5f5e8}td.worse{background:#fbe9e9}
.facts td:first-child{font-weight:600}.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0}figure img{max-width:100%;border:1px solid #e4e7ee;border-radius:4px}
figcaption{font-size:12px;color:#556;margin-top:3px}.note{font-size:13px;color:#445}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.card{border:1px solid #e0e4ec;border-radius:6px;padding:8px;font-size:12px;background:#fcfcfe}
.card img{width:100%;height:150px;object-fit:cover;border-radius:4px}.card .pid{font-weight:600}
.ok{color:#1a7f37}.bad{color:#b42318}.desc{font-style:italic;margin-top:4px}
.noimg{height:150px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}
nav a{color:#cfe0ff;margin-right:14px;font-size:13px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return _e(v)


def _num_cell(v: Any, attrs: Mapping[str, Any] | None = None, cls: str = "num") -> str:
    extra = "".join(f' data-{k}="{_e(a)}"' for k, a in (attrs or {}).items())
    value = "" if v is None else f' data-value="{_e(repr(float(v)))}"'
    return f'<td class="{cls}"{extra}{value}>{_fmt(v)}</td>'


def _figure(fig: Figure) -> str:
    return (f'<figure><img alt="{_e(fig.caption)}" src="data:image/png;base64,{fig.png_b64}">'
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _kv_table(d: Mapping[str, Any], cls: str = "facts") -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in d.items())
    return f'<table class="{cls}">{rows}</table>'


def metrics_table(metrics: pd.DataFrame) -> str:
    """The tidy metrics table as HTML: task, type, metric, value (exact in data-value), rows labelled."""
    rows = []
    for r in metrics.itertuples():
        main = " (main)" if r.main else ""
        arrow = "↑" if is_larger_better(r.metric) else "↓"
        rows.append(f"<tr><td>{_e(r.task)}</td><td>{_e(r.type)}</td><td>{_e(r.metric)}{arrow}{main}</td>"
                    + _num_cell(r.value, {"task": r.task, "metric": r.metric}) + f'<td class="num">{r.n}</td></tr>')
    return ('<table class="metrics" id="metrics"><tr><th>task</th><th>type</th><th>metric</th><th>value</th>'
            f"<th>rows labelled</th></tr>{''.join(rows)}</table>")


def comparison_table(summary: pd.DataFrame) -> str:
    """Mean ± std of each task's main metric per variant over seeds; the best variant per task highlighted."""
    tasks = list(dict.fromkeys(summary["task"]))
    variants = list(dict.fromkeys(summary["variant"]))
    head = "".join(f"<th>{_e(t)} ({_e(summary[summary['task'] == t]['metric'].iloc[0])})</th>" for t in tasks)
    best: dict[str, str] = {}
    for t in tasks:
        part = summary[summary["task"] == t].dropna(subset=["mean"])
        if len(part):
            larger = is_larger_better(part["metric"].iloc[0])
            best[t] = part.loc[part["mean"].idxmax() if larger else part["mean"].idxmin(), "variant"]
    rows = []
    for v in variants:
        cells = []
        for t in tasks:
            hit = summary[(summary["task"] == t) & (summary["variant"] == v)]
            if not len(hit):
                cells.append('<td class="num">–</td>')
                continue
            r = hit.iloc[0]
            cls = "num better" if best.get(t) == v else "num"
            cells.append(f'<td class="{cls}" data-task="{_e(t)}" data-variant="{_e(v)}" '
                         f'data-value="{_e(repr(float(r["mean"])))}">{_fmt(float(r["mean"]))} '
                         f'± {_fmt(float(r["std"]))} <small>(n={int(r["seeds"])})</small></td>')
        rows.append(f"<tr><td>{_e(v)}</td>{''.join(cells)}</tr>")
    return f'<table class="comparison" id="comparison"><tr><th>variant</th>{head}</tr>{"".join(rows)}</table>'


def deltas_table(deltas: pd.DataFrame) -> str:
    """Δm per comparison (mean ± std over seeds) and per-task relative changes, green when the claim holds."""
    task_cols = [c for c in deltas.columns if c.startswith("Δ ")]
    head = "".join(f"<th>{_e(c)}</th>" for c in task_cols)
    rows = []
    for r in deltas.to_dict("records"):
        cls = "num better" if r["delta_m_mean"] > 0 else "num worse"
        cells = "".join(
            f'<td class="num {"better" if r[c] > 0 else "worse"}">{r[c] * 100:+.2f}%</td>'
            if not (isinstance(r[c], float) and math.isnan(r[c])) else '<td class="num">–</td>'
            for c in task_cols)
        rows.append(f"<tr><td>{_e(r['comparison'])}</td><td class=\"{cls}\" "
                    f"data-value=\"{_e(repr(float(r['delta_m_mean'])))}\">{r['delta_m_mean'] * 100:+.2f}% "
                    f"± {r['delta_m_std'] * 100:.2f}</td>{cells}<td>{_e(r['verdict'])}</td></tr>")
    return (f'<table class="deltas" id="deltas"><tr><th>comparison</th><th>Δm (mean ± std)</th>{head}'
            f"<th>verdict</th></tr>{''.join(rows)}</table>")


def _gallery(items: Sequence[GalleryItem]) -> str:
    cards = []
    for it in items:
        img = (f'<img alt="photo {_e(it.photo_id)}" src="data:image/jpeg;base64,{it.thumbnail_b64}">'
               if it.thumbnail_b64 else '<div class="noimg">no image</div>')
        lines = []
        for task, pred in it.predicted.items():
            truth = it.truth.get(task)
            mark = ""
            if truth not in (None, "", "–"):
                ok = pred.split(" (")[0] == truth
                mark = f' <span class="{"ok" if ok else "bad"}">{"✓" if ok else "✗ true: " + _e(truth)}</span>'
            lines.append(f"<div><b>{_e(task)}</b>: {_e(pred)}{mark}</div>")
        cap = f"<div>“{_e(it.caption)}”</div>" if it.caption else ""
        desc = f'<div class="desc">{_e(it.description)}</div>' if it.description else ""
        cards.append(f'<div class="card">{img}<div class="pid">{_e(it.photo_id)}</div>{cap}{"".join(lines)}'
                     f"{desc}</div>")
    return f'<div class="gallery">{"".join(cards)}</div>'


def render_html(c: ReportContent) -> str:
    """The report as one HTML string."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(c.title)}</title>"
             f"<style>{CSS}</style></head><body><header><h1>{_e(c.title)}</h1>"
             '<nav><a href="#data">data</a><a href="#results">results</a><a href="#comparisons">comparisons</a>'
             '<a href="#tasks">tasks</a><a href="#training">training</a><a href="#gallery">gallery</a></nav>'
             "</header><main>"]
    parts.append(f'<section id="about"><h2>Run</h2>{_kv_table(c.facts)}')
    parts.extend(f'<p class="note">{_e(n)}</p>' for n in c.notes)
    parts.append("</section>")
    ds = dict(c.data_summary)
    reasons = ds.pop("quarantine reasons", None) or {}
    labelled = ds.pop("labelled rows per task", None) or {}
    splits = ds.pop("split", None)
    parts.append(f'<section id="data"><h2>Data summary</h2>{_kv_table(ds)}')
    if reasons:
        parts.append(f"<h3>Quarantine reasons</h3>{_kv_table(reasons, 'reasons')}")
    elif "rows quarantined" in ds:
        parts.append('<p class="note">No row was quarantined.</p>')
    if labelled:
        parts.append(f"<h3>Labelled rows per task</h3>{_kv_table(labelled, 'labelled')}")
    if splits:
        rows = "".join(f"<tr><td>{_e(s)}</td><td class=\"num\">{v.get('rows', 0)}</td>"
                       f"<td class=\"num\">{v.get('users', '–')}</td></tr>" for s, v in splits["counts"].items())
        how = (f"the data's own column {_e(splits['column'])}" if splits.get("column") else
               f"by {_e(splits['by'])}, seed {_e(splits['seed'])}, fractions {_e(splits['fractions'])}")
        parts.append(f"<h3>Split ({how})</h3><table class=\"splits\"><tr><th>split</th><th>rows</th>"
                     f"<th>users</th></tr>{rows}</table>")
    parts.append("</section>")
    parts.append(f'<section id="results"><h2>Test metrics</h2><p class="note">{_e(c.metrics_caption)}</p>'
                 f"{metrics_table(c.metrics)}</section>")
    if c.comparison is not None and len(c.comparison):
        parts.append('<section id="comparisons"><h2>Comparisons</h2><p class="note">Each task\'s main metric on '
                     "the test split: mean ± standard deviation over seeds (n = seeds); best per task in green."
                     f"</p>{comparison_table(c.comparison)}")
        if c.deltas is not None and len(c.deltas):
            parts.append("<h3>Δm: mean relative improvement over the baseline across tasks</h3>"
                         f"{deltas_table(c.deltas)}")
        if c.comparison_figure:
            parts.append(f'<div class="figs">{_figure(c.comparison_figure)}</div>')
        parts.append("</section>")
    if c.tasks:
        parts.append('<section id="tasks"><h2>Per task</h2>')
        for t in c.tasks:
            parts.append(f"<h3>{_e(t.name)} <small>({_e(t.type)})</small></h3>")
            parts.extend(f'<p class="note">{_e(n)}</p>' for n in t.notes)
            parts.append(f'<div class="figs">{"".join(_figure(f) for f in t.figures)}</div>')
        parts.append("</section>")
    if c.training:
        parts.append(f'<section id="training"><h2>Training</h2><div class="figs">'
                     f'{"".join(_figure(f) for f in c.training)}</div></section>')
    if c.gallery:
        parts.append(f'<section id="gallery"><h2>Test photos and predictions</h2>{_gallery(c.gallery)}</section>')
    parts.append("</main></body></html>")
    return "".join(parts)


def write_report(content: ReportContent, out_dir: str | Path, name: str = "report.html") -> Path:
    """Write the report atomically into `out_dir` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / name
    tmp = out / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.write_text(render_html(content), encoding="utf-8")
    os.replace(tmp, final)
    return final.resolve()
