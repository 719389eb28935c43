"""``evaluate``: the paper's faithfulness tables (DiffID / Insertion / Deletion) on local data, the
bundled CIFAR-10 images or the demo world.

Writes per-image records (JSON lines), summary.json, summary.csv and table.md into --out. Rerunning with
the same settings resumes where it stopped. Under ``torchrun --nproc-per-node N`` the images are sharded
over the processes and rank 0 merges the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from magig_core import runtime
from magig_core.attribution.registry import method_spec
from magig_core.commands.option_help import fraction_help, interpolation_help, steps_help
from magig_core.data import datasets
from magig_core.data.datasets import DatasetError, ImageSet
from magig_core.errors import WeightsUnavailableError
from magig_core.evaluation import distributed
from magig_core.evaluation.fidelity import Reconstruction, fidelity_summary, reconstruction_quality
from magig_core.evaluation.loop import EvaluationSettings, run_jobs
from magig_core.evaluation.plan import (
    Job,
    PlanError,
    build_jobs,
    parse_grid,
    parse_methods,
    require_autoencoders,
)
from magig_core.evaluation.records import RecordWriter, rank_file, read_records, write_merged
from magig_core.evaluation.summary import (
    PAIRED,
    add_paired_differences,
    resolve_reference,
    summarize_job,
    write_summary,
)
from magig_core.metrics.faithfulness import IMPUTATIONS, PAPER_RATIOS
from magig_core.metrics.perceptual import LPIPS_NETS, LpipsUnavailableError, load_frame_distance

EXTRA_METRICS = ("emprt",)  # metrics that cost more than scoring and are computed only when asked for
DATASETS = ("imagefolder", "imagenet", "pet", "flowers", "csv", "cifar10")
DEMO_DEFAULT_LIMIT = 60
BUNDLED_DATA = "bundled"
# Offline presets: --data demo, or --dataset cifar10 → (default classifier, default autoencoder)
PRESET_MODELS = {"demo": ("demo-shapes", "demo-shapes"), "cifar10": ("cifar10-resnet56", "taef2")}


def build_parser(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="image folder, 'demo' for the bundled demo world, or 'bundled' (the "
                                      "default for --dataset cifar10: the 500 CIFAR-10 test images shipped)")
    data.add_argument("--dataset", choices=DATASETS, default="imagefolder",
                      help="layout of --data: imagefolder (one sub-folder per class), imagenet (ILSVRC2012 val "
                           "in ImageFolder layout), pet (Oxford-IIIT Pet, the paper's 5%% held-out split), "
                           "flowers (torchvision's Flowers102 layout, val split), csv (with --labels), "
                           "cifar10 (one folder per CIFAR-10 class, classes interleaved so --limit stays "
                           "balanced)")
    data.add_argument("--labels", type=Path, help="CSV with columns path,label (for --dataset csv)")
    data.add_argument("--order", choices=("sorted", "paper"), default=None,
                      help="image order: paper (the seeded shuffle the ImageNet table was drawn from; the "
                           "default for imagenet) or sorted (the default for imagefolder)")
    data.add_argument("--limit", type=int, help="evaluate only the first N images of the order "
                                                 f"(paper: 500; demo default {DEMO_DEFAULT_LIMIT})")
    data.add_argument("--image-size", type=int, help="resize side (default: the classifier's input size)")

    models = parser.add_argument_group("models and methods")
    models.add_argument("--classifier", help="classifier name(s), comma-separated (default for demo: "
                                             "demo-shapes; for cifar10: cifar10-resnet56)")
    models.add_argument("--classifier-weights", help="local weights: PATH, or name=PATH,... per classifier")
    models.add_argument("--methods", default="ig,gig,ma-gig",
                        help="comma-separated methods, or all (default ig,gig,ma-gig)")
    models.add_argument("--reference-method", default="ma-gig",
                        help="the row every other one is compared with, image by image: a method (its first row) "
                             "or a row as the table names it, e.g. 'ma-gig fraction=0.05' (default ma-gig)")
    models.add_argument("--autoencoder", help="autoencoder for eig/mig/ma-gig: NAME, or method=NAME,... "
                                              "(default for demo: demo-shapes; for cifar10: taef2); several "
                                              "names give one row each, e.g. ma-gig=taef2,taef2-q1,taef2-q2")
    models.add_argument("--autoencoder-weights", help="local autoencoder weights folder/file (all autoencoders)")
    models.add_argument("--steps", help=steps_help())
    models.add_argument("--fraction", help=fraction_help() + "; several values give one row each: "
                                           "ma-gig=0.01,0.05,0.1,0.2 (so do several values of --steps, "
                                           "--interpolation and --autoencoder)")
    models.add_argument("--interpolation", help=interpolation_help())
    models.add_argument("--objective", choices=("prob", "logit"), default="prob")
    models.add_argument("--ig2-references", type=int, default=100,
                        help="IG2 reference bank: the first N images of the order (paper: 100)")

    metric = parser.add_argument_group("metric")
    metric.add_argument("--imputation", choices=IMPUTATIONS, default="mean")
    metric.add_argument("--metrics", default="",
                        help="extra columns, computed on request: emprt (Efficient MPRT through Quantus; the method "
                             "runs once more per image, on a copy of the classifier with every layer re-initialized)")
    metric.add_argument("--stability", type=int, default=0,
                        help="K >= 2: each map's stability_iou / stability_rank over K perturbed runs (path points "
                             "N, N-1, ...; K times the cost; default off)")
    metric.add_argument("--average", type=int, default=1,
                        help="K: each map is the mean of K perturbed runs (default 1, a single run)")
    metric.add_argument("--ratios", help="comma-separated ratios (default 0.1,...,0.9)")
    metric.add_argument("--path-distance-images", type=int, default=0,
                        help="LPIPS-to-input curve over the path for the first N images (paper: 100; 0 = off)")
    metric.add_argument("--lpips-net", choices=LPIPS_NETS, default="alex")
    metric.add_argument("--lpips-required", action="store_true",
                        help="fail instead of falling back to pixel RMSE when LPIPS weights are missing")

    run = parser.add_argument_group("run")
    run.add_argument("--out", type=Path, required=True, help="output folder (reused to resume)")
    run.add_argument("--batch-size", type=int, default=1, help="images explained together (default 1)")
    run.add_argument("--metric-batch-size", type=int, default=64, help="perturbed images per forward pass")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default=None,
                     help="cuda or cpu (default: cuda when available; cuda:N names one GPU)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fail(message: str) -> int:
    print(f"evaluate: error: {message}", file=sys.stderr)
    return 2


def _parse_ratios(text: str | None) -> tuple[float, ...]:
    if text is None:
        return PAPER_RATIOS
    try:
        ratios = tuple(float(r) for r in text.split(",") if r.strip())
    except ValueError as err:
        raise PlanError(f"--ratios {text!r}: give numbers in [0,1] separated by commas") from err
    if not ratios or any(not 0 <= r <= 1 for r in ratios):
        raise PlanError(f"--ratios {text!r}: give numbers in [0,1] separated by commas")
    return ratios


def _per_name(text: str | None, names: list[str], option: str) -> dict[str, str]:
    """``PATH`` for every name, or ``name=PATH,...``."""
    if not text:
        return {}
    if "=" not in text:
        return dict.fromkeys(names, text)
    pairs = dict(part.split("=", 1) for part in text.split(",") if part.strip())
    unknown = set(pairs) - set(names)
    if unknown:
        raise PlanError(f"{option} names {sorted(unknown)}, which are not among {names}")
    return pairs


def _order(args: argparse.Namespace, demo: bool) -> str:
    if demo or args.dataset not in ("imagefolder", "imagenet"):
        return "preset"
    return args.order or ("paper" if args.dataset == "imagenet" else "sorted")


def _image_set(args: argparse.Namespace, size: int) -> ImageSet:
    """The whole ordered set (``--limit`` is applied by the caller: the IG2 bank comes from the whole order)."""
    if args.data == "demo":
        from magig_core.data.demo import demo_set

        return demo_set(max(args.limit or DEMO_DEFAULT_LIMIT, args.ig2_references), size=size)
    if args.dataset == "cifar10":
        image_set = datasets.cifar10_test(None if args.data == BUNDLED_DATA else args.data, size=size)
    elif args.dataset == "imagefolder":
        image_set = datasets.image_folder(args.data, size=size, order=args.order or "sorted")
    elif args.dataset == "imagenet":
        image_set = datasets.imagenet_val(args.data, size=size, order=args.order or "paper")
    elif args.dataset == "pet":
        image_set = datasets.oxford_pet(args.data, size=size)
    elif args.dataset == "flowers":
        image_set = datasets.flowers102(args.data, size=size)
    else:
        if args.labels is None:
            raise DatasetError("--dataset csv needs --labels FILE.csv (columns path,label)")
        image_set = datasets.labels_csv(args.data, args.labels, size=size)
    if len(image_set) == 0:
        raise DatasetError(f"no images found under {args.data}")
    return image_set


def _versions() -> dict[str, str]:
    import numpy
    import torchvision

    import magig_core

    found = {"python": platform.python_version(), "torch": torch.__version__,
             "torchvision": torchvision.__version__, "numpy": numpy.__version__,
             "magig_core": getattr(magig_core, "__version__", "unknown"), "platform": platform.platform()}
    try:
        from importlib.metadata import version

        found["lpips"] = version("lpips")
    except Exception:  # the package's metadata may be absent in a source checkout
        found["lpips"] = "unknown"
    return found


class _Models:
    """Loads each classifier/autoencoder once, on this rank's device."""

    def __init__(self, args: argparse.Namespace, device: torch.device, clf_weights: dict[str, str]) -> None:
        from magig_core.models import load_autoencoder, load_classifier

        self._load_classifier, self._load_autoencoder = load_classifier, load_autoencoder
        self.args, self.device, self.clf_weights = args, device, clf_weights
        self._cache: dict[tuple[str, str], Any] = {}

    def classifier(self, name: str):
        key = ("classifier", name)
        if key not in self._cache:
            self._cache[key] = self._load_classifier(name, weights=self.clf_weights.get(name), device=self.device)
        return self._cache[key]

    def autoencoder(self, name: str | None):
        if name is None:
            return None
        key = ("autoencoder", name)
        if key not in self._cache:
            self._cache[key] = self._load_autoencoder(name, weights=self.args.autoencoder_weights, device=self.device)
        return self._cache[key]

    def __call__(self, job: Job):
        return self.classifier(job.classifier), self.autoencoder(job.autoencoder)


