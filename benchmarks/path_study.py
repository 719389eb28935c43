"""When along the path each method collects its attribution, on the bundled real pair: t50 and accumulation curves.

The paper argues that MA-GIG collects its large gradients late, when the object has formed, while pixel-space
paths collect them early, near the black baseline on off-manifold images. For every path method and image this
records the share of the absolute contribution mass Σ|g ⊙ Δx| collected up to each path position t, where half
of it has been collected (t50), and the signed share of ΣA; then per method the mean t50 on CIFAR-10 test images
and on gallery photographs, the paired difference to MA-GIG's t50 on the same images, and a figure of the mean
curves. Run: ``MAGIG_THREADS=1 python benchmarks/path_study.py`` (16 images, 24 points: about 30 min on one
shared core);
``--tiny`` checks the pipeline in seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

from magig_core import explain, load_autoencoder, load_classifier, runtime
from magig_core.attribution import method_spec
from magig_core.attribution.registry import method_color
from magig_core.data.bundled_sets import photos_and_cifar10
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER, gallery, reference_bank

matplotlib.use("Agg")
from matplotlib import pyplot as plt

METHODS = ("ig", "eig", "gig", "ma-gig", "blur-ig", "ig2")  # MIG (--methods) costs about 5x MA-GIG's decoder passes
REFERENCE = "ma-gig"
GRID = np.linspace(0.0, 1.0, 51)  # every method's curve is read at these t for the means


def run_method(method: str, images: torch.Tensor, classifier, autoencoder, *, steps: int, batch: int,
               references: torch.Tensor) -> dict[str, list]:
    """t50, the mass and signed shares on GRID, per image; IG2 keeps its search length at fewer steps."""
    options: dict = {"steps": steps}
    if method == "ig2":  # the default 201 steps of 0.02: the same reach in ``steps`` longer steps
        options = {"steps": steps, "ig2_step_size": 0.02 * 201 / steps}
    rows: dict[str, list] = {"t50": [], "last_segment": [], "mass": [], "signed": []}
    for part in images.split(batch):
        result = explain(part, classifier, method, autoencoder=autoencoder, references=references, **options)
        t = np.linspace(0.0, 1.0, result.num_path_points)
        rows["t50"] += result.t50.tolist()
        rows["last_segment"] += (1 - result.accumulation_mass[:, -2]).tolist()
        rows["mass"] += [np.interp(GRID, t, row).tolist() for row in result.accumulation_mass.cpu().numpy()]
        rows["signed"] += [np.interp(GRID, t, row).tolist() for row in result.accumulation.cpu().numpy()]
    return rows


def mean_se(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def table(report: dict) -> str:
    """Markdown: t50 per image group, the paired difference to MA-GIG, the signed share at mid-path and the mass
    share of the final segment (MA-GIG's paper schedule ends with a jump over the last 2/N of the distance)."""
    groups = report["groups"]
    reference = np.array(report["methods"].get(REFERENCE, {"t50": [math.nan] * len(report["images"])})["t50"])
    head = ["method", *(f"t50, {name} ({len(idx)})" for name, idx in groups.items()),
            f"t50 − MA-GIG's, paired (all {len(reference)})", "images earlier than MA-GIG", "signed share at t = 0.5",
            "mass in the last segment"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    middle = int(np.argmin(np.abs(GRID - 0.5)))
    for method, rows in report["methods"].items():
        t50 = np.array(rows["t50"])
        cells = [method_spec(method).label]
        for idx in groups.values():
            mean, se = mean_se(t50[idx])
            cells.append(f"{mean:.3f} ± {se:.3f}")
        if method == REFERENCE:
            cells += ["—", "—"]
        else:
            difference = t50 - reference
            mean, se = mean_se(difference)
            finite = np.isfinite(difference)
            cells += [f"{mean:+.3f} ± {se:.3f}", f"{int((difference[finite] < 0).sum())} / {int(finite.sum())}"]
        signed_mid, signed_se = mean_se(np.array(rows["signed"])[:, middle])
        cells.append(f"{signed_mid:.2f} ± {signed_se:.2f}")
        last, last_se = mean_se(np.array(rows["last_segment"]))
        cells.append(f"{last:.2f} ± {last_se:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(report: dict, path: Path) -> None:
    """Mean absolute-mass share along the path per image group, and the mean signed share over all images."""
    groups = report["groups"]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(4.2 * (len(groups) + 1), 3.8), sharey=True)
    panels = [(f"absolute mass collected, {name}", "mass", idx) for name, idx in groups.items()]
    panels.append(("signed share of ΣA, all images", "signed", list(range(len(report["images"])))))
    for axis, (title, key, idx) in zip(axes, panels, strict=True):
        axis.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls="--")
        for method, rows in report["methods"].items():
            curves = np.array(rows[key])[idx]
            axis.plot(GRID, np.nanmean(curves, axis=0), color=method_color(method), label=method_spec(method).label,
                      lw=2.2 if method == REFERENCE else 1.3)
        axis.axhline(0.5, color="#dddddd", lw=0.6)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("path position t (0 baseline side, 1 input)")
    axes[0].set_ylabel("share collected up to t")
    axes[-1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8, help="gallery photographs of CIFAR-10 classes")
    parser.add_argument("--thumbnails", type=int, default=8, help="bundled CIFAR-10 test images")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=24, help="path points of every method")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--tiny", action="store_true", help="2 images, 6 steps: a smoke test")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/path_study"))
    parser.add_argument("--figure", type=Path, default=Path("docs/images/path_accumulation.png"))
    args = parser.parse_args()
    if args.tiny:
        args.photos, args.thumbnails, args.steps = 1, 1, 6
    plan = runtime.configure_threads()
    started = time.perf_counter()
    classifier, autoencoder = load_classifier(REAL_CLASSIFIER), load_autoencoder(REAL_AUTOENCODER)
    images, _, names = photos_and_cifar10(args.photos, args.thumbnails, args.size)
    photos = sum("/" not in name for name in names)  # CIFAR-10 ids are paths inside the class folders
    groups = {"photographs": list(range(photos)), "CIFAR-10": list(range(photos, len(names)))}
    references = reference_bank((args.size, args.size), gallery())
    report = {"images": names, "groups": groups, "size": args.size, "steps": args.steps, "threads": plan.threads,
              "methods": {}, "seconds": {}}
    for method in args.methods.split(","):
        method_started = time.perf_counter()
        report["methods"][method] = run_method(method, images, classifier, autoencoder, steps=args.steps,
                                               batch=args.batch, references=references)
        report["seconds"][method] = time.perf_counter() - method_started
        print(f"{method}: mean t50 {np.nanmean(report['methods'][method]['t50']):.3f} "
              f"({report['seconds'][method]:.0f} s)", flush=True)
    report["total_seconds"] = time.perf_counter() - started
    markdown = (f"{len(names)} images ({photos} photographs, {len(names) - photos} CIFAR-10 test images) at "
                f"{args.size} px, {args.steps} path points per method, {plan.threads} thread(s), "
                f"{report['total_seconds'] / 60:.1f} min on a machine shared with other jobs.\n\n" + table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=1))
    Path(f"{args.out}.md").write_text(markdown + "\n")
    figure(report, args.figure)
    print(markdown)
    print(f"wrote {args.out}.json, {args.out}.md and {args.figure}")


if __name__ == "__main__":
    main()
