"""The package's exceptions share one base, so a caller can catch everything the package reports.

Policy: an argument of the wrong type raises a ``TypeError`` subclass, a value that cannot be used a
``ValueError`` subclass; missing resources (weights, files) and stops have their own classes. Every
message says what to do.
"""

from __future__ import annotations


class MagigError(Exception):
    """Base of every error MA-GIG Explorer raises on purpose."""


class ArgumentError(MagigError, ValueError):
    """An argument value that cannot be used (out of range, unknown name, wrong shape)."""


class ArgumentTypeError(MagigError, TypeError):
    """An argument of the wrong type."""


class WeightsUnavailableError(MagigError, RuntimeError):
    """Weights are neither cached nor downloadable (offline, unreachable host, missing local file).

    The message always names the model, the exact source (hub repo/file or URL) and how to provide the
    weights, so a UI can show it verbatim.
    """

    def __init__(self, model: str, source: str, reason: str, remedies: list[str]) -> None:
        self.model = model
        self.source = source
        self.reason = reason
        self.remedies = list(remedies)
        lines = [f"Weights for {model!r} are not available: {reason}", f"Source: {source}", "To fix, either:"]
        lines += [f"  - {remedy}" for remedy in remedies]
        super().__init__("\n".join(lines))
