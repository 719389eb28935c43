"""``demo-train``: render the demo world, train its classifier and autoencoder on CPU, write weights + card.

The default run takes about ten minutes on two CPU threads; ``--quick`` runs the same pipeline with tiny
sizes to check it end to end in seconds (its models are not meant to be good).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import diffusers
import numpy as np
import torch
from safetensors.torch import save_file

from magig_core.demo.example_scenes import DEFAULT_EXAMPLES_DIR, write_examples
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.training import (
    Schedule,
    Stopwatch,
    accuracy,
    black_reconstruction_rmse,
    psnr,
    train_autoencoder,
    train_classifier,
)
from magig_core.demo.world import DATA_VERSION, generate, render, sample_scenes
from magig_core.models.demo_shapes import (
    AUTOENCODER_CONFIG,
    AUTOENCODER_FILE,
    CARD_FILE,
    CLASSIFIER_FILE,
    CLASSIFIER_LAYOUT,
    DEFAULT_WEIGHTS_DIR,
    NORMALIZATION,
    as_diffusers_autoencoder,
    as_image_classifier,
    build_autoencoder_model,
    build_classifier_network,
)

TRAIN_SEED, EVAL_SEED = 0, 1
FULL = {
    "train_size": 12000,
    "outlier_size": 4000,
    "eval_size": 1200,
    "classifier_steps": 600,
    "autoencoder_steps": 3200,
    "autoencoder_dark_steps": 800,
}
QUICK = {
    "train_size": 240,
    "outlier_size": 60,
    "eval_size": 60,
    "classifier_steps": 4,
    "autoencoder_steps": 4,
    "autoencoder_dark_steps": 2,
}
OUTLIER_WEIGHT = 0.5


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_WEIGHTS_DIR, help="folder for weights and card.json"
    )
    parser.add_argument(
        "--examples-out",
        type=Path,
        default=None,
        help=f"folder for the example gallery (default: {DEFAULT_EXAMPLES_DIR}; none with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the pipeline, not the models"
    )
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed for model initialisation and batch order")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    for name, value in FULL.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"default {value}")


def _save(out: Path, network: torch.nn.Module, vae: torch.nn.Module, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(out / CLASSIFIER_FILE))
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(out / AUTOENCODER_FILE))
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    sizes = {name: getattr(args, name) or (QUICK if args.quick else FULL)[name] for name in FULL}
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    total = Stopwatch()

    def log(message: str) -> None:
        print(f"[{total.seconds():7.1f}s] {message}", flush=True)

    data_clock = Stopwatch()
    train = generate(sizes["train_size"], TRAIN_SEED, size=args.size, dtype=torch.uint8)
    # The first training scenes again, without their object: same clutter, no class evidence.
    empty = render(
        sample_scenes(sizes["outlier_size"], TRAIN_SEED, size=args.size), size=args.size, draw_object=False
    )
    outliers = (empty.images * 255).round().to(torch.uint8)
    held_out = generate(sizes["eval_size"], EVAL_SEED, size=args.size)
    log(
        f"rendered {len(train)} training, {len(outliers)} object-free and {len(held_out)} held-out images "
        f"({DATA_VERSION})"
    )
    data_seconds = data_clock.seconds()

    clf_clock = Stopwatch()
    classifier_config = {**CLASSIFIER_LAYOUT, "num_classes": len(CLASS_NAMES)}
    clf_schedule = Schedule(sizes["classifier_steps"], 64, 3e-3)
    network = train_classifier(
        build_classifier_network(classifier_config),
        train.images,
        train.labels,
        clf_schedule,
        args.seed,
        log,
        outliers=outliers,
        outlier_weight=OUTLIER_WEIGHT,
    )
    clf_seconds = clf_clock.seconds()
    classifier = as_image_classifier(network, args.size, CLASS_NAMES)
    clf_accuracy = accuracy(classifier, held_out.images, held_out.labels)
    log(f"classifier held-out accuracy {clf_accuracy:.4f}")

    vae_clock = Stopwatch()
    vae_schedule = Schedule(sizes["autoencoder_steps"], 16, 2e-3)
    dark_schedule = Schedule(sizes["autoencoder_dark_steps"], 16, 5e-4)
    crop, kl_weight = min(32, args.size), 1e-4
    vae = build_autoencoder_model(AUTOENCODER_CONFIG)
    for schedule, dimmed in ((vae_schedule, False), (dark_schedule, True)):
        vae = train_autoencoder(
            vae.requires_grad_(True),
            train.images,
            schedule,
            args.seed,
            log,
            crop=crop,
            kl_weight=kl_weight,
            dim_towards_black=dimmed,
        )
    vae_seconds = vae_clock.seconds()
    vae_psnr = psnr(as_diffusers_autoencoder(vae), held_out.images)
    black_rmse = black_reconstruction_rmse(as_diffusers_autoencoder(vae), args.size)
    log(f"autoencoder held-out PSNR {vae_psnr:.2f} dB, black reconstructed with RMSE {black_rmse:.3f}")

    card = {
        "name": "demo-shapes",
        "data_version": DATA_VERSION,
        "class_names": list(CLASS_NAMES),
        "image_size": args.size,
        "normalization": {k: list(v) for k, v in NORMALIZATION.items()},
        "seeds": {"model": args.seed, "train_data": TRAIN_SEED, "held_out_data": EVAL_SEED},
        "data": {
            "train_images": sizes["train_size"],
            "object_free_images": sizes["outlier_size"],
            "held_out_images": sizes["eval_size"],
        },
        "quick": bool(args.quick),
        "classifier": {
            "config": classifier_config,
            "schedule": vars(clf_schedule)
            | {
                "optimizer": "AdamW, cosine",
                "augmentation": "dihedral",
                "outlier_exposure": {
                    "images": sizes["outlier_size"],
                    "source": "training scenes rendered without their object, half dimmed towards black",
                    "target": "uniform",
                    "weight": OUTLIER_WEIGHT,
                    "per_step": clf_schedule.batch_size // 2,
                },
            },
            "held_out_accuracy": round(clf_accuracy, 4),
            "train_seconds": clf_seconds,
        },
        "autoencoder": {
            "config": AUTOENCODER_CONFIG,
            "schedule": vars(vae_schedule)
            | {
                "crop": crop,
                "kl_weight": kl_weight,
                "loss": "L1 + MSE + KL",
                "augmentation": "dihedral",
                "then": vars(dark_schedule)
                | {"augmentation": "dihedral, half the crops dimmed towards black"},
            },
            "held_out_psnr_db": round(vae_psnr, 2),
            "black_reconstruction_rmse": round(black_rmse, 4),
            "train_seconds": vae_seconds,
        },
        "data_seconds": data_seconds,
        "total_seconds": total.seconds(),
        "threads": args.threads,
        "versions": {
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    _save(args.out, network, vae, card)
    log(f"wrote {args.out / CLASSIFIER_FILE}, {args.out / AUTOENCODER_FILE} and {args.out / CARD_FILE}")
    examples_out = args.examples_out or (None if args.quick else DEFAULT_EXAMPLES_DIR)
    if examples_out is not None:
        entries = write_examples(examples_out, classifier, size=args.size)
        log(f"wrote {len(entries)} gallery examples to {examples_out}")
    return 0
