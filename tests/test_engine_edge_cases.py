"""Degenerate inputs the engine must survive: no hang, no NaN, and the documented result."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from magig_core import METHODS, explain
from magig_core.attribution.methods.agi import negative_classes
from tests.conftest import small_cnn


@pytest.mark.parametrize("method", METHODS)
def test_input_equal_to_baseline(method: str, vae) -> None:
    cnn = small_cnn()
    black = torch.zeros(2, 3, 12, 12)
    references = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    result = explain(black, cnn, method, autoencoder=vae, steps=6, references=references, agi_iterations=3,
                     mig_energy_threshold=0.0)
    assert torch.isfinite(result.attributions).all()
    if method in ("gi", "ig", "gig"):
        assert result.attributions.abs().max() == 0


class Saturated(nn.Module):
    """Logits so far apart that softmax gradients underflow to exactly zero."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score = images.mean(dim=(1, 2, 3))
        return torch.stack([1e4 + score, -1e4 * torch.ones_like(score)], dim=1)


@pytest.mark.parametrize("method", ["ig", "gig", "ma-gig"])
def test_saturated_softmax_degenerates_to_a_straight_line_without_hanging(method: str, vae) -> None:
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    result = explain(images, Saturated(), method, autoencoder=vae, steps=8, targets=[0, 0], frames=8)
    assert result.attributions.abs().max() == 0  # exactly zero, so no NaN or inf either
    if method == "gig":  # every gradient is zero, so every coordinate is selected: the straight line
        k = torch.arange(7, dtype=torch.float32).view(1, 7, 1, 1, 1)
        torch.testing.assert_close(result.frames[:, :7], (k / 8) * images.unsqueeze(1), atol=1e-6, rtol=0)


class SquareRoot(nn.Module):
    """sqrt has an infinite derivative at 0: the black baseline yields non-finite gradients."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score = images.sqrt().mean(dim=(1, 2, 3))
        return torch.stack([score, -score], dim=1)


@pytest.mark.parametrize("method", ["ig", "gig"])
def test_nonfinite_gradients_are_guarded_and_counted(method: str) -> None:
    images = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(2)) * 0.9 + 0.05
    result = explain(images, SquareRoot(), method, steps=10, targets=[0], objective="logit")
    assert torch.isfinite(result.attributions).all()
    assert result.config["nonfinite_gradients"] > 0


def test_single_pixel_image_and_single_class() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 1)).eval().requires_grad_(False)
    result = explain(torch.rand(1, 3, 1, 1), net, "gig", steps=4)
    assert result.attributions.shape == (1, 3, 1, 1)
    assert result.targets.tolist() == [0]


def test_agi_negative_classes_follow_the_reference_rule() -> None:
    assert negative_classes(1000, 10) == list(range(0, 1000, 100))
    assert negative_classes(37, 10) == list(range(0, 34, 3))  # 12 classes
    assert negative_classes(102, 10) == list(range(0, 101, 10))  # 11 classes
    assert negative_classes(6, 10) == [0, 1, 2, 3, 4]


def test_agi_sums_over_negative_classes_and_skips_the_label(monkeypatch) -> None:
    from magig_core.attribution.methods import agi

    cnn = small_cnn(num_classes=4)
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(3))

    def run(classes: list[int]) -> torch.Tensor:
        monkeypatch.setattr(agi, "negative_classes", lambda num_classes, requested: classes)
        return explain(image, cnn, "agi", targets=[0], agi_iterations=3).attributions

    one, two = run([1]), run([2])
    torch.testing.assert_close(run([1, 2]), one + two, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(run([0, 1, 2]), one + two, atol=1e-7, rtol=1e-6)  # 0 is the label
    assert run([0]).abs().max() == 0
    assert one.abs().max() > 0


def test_agi_has_no_single_baseline() -> None:
    result = explain(torch.rand(1, 3, 8, 8), small_cnn(), "agi", agi_iterations=2)
    assert torch.isnan(result.completeness_residual).all()


def test_ig2_steps_have_exact_length_and_reference_equal_input_gives_zero() -> None:
    cnn = small_cnn()
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(4))
    other = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(5))
    result = explain(image, cnn, "ig2", steps=6, references=other, frames=7, ig2_step_size=0.02)
    lengths = (result.frames[0, 1:] - result.frames[0, :-1]).flatten(1).norm(dim=1)
    torch.testing.assert_close(lengths, torch.full((6,), 0.02), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.frames[0, -1], image[0])  # reported path ends at the input
    assert result.path_probs.shape == (1, 7)
    assert result.completeness_residual.item() < 1e-3
    itself = explain(image, cnn, "ig2", steps=6, references=image)
    assert itself.attributions.abs().max() == 0


def test_bf16_precision_changes_results_only_slightly(vae) -> None:
    """Measured on this tiny CNN/VAE: bf16 autocast moves IG attributions by ~1 % of their scale."""
    cnn = small_cnn()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    full = explain(images, cnn, "ig", steps=16, targets=[0, 1])
    reduced = explain(images, cnn, "ig", steps=16, targets=[0, 1], precision="bf16")
    assert reduced.config["precision"] == "bf16"
    scale = full.attributions.abs().max()
    error = (reduced.attributions - full.attributions).abs().max() / scale
    assert 0 < error < 0.1
    with pytest.raises(ValueError, match="needs a CUDA device"):
        explain(images, cnn, "ig", steps=4, precision="fp16")
