"""``python -m magig_core explain``: attribution maps for image files from the command line.

Writes, per image, one comparison figure (input + one map per method on a shared colour scale), the raw
attributions (npz) and a JSON summary; prints a one-line summary per method. With ``--animate`` also the
talk files: the path animation (GIF and MP4/WebM) and a 16:9 slide of the maps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from magig_core import runtime
from magig_core.commands.option_help import fraction_help, interpolation_help, steps_help
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*",
                        help="image files (default: the bundled gallery images meant for the chosen classifier)")
    parser.add_argument("--classifier", default=REAL_CLASSIFIER,
                        help=f"classifier name or architecture (default {REAL_CLASSIFIER}, bundled)")
    parser.add_argument("--autoencoder", default=REAL_AUTOENCODER,
                        help="autoencoder for latent methods and the manifold diagnostics "
                             f"(default {REAL_AUTOENCODER}, bundled)")
    parser.add_argument("--methods", default="ma-gig,gig",
                        help="comma-separated methods or aliases, or all (default ma-gig,gig)")
    parser.add_argument("--steps", default=None, help=steps_help())
    parser.add_argument("--fraction", default=None, help=fraction_help())
    parser.add_argument("--interpolation", default=None, help=interpolation_help())
    parser.add_argument("--objective", choices=("prob", "logit"), default="prob")
    parser.add_argument("--target", type=int, default=None, help="class index to explain (default: prediction)")
    parser.add_argument("--size", type=int, default=None,
                        help="working resolution in pixels (default: the classifier's input size)")
    parser.add_argument("--frames", type=int, default=16,
                        help="path images kept per method for the path diagnostics (default 16)")
    parser.add_argument("--substeps", type=int, default=1,
                        help="gradients per path segment (default 1, the paper's rule; more lowers the residual)")
    parser.add_argument("--stability", type=int, default=0,
                        help="K >= 2: re-run each method K times under small perturbations (path points N, N-1, "
                             "...) and report stability_iou / stability_rank and an agreement map (default off)")
    parser.add_argument("--average", type=int, default=1,
                        help="K: each map is the mean of K perturbed runs (default 1, a single run)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--out", default="runs/explain", help="output folder (default runs/explain)")
    talk = parser.add_argument_group("slides (--animate)")
    talk.add_argument("--animate", action="store_true",
                      help="also write <image>_path.gif, <image>_path.mp4 (each path method's images side by side, "
                           "target probability under each; one frame per path image, see --frames) and "
                           "<image>_slide.png (16:9 maps); methods without path images (GI, AGI) are left out "
                           "of the animation with a note")
    talk.add_argument("--animate-size", default="1280x720",
                      help="pixel size WxH of the animation and the slide (default 1280x720; 1920x1080 for full HD)")
    talk.add_argument("--animate-seconds", type=float, default=3.0,
                      help="seconds for one pass along the path (default 3)")
    talk.add_argument("--video", choices=("mp4", "webm"), default="mp4", help="video format (default mp4)")
    talk.add_argument("--slide-scale", choices=("per-method", "shared"), default="per-method",
                      help="colour scale of the maps slide: each map to its own 99.5th percentile (default), "
                           "or one absolute scale for all")


def run(args: argparse.Namespace) -> int:
    from magig_core.animation import parse_size
    from magig_core.evaluation.plan import PlanError, parse_methods, parse_per_method

    try:
        if args.animate:
            args.animate_size = parse_size(args.animate_size)
            if args.frames < 2 or args.animate_seconds <= 0:
                raise ValueError("--frames must be at least 2 and --animate-seconds positive")
    except ValueError as err:
        print(f"explain: error: --animate: {err}", file=sys.stderr)
        return 2
    if args.stability == 1 or args.stability < 0 or args.average < 1:
        print("explain: error: --stability is 0 (off) or at least 2 runs; --average at least 1", file=sys.stderr)
        return 2
    try:
        methods = parse_methods(args.methods)
        options = {method: {} for method in methods}
        for option, cast in (("steps", int), ("fraction", float), ("interpolation", str)):
            for method, value in parse_per_method(getattr(args, option), option, methods, cast).items():
                options[method][option] = value
    except PlanError as err:
        print(f"explain: error: {err}", file=sys.stderr)
        return 2
    return _explain_files(args, methods, options)


def _explain_files(args: argparse.Namespace, methods: list[str], options: dict[str, dict]) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from magig_core.attribution import explain, method_spec
    from magig_core.explorer.examples import gallery, reference_bank
    from magig_core.images import ImageInputError, load_image, to_tensor
    from magig_core.metrics import load_frame_distance, reconstruction_psnr
    from magig_core.metrics.scored_method import ScoredMethod
    from magig_core.metrics.scores import score
    from magig_core.models import default_device, load_autoencoder, load_classifier

    device = torch.device(args.device) if args.device else default_device()
    classifier = load_classifier(args.classifier, device=device)
    autoencoder = load_autoencoder(args.autoencoder, device=device) if args.autoencoder else None
    size = (args.size, args.size) if args.size else tuple(classifier.input_size)
    runtime.threads_for_work(size[0] * size[1])  # one image per pass
    draws = any(method_spec(m).draws_references for m in methods)
    references = reference_bank(size, gallery()).to(device) if draws else None
    distance = load_frame_distance(device=device)
    paths = [Path(p) for p in args.images] or _example_paths(args.classifier)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(paths) * len(methods), desc="explain", unit="map", disable=None, dynamic_ncols=True)
    for path in paths:
        try:
            loaded = load_image(path)
        except ImageInputError as error:
            tqdm.write(f"skipping {path}: {error}")
            bar.update(len(methods))
            continue
        image = to_tensor(loaded.image, size).to(device)
        targets = None if args.target is None else [args.target]
        psnr = float(reconstruction_psnr(autoencoder, image)[0]) if autoencoder is not None else None
        results, scores = {}, {}
        for method in methods:
            spec = method_spec(method)

            def step(done: int, total: int, where: str = f"{path.name} {method}") -> None:
                bar.set_postfix_str(f"{where} step {done}/{total}", refresh=False)

            explanation = explain(
                image, classifier, method, autoencoder=autoencoder, targets=targets, objective=args.objective,
                references=references, frames=args.frames if spec.has_frames else 0, substeps=args.substeps,
                stability=args.stability, average=args.average, callback=step, **options[method],
            )
            (image_scores,) = score(explanation, classifier, image, distance=distance, autoencoder=autoencoder)
            scores[method] = ScoredMethod(method, image_scores, explanation.timings["total"], explanation.config)
            results[method] = explanation.to("cpu")
            _print_summary(path, results[method], classifier.class_names, scores[method])
            bar.update()
        if psnr is not None:
            tqdm.write(f"{path.name:28s} {args.autoencoder} reconstruction PSNR {psnr:.1f} dB")
        stem = out_dir / path.stem
        _save(stem, image[0].cpu(), results, classifier.class_names, psnr=psnr, scores=scores)
        np.savez_compressed(f"{stem}_attributions.npz", **_arrays(results))
        if args.animate:
            _animate(stem, image[0].cpu(), results, scores, classifier.class_names, args)
    bar.close()
    print(f"results written to {out_dir}/")
    return 0


def _arrays(results: dict) -> dict:
    """Each method's map under its name; with a path, its gradient and contribution frames and accumulation;
    with --stability, its agreement map."""
    arrays = {}
    for method, result in results.items():
        arrays[method] = result.attributions[0].numpy()
        for name in ("gradient_frames", "contribution_frames", "accumulation", "accumulation_mass", "agreement"):
            value = getattr(result, name)
            if value is not None:
                arrays[f"{method}_{name}"] = value[0].numpy()
    return arrays


def _example_paths(classifier: str) -> list[Path]:
    from magig_core.explorer.examples import gallery

    return [Path(example.path) for example in gallery() if example.classifier == classifier]


def _print_summary(path: Path, result, class_names, scored) -> None:
    from tqdm import tqdm

    method, scores = scored.method, scored.scores
    target = int(result.targets[0])
    name = class_names[target] if class_names else str(target)
    manifold = scores["off_manifold_auc"]
    manifold = f" off_manifold_auc={manifold:.3f}" if manifold == manifold else ""
    stable = scores["stability_iou"]
    manifold += f" stability_iou={stable:.2f}" if stable == stable else ""
    tqdm.write(
        f"{path.name:28s} {method:7s} class {name!r:18s} p={float(result.path_probs[0, -1]):.3f} "
        f"diffid_top1={scores['diffid_top1']:+.3f} diffid_prob={scores['diffid_prob']:+.3f} "
        f"completeness_residual={scores['completeness_residual']:.2e}{manifold} {scored.seconds:.2f}s"
    )


def _animate(stem: Path, image, results: dict, scores: dict, class_names, args: argparse.Namespace) -> None:
    import time

    from tqdm import tqdm

    from magig_core.animation import explanation_panel
    from magig_core.attribution import method_spec
    from magig_core.attribution.registry import method_color
    from magig_core.talk import TalkMethod, TalkOptions, slide_caption, write_talk_files
    from magig_core.viz import saliency, to_uint8

    start = time.perf_counter()
    methods = [TalkMethod(method_spec(m).label, method_color(m), saliency(r.attributions[0]), explanation_panel(m, r),
                          slide_caption(scores[m].scores)) for m, r in results.items()]
    target = int(next(iter(results.values())).targets[0])
    options = TalkOptions(size=args.animate_size, seconds=args.animate_seconds, video=f".{args.video}",
                          scale=args.slide_scale.replace("-", " "))
    paths, notes = write_talk_files(stem, to_uint8(image), methods, options=options,
                                    target_name=class_names[target] if class_names else f"class {target}")
    written = ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.2f} MB)" for p in paths)
    tqdm.write(f"{stem.name}: {written} in {time.perf_counter() - start:.1f} s")
    for note in notes:
        tqdm.write(f"{stem.name}: note: {note}")


def _save(stem: Path, image, results: dict, class_names, *, psnr: float | None, scores: dict) -> None:
    from magig_core import viz
    from magig_core.attribution import method_spec

    maps = [viz.saliency(r.attributions[0]) for r in results.values()]
    labels = [method_spec(m).label for m in results]
    figure = viz.maps_figure(viz.to_uint8(image), maps, labels, viz.robust_max(maps))
    figure.savefig(f"{stem}_maps.png")
    summary = {
        method: {
            **scores[method].to_json(),
            "target": int(r.targets[0]),
            "class_name": class_names[int(r.targets[0])] if class_names else None,
            "input_output": float(r.input_output[0]),
            "baseline_output": float(r.baseline_output[0]),
            **_accumulation_fields(r),
            "timings": r.timings,
        }
        for method, r in results.items()
    }
    summary = {"reconstruction_psnr_db": psnr, "methods": summary}
    Path(f"{stem}_summary.json").write_text(json.dumps(summary, indent=2))


def _accumulation_fields(result) -> dict:
    """Where along the path the map was collected (empty for a method without a path)."""
    if result.accumulation is None:
        return {}
    return {"t50": float(result.t50[0]), "accumulation": result.accumulation[0].tolist(),
            "accumulation_mass": result.accumulation_mass[0].tolist()}
