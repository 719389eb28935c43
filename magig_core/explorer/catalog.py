"""Which models the explorer offers, which of them can actually be loaded here, and why not.

Pretrained weights may be missing (offline machine, empty cache). A failed load is remembered with its
reason so the UI can list unavailable models and fall back to the bundled demo models, which always work.
Loaded models are cached by the model zoo, so switching back and forth does not reload weights.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from magig_core.errors import MagigError
from magig_core.models import WeightsUnavailableError, load_autoencoder, load_classifier
from magig_core.models.availability import weights_status
from magig_core.models.zoo import ModelInfo, list_autoencoders, list_classifiers

Kind = Literal["classifier", "autoencoder"]
DEMO = "demo-shapes"


class ModelUnavailableError(MagigError, RuntimeError):
    """A model that cannot be used here, with a message meant for the end user."""


@dataclass(frozen=True)
class Choice:
    name: str
    description: str
    cost_hint: str


class Catalog:
    """The model menu plus what happened when each model was loaded (per process)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._outcomes: dict[tuple[Kind, str], str | None] = {}  # None: loaded fine; else why not
        self._checked: dict[tuple[Kind, str], str | None] = {}  # None: weights cached or downloadable
        self._lock = threading.Lock()

    def choices(self, kind: Kind) -> list[Choice]:
        infos: list[ModelInfo] = list_classifiers() if kind == "classifier" else list_autoencoders()
        return [Choice(i.name, i.description, i.cost_hint) for i in infos]

    def check_all(self) -> None:
        """Look in the caches (and probe the network once) for every listed model, loading nothing."""
        for kind in ("classifier", "autoencoder"):
            for choice in self.choices(kind):
                reason = weights_status(choice.name, kind)
                with self._lock:
                    self._checked[(kind, choice.name)] = reason

    def unavailable(self) -> dict[tuple[Kind, str], str]:
        """(kind, name) → reason, for every model that failed to load or whose weights cannot be had."""
        with self._lock:
            found = {**self._checked, **self._outcomes}
        return {key: reason for key, reason in found.items() if reason is not None}

    def status(self, kind: Kind, name: str) -> str:
        """"available", "unavailable: <first line of the reason>", "loads on first use" or "not checked yet"."""
        with self._lock:
            if (kind, name) in self._outcomes:
                reason = self._outcomes[(kind, name)]
                return "available" if reason is None else f"unavailable: {reason.splitlines()[0]}"
            if (kind, name) not in self._checked:
                return "not checked yet"
            reason = self._checked[(kind, name)]
        return "loads on first use" if reason is None else f"unavailable: {reason.splitlines()[0]}"

    def load(self, kind: Kind, name: str) -> nn.Module:
        """The model on this catalog's device (cached by the zoo); ``ModelUnavailableError`` if it cannot load."""
        loader = load_classifier if kind == "classifier" else load_autoencoder
        try:
            model = loader(name, device=self.device)
        except WeightsUnavailableError as err:
            reason = str(err)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            reason = f"{name!r} could not be loaded: {err}"
        else:
            with self._lock:
                self._outcomes[(kind, name)] = None
            return model
        with self._lock:
            self._outcomes[(kind, name)] = reason
        raise ModelUnavailableError(f"The {kind} {name!r} is not available here. {reason}")
