"""End to end on the demo world: latent-path attributions with the bundled models vs the true object masks."""

import pytest
import torch

from magig_core.attribution.api import explain
from magig_core.demo.models import load_demo_autoencoder, load_demo_classifier
from magig_core.demo.world import generate
from magig_core.metrics.localization import energy_in_mask, random_attribution_energy

TEST_SEED = 2
STEPS = 32


def _energy_vs_chance(method: str) -> tuple[float, float]:
    samples = generate(12, TEST_SEED)  # 2 images per class
    result = explain(
        samples.images,
        load_demo_classifier(),
        method=method,
        autoencoder=load_demo_autoencoder(),
        targets=samples.labels,
        steps=STEPS,
    )
    assert result.attributions.shape == samples.images.shape
    assert torch.isfinite(result.attributions).all()
    assert torch.equal(result.targets.cpu(), samples.labels)
    energy = energy_in_mask(result.attributions, samples.masks).mean().item()
    return energy, random_attribution_energy(samples.masks).mean().item()


def test_eig_attributions_concentrate_on_the_object():
    """Measured with the bundled weights (demo-shapes-v1), 12 images, 32 steps: energy in mask 0.553
    (worst image 0.347) against chance 0.0996, pointing game 11/12. Asks for 3× chance and +0.3."""
    energy, chance = _energy_vs_chance("eig")
    assert energy > 3 * chance
    assert energy - chance > 0.3


@pytest.mark.xfail(
    strict=True,
    reason="Guided paths do not localize on the demo world: on 12 fresh images at 32 steps MA-GIG reaches "
    "0.116 energy-in-mask (64 steps: 0.118; pointing game 1/12) against 0.0996 for chance, 0.29 for IG "
    "and 0.55 for EIG in the same latent space; pixel GIG is at chance too (0.098 vs 0.108 on another "
    "12-image set). The guided walk itself matches a naive "
    "re-implementation, PAIR's Guided IG and the closed forms (tests/test_engine_*); here the confident "
    "demo classifier changes its decision within a few path segments near the input, where the left-point "
    "sum is dominated by discretization error (relative completeness residual ≈ 1). Remove this marker "
    "once the demo world's models make guided paths localize.",
)
def test_ma_gig_attributions_concentrate_on_the_object():
    """The product's claim on its own demo: at least twice chance and +0.2, a margin EIG clears easily."""
    energy, chance = _energy_vs_chance("ma-gig")
    assert energy > 2 * chance
    assert energy - chance > 0.2
