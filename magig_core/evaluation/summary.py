"""Set-level numbers from per-image records, and the summary JSON / CSV / Markdown table built from them.

The table's columns are the paper's top-1 games (``diffid_top1``, ``insertion_top1``, ``deletion_top1``):
set-level accuracies averaged over ratios, each the mean over images of the per-image values stored in the
records, so summaries need no attributions. Keys and column titles come from the metric list.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from magig_core.attribution.registry import method_spec
from magig_core.evaluation.plan import Job
from magig_core.evaluation.records import ImageRecord
from magig_core.metrics.definitions import METRIC_NAMES, metric
from magig_core.metrics.scores import GAME_CURVES

PAIRED = "diffid_top1"  # the metric compared image by image with the reference method
CSV_FIELDS = ("classifier", "method", "images", *METRIC_NAMES, f"{PAIRED}_se", f"paired_{PAIRED}",
              f"paired_{PAIRED}_se", "original_accuracy", "distance", "seconds_per_image", "config_hash")


def _mean(values: list[Any]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return math.fsum(finite) / len(finite) if finite else None


def _column_means(rows: list[list[float]]) -> list[float]:
    return [math.fsum(col) / len(col) for col in zip(*rows, strict=True)] if rows else []


def _standard_error(values: list[float]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(finite) < 2:
        return None
    mean = math.fsum(finite) / len(finite)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1) / len(finite))


def summarize_job(job: Job, records: list[ImageRecord]) -> dict[str, Any]:
    """Aggregate one job's per-image records (already restricted to the evaluated images, in order).

    Every metric of the list is the mean of its per-image values (NaN ones left out); the games' curves
    are the per-ratio means, so ``insertion_top1`` equals the mean of ``insertion_top1_curve``.
    """
    scores = [r.result.scores for r in records]
    distances = {s.distance for s in scores if s.distance}
    summary: dict[str, Any] = {
        "classifier": job.classifier,
        "method": job.method,
        "config_hash": job.hash,
        "config": job.config,
        "images": len(records),
        **{name: _mean([s[name] for s in scores]) for name in METRIC_NAMES},
        f"{PAIRED}_se": _standard_error([s[PAIRED] for s in scores]),
        f"image_{PAIRED}": {r.image_id: _finite_or_none(r.result.scores[PAIRED]) for r in records},
        **{f"{name}_curve": _column_means([s.curves[name] for s in scores if name in s.curves])
           for name in GAME_CURVES},
        "original_accuracy": _mean([float(s.original_correct) for s in scores if s.original_correct is not None]),
        "distance": ",".join(sorted(distances)) or None,
        "seconds_per_image": _mean([r.result.seconds for r in records]),
    }
    return summary


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def add_paired_differences(results: list[dict[str, Any]], reference: str) -> None:
    """Per classifier, each method's top-1 DiffID minus the reference method's on the same images (mean ± s.e.).

    Images are paired, so the image-to-image spread that both methods share cancels: the s.e. of the
    difference says whether a gap between two methods is larger than noise.
    """
    by_cell = {(r["classifier"], r["method"]): r for r in results}
    for result in results:
        base = by_cell.get((result["classifier"], reference))
        if base is None or result is base:
            continue
        mine, theirs = result[f"image_{PAIRED}"], base[f"image_{PAIRED}"]
        shared = sorted(i for i in set(mine) & set(theirs) if mine[i] is not None and theirs[i] is not None)
        differences = [mine[i] - theirs[i] for i in shared]
        result["paired_reference"] = reference
        result[f"paired_{PAIRED}"] = _mean(differences)
        result[f"paired_{PAIRED}_se"] = _standard_error(differences)


def uncertainty_table(results: list[dict[str, Any]]) -> str:
    """Top-1 DiffID mean ± standard error per method and classifier, and the paired difference to the reference."""
    reference = next((r["paired_reference"] for r in results if r.get("paired_reference")), None)
    label = metric(PAIRED).label
    header = ["Method", "Classifier", "images", f"{label} ± s.e."]
    if reference is not None:
        header.append(f"paired Δ {label} vs {method_spec(reference).label} ± s.e.")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        row = [method_spec(r["method"]).label, r["classifier"], str(r["images"]),
               _with_error(r[PAIRED], r.get(f"{PAIRED}_se"))]
        if reference is not None:
            paired = _with_error(r.get(f"paired_{PAIRED}"), r.get(f"paired_{PAIRED}_se"), sign=True)
            row.append("–" if r["method"] == reference else paired)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _with_error(value: float | None, error: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:+.4f}" if sign else f"{value:.4f}"
    return text + (f" ± {error:.4f}" if error is not None else "")


def write_summary(out_dir: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """summary.json, summary.csv and table.md (the paper's Table 1 layout)."""
    paths = {"json": out_dir / "summary.json", "csv": out_dir / "summary.csv", "markdown": out_dir / "table.md"}
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary["results"])
    table = markdown_table(summary["results"], summary["ratios"], summary.get("dataset", ""))
    paths["markdown"].write_text(table + "\n" + uncertainty_table(summary["results"]))
    return paths


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


TABLE_METRICS = ("diffid_top1", "insertion_top1", "deletion_top1")  # the paper's Table 1 columns


def markdown_table(results: list[dict[str, Any]], ratios: list[float], dataset: str = "") -> str:
    """Method rows × classifier column groups of the paper's top-1 games, best DiffID per column in bold."""
    classifiers = list(dict.fromkeys(r["classifier"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    cell = {(r["classifier"], r["method"]): r for r in results}
    header = ["Method"] + [f"{c} {metric(name).column()}" for c in classifiers for name in TABLE_METRICS]
    lines = [f"**{dataset}**", ""] if dataset else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ranked = TABLE_METRICS[0]
    best = {}
    for c in classifiers:
        scores = [cell[(c, m)][ranked] for m in methods if (c, m) in cell and cell[(c, m)][ranked] is not None]
        best[c] = max(scores) if scores else None
    for m in methods:
        row = [method_spec(m).label]
        for c in classifiers:
            r = cell.get((c, m))
            if r is None:
                row += ["–"] * len(TABLE_METRICS)
                continue
            values = [_fmt(r[name]) for name in TABLE_METRICS]
            if r[ranked] is not None and r[ranked] == best[c] and len(methods) > 1:
                values[0] = f"**{values[0]}**"
            row += values
        lines.append("| " + " | ".join(row) + " |")
    counts = sorted({r["images"] for r in results})
    lines.append(f"\n{'/'.join(map(str, counts))} images; Insertion/Deletion top-1 = top-1 accuracy averaged over "
                 f"the ratios {', '.join(f'{r:g}' for r in ratios)}; DiffID = Insertion − Deletion.\n")
    return "\n".join(lines) + "\n"
