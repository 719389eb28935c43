"""Score attribution methods on demo images against ground truth and format the result as Markdown."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from magig_core.attribution import explain
from magig_core.attribution.registry import shared_options_for
from magig_core.demo.world import Samples
from magig_core.metrics.definitions import metric
from magig_core.metrics.localization import random_attribution_energy
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import score

# Set-level columns: the mean over images of each metric, except the residual, whose median is robust to the
# few images where the output barely changes along the path.
MEAN_COLUMNS = ("energy_in_mask", "pointing_game", "diffid_top1", "insertion_top1", "deletion_top1")
MEDIAN_COLUMN = "completeness_relative"


def mean(results: Sequence[ScoredMethod], name: str) -> float:
    """Mean of one metric over the images where it is defined (NaN where it is nowhere)."""
    values = [r.scores[name] for r in results if math.isfinite(r.scores[name])]
    return math.fsum(values) / len(values) if values else math.nan


def median(results: Sequence[ScoredMethod], name: str) -> float:
    """Median of one metric over the images where it is defined (NaN where it is nowhere)."""
    values = torch.tensor([r.scores[name] for r in results], dtype=torch.float64)
    return float(values.nanmedian()) if values.isfinite().any() else math.nan


def score_method(
    method: str,
    samples: Samples,
    classifier: nn.Module,
    autoencoder: nn.Module,
    *,
    steps: int,
    batch_size: int,
    on_batch: Callable[[int], None] = lambda images: None,
) -> list[ScoredMethod]:
    """Explain every sample's true class with one method, then score localization and faithfulness;
    ``on_batch`` hears how many images each finished batch held."""
    results: list[ScoredMethod] = []
    for begin in range(0, len(samples), batch_size):
        rows = slice(begin, begin + batch_size)
        started = time.perf_counter()
        result = explain(
            samples.images[rows],
            classifier,
            method,
            autoencoder=autoencoder,
            targets=samples.labels[rows],
            **shared_options_for(method, {"steps": steps}),
        )
        seconds = (time.perf_counter() - started) / len(result.targets)
        results += [ScoredMethod(method, s, seconds, result.config)
                    for s in score(result, classifier, samples.images[rows], masks=samples.masks[rows])]
        on_batch(len(result.targets))
    return results


def markdown_table(rows: Sequence[Sequence[ScoredMethod]], samples: Samples, header: str) -> str:
    """One row per method (its results on every image) plus the chance level of a random map; bold marks
    each column's best.

    Column titles and directions come from the metric list. The completeness residual is relative to the
    objective's change along the path (median over images), so it reads the same for confident and unsure
    predictions: near 0, the Riemann sum resolves the path; near 1, the path is too coarse for the
    classifier and the map says little.
    """
    columns = [metric(name) for name in MEAN_COLUMNS]
    means = [{m.name: mean(row, m.name) for m in columns} for row in rows]
    pick = {"higher": max, "lower": min}
    best = {m.name: pick[m.better](row[m.name] for row in means) for m in columns}
    titles = [m.column() for m in columns] + [f"{metric(MEDIAN_COLUMN).column()} (median)", "Time (s)"]
    lines = [header, "", "| Method | " + " | ".join(titles) + " |", "|" + " --- |" * (len(titles) + 1)]
    for row, row_means in zip(rows, means, strict=True):
        cells = [f"**{row_means[m.name]:.4f}**" if row_means[m.name] == best[m.name] else f"{row_means[m.name]:.4f}"
                 for m in columns]
        residual = median(row, MEDIAN_COLUMN)
        cells += ["–" if math.isnan(residual) else f"{residual:.3f}", f"{math.fsum(r.seconds for r in row):.0f}"]
        lines.append(f"| {row[0].label} | " + " | ".join(cells) + " |")
    chance = float(random_attribution_energy(samples.masks).mean())
    blanks = " | ".join(["–"] * (len(titles) - 2))
    lines.append(f"| random map (chance) | {chance:.4f} | {chance:.4f} | {blanks} |")
    return "\n".join(lines) + "\n"
