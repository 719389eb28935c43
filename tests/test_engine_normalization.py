"""Classifiers that hide their normalization: the paths must still live in the normalized space."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from magig_core import explain
from magig_core.attribution.model import IdentityNormalizationWarning
from magig_core.metrics import faithfulness
from magig_core.models.image_classifier import ImageClassifier
from tests.conftest import small_cnn

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class NormalizesInside(nn.Module):
    """A plain module whose forward does (x − mean) / std itself, as many user models do."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("m", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("s", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.m) / self.s)


@pytest.mark.parametrize("method", ["gig", "agi", "ig2"])  # the methods whose geometry depends on the space
def test_saying_the_normalization_equals_wrapping_the_bare_network(method: str) -> None:
    network = small_cnn()
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    common = {"steps": 12, "agi_iterations": 3, "targets": [0, 1], "references": torch.rand(3, 3, 12, 12)}
    wrapped = explain(images, ImageClassifier(network, mean=MEAN, std=STD), method, **common)
    said = explain(images, NormalizesInside(network), method, normalization=(MEAN, STD), **common)
    torch.testing.assert_close(said.attributions, wrapped.attributions, atol=1e-6, rtol=1e-5)
    assumed = explain(images, NormalizesInside(network), method, **common)
    assert not torch.allclose(assumed.attributions, wrapped.attributions, atol=1e-6, rtol=1e-4)


def test_metrics_impute_in_the_named_space() -> None:
    network = small_cnn()
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    attributions = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    wrapped = faithfulness(ImageClassifier(network, mean=MEAN, std=STD), images, attributions, [0, 1])
    said = faithfulness(NormalizesInside(network), images, attributions, [0, 1], normalization=(MEAN, STD))
    torch.testing.assert_close(said.insertion_soft, wrapped.insertion_soft)


def test_falling_back_to_identity_normalization_warns_once_per_classifier() -> None:
    classifier = NormalizesInside(small_cnn())
    image = torch.rand(1, 3, 8, 8)
    with pytest.warns(IdentityNormalizationWarning, match=r"normalization=\(mean, std\)"):
        explain(image, classifier, "gi")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentityNormalizationWarning)
        explain(image, classifier, "gi")  # the same module again: no second warning
        explain(image, ImageClassifier(small_cnn(), mean=MEAN, std=STD), "gi")  # carries its own: none
        explain(image, NormalizesInside(small_cnn()), "gi", normalization=(MEAN, STD))  # named: none