def _check_classes(image_set: ImageSet, name: str, classifier: Any) -> None:
    count = getattr(classifier, "num_classes", None)
    if count is not None and count != len(image_set.class_names):
        raise PlanError(
            f"{image_set.name} has {len(image_set.class_names)} classes but {name} predicts {count}; pick the "
            "classifier trained on this dataset (e.g. resnet18-pet, vgg16-flowers) or the full ImageNet val tree"
        )


def run(args: argparse.Namespace) -> int:
    group = distributed.start(args.device)
    try:
        return _run(args, group)
    except (PlanError, DatasetError, LpipsUnavailableError, WeightsUnavailableError, FileNotFoundError) as err:
        return _fail(str(err))
    finally:
        distributed.stop(group)


def _run(args: argparse.Namespace, group: distributed.ProcessGroup) -> int:
    started = time.perf_counter()
    for option in ("limit", "batch_size", "metric_batch_size"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise PlanError(f"--{option.replace('_', '-')} must be at least 1")
    if args.data is None:
        if args.dataset != "cifar10":
            raise DatasetError("--data is required: an image folder, or 'demo' (only --dataset cifar10 has "
                               "bundled images)")
        args.data = BUNDLED_DATA
    demo = args.data == "demo"
    default_classifier, default_autoencoder = PRESET_MODELS.get("demo" if demo else args.dataset, ("", None))
    classifiers = [c.strip() for c in (args.classifier or default_classifier).split(",") if c.strip()]
    if not classifiers:
        raise PlanError("name a classifier with --classifier (e.g. resnet18, resnet18-pet, demo-shapes)")
    methods = parse_methods(args.methods)
    ratios = _parse_ratios(args.ratios)
    extra = _parse_metrics(args.metrics)
    autoencoders = parse_grid(args.autoencoder or default_autoencoder, "autoencoder", methods)
    require_autoencoders(methods, autoencoders)
    per_method = {
        "steps": parse_grid(args.steps, "steps", methods, int),
        "fractions": parse_grid(args.fraction, "fraction", methods, float),
        "interpolations": parse_grid(args.interpolation, "interpolation", methods),
    }
    device = group.device(args.device)
    models = _Models(args, device, _per_name(args.classifier_weights, classifiers, "--classifier-weights"))

    first = models.classifier(classifiers[0])
    size = args.image_size or int(getattr(first, "input_size", (datasets.PAPER_IMAGE_SIZE,))[0])
    runtime.threads_for_work(args.batch_size * size * size)  # a batch's images share each pass
    whole_set = _image_set(args, size)
    image_set = whole_set.head(args.limit or (DEMO_DEFAULT_LIMIT if demo else None))
    for name in classifiers:
        _check_classes(image_set, name, models.classifier(name))

    common = {"objective": args.objective, "seed": args.seed, "imputation": args.imputation, "ratios": list(ratios),
              "image_size": size, "dataset": image_set.name,
              "order": _order(args, demo)}
    if extra:
        common["metrics"] = list(extra)
    draws_references = any(method_spec(m).draws_references for m in methods)
    if draws_references:
        common["ig2_references"] = args.ig2_references
    distance = None
    if args.path_distance_images > 0:
        distance = load_frame_distance(args.lpips_net, on_missing="raise" if args.lpips_required else "fallback",
                                       device=device)
        common["path_distance"] = {"images": args.path_distance_images, "distance": distance.name}
        if distance.reason and group.is_main:
            print(f"evaluate: note: {distance.reason}", file=sys.stderr)
    if args.stability == 1 or args.stability < 0 or args.average < 1:
        raise PlanError("--stability is 0 (off) or at least 2 runs; --average at least 1")
    repeats = {name: value for name, value in (("stability", args.stability), ("average", args.average))
               if value > (0 if name == "stability" else 1)}
    jobs = build_jobs(classifiers, methods, common=common, autoencoders=autoencoders, repeats=repeats,
                      **per_method)
    reference = resolve_reference(args.reference_method, [job.row for job in jobs])
    references = None
    if draws_references:  # the paper's bank: the first images of the whole order, whatever --limit says
        bank = range(min(args.ig2_references, len(whole_set)))
        references = torch.stack([whole_set.load(i) for i in bank]).to(device)

    args.out.mkdir(parents=True, exist_ok=True)
    done = set(read_records(args.out))
    settings = EvaluationSettings(
        batch_size=args.batch_size, metric_batch_size=args.metric_batch_size, ratios=ratios,
        imputation=args.imputation, objective=args.objective, seed=args.seed,
        distance_images=args.path_distance_images, progress=not args.no_progress and group.is_main, metrics=extra,
    )
    written = run_jobs(image_set, jobs, models, settings, done, RecordWriter(rank_file(args.out, group.rank)),
                       group, device, references=references, distance=distance)
    written = group.total(written, device)
    if group.is_main:
        fidelity = _fidelity(jobs, models, image_set, device)
        _finish(args, image_set, jobs, ratios, written, time.perf_counter() - started, group, distance,
                reference=reference, fidelity=fidelity, extra=extra)
    group.barrier()
    return 0


def _parse_metrics(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in EXTRA_METRICS]
    if unknown:
        raise PlanError(f"--metrics {text!r}: {', '.join(unknown)} is not computed on request; choose from "
                        f"{', '.join(EXTRA_METRICS)} (the other metrics are always in the summary)")
    return names


def _fidelity(jobs: list[Job], models: _Models, image_set: ImageSet, device: torch.device) -> dict[str, Reconstruction]:
    """Reconstruction quality of every autoencoder, where a method's rows use several of them."""
    per_method: dict[tuple[str, str], set[str]] = {}
    for job in jobs:
        if job.autoencoder is not None:
            per_method.setdefault((job.classifier, job.method), set()).add(job.autoencoder)
    if all(len(names) < 2 for names in per_method.values()):
        return {}
    names = sorted(set().union(*per_method.values()))
    return {name: reconstruction_quality(name, models.autoencoder(name), image_set, device) for name in names}


def _finish(args, image_set: ImageSet, jobs: list[Job], ratios, written: int, seconds: float, group,
            distance, *, reference: str, fidelity: dict[str, Reconstruction], extra: tuple[str, ...]) -> None:
    records = read_records(args.out)
    wanted = {item.image_id for item in image_set.items}
    hashes = {job.hash for job in jobs}
    write_merged(args.out, records.values())
    results = []
    for job in jobs:
        mine = [r for (image_id, h), r in records.items() if h == job.hash and image_id in wanted]
        results.append(summarize_job(job, sorted(mine, key=lambda r: r.index)))
    add_paired_differences(results, reference)
    missing = len(wanted) * len(hashes) - sum(r["images"] for r in results)
    summary = {
        "dataset": image_set.name,
        "data": str(args.data),
        "images": len(image_set),
        "ratios": list(ratios),
        "metrics": list(extra),
        "results": results,
        "fidelity": fidelity_summary(results, fidelity, PAIRED) if fidelity else None,
        "command": sys.argv,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": _versions(),
        "world_size": group.world_size,
        "cpu_threads_per_process": torch.get_num_threads(),  # guided paths' last bits depend on it
        "records_written_this_run": written,
        "seconds_this_run": seconds,
        "missing_records": missing,
        "path_distance": None if distance is None else {"name": distance.name, "reason": distance.reason},
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    paths = write_summary(args.out, summary)
    print(paths["markdown"].read_text())
    print(f"wrote {json.dumps({k: str(v) for k, v in paths.items()})} ({written} new records, {seconds:.1f} s)")
