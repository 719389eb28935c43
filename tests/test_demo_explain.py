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
    reason="MA-GIG localizes at chance on the demo world (measured 0.116 vs 0.0996 at 32 steps, 0.118 at "
    "64, pointing game 1/12 and 0/12) while EIG in the same latent space reaches 0.553: the guided latent "
    "path's target probability collapses to ~1e-20 mid-path. Remove this marker once fixed.",
)
def test_ma_gig_attributions_concentrate_on_the_object():
    """The product's claim on its own demo: at least twice chance and +0.2, a margin EIG clears easily."""
    energy, chance = _energy_vs_chance("ma-gig")
    assert energy > 2 * chance
    assert energy - chance > 0.2
