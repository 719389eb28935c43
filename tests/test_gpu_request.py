"""The GPU time the app asks ZeroGPU for: the estimate with headroom, never below the start-up cost or above the cap."""

from __future__ import annotations

from magig_core.explorer.estimate import GPU_MAX_SECONDS, GPU_MAX_SECONDS_ENV, Estimate, gpu_seconds


def test_request_is_the_estimate_with_headroom_between_minimum_and_cap(monkeypatch) -> None:
    monkeypatch.delenv(GPU_MAX_SECONDS_ENV, raising=False)
    assert gpu_seconds(Estimate({"ma-gig": 0.0}, "measured")) == 20
    assert gpu_seconds(Estimate({"ma-gig": 10.0, "gig": 10.0}, "measured")) == 50
    assert gpu_seconds(Estimate({"ma-gig": 3600.0}, "measured")) == GPU_MAX_SECONDS == 120


def test_the_cap_can_be_raised_for_visitors_with_larger_quotas(monkeypatch) -> None:
    monkeypatch.setenv(GPU_MAX_SECONDS_ENV, "300")
    assert gpu_seconds(Estimate({"ma-gig": 3600.0}, "measured")) == 300
    assert gpu_seconds(Estimate({"ma-gig": 3600.0}, "measured"), maximum=60) == 60
