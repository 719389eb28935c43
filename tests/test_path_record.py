"""Where along the path the attribution is collected: gradient and contribution frames, accumulation, t50."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from magig_core import explain
from magig_core.attribution.path_record import half_position
from magig_core.metrics.definitions import METRIC_NAMES
from magig_core.metrics.scores import score
from tests.conftest import IdentityAutoencoder, small_cnn

SHAPE = (3, 6, 6)


class Quadratic(nn.Module):
    """Logit 0 is Σ a_i v_i² with a_i > 0: IG from 0 collects a left-point share k(k−1)/((N−1)(N−2)) ≈ t²."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.rand(SHAPE, generator=torch.Generator().manual_seed(4)) + 0.5,
                              requires_grad=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        value = (self.a * images.square()).flatten(1).sum(dim=1, keepdim=True)
        return torch.cat([value, torch.zeros_like(value)], dim=1)


def _images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1


def test_linear_model_ig_collects_evenly_and_each_stretch_is_weight_times_displacement() -> None:
    """F = <w, x>: catches a contribution frame summed over the wrong stretch (off by one frame or segment),
    a share that is not normalised to end at 1, and a t50 read from the signed instead of the mass curve."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SHAPE[0] * SHAPE[1] * SHAPE[2], 3)).double().eval()
    images = _images(2).double()
    targets = torch.tensor([0, 2])
    steps = 9
    result = explain(images, model, "ig", targets=targets, steps=steps, frames=5, objective="logit")
    t = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    torch.testing.assert_close(result.accumulation, t.expand(2, -1), atol=1e-10, rtol=0)
    torch.testing.assert_close(result.accumulation_mass, t.expand(2, -1), atol=1e-10, rtol=0)
    torch.testing.assert_close(result.t50, torch.full((2,), 0.5, dtype=torch.float64), atol=1e-10, rtol=0)
    weight = model[1].weight.detach()[targets].view(2, *SHAPE)
    indices = result.frame_indices.tolist()
    assert indices == [0, 2, 4, 6, 8]
    stretches = torch.tensor([0] + [b - a for a, b in itertools.pairwise(indices)], dtype=torch.float64)
    expected = weight.unsqueeze(1) * images.unsqueeze(1) * (stretches / (steps - 1)).view(1, -1, 1, 1, 1)
    torch.testing.assert_close(result.contribution_frames, expected, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(result.gradient_frames, weight.unsqueeze(1).expand_as(expected))
    assert result.contribution_frames.shape == result.frames.shape


def test_the_scoring_step_reports_t50_and_the_accumulation_curves() -> None:
    """t50 is one of the listed metrics, and the record keeps the curves it came from. On F = <w, x> IG collects
    evenly: t50 = 1/2 and both curves are t itself. Catches t50 read from the signed share, or a curve left out."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(SHAPE[0] * SHAPE[1] * SHAPE[2], 3)).eval()
    images = _images(1)
    steps = 5
    (scores,) = score(explain(images, model, "ig", targets=[1], steps=steps, objective="logit"), model, images)
    assert "t50" in METRIC_NAMES and scores["t50"] == pytest.approx(0.5, abs=1e-6)
    t = [k / (steps - 1) for k in range(steps)]
    assert scores.curves["accumulation"] == pytest.approx(t, abs=1e-6)
    assert scores.curves["accumulation_mass"] == pytest.approx(t, abs=1e-6)
    (pathless,) = score(explain(images, model, "gi", targets=[1]), model, images)
    assert math.isnan(pathless["t50"]) and "accumulation" not in pathless.curves


