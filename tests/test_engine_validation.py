"""Every mistake a user can make with ``explain`` gets a message that says what to do."""

from __future__ import annotations

import pytest
import torch

from magig_core import explain
from tests.conftest import small_cnn


@pytest.fixture
def net():
    return small_cnn()


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (torch.rand(2, 1, 8, 8), ValueError, r"\[B,3,H,W\]"),
        (torch.rand(8, 8), ValueError, r"\[B,3,H,W\]"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), TypeError, "divide uint8"),
        (torch.rand(1, 3, 8, 8) * 255, ValueError, r"must lie in \[0,1\]"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_images(net, images, error, message) -> None:
    with pytest.raises(error, match=message):
        explain(images, net, "ig")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "unknown method 'magic'; choose one of"),
        ({"method": "gig", "fraction": 0.0}, r"fraction must be in \(0, 1\]"),
        ({"method": "gig", "fraction": 1.5}, r"fraction must be in \(0, 1\]"),
        ({"method": "ig", "steps": 1}, "steps ≥ 2"),
        ({"method": "ma-gig"}, "pass autoencoder="),
        ({"method": "eig"}, "pass autoencoder="),
        ({"method": "ig", "targets": [7]}, "out of range: the classifier has 5 classes"),
        ({"method": "ig", "targets": [0, 1]}, "one class index per image"),
        ({"method": "ig", "objective": "loss"}, "objective must be one of"),
        ({"method": "ma-gig", "interpolation": "cubic"}, "interpolation must be one of"),
        ({"method": "ig2"}, "pass references="),
        ({"method": "ig", "chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"method": "ig", "frames": -1}, "frames must be a non-negative integer"),
    ],
)
def test_bad_arguments(net, kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        explain(torch.rand(1, 3, 8, 8), net, **kwargs)


def test_method_aliases_and_three_dimensional_input(net) -> None:
    result = explain(torch.rand(3, 8, 8), net, "MA_GIG", autoencoder=_Identity(), steps=4)
    assert result.method == "ma-gig"
    assert result.attributions.shape == (1, 3, 8, 8)


def test_callback_reports_progress_and_can_cancel(net) -> None:
    seen: list[tuple[int, int]] = []
    explain(torch.rand(1, 3, 8, 8), net, "gig", steps=6, callback=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)]

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        explain(torch.rand(1, 3, 8, 8), net, "gig", steps=50, callback=cancel)


class _Identity:
    def encode(self, images):
        return images

    def decode(self, latents):
        return latents
