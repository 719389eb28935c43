"""Efficient MPRT (Hedström et al. 2023) through Quantus: does a method's map depend on what the model learned?

Per image, ``(H(e_random) − H(e)) / H(e)``: the relative rise of the map's complexity when every layer of
the classifier is re-initialized. H is the discrete entropy of a 100-bin histogram of the map's values
(Quantus' ``discrete_entropy``); e is the map of the trained classifier, e_random the same method's map
of a copy whose every module with ``reset_parameters`` was reset, each after ``torch.manual_seed(seed + 1)``
(Quantus' random layer generator, bottom-up and cascading, so in the end every layer is random). Higher is
better: a map that follows the model turns to noise with it; a map that ignores the model scores exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

SEED = 42  # Quantus' default: the randomized copy is the same for every method and image
Explainer = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, images, targets) -> maps


def emprt(explainer: Explainer, classifier: nn.Module, images: torch.Tensor, targets: torch.Tensor,
          attributions: torch.Tensor, *, seed: int = SEED) -> torch.Tensor:
    """[B] scores; ``attributions`` are the method's maps of ``classifier``, so only the random model's are new.

    ``explainer`` runs the method on any model (Quantus hands it the randomized copy); Quantus asks for the
    trained model's maps as well, and gets the ones already computed.
    """
    import quantus  # several seconds to import: only when the metric is asked for

    device = targets.device

    def explain_func(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object) -> np.ndarray:
        if model is classifier:
            return attributions.detach().cpu().numpy()
        maps = explainer(model, torch.from_numpy(inputs).to(images), torch.from_numpy(targets).to(device))
        return maps.detach().cpu().numpy()

    metric = quantus.EfficientMPRT(seed=seed, disable_warnings=True, display_progressbar=False)
    scores = metric(model=classifier, x_batch=images.detach().cpu().numpy(), y_batch=targets.cpu().numpy(),
                    a_batch=attributions.detach().cpu().numpy(), explain_func=explain_func,
                    device=str(images.device), batch_size=len(images))
    return torch.tensor([float(s) for s in scores], dtype=torch.float64)
