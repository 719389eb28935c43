"""``demo-table``: every method on fresh demo images, scored against the objects' true masks.

Writes a Markdown table (energy in mask, pointing game, the paper's top-1 DiffID / Insertion / Deletion,
the relative completeness residual, time) under runs/ using the bundled demo models; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from magig_core.demo.table import markdown_table, mean, score_method
from magig_core.demo.world import DATA_VERSION, generate
from magig_core.evaluation.plan import PlanError, parse_methods
from magig_core.models.demo_shapes import load_demo_autoencoder, load_demo_classifier, read_card
from magig_core.models.devices import resolve_device

DEFAULT_OUT = Path("runs") / "demo_table.md"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=200, help="number of demo images (class-balanced)")
    parser.add_argument("--seed", type=int, default=2, help="image seed (training used 0, the card 1)")
    parser.add_argument("--steps", type=int, default=200,
                        help="path points of every method with a path (IG2 keeps its 201 search steps)")
    parser.add_argument("--batch-size", type=int, default=50, help="images explained together")
    parser.add_argument("--methods", default="all", help="comma-separated methods or aliases, or all (default all)")
    parser.add_argument("--weights", type=Path, default=None, help="demo weights folder (default: bundled)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file to write (default {DEFAULT_OUT})")


def run(args: argparse.Namespace) -> int:
    try:
        methods = parse_methods(args.methods)
    except PlanError as err:
        print(f"demo-table: error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    classifier = load_demo_classifier(args.weights, device=device)
    autoencoder = load_demo_autoencoder(args.weights, device=device)
    card = read_card(args.weights)
    samples = generate(args.images, args.seed, size=int(card["image_size"]))
    samples.images = samples.images.to(device)
    samples.labels = samples.labels.to(device)
    samples.masks = samples.masks.to(device)
    rows = []
    with tqdm(total=len(methods) * args.images, desc="demo-table", unit="img", disable=None,
              dynamic_ncols=True) as bar:
        for method in methods:
            bar.set_postfix_str(method)
            rows.append(score_method(method, samples, classifier, autoencoder, steps=args.steps,
                                     batch_size=args.batch_size, on_batch=bar.update))
            seconds = sum(r.seconds for r in rows[-1])
            bar.write(f"{method}: energy_in_mask {mean(rows[-1], 'energy_in_mask'):.4f}, {seconds:.0f} s")
    header = (
        f"Demo world ({DATA_VERSION}), {args.images} images from seed {args.seed}, true-class targets, "
        f"{args.steps} steps per method, default hyperparameters otherwise; bundled demo models "
        f"(classifier accuracy {card['classifier']['held_out_accuracy']:.4f}, VAE PSNR "
        f"{card['autoencoder']['held_out_psnr_db']:.2f} dB); times on {device.type}"
        + (f" with {args.threads} threads." if device.type == "cpu" else ".")
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown_table(rows, samples, header))
    print(f"wrote {args.out}")
    return 0
