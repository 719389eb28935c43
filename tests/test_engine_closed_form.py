"""Closed-form truths every path method must satisfy (docs/methods.md §7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from magig_core import explain
from magig_core.models.image_classifier import ImageClassifier
from tests.conftest import IdentityAutoencoder


class ScaledFunction(nn.Module):
    """f(3·x) on a 3-channel 1×1 image, output as a single logit; x ∈ [0,1] maps to v ∈ [0,3]."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        v = 3 * images[:, :, 0, 0]
        if self.kind == "dependent":
            value = (2 * v[:, 0] + v[:, 1]) ** 2
        else:
            value = 2 * v[:, 0] ** 2 + v[:, 1] ** 2
        return value.unsqueeze(1)


def _two_coordinate_image(first: float, second: float) -> torch.Tensor:
    return torch.tensor([first, second, 0.0], dtype=torch.float64).view(1, 3, 1, 1)


def linear_classifier(shape: tuple[int, int], wrap: bool) -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * shape[0] * shape[1], 4))
    if wrap:
        return ImageClassifier(net, input_size=shape, name="linear")
    return net.eval().requires_grad_(False)


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("method", ["gi", "ig", "gig", "ma-gig", "ma-gig-slerp"])
def test_linear_model_gives_weight_times_displacement(method: str, wrap: bool, vae) -> None:
    """F = <w, v> (logit): any anchored path gives A = w ⊙ (v_in − v_bl) exactly, in normalized space."""
    shape = (8, 12)
    clf = linear_classifier(shape, wrap)
    images = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([1, 3])
    name, interpolation = ("ma-gig", "slerp") if method == "ma-gig-slerp" else (method, "lerp")
    result = explain(images, clf, name, autoencoder=vae, targets=targets, steps=12, objective="logit",
                     interpolation=interpolation)
    weight = (clf.network if wrap else clf)[1].weight[targets].view(2, 3, *shape)
    normalized = clf.normalize(images) - clf.normalize(torch.zeros_like(images)) if wrap else images
    torch.testing.assert_close(result.attributions, weight * normalized, atol=2e-5, rtol=1e-4)
    assert result.completeness_residual.max() < 1e-4


def test_dependent_quadratic_matches_reference_values() -> None:
    """f = (2x₁ + x₂)², 0 → (3,3), φ = 0.1: reference-style GIG gives ≈ (71.454, 9.090) at N = 200."""
    model = ScaledFunction("dependent").double()
    image = _two_coordinate_image(1.0, 1.0)
    result = explain(image, model, "gig", targets=[0], steps=200, fraction=0.1, objective="logit")
    attribution = result.attributions[0, :2, 0, 0]
    torch.testing.assert_close(attribution, torch.tensor([71.454, 9.090], dtype=torch.float64), atol=2e-3, rtol=0)
    assert result.attributions[0, 2, 0, 0] == 0


def test_dependent_quadratic_converges_with_more_steps() -> None:
    model = ScaledFunction("dependent").double()
    result = explain(_two_coordinate_image(1.0, 1.0), model, "gig", targets=[0], steps=1000, objective="logit")
    torch.testing.assert_close(
        result.attributions[0, :2, 0, 0], torch.tensor([71.892, 9.018], dtype=torch.float64), atol=2e-3, rtol=0
    )


def test_straight_line_ig_on_dependent_quadratic() -> None:
    """Left-point IG with N = 200 gives (53.729, 26.864); exact IG is (54, 27)."""
    model = ScaledFunction("dependent").double()
    result = explain(_two_coordinate_image(1.0, 1.0), model, "ig", targets=[0], steps=200, objective="logit")
    torch.testing.assert_close(
        result.attributions[0, :2, 0, 0], torch.tensor([53.729, 26.864], dtype=torch.float64), atol=2e-3, rtol=0
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_independent_quadratic_any_guided_variant_equals_ig(reverse: bool) -> None:
    """f = 2x₁² + x₂²: guided ≈ IG = (18, 9); with the baseline above the input, (−18, −9)."""
    model = ScaledFunction("independent").double()
    high, low = _two_coordinate_image(1.0, 1.0), _two_coordinate_image(0.0, 0.0)
    image, baseline = (low, high) if reverse else (high, low)
    expected = torch.tensor([18.0, 9.0], dtype=torch.float64) * (-1 if reverse else 1)
    for method in ("gig", "ig"):
        result = explain(image, model, method, targets=[0], steps=1000, objective="logit", baseline=baseline)
        torch.testing.assert_close(result.attributions[0, :2, 0, 0], expected, atol=0.05, rtol=0)


def test_fraction_one_follows_the_straight_line() -> None:
    """GIG with φ = 1 visits p_k = x_bl + (k/N)(x_in − x_bl) for k ≤ N−2, then jumps to the input."""
    model = ScaledFunction("dependent").double()
    image = torch.tensor([0.9, 0.3, 0.5], dtype=torch.float64).view(1, 3, 1, 1)
    steps = 10
    result = explain(image, model, "gig", targets=[0], steps=steps, fraction=1.0, objective="logit", frames=steps)
    path = result.frames[0, :, :, 0, 0]
    k = torch.arange(steps - 1, dtype=torch.float64).view(-1, 1)
    torch.testing.assert_close(path[:-1], (k / steps) * image.view(1, 3), atol=1e-12, rtol=0)
    torch.testing.assert_close(path[-1], image.view(3))


def test_ma_gig_fraction_one_follows_the_latent_line(vae) -> None:
    """MA-GIG with φ = 1, lerp: interior points D(z_bl + (k/N)(z_in − z_bl)), raw endpoints."""
    clf = linear_classifier((16, 16), wrap=False)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    steps = 6
    result = explain(image, clf, "ma-gig", autoencoder=vae, steps=steps, fraction=1.0, frames=steps)
    with torch.no_grad():
        z_in, z_bl = vae.encode(image), vae.encode(torch.zeros_like(image))
        expected = [vae.decode(z_bl + (k / steps) * (z_in - z_bl)) for k in range(1, steps - 1)]
    torch.testing.assert_close(result.frames[0, 0], torch.zeros_like(image[0]))
    torch.testing.assert_close(result.frames[0, -1], image[0])
    torch.testing.assert_close(result.frames[0, 1:-1], torch.cat(expected), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["ig", "gig"])
def test_completeness_residual_shrinks_with_steps(method: str, cnn) -> None:
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(7))
    residuals = [
        explain(images, cnn, method, steps=n, objective="logit").completeness_residual.mean().item()
        for n in (8, 32, 128)
    ]
    assert residuals[0] > residuals[1] > residuals[2]
    assert residuals[2] < residuals[0] / 4


def test_identity_autoencoder_ma_gig_equals_pixel_gig(cnn, images) -> None:
    pixel = explain(images, cnn, "gig", steps=16, fraction=0.1)
    latent = explain(images, cnn, "ma-gig", autoencoder=IdentityAutoencoder(), steps=16, fraction=0.1)
    torch.testing.assert_close(latent.attributions, pixel.attributions, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(latent.path_probs, pixel.path_probs)
