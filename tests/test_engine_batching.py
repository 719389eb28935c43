"""A batch walks in lockstep but every decision is per image: batched == one at a time."""

from __future__ import annotations

import pytest
import torch

from magig_core import METHODS, explain
from tests.conftest import small_cnn

OPTIONS = {
    "ig2": {"steps": 12},
    "agi": {"agi_iterations": 4},
    "mig": {"steps": 8, "mig_energy_threshold": 0.0},
    "ma-gig": {"steps": 10, "interpolation": "slerp"},
}


@pytest.mark.parametrize("method", METHODS)
def test_batched_equals_one_by_one(method: str, vae) -> None:
    cnn = small_cnn(num_classes=6)
    images = torch.rand(3, 3, 16, 24, generator=torch.Generator().manual_seed(11))  # non-square
    targets = torch.tensor([0, 3, 5])
    reference = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(12))
    options = {"steps": 10, **OPTIONS.get(method, {})}
    common = {"autoencoder": vae, "references": reference, "frames": 3, **options}
    batched = explain(images, cnn, method, targets=targets, **common)
    for b in range(3):
        single = explain(images[b : b + 1], cnn, method, targets=targets[b : b + 1], **common)
        torch.testing.assert_close(batched.attributions[b : b + 1], single.attributions, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batched.path_probs[b : b + 1], single.path_probs, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(
            batched.completeness_residual[b : b + 1], single.completeness_residual, atol=1e-5, rtol=1e-4, equal_nan=True
        )


def test_targets_pair_with_their_own_image(cnn) -> None:
    """Each image's gradient is of its own target (a batch never sums the labels' probabilities)."""
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    both = explain(images, cnn, "gi", targets=[1, 2])
    swapped = explain(images.flip(0), cnn, "gi", targets=[2, 1])
    torch.testing.assert_close(both.attributions, swapped.attributions.flip(0))
    other = explain(images, cnn, "gi", targets=[2, 2])
    assert not torch.allclose(both.attributions[0], other.attributions[0])
    torch.testing.assert_close(both.attributions[1], other.attributions[1])


def test_default_target_is_the_prediction(cnn, images) -> None:
    result = explain(images, cnn, "gi")
    torch.testing.assert_close(result.targets, cnn(images).argmax(dim=1))


def test_chunk_size_does_not_change_results(cnn, images, vae) -> None:
    for method in ("ig", "eig"):
        small = explain(images, cnn, method, autoencoder=vae, steps=9, chunk_size=3)
        large = explain(images, cnn, method, autoencoder=vae, steps=9, chunk_size=64)
        torch.testing.assert_close(small.attributions, large.attributions, atol=1e-6, rtol=1e-5)
