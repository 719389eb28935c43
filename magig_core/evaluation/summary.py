"""Set-level numbers from per-image records, and the summary JSON / CSV / Markdown table built from them.

The table's Ins, Del and DiffID are set-level accuracies averaged over ratios; each equals the mean over
images of the per-image contributions stored in the records, so summaries need no attributions.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from magig_core.attribution.registry import method_spec
from magig_core.evaluation.plan import Job

CSV_FIELDS = ("classifier", "method", "images", "diffid", "diffid_se", "paired_diffid", "paired_diffid_se",
              "insertion", "deletion", "insertion_soft",
              "deletion_soft", "original_accuracy", "completeness_residual", "relative_completeness_residual",
              "confidence_auc", "distance_auc", "distance", "seconds_per_image", "config_hash")


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


def summarize_job(job: Job, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate one job's per-image records (already restricted to the evaluated images, in order)."""
    ins_curve = _column_means([[float(v) for v in r["insertion_correct"]] for r in records])
    del_curve = _column_means([[float(v) for v in r["deletion_correct"]] for r in records])
    distances = {r["distance"] for r in records if r.get("distance")}
    return {
        "classifier": job.classifier,
        "method": job.method,
        "config_hash": job.hash,
        "config": job.config,
        "images": len(records),
        "insertion": _mean([r["insertion"] for r in records]),
        "deletion": _mean([r["deletion"] for r in records]),
        "diffid": _mean([r["diffid"] for r in records]),
        "diffid_se": _standard_error([r["diffid"] for r in records]),
        "image_diffid": {r["image_id"]: r["diffid"] for r in records},
        "insertion_curve": ins_curve,
        "deletion_curve": del_curve,
        "insertion_soft": _mean([_mean(r["insertion_soft"]) for r in records]),
        "deletion_soft": _mean([_mean(r["deletion_soft"]) for r in records]),
        "insertion_soft_curve": _column_means([r["insertion_soft"] for r in records]),
        "deletion_soft_curve": _column_means([r["deletion_soft"] for r in records]),
        "original_accuracy": _mean([float(r["original_correct"]) for r in records]),
        "completeness_residual": _mean([r["completeness_residual"] for r in records]),
        "relative_completeness_residual": _mean([r["relative_completeness_residual"] for r in records]),
        "confidence_auc": _mean([r["confidence_auc"] for r in records]),
        "distance_auc": _mean([r.get("distance_auc") for r in records]),
        "distance": ",".join(sorted(distances)) or None,
        "seconds_per_image": _mean([r["seconds"] for r in records]),
    }


def add_paired_differences(results: list[dict[str, Any]], reference: str) -> None:
    """Per classifier, each method's DiffID minus the reference method's on the same images (mean ± s.e.).

    Images are paired, so the image-to-image spread that both methods share cancels: the s.e. of the
    difference says whether a gap between two methods is larger than noise.
    """
    by_cell = {(r["classifier"], r["method"]): r for r in results}
    for result in results:
        base = by_cell.get((result["classifier"], reference))
        if base is None or result is base:
            continue
        shared = sorted(set(result["image_diffid"]) & set(base["image_diffid"]))
        differences = [result["image_diffid"][i] - base["image_diffid"][i] for i in shared]
        result["paired_reference"] = reference
        result["paired_diffid"] = _mean(differences)
        result["paired_diffid_se"] = _standard_error(differences)


def uncertainty_table(results: list[dict[str, Any]]) -> str:
    """DiffID mean ± standard error per method and classifier, and the paired difference to the reference."""
    reference = next((r["paired_reference"] for r in results if r.get("paired_reference")), None)
    header = ["Method", "Classifier", "images", "DiffID ± s.e."]
    if reference is not None:
        header.append(f"paired Δ DiffID vs {method_spec(reference).label} ± s.e.")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        row = [method_spec(r["method"]).label, r["classifier"], str(r["images"]),
               _with_error(r["diffid"], r.get("diffid_se"))]
        if reference is not None:
            paired = _with_error(r.get("paired_diffid"), r.get("paired_diffid_se"), sign=True)
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


def markdown_table(results: list[dict[str, Any]], ratios: list[float], dataset: str = "") -> str:
    """Method rows × classifier column groups of DiffID ↑ / Ins ↑ / Del ↓, best DiffID per column in bold."""
    classifiers = list(dict.fromkeys(r["classifier"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    cell = {(r["classifier"], r["method"]): r for r in results}
    header = ["Method"] + [f"{c} {m}" for c in classifiers for m in ("DiffID ↑", "Ins ↑", "Del ↓")]
    lines = [f"**{dataset}**", ""] if dataset else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {}
    for c in classifiers:
        scores = [cell[(c, m)]["diffid"] for m in methods if (c, m) in cell and cell[(c, m)]["diffid"] is not None]
        best[c] = max(scores) if scores else None
    for m in methods:
        row = [method_spec(m).label]
        for c in classifiers:
            r = cell.get((c, m))
            if r is None:
                row += ["–"] * 3
                continue
            diffid = _fmt(r["diffid"])
            if r["diffid"] is not None and r["diffid"] == best[c] and len(methods) > 1:
                diffid = f"**{diffid}**"
            row += [diffid, _fmt(r["insertion"]), _fmt(r["deletion"])]
        lines.append("| " + " | ".join(row) + " |")
    counts = sorted({r["images"] for r in results})
    lines.append(f"\n{'/'.join(map(str, counts))} images; Ins/Del = top-1 accuracy averaged over the ratios "
                 f"{', '.join(f'{r:g}' for r in ratios)}; DiffID = Ins − Del.\n")
    return "\n".join(lines) + "\n"
