"""Score attribution methods on demo images against ground truth and format the result as Markdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.attribution import explain, method_spec
from magig_core.attribution.registry import shared_options_for
from magig_core.demo.world import Samples
from magig_core.metrics.faithfulness import faithfulness
from magig_core.metrics.localization import energy_in_mask, pointing_game, random_attribution_energy


@dataclass
class MethodRow:
    method: str
    energy_in_mask: float
    pointing_game: float
    diffid: float
    insertion: float
    deletion: float
    completeness: float  # median |ΣA − ΔF| / |ΔF| over images; NaN where a method has no single baseline
    seconds: float


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
    started = time.perf_counter()
    parts, residuals = [], []
    for begin in range(0, len(samples), batch_size):
        rows = slice(begin, begin + batch_size)
        result = explain(
            samples.images[rows],
            classifier,
            method,
            autoencoder=autoencoder,
            targets=samples.labels[rows],
            **shared_options_for(method, {"steps": steps}),
        )
        parts.append(result.attributions.detach().cpu())
        change = (result.input_output - result.baseline_output).abs().clamp_min(1e-12)
        residuals.append((result.completeness_residual / change).detach().cpu())
        log(f"{method}: {min(begin + batch_size, len(samples))}/{len(samples)} images")
    attributions = torch.cat(parts)
    seconds = time.perf_counter() - started
    games = faithfulness(classifier, samples.images, attributions, samples.labels)
    return MethodRow(
        method=method,
        energy_in_mask=float(energy_in_mask(attributions, samples.masks).mean()),
        pointing_game=float(pointing_game(attributions, samples.masks).mean()),
        diffid=games.diffid,
        insertion=games.insertion,
        deletion=games.deletion,
        completeness=float(torch.cat(residuals).median()),
        seconds=seconds,
    )


def markdown_table(rows: Sequence[MethodRow], samples: Samples, header: str) -> str:
    """One row per method plus the chance level of a random map; bold marks each column's best.

    The completeness residual is relative to the objective's change along the path (median over images),
    so it reads the same for confident and unsure predictions: near 0, the Riemann sum resolves the path;
    near 1, the path is too coarse for the classifier and the map says little.
    """
    columns = [
        ("Energy in mask ↑", "energy_in_mask", max),
        ("Pointing game ↑", "pointing_game", max),
        ("DiffID ↑", "diffid", max),
        ("Insertion ↑", "insertion", max),
        ("Deletion ↓", "deletion", min),
    ]
    best = {attr: pick(getattr(r, attr) for r in rows) for _, attr, pick in columns}
    lines = [
        header,
        "",
        "| Method | " + " | ".join(c[0] for c in columns) + " | Completeness residual ↓ | Time (s) |",
    ]
    lines.append("|" + " --- |" * (len(columns) + 3))
    for row in rows:
        cells = []
        for _, attr, _ in columns:
            value = f"{getattr(row, attr):.4f}"
            cells.append(f"**{value}**" if getattr(row, attr) == best[attr] else value)
        residual = "–" if row.completeness != row.completeness else f"{row.completeness:.3f}"
        lines.append(
            f"| {method_spec(row.method).label} | " + " | ".join(cells) + f" | {residual} | {row.seconds:.0f} |"
        )
    chance = float(random_attribution_energy(samples.masks).mean())
    lines.append(f"| random map (chance) | {chance:.4f} | {chance:.4f} | – | – | – | – | – |")
    return "\n".join(lines) + "\n"
