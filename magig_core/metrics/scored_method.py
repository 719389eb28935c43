"""One method's explanation of one image, scored: the per-method result every front end shows and stores.

The app's table and report, the ``explain`` CLI's summary, ``evaluate``'s records and ``demo-table`` all
hold a ``ScoredMethod`` and write it with ``to_json``; each adds only what belongs to it (pixels to draw,
the image's place in a data set). Its JSON is versioned: version 2 is this shape; version 1 was the flat
dict ``evaluate`` wrote before the metrics had one name each (read by ``evaluation.records``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from magig_core.attribution.registry import method_spec
from magig_core.metrics.scores import Scores

SCORED_VERSION = 2


@dataclass(frozen=True)
class ScoredMethod:
    """A method's scores for one image, the attribution's wall time and the hyperparameters it used."""

    method: str
    scores: Scores
    seconds: float  # attribution wall time for this image (its share of a batch)
    config: dict[str, Any] = field(default_factory=dict)  # every hyperparameter actually used (JSON-ready)
    version: int = SCORED_VERSION

    @property
    def label(self) -> str:
        return method_spec(self.method).label

    @property
    def target(self) -> int:
        return self.scores.target

    def to_json(self) -> dict[str, Any]:
        seconds = self.seconds if self.seconds == self.seconds else None
        return {"version": self.version, "method": self.method, "seconds": seconds, "config": dict(self.config),
                "scores": self.scores.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoredMethod:
        seconds = data.get("seconds")
        return cls(method=data["method"], scores=Scores.from_json(data["scores"]),
                   seconds=float("nan") if seconds is None else float(seconds), config=dict(data.get("config") or {}),
                   version=SCORED_VERSION)