def test_quadratic_model_ig_collects_as_t_squared() -> None:
    """F = Σ a v²: the share after k left-point segments is k(k−1)/((N−1)(N−2)) (→ t²). Catches a share taken
    from the right-point or midpoint gradient, or accumulated in the wrong order."""
    steps = 21
    result = explain(_images(1).double(), Quadratic().double(), "ig", targets=[0], steps=steps, objective="logit")
    k = torch.arange(steps, dtype=torch.float64)
    expected = k * (k - 1) / ((steps - 1) * (steps - 2))
    torch.testing.assert_close(result.accumulation[0], expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(result.accumulation_mass[0], expected, atol=1e-12, rtol=0)
    assert (result.accumulation[0] - (k / (steps - 1)) ** 2).abs().max() <= 1 / (steps - 2)
    assert abs(float(result.t50[0]) - 0.5 ** 0.5) < 1 / steps


def _autograd_gradient(model: nn.Module, point: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂ softmax(model(x))_c / ∂x at one path image per row, without the engine."""
    point = point.detach().clone().requires_grad_(True)
    probs = torch.softmax(model(point), dim=1).gather(1, targets.view(-1, 1)).sum()
    return torch.autograd.grad(probs, point)[0]


@pytest.mark.parametrize("method", ["ig", "gig", "ma-gig", "ig2", "blur-ig"])
def test_gradient_frames_equal_autograd_at_the_recorded_path_images(method: str) -> None:
    """At every shown path image (first and last included), the recorded gradient is the classifier's input
    gradient there. Catches a gradient frame taken from the neighbouring point, a missing final gradient (the
    guided walk never differentiates at the input), and a reversed walk (IG2, Blur IG) stored in walk order."""
    model = small_cnn(num_classes=4, seed=3).double()
    images = _images(2, seed=5).double()
    targets = torch.tensor([1, 3])
    options = {"blur_ig_max_sigma": 2.0} if method == "blur-ig" else {"ig2_step_size": 0.3} if method == "ig2" else {}
    result = explain(images, model, method, targets=targets, steps=8, frames=4, autoencoder=IdentityAutoencoder(),
                     references=_images(1, seed=9).double(), **options)
    assert result.gradient_frames.shape == result.frames.shape
    for f in range(result.frames.shape[1]):
        expected = _autograd_gradient(model, result.frames[:, f], targets)
        torch.testing.assert_close(result.gradient_frames[:, f], expected, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(result.contribution_frames.sum(dim=1), result.attributions, atol=1e-12, rtol=1e-9)
    torch.testing.assert_close(result.accumulation[:, [0, -1]], torch.tensor([[0.0, 1.0]] * 2, dtype=torch.float64))


@pytest.mark.parametrize("method", ["gig", "ig2"])
def test_contribution_frames_with_every_point_shown_are_gradient_times_step(method: str) -> None:
    """With every point shown, frame f's contribution is g ⊙ (p_f − p_{f−1}), g from autograd at the point the
    method differentiates at (the left point for GIG, the point nearer the input for IG2). Catches a stretch
    paired with the wrong gradient or sign."""
    model = small_cnn(num_classes=4, seed=3).double()
    images = _images(2, seed=6).double()
    targets = torch.tensor([0, 2])
    steps = 6
    result = explain(images, model, method, targets=targets, steps=steps, frames=steps + 1, ig2_step_size=0.3,
                     references=_images(1, seed=9).double())
    frames = result.frames
    assert frames.shape[1] == result.num_path_points
    torch.testing.assert_close(result.contribution_frames[:, 0], torch.zeros_like(images))
    for f in range(1, frames.shape[1]):
        at = frames[:, f - 1] if method == "gig" else frames[:, f]
        expected = _autograd_gradient(model, at, targets) * (frames[:, f] - frames[:, f - 1])
        torch.testing.assert_close(result.contribution_frames[:, f], expected, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("method", ["ig", "blur-ig"])
def test_streamed_partial_maps_end_exactly_at_the_final_map(method: str) -> None:
    """``watch`` sees the running map at each shown position while the walk runs; the last one IS the result.
    Catches a stream that stops before the last segment, or reports a copy taken before the final add."""
    model = small_cnn(num_classes=4, seed=1)
    seen = []
    result = explain(_images(1), model, method, targets=[2], steps=12, frames=4, blur_ig_max_sigma=2.0,
                     watch=lambda snapshot: seen.append(snapshot))
    assert [s.done for s in seen] == [1, 5, 8, 12]  # shown indices 0, 4, 7, 11 (or 11, 7, 4, 0 walked back)
    assert torch.equal(seen[-1].partial, result.attributions)
    assert not torch.equal(seen[1].partial, result.attributions)
    assert seen[-1].collected.shape == (1, 12)
    torch.testing.assert_close(seen[-1].collected[0, -1], result.attributions.sum().double(), rtol=1e-5, atol=1e-7)
    assert all(s.image is not None and s.image.shape == (1, *SHAPE) for s in seen)


def test_half_position_interpolates_between_points() -> None:
    """Shares 0, 0.2, 0.6, 1 at t = 0, 1/3, 2/3, 1: half is reached 3/4 of the way from 1/3 to 2/3.
    Catches returning the first point at or after one half instead of interpolating."""
    share = torch.tensor([[0.0, 0.2, 0.6, 1.0], [0.0, 0.5, 0.5, 1.0]])
    torch.testing.assert_close(half_position(share), torch.tensor([(1 + 0.75) / 3, 1 / 3], dtype=torch.float64))


def test_methods_without_a_path_have_no_accumulation() -> None:
    """GI has one gradient and no path: no curve to collect along (None, not a fake one-point curve)."""
    result = explain(_images(1), small_cnn(num_classes=4), "gi", targets=[0])
    assert result.accumulation is None and result.t50 is None and result.gradient_frames is None
