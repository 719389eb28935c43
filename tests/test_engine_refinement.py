"""Segment refinement (``substeps``) and the per-segment error breakdown of the path residual."""

from __future__ import annotations

import pytest
import torch

from magig_core import explain
from tests.conftest import small_cnn


def test_refined_ig_is_ig_on_a_k_times_finer_grid() -> None:
    """IG's N points refined k times are exactly the (N−1)k+1 points of a finer IG: a closed form.

    Catches sub-points placed off the segment, weights that do not sum to one, or a skipped first point.
    """
    cnn = small_cnn(dtype=torch.float64)
    images = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    refined = explain(images, cnn, "ig", steps=6, substeps=4, targets=[0, 1])
    fine = explain(images, cnn, "ig", steps=21, targets=[0, 1])
    torch.testing.assert_close(refined.attributions, fine.attributions, rtol=1e-9, atol=1e-12)
    assert refined.config["substeps"] == 4


def test_refinement_keeps_the_guided_path_and_shrinks_its_residual(vae) -> None:
    cnn = small_cnn()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    plain = explain(images, cnn, "ma-gig", autoencoder=vae, steps=8, frames=8, targets=[0, 2])
    refined = explain(images, cnn, "ma-gig", autoencoder=vae, steps=8, frames=8, targets=[0, 2], substeps=16)
    torch.testing.assert_close(refined.frames, plain.frames)  # the same decoded path
    torch.testing.assert_close(refined.path_probs, plain.path_probs)
    assert (refined.path_residual < 0.5 * plain.path_residual).all()


def test_segment_errors_add_up_to_the_signed_path_residual(vae) -> None:
    cnn = small_cnn()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for method in ("gig", "ma-gig", "eig"):
        result = explain(images, cnn, method, autoencoder=vae, steps=7)
        signed = (result.path_end_output - result.path_start_output) - result.attributions.flatten(1).sum(1)
        torch.testing.assert_close(result.segment_errors.sum(dim=1), signed, atol=1e-6, rtol=1e-5)
        assert result.segment_errors.shape == (2, 6)
        if method != "eig":  # anchored paths end at the raw input; EIG ends at its reconstruction
            torch.testing.assert_close(result.path_outputs[:, -1], result.input_output)


def test_substeps_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="substeps must be a positive integer"):
        explain(torch.rand(1, 3, 8, 8), small_cnn(), "ig", steps=4, substeps=0)
