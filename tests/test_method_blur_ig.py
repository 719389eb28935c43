"""Blur IG against PAIR's ``saliency.core.BlurIG`` (the oracle) and scipy's Gaussian filter.

Both sides run in float64 on the same small CNN, so they agree to rounding (1e-9 relative): any
difference in the σ schedule, the kernel's truncation or padding, the finite-difference slope, the
sign, or which end of each interval the gradient is taken at would show up far above that.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from saliency.core import BlurIG
from saliency.core.base import INPUT_OUTPUT_GRADIENTS
from scipy import ndimage

from magig_core import METHODS, explain
from magig_core.attribution import method_spec
from tests.conftest import small_cnn


def pair_blur_ig(cnn, image: torch.Tensor, target: int, **kwargs) -> np.ndarray:
    """PAIR's Blur IG on one [3,H,W] image (it works on HWC arrays); gradient of the softmax probability."""

    def call_model(batch, call_model_args=None, expected_keys=None):
        points = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).requires_grad_(True)
        probs = torch.softmax(cnn(points), dim=1)[:, target].sum()
        grads = torch.autograd.grad(probs, points)[0]
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).detach().numpy()}

    mask = BlurIG().GetMask(image.permute(1, 2, 0).numpy(), call_model, **kwargs)
    return np.transpose(mask, (2, 0, 1))


@pytest.mark.parametrize("sqrt", [False, True])
def test_equals_pair_blur_ig_per_image_in_a_batch(sqrt: bool) -> None:
    cnn = small_cnn(num_classes=4, dtype=torch.float64)
    images = torch.rand(2, 3, 12, 14, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    targets = [1, 3]
    ours = explain(images, cnn, "Blur-IG", targets=targets, steps=17, blur_ig_max_sigma=6.0, blur_ig_sqrt=sqrt,
                   chunk_size=5)
    for b, target in enumerate(targets):
        expected = pair_blur_ig(cnn, images[b], target, max_sigma=6.0, steps=16, grad_step=0.01, sqrt=sqrt)
        np.testing.assert_allclose(ours.attributions[b].numpy(), expected, rtol=1e-9, atol=1e-12)


def test_path_runs_from_the_blurred_image_to_the_input_and_explains_its_gap() -> None:
    cnn = small_cnn(dtype=torch.float64)
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    result = explain(image, cnn, "blur-ig", steps=400, max_sigma=3.0, frames=2, targets=[2])
    blurred = ndimage.gaussian_filter(image[0].numpy(), sigma=[0, 3.0, 3.0], mode="constant")
    np.testing.assert_allclose(result.frames[0, 0].numpy(), blurred, rtol=0, atol=1e-12)
    torch.testing.assert_close(result.frames[0, -1], image[0])
    probs = torch.softmax(cnn(torch.cat([torch.from_numpy(blurred)[None], image])), dim=1)[:, 2]
    torch.testing.assert_close(result.baseline_output, probs[:1])  # completeness against the blurred start
    torch.testing.assert_close(result.path_probs[0, [0, -1]], probs)
    # 400 points resolve this smooth path: the sum accounts for the output gap to within 2 %
    assert result.completeness_relative.item() < 0.02


def test_path_probabilities_follow_the_blur_schedule() -> None:
    """Every point's probability, computed on scipy-blurred images: catches points paired with wrong σ."""
    cnn = small_cnn(dtype=torch.float64)
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    result = explain(image, cnn, "blur-ig", steps=9, max_sigma=4.0, targets=[1], chunk_size=3)
    sigmas = [4.0 * (8 - p) / 8 for p in range(9)]  # path order: most blurred first
    blurred = np.stack([ndimage.gaussian_filter(image[0].numpy(), sigma=[0, s, s], mode="constant") if s else
                        image[0].numpy() for s in sigmas])
    expected = torch.softmax(cnn(torch.from_numpy(blurred)), dim=1)[:, 1]
    torch.testing.assert_close(result.path_probs[0], expected)


def test_paper_defaults_and_registration() -> None:
    spec = method_spec("blur_ig")
    assert spec.name in METHODS
    assert spec.options() == spec.options(steps=200, max_sigma=50.0, grad_step=0.01, sqrt=False)
