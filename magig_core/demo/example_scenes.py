"""The example gallery: a few demo images with their ground-truth masks and a JSON index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from magig_core.bundled import bundled_path
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.world import DATA_VERSION, generate

DEFAULT_EXAMPLES_DIR = bundled_path("examples")
EXAMPLES_SEED = 7
INDEX_FILE = "index.json"


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, optimize=True)


@torch.no_grad()
def write_examples(out_dir: Path, classifier: nn.Module, per_class: int = 1, *, size: int = 64) -> list[dict]:
    """Save the first ``per_class`` images of each class (seed ``EXAMPLES_SEED``) the classifier gets right.

    Showing correctly classified images keeps the gallery about explanations, not about mistakes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = generate(60 * per_class * len(CLASS_NAMES), EXAMPLES_SEED, size=size)
    predictions = classifier(samples.images).argmax(1)
    entries: list[dict] = []
    for label, name in enumerate(CLASS_NAMES):
        chosen = torch.nonzero((samples.labels == label) & (predictions == label)).flatten()[:per_class]
        if len(chosen) < per_class:
            raise RuntimeError(f"the classifier recognised too few {name!r} images to fill the gallery")
        for k, index in enumerate(chosen.tolist()):
            image = (samples.images[index].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            mask = samples.masks[index].numpy().astype(np.uint8) * 255
            stem = f"{name}_{k}"
            _save_png(image, out_dir / f"{stem}.png")
            _save_png(mask, out_dir / f"{stem}_mask.png")
            entries.append(
                {
                    "file": f"{stem}.png",
                    "mask": f"{stem}_mask.png",
                    "label": label,
                    "class_name": name,
                    "sample_index": index,
                }
            )
    index = {"data_version": DATA_VERSION, "seed": EXAMPLES_SEED, "size": size, "examples": entries}
    (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return entries


def load_examples(examples_dir: Path | None = None) -> list[dict]:
    """The gallery index entries with absolute ``path`` and ``mask_path`` added."""
    examples_dir = Path(examples_dir or DEFAULT_EXAMPLES_DIR)
    index_path = examples_dir / INDEX_FILE
    if not index_path.is_file():
        raise FileNotFoundError(
            f"no example index at {index_path}; regenerate it with `python -m magig_core demo-train`"
        )
    entries = json.loads(index_path.read_text())["examples"]
    return [
        {**e, "path": str(examples_dir / e["file"]), "mask_path": str(examples_dir / e["mask"])}
        for e in entries
    ]
