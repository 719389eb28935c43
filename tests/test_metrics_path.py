"""Path diagnostics against what this file computes itself: the classifier's own probabilities along the
straight line, trapezoids summed by hand, closed forms, and the completeness gap from two forward passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from magig_core import explain
from magig_core.metrics import completeness, confidence_curve, path_positions, trapezoid_auc
from magig_core.models.image_classifier import ImageClassifier


def _classifier() -> ImageClassifier:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    return ImageClassifier(net, class_names=list("abcde"), input_size=(8, 8))


def _target_probability(clf: ImageClassifier, images: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return clf(images).softmax(-1).gather(1, targets[:, None])[:, 0].double().numpy()


def _hand_trapezoid(values: np.ndarray, t: np.ndarray) -> float:
    return sum((t[k + 1] - t[k]) * (values[k] + values[k + 1]) / 2 for k in range(len(t) - 1))


def test_confidence_curve_is_the_target_probability_at_t_k_over_n_minus_1() -> None:
    """IG's point k is α_k = k/(N−1) on the line from black: probabilities recomputed from the classifier.

    Catches a k/N grid (every t and every probability after the first shifts, and the curve never reaches
    the input) and an AUC over the wrong axis (3 images × 7 points).
    """
    clf = _classifier()
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([1, 3, 4])
    n = 7
    curve = confidence_curve(explain(images, clf, "ig", steps=n, targets=targets))
    t = np.array([k / (n - 1) for k in range(n)])
    direct = np.stack([_target_probability(clf, alpha * images, targets) for alpha in t], axis=1)
    np.testing.assert_allclose(curve.t.numpy(), t, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.values.numpy(), direct, rtol=1e-5)
    np.testing.assert_allclose(curve.auc.numpy(), [_hand_trapezoid(row, t) for row in direct], rtol=1e-5)


def test_trapezoid_auc_matches_closed_forms_on_the_k_over_n_minus_1_grid() -> None:
    """On t_k = k/(N−1) the trapezoid integrates 1 and t exactly and t² to 1/3 + h²/6 (h = 1/(N−1)).

    The curves are built from t computed here, so a k/N grid in ``path_positions`` gives 0.8, 0.32, …
    """
    n = 5
    t = np.linspace(0.0, 1.0, n)
    values = torch.from_numpy(np.stack([np.ones(n), t, t**2]))
    h = 1 / (n - 1)
    np.testing.assert_allclose(path_positions(n).numpy(), t, rtol=0, atol=1e-15)
    np.testing.assert_allclose(trapezoid_auc(values, path_positions(n)).numpy(), [1, 0.5, 1 / 3 + h**2 / 6])


def test_trapezoid_auc_integrates_each_row_over_t_not_each_column() -> None:
    """A square [4,4] input, so integrating along the wrong axis runs without a shape error."""
    t = np.array([0.0, 0.1, 0.5, 1.0])
    values = np.random.default_rng(2).random((4, 4))
    expected = [_hand_trapezoid(row, t) for row in values]
    assert not np.allclose(np.trapezoid(values, t, axis=0), expected)  # the input tells the axes apart
    auc = trapezoid_auc(torch.from_numpy(values), torch.from_numpy(t))
    np.testing.assert_allclose(auc.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(auc.numpy(), np.trapezoid(values, t, axis=1), rtol=1e-12)


def test_frames_keep_their_true_positions_and_a_single_point_is_its_value() -> None:
    """Frames 0, 50, 100, 200 of 201 points sit at t = 0, 1/4, 1/2, 1 (not 0, 1/3, 2/3, 1 or k/201);
    the trapezoid of t² over them, by hand: 1/4·(0+1/16)/2 + 1/4·(1/16+1/4)/2 + 1/2·(1/4+1)/2 = 23/64."""
    t = path_positions(201, torch.tensor([0, 50, 100, 200]))
    np.testing.assert_allclose(t.numpy(), [0, 0.25, 0.5, 1], rtol=0, atol=1e-15)
    assert trapezoid_auc(t[None] ** 2, t).item() == pytest.approx(23 / 64, rel=1e-12)
    single = trapezoid_auc(torch.tensor([[0.7], [0.2]]), path_positions(1))
    assert single.tolist() == pytest.approx([0.7, 0.2])


def test_completeness_is_the_gap_between_attribution_sum_and_output_change() -> None:
    """|ΣA − (p(x) − p(black))| and its ratio to |p(x) − p(black)|, both outputs from forward passes here.

    Eight IG points leave a visible residual; the inputs are such that dividing by |p(x)| or by |ΣA| instead
    of by the gap gives a different relative residual.
    """
    clf = _classifier()
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([0, 2])
    result = explain(images, clf, "ig", steps=8, targets=targets)
    black = torch.zeros_like(images)
    gap = _target_probability(clf, images, targets) - _target_probability(clf, black, targets)
    attribution_sum = result.attributions.sum(dim=(1, 2, 3)).double().numpy()
    absolute = np.abs(attribution_sum - gap)
    res = completeness(result)
    np.testing.assert_allclose(res.absolute.numpy(), absolute, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.relative.numpy(), absolute / np.abs(gap), rtol=1e-4)
    assert absolute.min() > 1e-4  # a real residual, so the ratio is not 0 / anything
    for wrong in (_target_probability(clf, images, targets), attribution_sum):
        assert not np.allclose(absolute / np.abs(wrong), absolute / np.abs(gap), rtol=0.05)


def test_relative_completeness_is_undefined_without_an_output_gap() -> None:
    """An input equal to the black baseline: nothing to explain, residual 0, ratio NaN (not inf, not 0)."""
    res = completeness(explain(torch.zeros(1, 3, 8, 8), _classifier(), "ig", steps=4, targets=[1]))
    assert res.absolute.tolist() == [0.0]
    assert torch.isnan(res.relative).all()
