"""The bundled real pair (CIFAR-10 ResNet-56 + TAEF2) end to end on bundled CIFAR-10 test images."""

from __future__ import annotations

import pytest
import torch

from magig_core import METHODS, explain, load_autoencoder, load_classifier, method_spec
from magig_core.data.datasets import cifar10_test
from magig_core.explorer.examples import gallery, reference_bank
from magig_core.metrics import faithfulness

IMAGES = 20  # two per class, class-interleaved
SHOWN = 2  # images each method explains in the end-to-end check


@pytest.fixture(scope="module")
def pair_and_images():
    classifier, autoencoder = load_classifier("cifar10-resnet56"), load_autoencoder("taef2")
    test_set = cifar10_test(size=64)
    images = torch.stack([test_set.load(i) for i in range(IMAGES)])
    labels = torch.tensor([test_set.items[i].label for i in range(IMAGES)])
    return classifier, autoencoder, images, labels


def reconstruction_gap(autoencoder, images: torch.Tensor) -> torch.Tensor:
    """Mean |x − D(E(x))| per image: how far an image lies from what the decoder can produce."""
    with torch.no_grad():
        return (images - autoencoder.decode(autoencoder.encode(images))).abs().mean(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def gig_frame_gap(pair_and_images) -> float:
    classifier, autoencoder, images, labels = pair_and_images
    result = explain(images[:SHOWN], classifier, "gig", targets=labels[:SHOWN], steps=16, frames=4)
    return float(reconstruction_gap(autoencoder, result.frames[:, 1:-1].flatten(0, 1).clamp(0, 1)).mean())


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_every_method_accounts_for_the_output_change_and_latent_paths_stay_on_the_decoder(
        pair_and_images, gig_frame_gap, method: str) -> None:
    """Finite maps whose completeness residual is measured against ΔF computed here, with the classifier:
    F_c(input) − F_c(black baseline) for methods that start at the baseline, the path's own start otherwise.
    And the path images of latent methods (decoded points) lie on the decoder's manifold: TAEF2 reconstructs
    them at least as well as the real input images, while GIG's speckled pixel path is several times further.

    Catches a residual taken against the wrong outputs (logits instead of probabilities, the reconstructed
    input instead of the raw one), attributions in a different unit than F, and latent methods whose path
    images are blends of pixels instead of decodes.
    """
    classifier, autoencoder, images, labels = pair_and_images
    spec = method_spec(method)
    references = reference_bank((64, 64), gallery()) if spec.draws_references else None
    result = explain(images[:SHOWN], classifier, method, autoencoder=autoencoder, targets=labels[:SHOWN], steps=16,
                     references=references, agi_iterations=3, frames=4 if spec.has_frames else 0)
    assert result.attributions.shape == (SHOWN, 3, 64, 64)
    assert torch.isfinite(result.attributions).all() and result.attributions.abs().sum() > 0
    with torch.no_grad():
        rows = torch.arange(SHOWN)
        probability = classifier(images[:SHOWN]).softmax(-1)[rows, labels[:SHOWN]]
        start = classifier(torch.zeros_like(images[:SHOWN])).softmax(-1)[rows, labels[:SHOWN]]
    torch.testing.assert_close(result.input_output, probability, rtol=1e-4, atol=1e-6)
    if spec.uses_baseline:
        torch.testing.assert_close(result.baseline_output, start, rtol=1e-4, atol=1e-6)
    else:  # the path's own start; NaN where there is no single path (AGI, Grad-CAM): no residual then
        start = result.baseline_output
    total = result.attributions.sum(dim=(1, 2, 3))
    torch.testing.assert_close(result.completeness_residual, (total - (probability - start)).abs(),
                               rtol=1e-3, atol=1e-5, equal_nan=True)
    if spec.space == "latent" and spec.has_frames:
        frames = result.frames[:, 1:-1].flatten(0, 1).clamp(0, 1)
        gap = float(reconstruction_gap(autoencoder, frames).mean())
        assert gap <= float(reconstruction_gap(autoencoder, images[:SHOWN]).mean())
        assert gig_frame_gap > 3 * gap


@pytest.mark.slow
def test_ma_gig_beats_a_random_map_on_diffid(pair_and_images) -> None:
    """Measured on these 20 images (binary protocol, 64 steps, 1 thread): MA-GIG 0.089; random maps −0.028 to
    0.039 over five seeds (mean of the first three 0.017). A map that ignores the image scores like noise."""
    classifier, autoencoder, images, labels = pair_and_images
    result = explain(images, classifier, "ma-gig", autoencoder=autoencoder, targets=labels, steps=64)
    ours = faithfulness(classifier, images, result.attributions, labels)
    noise = [torch.rand(images.shape, generator=torch.Generator().manual_seed(seed)) for seed in range(3)]
    chance = sum(faithfulness(classifier, images, n, labels).diffid for n in noise) / len(noise)
    assert ours.diffid > chance + 0.04
