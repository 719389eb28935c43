"""How metrics talk to a classifier: in its normalized input space, whatever kind of module it is.

An ``ImageClassifier`` owns its normalization; a plain ``nn.Module`` is taken to consume its input as is
(identity normalization), so tiny test models and custom networks work unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def normalize(classifier: nn.Module, images01: torch.Tensor) -> torch.Tensor:
    """[0,1] images → the classifier's normalized input space (where the paper's imputation lives)."""
    fn = getattr(classifier, "normalize", None)
    return fn(images01) if callable(fn) else images01


def denormalize(classifier: nn.Module, normalized: torch.Tensor) -> torch.Tensor:
    fn = getattr(classifier, "denormalize", None)
    return fn(normalized) if callable(fn) else normalized


def forward_normalized(classifier: nn.Module, normalized: torch.Tensor) -> torch.Tensor:
    """Logits for normalized input."""
    fn = getattr(classifier, "forward_normalized", None)
    return fn(normalized) if callable(fn) else classifier(normalized)
