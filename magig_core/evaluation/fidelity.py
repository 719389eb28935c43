"""What an autoencoder grid adds to a summary: each autoencoder's reconstruction quality on the evaluated
images, and how DiffID follows it across the grid (Pearson's r with a 95 % confidence interval).

Reconstruction is measured on the very images the rows were scored on, as the app measures it (clamped
to [0,1], D(E(x)) against x): ``mse`` is the mean over images of each image's mean squared error and
``psnr`` the mean over images of each image's 10·log10(1 / MSE) in dB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from magig_core.attribution.spaces import Autoencoder
from magig_core.data.datasets import ImageSet
from magig_core.metrics.manifold import reconstruct

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Reconstruction:
    autoencoder: str
    images: int
    mse: float
    psnr: float


@torch.no_grad()
def reconstruction_quality(name: str, autoencoder: Autoencoder, image_set: ImageSet, device: torch.device,
                           *, batch_size: int = 32) -> Reconstruction:
    """Mean per-image MSE and PSNR of D(E(x)) over every image of the set."""
    errors = []
    for start in range(0, len(image_set), batch_size):
        images = torch.stack([image_set.load(i) for i in range(start, min(start + batch_size, len(image_set)))])
        images = images.to(device).clamp(0, 1)
        rebuilt = reconstruct(autoencoder, images, batch_size=batch_size)
        errors.append((rebuilt.double() - images.double()).pow(2).flatten(1).mean(1).cpu())
    mse = torch.cat(errors)
    psnr = 10 * torch.log10(1.0 / mse)
    return Reconstruction(name, len(mse), float(mse.mean()), float(psnr.mean()))


@dataclass(frozen=True)
class Correlation:
    """Pearson's r over ``n`` pairs; the interval is Fisher's z ± 1.96/√(n − 3) (None below 4 pairs)."""

    x: str
    y: str
    n: int
    r: float | None
    low: float | None
    high: float | None


def pearson(xs: Sequence[float], ys: Sequence[float], x: str = "x", y: str = "y") -> Correlation:
    """Pearson's r of paired values with its 95 % interval from Fisher's transformation."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("pearson needs as many x as y values")
    if n < 2:
        return Correlation(x, y, n, None, None, None)
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True))
    sxx, syy = math.fsum((a - mx) ** 2 for a in xs), math.fsum((b - my) ** 2 for b in ys)
    if sxx == 0 or syy == 0:
        return Correlation(x, y, n, None, None, None)
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    if n < 4 or abs(r) == 1:
        return Correlation(x, y, n, r, None, None)
    z, half = math.atanh(r), Z_95 / math.sqrt(n - 3)
    return Correlation(x, y, n, r, math.tanh(z - half), math.tanh(z + half))


def fidelity_summary(results: list[dict[str, Any]], quality: dict[str, Reconstruction], metric: str) -> dict[str, Any]:
    """Per classifier and method with rows on several autoencoders: the rows, and Pearson's r of their
    reconstruction PSNR with their ``metric``. (r with a paired difference against a row of another method
    is the same number: that row's mean is subtracted from every row alike.)"""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        if result["config"].get("autoencoder") in quality:
            groups.setdefault((result["classifier"], result["method"]), []).append(result)
    ladders = []
    for (classifier, method), rows in groups.items():
        rows = [r for r in rows if r.get(metric) is not None]
        if len({r["config"]["autoencoder"] for r in rows}) < 2:
            continue
        psnr = [quality[r["config"]["autoencoder"]].psnr for r in rows]
        ladders.append({"classifier": classifier, "method": method, "rows": [r["row"] for r in rows],
                        "correlations": [asdict(pearson(psnr, [r[metric] for r in rows], "psnr", metric))]})
    return {"reconstruction": {name: asdict(q) for name, q in quality.items()}, "ladders": ladders}


def fidelity_markdown(fidelity: dict[str, Any], results: list[dict[str, Any]], metric: str, paired: str,
                      label: str) -> str:
    """Per ladder: each row's reconstruction next to its ``metric`` (``label``) and paired difference, then r."""
    quality = fidelity["reconstruction"]
    by_row = {(r["classifier"], r.get("row") or r["method"]): r for r in results}
    lines = []
    for ladder in fidelity["ladders"]:
        lines += [f"\n**Autoencoder fidelity: {ladder['method']} on {ladder['classifier']}**\n",
                  f"| Row | Autoencoder | Recon MSE | Recon PSNR (dB) | {label} ± s.e. | paired Δ ± s.e. |",
                  "|---|---|---|---|---|---|"]
        for row in ladder["rows"]:
            r = by_row[(ladder["classifier"], row)]
            q = quality[r["config"]["autoencoder"]]
            lines.append(f"| {row} | {q['autoencoder']} | {q['mse']:.5f} | {q['psnr']:.2f} | "
                         f"{_value(r.get(metric), r.get(f'{metric}_se'))} | "
                         f"{_value(r.get(paired), r.get(f'{paired}_se'), sign=True)} |")
        for c in ladder["correlations"]:
            interval = "" if c["low"] is None else f" [{c['low']:+.2f}, {c['high']:+.2f}] (95 %, Fisher z)"
            r_text = "–" if c["r"] is None else f"{c['r']:+.2f}"
            lines.append(f"\nPearson r(reconstruction PSNR, {c['y']}) over {c['n']} rows = {r_text}{interval}")
    return "\n".join(lines) + "\n" if lines else ""


def _value(value: float | None, error: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:+.4f}" if sign else f"{value:.4f}"
    return text + (f" ± {error:.4f}" if error is not None else "")
