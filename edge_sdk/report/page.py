"""One self-contained HTML page of an evaluation: every plot inline SVG, every picture an inline PNG,
no script or style from elsewhere, so it opens offline and can be archived or mailed as one file.
A small inline script checks that every picture decoded and marks the page (``data-ready``), which
is what a browser test looks for; it logs to the console only when something failed to show."""

from __future__ import annotations

import base64
from html import escape

import numpy as np

from edge_sdk import metrics
from edge_sdk.report import svg

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; } td, th { border: 1px solid #bbb; padding: 4px 10px; }
th { background: #f0f0f0; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; } .plots svg { border: 1px solid #ddd; background: #fff; }
figure { margin: 0 0 16px; } figcaption { font-size: 13px; color: #444; margin-bottom: 4px; }
figure img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 13px; } code { background: #f4f4f4; padding: 1px 4px; }
"""

CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (im) {
    if (!im.complete || im.naturalWidth === 0) bad.push(im.alt || 'image');
  });
  if (document.querySelectorAll('svg').length < 3) bad.push('plots');
  if (bad.length) { console.error('report: not shown: ' + bad.join(', ')); document.body.dataset.ready = 'failed'; }
  else document.body.dataset.ready = 'ok';
});
"""


def _num(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "n/a" if not np.isfinite(v) else f"{float(v):.4g}"
    return escape(str(v))


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for k, v in enumerate(row):
            numeric = k > 0 and isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_num(v)}</td>' if numeric else f"<td>{_num(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _flatten(obj, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts and lists -> (dotted key, value) rows, for results of any shape."""
    if isinstance(obj, dict):
        rows = []
        for k, v in obj.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, (dict, list, tuple)) for v in obj):
        rows = []
        for i, v in enumerate(obj):
            rows += _flatten(v, f"{prefix}[{i}]")
        return rows
    if isinstance(obj, (list, tuple)):
        return [(prefix, ", ".join(_num(v) for v in obj))]
    return [(prefix, obj)]


def per_defect_auroc(labels: np.ndarray, scores: np.ndarray, defect_types: list[str]) -> list[tuple[str, int, float]]:
    """(defect type, images, AUROC of that type against every good image) for each defect type."""
    labels = np.asarray(labels)
    good = labels == 0
    types = np.asarray(defect_types, dtype=object)
    rows = []
    for t in sorted({d for d, lab in zip(defect_types, labels) if lab == 1}):
        sel = good | ((types == t) & (labels == 1))
        n = int(((types == t) & (labels == 1)).sum())
        auc = metrics.image_auroc(labels[sel], scores[sel]) if good.any() else float("nan")
        rows.append((t, n, auc))
    return rows


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def render(*, title: str, summary: dict, labels, scores, defect_types: list[str], threshold: float | None,
           band: tuple[float, float] | None, worst: list[dict], regions: dict | None, lineage: dict) -> str:
    """The page. ``summary``: the metrics of `edge-sdk eval`; ``band``: the review band in raw-score
    units (or None); ``worst``: dicts with kind ("false accept" / "false reject"), path, score and
    png (bytes); ``regions``: eval's region / k-of-n report or None; ``lineage``: name -> value."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    both = bool((labels[finite] == 0).any() and (labels[finite] == 1).any())
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="note">{len(labels)} images ({int((labels == 1).sum())} defective); decision: score &ge; '
            f"threshold is a reject{'; scores within the review band are sent to review' if band else ''}.</p>"]

    body.append("<h2>Summary</h2>")
    keys = ("image_auroc", "auprc", "pixel_auroc", "pro", "threshold", "f1", "accuracy", "tpr", "tnr", "precision",
            "ms_per_image")
    body.append(_table([(k, summary.get(k)) for k in keys if k in summary], ("metric", "value")))

    body.append('<h2>Curves and score distributions</h2><div class="plots">')
    if both:
        y, s = labels[finite], scores[finite]
        fpr, tpr, _ = metrics.roc_curve(y, s)
        recall, precision, _ = metrics.pr_curve(y, s)
        marks_roc, marks_pr = [], []
        if threshold is not None:
            c = metrics.confusion(y, s, threshold)
            op_fpr = c["fp"] / max(1, c["fp"] + c["tn"])
            op_tpr = c["tp"] / max(1, c["tp"] + c["fn"])
            marks_roc.append((op_fpr, op_tpr, "threshold"))
            if c["tp"] + c["fp"]:
                marks_pr.append((op_tpr, c["tp"] / (c["tp"] + c["fp"]), "threshold"))
        body.append(svg.line_chart([(f"ROC (AUROC {metrics.image_auroc(y, s):.3f})", fpr, tpr)], title="ROC",
                                   xlabel="false positive rate (good rejected)",
                                   ylabel="true positive rate (defects rejected)", diagonal=True, marks=marks_roc))
        body.append(svg.line_chart([(f"PR (AUPRC {metrics.auprc(y, s):.3f})", recall, precision)],
                                   title="Precision-recall", xlabel="recall", ylabel="precision", marks=marks_pr))
    else:
        body.append('<p class="note">ROC and PR curves need good and defective images with finite scores.</p>')
    lines = [(threshold, "threshold")] if threshold is not None else []
    body.append(svg.histogram([("good", scores[labels == 0]), ("defective", scores[labels == 1])],
                              title="Image scores", xlabel="anomaly score", lines=lines, band=band))
    body.append("</div>")

    if threshold is not None and finite.any():
        c = metrics.confusion(labels[finite], scores[finite], threshold)
        body.append("<h2>Confusion matrix at the threshold</h2>")
        body.append(_table([("good", c["tn"], c["fp"]), ("defective", c["fn"], c["tp"])],
                           ("truth \\ verdict", "accept", "reject")))
        notes = []
        if (~finite).any():
            notes.append(f"{int((~finite).sum())} image(s) with a non-finite score (verdict: review) are not counted")
        if band is not None:
            inside = finite & (scores > band[0]) & (scores < band[1])
            notes.append(f"inside the review band: {int((inside & (labels == 0)).sum())} good, "
                         f"{int((inside & (labels == 1)).sum())} defective (the runtime sends these to review)")
        if notes:
            body.append('<p class="note">' + "; ".join(notes) + ".</p>")

    rows = per_defect_auroc(labels[finite], scores[finite], [d for d, f in zip(defect_types, finite) if f])
    if rows:
        body.append("<h2>Per defect type</h2>")
        body.append(_table(rows, ("defect type", "images", "AUROC vs good")))

    body.append("<h2>Worst false accepts and false rejects</h2>")
    if worst:
        for w in worst:
            caption = f"{w['kind']}: {w['path']} (score {w['score']:.4g})"
            body.append(f"<figure><figcaption>{escape(caption)}</figcaption>{_png(w['png'], caption)}</figure>")
    else:
        body.append('<p class="note">None: every image was judged right at the threshold.</p>')

    if regions:
        body.append("<h2>Regions and k-of-n</h2>")
        body.append(_table(_flatten(regions), ("result", "value")))

    body.append("<h2>Lineage</h2>")
    body.append(_table(sorted(lineage.items()), ("item", "value")))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(body) + f"<script>{CHECK_SCRIPT}</script></body></html>\n")
