"""The one exception a user sees when model weights cannot be obtained."""

from __future__ import annotations

from magig_core.errors import MagigError


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
