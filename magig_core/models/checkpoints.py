"""Reading state dicts and label files from user-supplied paths."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from magig_core.errors import WeightsUnavailableError

# Wrappers used by common training scripts, in the order they are looked for.
_STATE_DICT_KEYS = ("model_state_dict", "state_dict", "model")
STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")


def read_state_dict(path: str | Path, *, model: str) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint on CPU: unwraps ``{"model_state_dict": ...}``-style wrappers and ``module.``.

    Pickles are read with ``weights_only=True``: a checkpoint must not be able to run code.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            model, str(path), "the file does not exist.", ["pass weights= the path of an existing checkpoint"]
        )
    if path.suffix == ".safetensors":
        loaded: object = safetensors.torch.load_file(str(path), device="cpu")
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{path} holds objects other than tensors and plain containers, which are not loaded for "
                "safety. Re-save only the weights: torch.save({'model_state_dict': model.state_dict()}, path)."
            ) from error
    for key in _STATE_DICT_KEYS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise ValueError(
            f"{path} is not a state dict (a mapping of names to tensors, optionally under one of "
            f"{', '.join(_STATE_DICT_KEYS)})."
        )
    if loaded and all(key.startswith("module.") for key in loaded):  # saved from DataParallel/DDP
        loaded = {key.removeprefix("module."): value for key, value in loaded.items()}
    return loaded


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], *, model: str) -> None:
    """Load every tensor into ``module`` (cast to its dtype); a missing, extra or reshaped one is an error."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"the checkpoint does not fit {model}: its tensor names or shapes differ from the architecture "
            f"(is it the right file?). Details: {error}"
        ) from error


def file_identity(path: str | Path | None) -> tuple[str, int] | None:
    """A local file's resolved path and modification time: a cache key under which edits reload."""
    if path is None:
        return None
    resolved = Path(path).expanduser().resolve()
    return str(resolved), resolved.stat().st_mtime_ns if resolved.exists() else -1


def packaged_labels(filename: str) -> list[str]:
    text = (resources.files("magig_core.models") / "data" / filename).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def read_labels(labels: str | Path | Sequence[str]) -> list[str]:
    """Class names from a list, a text file (one per line) or JSON (a list, or index → name / [id, name])."""
    if not isinstance(labels, (str, Path)):
        return [str(label) for label in labels]
    path = Path(labels).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"labels file {path} does not exist; pass a .txt (one name per line) or .json file"
        )
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            indices = {str(index) for index in range(len(data))}
            if set(data) != indices:
                raise ValueError(
                    f"{path}: a JSON object of labels must map every index 0..{len(data) - 1} to a name"
                )
            data = [data[str(index)] for index in range(len(data))]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of class names or an index → name object")
        return [str(item[-1]) if isinstance(item, list) else str(item) for item in data]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
