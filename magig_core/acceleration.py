"""Opt-in speed-ups for a classifier and an autoencoder: ``torch.compile`` with a silent fallback, and
channels_last memory layout.

``torch.compile`` needs a working C++ toolchain on the CPU and Triton on a GPU, costs tens of seconds per
process before the first step, and can fail on models it cannot trace. So it is tried once on a trial
gradient step (forward *and* backward, where compile failures show up late); if anything fails, the
eager function is used and the reason kept in ``fallback_reason``, without a warning: a run is never
worse off for having asked. ``python -m magig_core benchmark --suite cpu`` measures what each trick buys.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class FallbackCompiled:
    """A compiled function that turns into its eager original for good the first time it raises."""

    def __init__(self, eager: Callable[..., Any], **compile_options: Any) -> None:
        self.eager = eager
        self.fallback_reason: str | None = None
        try:
            self._compiled: Callable[..., Any] | None = torch.compile(eager, **compile_options)
        except Exception as err:  # compile unavailable on this platform or build
            self._compiled, self.fallback_reason = None, _reason(err)

    @property
    def active(self) -> bool:
        return self._compiled is not None

    def disable(self, reason: str) -> None:
        self._compiled, self.fallback_reason = None, reason

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as err:  # tracing or code generation failed: run eagerly from now on
                self.disable(_reason(err))
        return self.eager(*args, **kwargs)


def compile_classifier(classifier: nn.Module, example: torch.Tensor,
                       **compile_options: Any) -> tuple[nn.Module, str | None]:
    """A copy whose forward is compiled, checked by one forward+backward on ``example`` ([B,3,H,W]).

    Returns the copy and None, or the original and why compiling was given up.
    """
    def trial(module: nn.Module) -> None:
        point = example.detach().clone().requires_grad_(True)
        torch.autograd.grad(getattr(module, _classifier_entry(module))(point).logsumexp(dim=1).sum(), [point])

    return _compiled_copy(classifier, _classifier_entry(classifier), trial, compile_options)


def compile_autoencoder(autoencoder: nn.Module, example: torch.Tensor,
                        **compile_options: Any) -> tuple[nn.Module, str | None]:
    """A copy whose ``decode`` is compiled, checked by decoding ``example``'s latent with a backward pass."""
    def trial(module: nn.Module) -> None:
        with torch.no_grad():
            latent = module.encode(example)
        point = latent.detach().clone().requires_grad_(True)
        torch.autograd.grad(module.decode(point).sum(), [point])

    return _compiled_copy(autoencoder, "decode", trial, compile_options)


def channels_last(module: nn.Module) -> nn.Module:
    """A copy whose 4-D weights use the NHWC layout (oneDNN's and cuDNN's preferred one for convolutions)."""
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


def _classifier_entry(classifier: nn.Module) -> str:
    """The method the engine calls: ``forward_normalized`` on a zoo classifier, else ``forward``."""
    return "forward_normalized" if hasattr(classifier, "forward_normalized") else "forward"


def _compiled_copy(module: nn.Module, method: str, trial: Callable[[nn.Module], None],
                   options: dict[str, Any]) -> tuple[nn.Module, str | None]:
    compiled = copy.deepcopy(module)
    wrapper = FallbackCompiled(getattr(compiled, method), **options)
    setattr(compiled, method, wrapper)  # an instance attribute shadows the method
    try:
        trial(compiled)  # compiles now, forward and backward, instead of in the middle of a run
    except Exception as err:  # e.g. the backward graph failed to compile
        return module, _reason(err)
    if not wrapper.active:
        return module, wrapper.fallback_reason
    return compiled, None


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
