"""Reference libraries as oracles: Captum's IntegratedGradients and PAIR's Guided IG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magig_core import explain
from tests.conftest import small_cnn


def test_ig_equals_captum_left_riemann() -> None:
    """Captum's left rule with n_steps = N − 1 uses exactly the reference's points and weights."""
    from captum.attr import IntegratedGradients

    cnn = small_cnn()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([1, 4])
    steps = 25
    ours = explain(images, cnn, "ig", targets=targets, steps=steps)
    oracle = IntegratedGradients(lambda x: torch.softmax(cnn(x), dim=1)).attribute(
        images, baselines=torch.zeros_like(images), target=targets, n_steps=steps - 1, method="riemann_left"
    )
    torch.testing.assert_close(ours.attributions, oracle, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_guided_rule_with_pair_schedule_equals_pair_guided_ig(fraction: float, monkeypatch) -> None:
    """PAIR's unbounded Guided IG (max_dist = 1, float64) is our rule on PAIR's schedule."""
    numpy_quantile = np.quantile

    def quantile(values, q, interpolation="linear", **kwargs):
        # saliency 0.2.1 still passes NumPy's removed `interpolation=` keyword; same meaning as `method=`.
        return numpy_quantile(values, q, method=interpolation, **kwargs)

    monkeypatch.setattr(np, "quantile", quantile)
    from saliency.core import GuidedIG
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    cnn = small_cnn(dtype=torch.float64)
    image = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    target = 2
    steps = 30

    def call_model(batch, call_model_args=None, expected_keys=None):
        tensor = torch.from_numpy(np.asarray(batch)).requires_grad_(True)
        prob = torch.softmax(cnn(tensor), dim=1)[:, target].sum()
        return {INPUT_OUTPUT_GRADIENTS: torch.autograd.grad(prob, tensor)[0].numpy()}

    oracle = GuidedIG().GetMask(
        image[0].numpy(), call_model, x_baseline=np.zeros_like(image[0].numpy()), x_steps=steps,
        fraction=fraction, max_dist=1.0,
    )
    ours = explain(image, cnn, "gig", targets=[target], steps=steps + 1, fraction=fraction, schedule="pair")
    np.testing.assert_allclose(ours.attributions[0].numpy(), oracle, atol=1e-10, rtol=1e-7)
