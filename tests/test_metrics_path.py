"""Path diagnostics: confidence curve/AUC, completeness, and the trapezoid rule over t = k/(N-1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from magig_core.attribution.result import Explanation
from magig_core.metrics import completeness, confidence_curve, path_positions, trapezoid_auc
from magig_core.models.image_classifier import ImageClassifier


def _classifier() -> ImageClassifier:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    return ImageClassifier(net, class_names=list("abcde"), input_size=(8, 8))


def _explanation_for_straight_line(clf: ImageClassifier, images: torch.Tensor, targets: torch.Tensor, n: int):
    """An Explanation whose path_probs come from our own forward passes on a straight-line path."""
    alphas = torch.linspace(0, 1, n)
    path = torch.stack([a * images for a in alphas], dim=1)  # [B,N,3,H,W], black → input
    with torch.no_grad():
        probs = clf(path.flatten(0, 1)).softmax(-1).view(images.shape[0], n, -1)
    path_probs = probs.gather(2, targets.view(-1, 1, 1).expand(-1, n, 1))[..., 0]
    return path, Explanation(
        method="ig",
        attributions=torch.zeros_like(images),
        targets=targets,
        path_probs=path_probs,
        input_output=path_probs[:, -1],
        baseline_output=path_probs[:, 0],
        input_logits=torch.zeros(images.shape[0], 5),
        completeness_residual=torch.tensor([0.01, 0.0]),
    )


def test_confidence_curve_and_auc_equal_a_direct_recomputation() -> None:
    clf = _classifier()
    images = torch.rand(2, 3, 8, 8)
    targets = torch.tensor([1, 3])
    n = 11
    path, expl = _explanation_for_straight_line(clf, images, targets, n)
    curve = confidence_curve(expl)
    t = np.arange(n) / (n - 1)
    for b in range(2):
        direct = np.array([clf(path[b, k : k + 1]).softmax(-1)[0, targets[b]].item() for k in range(n)])
        np.testing.assert_allclose(curve.values[b].numpy(), direct, rtol=1e-5)
        np.testing.assert_allclose(curve.auc[b].item(), np.trapezoid(direct, t), rtol=1e-5)
    np.testing.assert_allclose(curve.t.numpy(), t)


def test_trapezoid_auc_on_known_curves() -> None:
    t = path_positions(5)
    values = torch.stack([torch.ones(5), t, t**2])
    np.testing.assert_allclose(trapezoid_auc(values, t).numpy(), [1.0, 0.5, 0.34375])
    assert trapezoid_auc(torch.tensor([[0.7]]), path_positions(1)).item() == pytest.approx(0.7)
    # a subset of frames keeps its true positions on the path
    np.testing.assert_allclose(path_positions(201, torch.tensor([0, 100, 200])).numpy(), [0, 0.5, 1])


def test_completeness_reports_absolute_and_relative_residuals() -> None:
    clf = _classifier()
    _, expl = _explanation_for_straight_line(clf, torch.rand(2, 3, 8, 8), torch.tensor([0, 0]), 3)
    expl.input_output = torch.tensor([0.9, 0.5])
    expl.baseline_output = torch.tensor([0.1, 0.5])
    res = completeness(expl)
    np.testing.assert_allclose(res.absolute.numpy(), [0.01, 0.0])
    assert res.relative[0].item() == pytest.approx(0.01 / 0.8)
    assert torch.isnan(res.relative[1])  # no output gap: undefined, not infinite
