"""LPIPS path distances: plumbing with a test-only random backbone, and the offline fallback."""

from __future__ import annotations

import socket
import time
import urllib.error
import warnings

import lpips
import numpy as np
import pytest
import torch
import torchvision

from magig_core.metrics import (
    LpipsDistance,
    LpipsUnavailableError,
    PixelRmseDistance,
    distance_curve,
    load_frame_distance,
)
from magig_core.metrics.perceptual import backbone_weights_path


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture
def random_lpips() -> lpips.LPIPS:
    """ONLY for plumbing tests: a random backbone makes LPIPS meaningless as a metric."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes about lpips's legacy `pretrained=` argument
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


def test_lpips_curve_matches_direct_package_calls(random_lpips) -> None:
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 3, 32, 32, generator=gen) * 1.4 - 0.2  # decoded frames may leave [0,1]
    inputs = torch.rand(2, 3, 32, 32, generator=gen)
    distance = LpipsDistance(random_lpips, name="lpips-alex-random-test")
    curve = distance_curve(frames, inputs, distance, batch_size=4)
    assert curve.values.shape == (2, 3)
    with torch.no_grad():
        for b in range(2):
            for f in range(3):
                direct = random_lpips(frames[b, f : f + 1].clamp(0, 1), inputs[b : b + 1], normalize=True)
                assert curve.values[b, f].item() == pytest.approx(direct.item(), rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(curve.auc.numpy(), np.trapezoid(curve.values.numpy(), [0, 0.5, 1], axis=1))
    assert curve.name == "lpips-alex-random-test" and curve.reason is None


def test_distance_of_the_input_to_itself_is_zero_and_of_black_is_computed_directly(random_lpips) -> None:
    """The curve ends at 0 on the input; its black start equals the package's own LPIPS call and the RMSE
    sqrt(mean(x²)) computed here (a curve that measured against the wrong end would give 0 there)."""
    inputs = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    black = torch.zeros_like(inputs)
    frames = torch.stack([black[0], inputs[0]])[None]
    with torch.no_grad():
        lpips_to_black = random_lpips(black, inputs, normalize=True).item()
    rmse_to_black = inputs.double().square().mean().sqrt().item()
    cases = ((LpipsDistance(random_lpips, "test"), lpips_to_black), (PixelRmseDistance(), rmse_to_black))
    for distance, start in cases:
        values = distance_curve(frames, inputs, distance).values[0]
        assert values[1].item() == pytest.approx(0.0, abs=1e-6)
        assert values[0].item() == pytest.approx(start, rel=1e-5)


def test_pixel_rmse_is_computed_on_clamped_frames() -> None:
    a = torch.full((1, 3, 4, 4), 1.5)
    b = torch.full((1, 3, 4, 4), 0.25)
    assert PixelRmseDistance()(a, b).item() == pytest.approx(0.75)


def test_offline_without_weights_falls_back_quickly_with_a_reason(empty_torch_home, monkeypatch) -> None:
    """Catches a fallback reached only after a download attempt: no connection is tried, and the first call
    takes no longer than the same call repeated (idle, nothing left to try) allows."""
    attempts: list[tuple] = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    start = time.perf_counter()
    distance = load_frame_distance()
    first = time.perf_counter() - start
    start = time.perf_counter()
    load_frame_distance()
    assert first < 20 * (time.perf_counter() - start) + 0.5
    assert attempts == []
    assert isinstance(distance, PixelRmseDistance)
    assert distance.name == "pixel-rmse"
    assert "alexnet-owt-7be5be79.pth" in distance.reason and "pixel RMSE" in distance.reason
    curve = distance_curve(torch.rand(1, 2, 3, 8, 8), torch.rand(1, 3, 8, 8), distance)
    assert curve.name == "pixel-rmse" and curve.reason == distance.reason


def test_offline_without_weights_raises_when_asked(empty_torch_home) -> None:
    with pytest.raises(LpipsUnavailableError, match=r"alexnet-owt-7be5be79\.pth"):
        load_frame_distance(on_missing="raise")


def test_failed_download_falls_back_or_raises(empty_torch_home, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    distance = load_frame_distance(allow_download=True)
    assert isinstance(distance, PixelRmseDistance) and "Name or service not known" in distance.reason
    with pytest.raises(LpipsUnavailableError, match="could not be loaded"):
        load_frame_distance(allow_download=True, on_missing="raise")


def test_cached_backbone_weights_are_used(empty_torch_home) -> None:
    """With the backbone file in torchvision's cache, real LPIPS is built from it (no download)."""
    path = backbone_weights_path("squeeze")
    path.parent.mkdir(parents=True)
    torch.manual_seed(1)
    saved = torchvision.models.squeezenet1_1(weights=None).state_dict()
    torch.save(saved, path)
    distance = load_frame_distance("squeeze")
    assert isinstance(distance, LpipsDistance) and distance.name == "lpips-squeeze-v0.1"
    first_conv = distance.model.net.slice1[0].weight
    torch.testing.assert_close(first_conv, saved["features.0.weight"])


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown LPIPS network"):
        load_frame_distance("resnet")
    with pytest.raises(ValueError, match="on_missing"):
        load_frame_distance(on_missing="ignore")
