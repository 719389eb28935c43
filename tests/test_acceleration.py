"""torch.compile is opt-in and can never make a run fail: any failure falls back to the eager models."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch import nn

from magig_core.acceleration import FallbackCompiled, channels_last, compile_autoencoder, compile_classifier
from magig_core.models.image_classifier import ImageClassifier


class TinyAutoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 4, 2, stride=2)
        self.up = nn.ConvTranspose2d(4, 3, 2, stride=2)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.down(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.up(latents)


def _classifier() -> ImageClassifier:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(8, 5))
    return ImageClassifier(network, input_size=(8, 8), name="tiny")


def _gradient(classifier: nn.Module, image: torch.Tensor) -> torch.Tensor:
    point = image.clone().requires_grad_(True)
    return torch.autograd.grad(classifier.forward_normalized(point).softmax(1)[:, 0].sum(), point)[0]


def test_compile_unavailable_falls_back_silently(monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    classifier = _classifier()
    compiled, reason = compile_classifier(classifier, torch.rand(1, 3, 8, 8))
    assert compiled is classifier and "no C++ compiler" in reason


def test_a_failure_at_the_first_call_falls_back_for_good(monkeypatch) -> None:
    calls = []

    def fails_when_called(function, **_kwargs):
        def run(*args, **kwargs):
            calls.append(1)
            raise RuntimeError("inductor could not generate code")
        return run

    monkeypatch.setattr(torch, "compile", fails_when_called)
    wrapper = FallbackCompiled(lambda x: x + 1)
    assert wrapper(torch.ones(1)).item() == 2 and not wrapper.active
    assert wrapper(torch.ones(1)).item() == 2 and len(calls) == 1  # not tried again
    assert "inductor" in wrapper.fallback_reason


def test_a_failing_backward_is_caught_by_the_trial_step(monkeypatch) -> None:
    class BrokenBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("backward graph failed to compile")

    monkeypatch.setattr(torch, "compile", lambda function, **_: lambda x: function(BrokenBackward.apply(x)))
    autoencoder = TinyAutoencoder()
    compiled, reason = compile_autoencoder(autoencoder, torch.rand(1, 3, 8, 8))
    assert compiled is autoencoder and "backward" in reason


def test_a_working_compile_gives_a_copy_and_leaves_the_original_alone(monkeypatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda function, **_: function)  # stands in for a real compile
    classifier = _classifier()
    image = torch.rand(2, 3, 8, 8)
    compiled, reason = compile_classifier(classifier, image)
    assert reason is None and compiled is not classifier
    assert isinstance(compiled.forward_normalized, FallbackCompiled)
    assert not isinstance(classifier.forward_normalized, FallbackCompiled)
    assert torch.equal(_gradient(compiled, image), _gradient(classifier, image))


def test_channels_last_keeps_the_gradients() -> None:
    classifier = _classifier()
    image = torch.rand(2, 3, 8, 8)
    assert torch.allclose(_gradient(channels_last(classifier), image), _gradient(classifier, image),
                          rtol=1e-5, atol=1e-7)


def c_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would call, found independently of torch."""
    return next((path for name in (os.environ.get("CXX"), "c++", "g++", "clang++") if name
                 for path in [shutil.which(name)] if path), None)


@pytest.mark.slow
def test_real_compile_matches_eager_to_fp32_rounding() -> None:
    """Catches a compile path that always gives up (the copy would silently be the eager model): where a C++
    compiler exists, as in CI, giving up fails the test; only a machine without one may skip it."""
    if c_compiler() is None:
        pytest.skip("no C++ compiler here: torch.compile's CPU backend cannot build kernels")
    classifier, autoencoder = _classifier(), TinyAutoencoder().requires_grad_(False)
    image = torch.rand(1, 3, 8, 8)
    compiled, reason = compile_classifier(classifier, image)
    compiled_autoencoder, decoder_reason = compile_autoencoder(autoencoder, image)
    assert (reason, decoder_reason) == (None, None)
    assert compiled is not classifier and compiled_autoencoder is not autoencoder
    assert torch.allclose(_gradient(compiled, image), _gradient(classifier, image), rtol=1e-4, atol=1e-7)
    latent = autoencoder.encode(image)
    assert torch.allclose(compiled_autoencoder.decode(latent), autoencoder.decode(latent), rtol=1e-5, atol=1e-6)
