"""Where MA-GIG's completeness residual comes from on the bundled real pair, and what refinement buys.

For each image: the relative residual, the share of it made inside the path versus in the final jump to
the input, how large the late steps are against the median step, and how much the target probability
oscillates; then the same with ``substeps`` (the path unchanged, k gradients per pixel segment): the
residual, DiffID on these images and the time. Run: ``python benchmarks/completeness.py`` (minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from magig_core import explain, load_autoencoder, load_classifier
from magig_core.data.bundled_sets import photos_and_cifar10
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER
from magig_core.metrics.scores import score

GAMES = ("diffid_top1", "insertion_top1", "deletion_top1")  # the paper's games, means over the images


def breakdown(result) -> dict[str, list[float]]:
    """Per image: relative residuals, the final jump's share of the error, late step size and oscillation."""
    errors = result.segment_errors.double()
    gap = (result.path_end_output - result.path_start_output).abs().double()
    steps = torch.stack([(result.frames[:, k + 1] - result.frames[:, k]).flatten(1).norm(dim=1)
                         for k in range(result.frames.shape[1] - 1)], dim=1).double()
    late = steps[:, int(0.8 * steps.shape[1]):]
    probs = result.path_probs.double()
    variation = probs.diff(dim=1).abs().sum(dim=1)
    net = (probs[:, -1] - probs[:, 0]).abs().clamp_min(1e-12)
    return {
        "relative_residual": (errors.sum(1).abs() / gap).tolist(),
        "final_jump_share": (errors[:, -1].abs() / errors.abs().sum(1)).tolist(),
        "interior_abs_error_over_gap": (errors[:, :-1].abs().sum(1) / gap).tolist(),
        "late_step_over_median": (late.max(1).values / steps.median(1).values).tolist(),
        "probability_variation_over_net_change": (variation / net).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--thumbnails", type=int, default=4, help="bundled CIFAR-10 test images")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--substeps", default="1,8", help="comma-separated refinements to compare")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/completeness.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier, autoencoder = load_classifier(REAL_CLASSIFIER), load_autoencoder(REAL_AUTOENCODER)
    images, labels, names = photos_and_cifar10(args.photos, args.thumbnails, args.size)
    report = {"images": names, "size": args.size, "steps": args.steps, "threads": args.threads, "runs": {}}
    for substeps in (int(k) for k in args.substeps.split(",")):
        started = time.perf_counter()
        result = explain(images, classifier, "ma-gig", autoencoder=autoencoder, targets=labels, steps=args.steps,
                         frames=args.steps, substeps=substeps)
        seconds = time.perf_counter() - started
        scores = score(result, classifier, images)  # result.targets are the labels
        games = {name: statistics.fmean(s[name] for s in scores) for name in GAMES}
        numbers = breakdown(result)
        report["runs"][substeps] = {"seconds_per_image": seconds / len(names), **games, **numbers}
        medians = {key: statistics.median(values) for key, values in numbers.items()}
        print(f"substeps={substeps}: {seconds / len(names):.1f} s/image, diffid_top1 {games['diffid_top1']:.4f}, "
              + ", ".join(f"median {k} {v:.3g}" for k, v in medians.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
