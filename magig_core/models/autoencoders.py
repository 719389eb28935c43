"""``load_autoencoder``: the paper's VAEs, TAESD, MAR KL-16, bundled TAEF2 and any diffusers autoencoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from magig_core.errors import WeightsUnavailableError
from magig_core.models.checkpoints import file_identity, read_state_dict
from magig_core.models.devices import resolve_device, resolve_dtype
from magig_core.models.diffusers_autoencoder import AutoencoderKind, DiffusersAutoencoder
from magig_core.models.downloads import hub_file, hub_pretrained
from magig_core.models.fidelity_ladder import QuantizedLatent, quantized_rung
from magig_core.models.mar import mar_autoencoder_from_state_dict
from magig_core.models.model_cache import MODEL_CACHES
from magig_core.models.taef2 import TAEF2Autoencoder, load_taef2
from magig_core.models.zoo import AUTOENCODERS

DIFFUSERS_KINDS: dict[str, AutoencoderKind] = {
    "AutoencoderKL": "kl",
    "VQModel": "vq",
    "AutoencoderTiny": "tiny",
}
_MAR_FILES = ("kl16.safetensors", "kl16.ckpt")


def load_autoencoder(
    name_or_path: str | Path,
    *,
    weights: str | Path | None = None,
    repo_id: str | None = None,
    subfolder: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> DiffusersAutoencoder | TAEF2Autoencoder | QuantizedLatent:
    """A frozen autoencoder with ``encode``/``decode`` on [0,1] images, cached by its arguments.

    ``name_or_path``: ``sd1``, ``sd2``, ``kd``, ``mar``, ``taesd``, ``taef2`` (bundled), ``demo-shapes``, a
    diffusers repo id or a local diffusers folder (``AutoencoderKL``, ``VQModel`` or ``AutoencoderTiny``);
    ``<named>-q<Δ>`` (e.g. ``taef2-q1``) is a rung of the fidelity ladder: that autoencoder with its latent
    codes rounded to multiples of Δ.
    ``weights``: a local copy that replaces the download (a diffusers folder; for ``mar`` the
    ``kl16.ckpt``/``kl16.safetensors`` file; for ``taef2`` a folder with its encoder and decoder files).
    ``repo_id``/``subfolder`` override the hub location of a named model (e.g. a mirror of SD 2.1).
    """
    device_ = resolve_device(device)
    dtype_ = resolve_dtype(dtype, device_)
    name = str(name_or_path)
    key = (name, file_identity(weights), repo_id, subfolder, str(device_), dtype_)

    def build() -> DiffusersAutoencoder | TAEF2Autoencoder | QuantizedLatent:
        rung = quantized_rung(name, set(AUTOENCODERS))
        if rung is not None:
            base = load_autoencoder(rung[0], weights=weights, repo_id=repo_id, subfolder=subfolder, device=device_,
                                    dtype=dtype_)
            return QuantizedLatent(base, rung[1], name=name)
        if name == "demo-shapes":
            from magig_core.models.demo_shapes import load_demo_autoencoder

            return load_demo_autoencoder(weights_dir=weights, device=device_).to(dtype_)
        if name == "taef2":
            return load_taef2(weights).to(device=device_, dtype=dtype_)
        model, kind = _load_model(name, weights, repo_id, subfolder)
        model.to(device=device_, dtype=dtype_)
        return DiffusersAutoencoder(model, kind, name=name)

    return MODEL_CACHES["autoencoder"].get_or_create(key, build)  # type: ignore[return-value]


def _load_model(
    name: str, weights: str | Path | None, repo_id: str | None, subfolder: str | None
) -> tuple[nn.Module, AutoencoderKind]:
    info = AUTOENCODERS.get(name)
    if name == "mar":
        return _load_mar(weights, repo_id or info.repo_id), "kl"  # type: ignore[union-attr]
    if info is not None:
        if weights is not None:
            return _from_folder(name, Path(weights), subfolder or info.subfolder)
        cls_name: str = info.diffusers_class  # type: ignore[assignment]
        model = hub_pretrained(
            name,
            getattr(_diffusers(), cls_name).from_pretrained,
            repo_id or info.repo_id,  # type: ignore[arg-type]
            subfolder=subfolder or info.subfolder,
            former_repo_ids=() if repo_id else info.former_repo_ids,
        )
        return model, DIFFUSERS_KINDS[cls_name]
    if Path(name).expanduser().is_dir():
        return _from_folder(name, Path(name), subfolder)
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        config = json.loads(
            hub_file(name, name, "config.json", subfolder=subfolder).read_text(encoding="utf-8")
        )
        cls = _diffusers_class(name, config)
        return hub_pretrained(name, cls.from_pretrained, name, subfolder=subfolder), DIFFUSERS_KINDS[
            cls.__name__
        ]
    raise ValueError(
        f"unknown autoencoder {name!r}: use one of {', '.join(AUTOENCODERS)}, a diffusers repo id "
        "(owner/name, with subfolder= if needed) or a local diffusers folder."
    )


def _diffusers():
    """diffusers is imported on first use: it pulls in torch._dynamo and costs seconds at start-up."""
    import diffusers

    return diffusers


def _diffusers_class(name: str, config: dict) -> type:
    class_name = config.get("_class_name")
    if class_name not in DIFFUSERS_KINDS:
        raise ValueError(
            f"{name} holds a {class_name or 'model without _class_name'}; supported autoencoders are "
            f"{', '.join(DIFFUSERS_KINDS)}. For a full pipeline repo pass subfolder='vae' (or 'movq')."
        )
    return getattr(_diffusers(), class_name)


def _from_folder(name: str, folder: Path, subfolder: str | None) -> tuple[nn.Module, AutoencoderKind]:
    """A saved diffusers model: ``folder/config.json``, or ``folder/<subfolder>/config.json`` for a snapshot."""
    folder = folder.expanduser()
    candidates = [folder, *([folder / subfolder] if subfolder else [])]
    for candidate in candidates:
        config_file = candidate / "config.json"
        if config_file.is_file():
            cls = _diffusers_class(name, json.loads(config_file.read_text(encoding="utf-8")))
            return cls.from_pretrained(candidate), DIFFUSERS_KINDS[cls.__name__]
    raise WeightsUnavailableError(
        name,
        str(folder),
        "no diffusers config.json was found there.",
        [
            f"pass the folder that holds config.json and the weights (looked in {', '.join(map(str, candidates))})"
        ],
    )


def _load_mar(weights: str | Path | None, repo_id: str) -> nn.Module:
    if weights is None:
        path = hub_file("mar", repo_id, _MAR_FILES[0])
    else:
        path = Path(weights).expanduser()
        if path.is_dir():
            found = [path / file for file in _MAR_FILES if (path / file).is_file()]
            if not found:
                raise WeightsUnavailableError(
                    "mar",
                    str(path),
                    f"the folder holds neither {' nor '.join(_MAR_FILES)}.",
                    ["pass weights= the kl16.ckpt or kl16.safetensors file itself"],
                )
            path = found[0]
    return mar_autoencoder_from_state_dict(read_state_dict(path, model="mar"))
