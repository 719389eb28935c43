"""Can a named model be loaded here, without loading it? For menus that must say so at start-up.

Bundled models are available when their files are in the package. Cached weights count as available;
missing ones count as available only if they can still be downloaded (not offline, host reachable within
the zoo's short probe). Nothing is loaded or downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from magig_core.errors import WeightsUnavailableError
from magig_core.models import cifar10, taef2
from magig_core.models.downloads import hub_remedies, require_network
from magig_core.models.zoo import AUTOENCODERS, CLASSIFIERS, TORCHVISION_WEIGHTS

HUB_URL = "https://huggingface.co"


def weights_status(name: str, kind: Literal["classifier", "autoencoder"]) -> str | None:
    """None when ``name`` can be loaded here (cached or downloadable); otherwise why it cannot."""
    if name == "demo-shapes":
        return _demo_status()
    bundled = _bundled_files(name, kind)
    if bundled is not None:
        return _bundled_status(bundled)
    try:
        if kind == "classifier":
            _check_classifier(name)
        else:
            _check_autoencoder(name)
    except WeightsUnavailableError as error:
        return str(error)
    return None


def _demo_status() -> str | None:
    from magig_core.models.demo_shapes import CARD_FILE, DEFAULT_WEIGHTS_DIR

    card = DEFAULT_WEIGHTS_DIR / CARD_FILE
    if card.is_file():
        return None
    return f"the bundled demo weights are missing ({card}); run `python -m magig_core demo-train`"


def _bundled_files(name: str, kind: Literal["classifier", "autoencoder"]) -> list[Path] | None:
    """The files a bundled model loads from, or None for models that are not bundled."""
    if kind == "classifier" and name in cifar10.CHECKPOINTS:
        return [cifar10.bundled_checkpoint(name)]
    if kind == "autoencoder" and name == "taef2":
        return [taef2.BUNDLED_DIR / taef2.ENCODER_FILE, taef2.BUNDLED_DIR / taef2.DECODER_FILE]
    return None


def _bundled_status(files: list[Path]) -> str | None:
    missing = [str(file) for file in files if not file.is_file()]
    if not missing:
        return None
    return (
        f"the bundled weights are missing ({', '.join(missing)}); reinstall MA-GIG Explorer, or in a git "
        "checkout restore them with `git checkout -- assets`"
    )


def _check_classifier(name: str) -> None:
    from torchvision.models import get_weight

    from magig_core.models.downloads import torchvision_checkpoint_dir

    if name in CLASSIFIERS and name not in TORCHVISION_WEIGHTS:
        raise WeightsUnavailableError(
            name, CLASSIFIERS[name].source, "this fine-tuned checkpoint has no public download.",
            [f"load it in Python with load_classifier({name!r}, weights='/path/to/<arch>_best.pt')"],
        )
    if name not in TORCHVISION_WEIGHTS:
        return  # any other torchvision model: its loader says what is missing
    url = get_weight(TORCHVISION_WEIGHTS[name]).url
    if not (torchvision_checkpoint_dir() / url.rsplit("/", 1)[-1]).is_file():
        require_network(name, url, url, [f"pre-download {url} into {torchvision_checkpoint_dir()}"])


def _check_autoencoder(name: str) -> None:
    from huggingface_hub import try_to_load_from_cache

    info = AUTOENCODERS.get(name)
    if info is None or info.repo_id is None:
        return
    filename = "/".join(part for part in (info.subfolder, info.filename or "config.json") if part)
    if any(isinstance(try_to_load_from_cache(repo, filename), str) for repo in (info.repo_id, *info.former_repo_ids)):
        return
    remedies = hub_remedies(info.repo_id, filename=info.filename, subfolder=info.subfolder)
    require_network(name, info.source, HUB_URL, remedies)
