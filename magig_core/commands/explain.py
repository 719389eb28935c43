"""``python -m magig_core explain``: attribution maps for image files from the command line.

Writes, per image, one comparison figure (input + one map per method on a shared colour scale), the raw
attributions (npz) and a JSON summary; prints a one-line summary per method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", help="image files (default: the bundled demo examples)")
    parser.add_argument("--classifier", default="demo-shapes", help="classifier name or architecture (default demo-shapes)")
    parser.add_argument("--autoencoder", default="demo-shapes", help="autoencoder for latent methods (default demo-shapes)")
    parser.add_argument("--methods", default="ma-gig,gig", help="comma-separated methods (default ma-gig,gig)")
    parser.add_argument("--steps", type=int, default=None, help="path points N (default: the paper's, 200)")
    parser.add_argument("--fraction", type=float, default=None, help="guided selection fraction (default per method)")
    parser.add_argument("--interpolation", choices=("lerp", "slerp"), default="lerp")
    parser.add_argument("--objective", choices=("prob", "logit"), default="prob")
    parser.add_argument("--target", type=int, default=None, help="class index to explain (default: prediction)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--out", default="runs/explain", help="output folder (default runs/explain)")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from magig_core.attribution import explain
    from magig_core.images import ImageInputError, load_image, to_tensor
    from magig_core.models import default_device, load_autoencoder, load_classifier

    device = torch.device(args.device) if args.device else default_device()
    classifier = load_classifier(args.classifier, device=device)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    autoencoder = None
    if any(m.replace("_", "-") in ("ma-gig", "magig", "eig", "mig") for m in methods):
        autoencoder = load_autoencoder(args.autoencoder, device=device)
    paths = [Path(p) for p in args.images] or _example_paths()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            loaded = load_image(path)
        except ImageInputError as error:
            print(f"skipping {path}: {error}")
            continue
        image = to_tensor(loaded.image, classifier.input_size).to(device)
        targets = None if args.target is None else [args.target]
        results = {}
        for method in methods:
            results[method] = explain(
                image, classifier, method, autoencoder=autoencoder, targets=targets, steps=args.steps,
                fraction=args.fraction, interpolation=args.interpolation, objective=args.objective,
                references=image if method == "ig2" else None,
            ).to("cpu")
            _print_summary(path, method, results[method], classifier.class_names)
        stem = out_dir / path.stem
        _save(stem, image[0].cpu(), results, classifier.class_names)
        np.savez_compressed(f"{stem}_attributions.npz", **{m: r.attributions[0].numpy() for m, r in results.items()})
    print(f"results written to {out_dir}/")
    return 0


def _example_paths() -> list[Path]:
    from magig_core.demo.examples import load_examples

    return [Path(entry["path"]) for entry in load_examples()]


def _print_summary(path: Path, method: str, result, class_names) -> None:
    target = int(result.targets[0])
    name = class_names[target] if class_names else str(target)
    print(
        f"{path.name:28s} {method:7s} class {name!r:18s} p={float(result.path_probs[0, -1]):.3f} "
        f"residual={float(result.completeness_residual[0]):.2e} {result.timings['total']:.2f}s"
    )


def _save(stem: Path, image, results: dict, class_names) -> None:
    from magig_core import viz

    maps = [viz.saliency(r.attributions[0]) for r in results.values()]
    figure = viz.maps_figure(viz.to_uint8(image), maps, list(results), viz.robust_max(maps))
    figure.savefig(f"{stem}_maps.png")
    summary = {
        method: {
            "target": int(r.targets[0]),
            "class_name": class_names[int(r.targets[0])] if class_names else None,
            "input_output": float(r.input_output[0]),
            "baseline_output": float(r.baseline_output[0]),
            "completeness_residual": float(r.completeness_residual[0]),
            "timings": r.timings,
            "config": r.config,
        }
        for method, r in results.items()
    }
    Path(f"{stem}_summary.json").write_text(json.dumps(summary, indent=2))
