"""Set-level numbers from per-image records, and the summary JSON / CSV / Markdown table built from them.

The table's columns are the paper's top-1 games (``diffid_top1``, ``insertion_top1``, ``deletion_top1``):
set-level accuracies averaged over ratios, each the mean over images of the per-image values stored in the
records, so summaries need no attributions. Keys and column titles come from the metric list.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magig_core.attribution.registry import method_spec
from magig_core.evaluation.fidelity import fidelity_markdown
from magig_core.evaluation.plan import Job, PlanError
from magig_core.evaluation.records import ImageRecord
from magig_core.metrics.definitions import METRIC_NAMES, metric
from magig_core.metrics.scores import GAME_CURVES

PAIRED = "diffid_top1"  # the metric compared image by image with the reference method
CSV_FIELDS = ("classifier", "method", "images", *METRIC_NAMES, f"{PAIRED}_se", f"paired_{PAIRED}",
              f"paired_{PAIRED}_se", "original_accuracy", "distance", "seconds_per_image", "config_hash", "row")


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
        "row": job.row,
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


def row_name(result: dict[str, Any]) -> str:
    """The row a result fills: its method, plus ``option=value`` for each option a grid varies."""
    return result.get("row") or result["method"]


def row_label(row: str) -> str:
    """A row as tables show it: the method's label, then what the grid varies (``MA-GIG fraction=0.05``)."""
    method, _, rest = row.partition(" ")
    return " ".join([method_spec(method).label, *([rest] if rest else [])])


def resolve_reference(reference: str, rows: list[str]) -> str:
    """The row a ``--reference-method`` value names: a row as written (any alias of its method), or a
    method alone, which means that method's first row."""
    method, _, rest = reference.strip().partition(" ")
    wanted = " ".join([method_spec(method).name, *rest.split()])
    if wanted in rows or rest:
        if wanted not in rows:
            raise PlanError(f"no row {reference!r} to compare with; the rows are: {'; '.join(rows)}")
        return wanted
    return next((row for row in rows if row.partition(" ")[0] == wanted), wanted)


def add_paired_differences(results: list[dict[str, Any]], reference: str) -> None:
    """Per classifier, each row's top-1 DiffID minus the reference row's on the same images (mean ± s.e.).

    Images are paired, so the image-to-image spread that both rows share cancels: the s.e. of the
    difference says whether a gap between two methods (or two settings of one) is larger than noise.
    """
    by_cell = {(r["classifier"], row_name(r)): r for r in results}
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
    """Top-1 DiffID mean ± standard error per row and classifier, and the paired difference to the reference."""
    reference = next((r["paired_reference"] for r in results if r.get("paired_reference")), None)
    label = metric(PAIRED).label
    header = ["Method", "Classifier", "images", f"{label} ± s.e."]
    if reference is not None:
        header.append(f"paired Δ {label} vs {row_label(reference)} ± s.e.")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        row = [row_label(row_name(r)), r["classifier"], str(r["images"]),
               _with_error(r[PAIRED], r.get(f"{PAIRED}_se"))]
        if reference is not None:
            paired = _with_error(r.get(f"paired_{PAIRED}"), r.get(f"paired_{PAIRED}_se"), sign=True)
            row.append("–" if row_name(r) == reference else paired)
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
    table = markdown_table(summary["results"], summary["ratios"], summary.get("dataset", ""),
                           extra=summary.get("metrics", ()))
    fidelity = ""
    if summary.get("fidelity"):
        fidelity = fidelity_markdown(summary["fidelity"], summary["results"], PAIRED, f"paired_{PAIRED}",
                                     metric(PAIRED).label)
    paths["markdown"].write_text(table + "\n" + uncertainty_table(summary["results"]) + fidelity)
    return paths


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


TABLE_METRICS = ("diffid_top1", "insertion_top1", "deletion_top1")  # the paper's Table 1 columns


def markdown_table(results: list[dict[str, Any]], ratios: list[float], dataset: str = "",
                   extra: Sequence[str] = ()) -> str:
    """Rows × classifier column groups of the paper's top-1 games (and the ``extra`` metrics asked for), best
    DiffID per column in bold. A row is a method, or one setting of it where a grid varies its options."""
    columns = (*TABLE_METRICS, *extra)
    classifiers = list(dict.fromkeys(r["classifier"] for r in results))
    methods = list(dict.fromkeys(row_name(r) for r in results))
    cell = {(r["classifier"], row_name(r)): r for r in results}
    header = ["Method"] + [f"{c} {metric(name).column()}" for c in classifiers for name in columns]
    lines = [f"**{dataset}**", ""] if dataset else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ranked = TABLE_METRICS[0]
    best = {}
    for c in classifiers:
        scores = [cell[(c, m)][ranked] for m in methods if (c, m) in cell and cell[(c, m)][ranked] is not None]
        best[c] = max(scores) if scores else None
    for m in methods:
        row = [row_label(m)]
        for c in classifiers:
            r = cell.get((c, m))
            if r is None:
                row += ["–"] * len(columns)
                continue
            values = [_fmt(r.get(name)) for name in columns]
            if r[ranked] is not None and r[ranked] == best[c] and len(methods) > 1:
                values[0] = f"**{values[0]}**"
            row += values
        lines.append("| " + " | ".join(row) + " |")
    counts = sorted({r["images"] for r in results})
    lines.append(f"\n{'/'.join(map(str, counts))} images; Insertion/Deletion top-1 = top-1 accuracy averaged over "
                 f"the ratios {', '.join(f'{r:g}' for r in ratios)}; DiffID = Insertion − Deletion.\n")
    return "\n".join(lines) + "\n"
