"""End to end on the demo world: latent-path attributions with the bundled models vs the true object masks."""

import pytest
import torch

from magig_core.attribution.api import explain
from magig_core.demo.world import generate
from magig_core.metrics.localization import energy_in_mask, random_attribution_energy
from magig_core.models.demo_shapes import load_demo_autoencoder, load_demo_classifier

TEST_SEED = 2


def _energy_vs_chance(method: str, steps: int) -> tuple[float, float]:
    samples = generate(12, TEST_SEED)  # 2 images per class
    result = explain(
        samples.images,
        load_demo_classifier(),
        method=method,
        autoencoder=load_demo_autoencoder(),
        targets=samples.labels,
        steps=steps,
    )
    assert result.attributions.shape == samples.images.shape
    assert torch.equal(result.targets.cpu(), samples.labels)
    energy = energy_in_mask(result.attributions, samples.masks).mean().item()
    return energy, random_attribution_energy(samples.masks).mean().item()


def test_eig_attributions_concentrate_on_the_object():
    """Measured with the bundled weights (demo-shapes-v1), 12 images, 32 steps: energy in mask 0.425
    (worst image 0.229) against chance 0.0996, pointing game 9/12. Asks for 3× chance and +0.25."""
    energy, chance = _energy_vs_chance("eig", steps=32)
    assert energy > 3 * chance
    assert energy - chance > 0.25


@pytest.mark.slow
def test_ma_gig_attributions_concentrate_on_the_object():
    """The product's claim on its own demo, at the paper's 200 steps. Measured with the bundled weights,
    12 images: energy in mask 0.315 with one torch thread and 0.348 with two (the guided selection breaks
    near-ties differently), worst image 0.14–0.16, pointing game 8/12, against chance 0.0996. Asks for
    2.5× chance and +0.12."""
    energy, chance = _energy_vs_chance("ma-gig", steps=200)
    assert energy > 2.5 * chance
    assert energy - chance > 0.12
