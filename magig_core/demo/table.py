"""Score attribution methods on demo images against ground truth and format the result as Markdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.attribution.api import explain
from magig_core.attribution.validation import LATENT_METHODS
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
    parts = []
    for begin in range(0, len(samples), batch_size):
        rows = slice(begin, begin + batch_size)
        result = explain(
            samples.images[rows],
            classifier,
            method,
            autoencoder=autoencoder if method in LATENT_METHODS else None,
            targets=samples.labels[rows],
            steps=steps,
        )
        parts.append(result.attributions.detach().cpu())
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
        seconds=seconds,
    )


def markdown_table(rows: Sequence[MethodRow], samples: Samples, header: str) -> str:
    """One row per method plus the chance level of a random map; bold marks each column's best."""
    columns = [
        ("Energy in mask ↑", "energy_in_mask", max),
        ("Pointing game ↑", "pointing_game", max),
        ("DiffID ↑", "diffid", max),
        ("Insertion ↑", "insertion", max),
        ("Deletion ↓", "deletion", min),
    ]
    best = {attr: pick(getattr(r, attr) for r in rows) for _, attr, pick in columns}
    lines = [header, "", "| Method | " + " | ".join(c[0] for c in columns) + " | Time (s) |"]
    lines.append("|" + " --- |" * (len(columns) + 2))
    for row in rows:
        cells = []
        for _, attr, _ in columns:
            value = f"{getattr(row, attr):.4f}"
            cells.append(f"**{value}**" if getattr(row, attr) == best[attr] else value)
        lines.append(f"| {row.method.upper()} | " + " | ".join(cells) + f" | {row.seconds:.0f} |")
    chance = float(random_attribution_energy(samples.masks).mean())
    lines.append(f"| random map (chance) | {chance:.4f} | {chance:.4f} | – | – | – | – |")
    return "\n".join(lines) + "\n"
