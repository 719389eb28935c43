"""Score attribution methods on demo images against ground truth and format the result as Markdown."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.attribution import explain, method_spec
from magig_core.attribution.registry import shared_options_for
from magig_core.demo.world import Samples
from magig_core.metrics.definitions import metric
from magig_core.metrics.localization import random_attribution_energy
from magig_core.metrics.scores import Scores, score

# Set-level columns: the mean over images of each metric, except the residual, whose median is robust to the
# few images where the output barely changes along the path.
MEAN_COLUMNS = ("energy_in_mask", "pointing_game", "diffid_top1", "insertion_top1", "deletion_top1")
MEDIAN_COLUMN = "completeness_relative"


@dataclass(frozen=True)
class MethodRow:
    """One method's scores on every demo image and the wall time of explaining them."""

    method: str
    scores: list[Scores]
    seconds: float

    def mean(self, name: str) -> float:
        values = [s[name] for s in self.scores if math.isfinite(s[name])]
        return math.fsum(values) / len(values) if values else math.nan

    def median(self, name: str) -> float:
        """Median over the images where the metric is defined (NaN where it is nowhere)."""
        values = torch.tensor([s[name] for s in self.scores], dtype=torch.float64)
        return float(values.nanmedian()) if values.isfinite().any() else math.nan


def score_method(
    method: str,
    samples: Samples,
    classifier: nn.Module,
    autoencoder: nn.Module,
    *,
    steps: int,
    batch_size: int,
    log: Callable[[str], None] = print,
) -> MethodRow:
    """Explain every sample's true class with one method, then score localization and faithfulness."""
    seconds, scores = 0.0, []
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
        seconds += time.perf_counter() - started
        scores += score(result, classifier, samples.images[rows], masks=samples.masks[rows])
        log(f"{method}: {min(begin + batch_size, len(samples))}/{len(samples)} images")
    return MethodRow(method=method, scores=scores, seconds=seconds)


def markdown_table(rows: Sequence[MethodRow], samples: Samples, header: str) -> str:
    """One row per method plus the chance level of a random map; bold marks each column's best.

    Column titles and directions come from the metric list. The completeness residual is relative to the
    objective's change along the path (median over images), so it reads the same for confident and unsure
    predictions: near 0, the Riemann sum resolves the path; near 1, the path is too coarse for the
    classifier and the map says little.
    """
    columns = [metric(name) for name in MEAN_COLUMNS]
    means = {(row.method, m.name): row.mean(m.name) for row in rows for m in columns}
    pick = {"higher": max, "lower": min}
    best = {m.name: pick[m.better](means[(row.method, m.name)] for row in rows) for m in columns}
    titles = [m.column() for m in columns] + [f"{metric(MEDIAN_COLUMN).column()} (median)", "Time (s)"]
    lines = [header, "", "| Method | " + " | ".join(titles) + " |", "|" + " --- |" * (len(titles) + 1)]
    for row in rows:
        cells = []
        for m in columns:
            value = f"{means[(row.method, m.name)]:.4f}"
            cells.append(f"**{value}**" if means[(row.method, m.name)] == best[m.name] else value)
        residual = row.median(MEDIAN_COLUMN)
        cells += ["–" if math.isnan(residual) else f"{residual:.3f}", f"{row.seconds:.0f}"]
        lines.append(f"| {method_spec(row.method).label} | " + " | ".join(cells) + " |")
    chance = float(random_attribution_energy(samples.masks).mean())
    blanks = " | ".join(["–"] * (len(titles) - 2))
    lines.append(f"| random map (chance) | {chance:.4f} | {chance:.4f} | {blanks} |")
    return "\n".join(lines) + "\n"
