"""Per-image records on disk: append-only JSON lines per process, merged into one sorted file.

A record is one image × one job. Every process appends to its own file under ``records/``, so concurrent
ranks never share a file and an interrupted run loses at most the batch in flight; resuming reads every
file there and skips the (image, configuration) pairs already present. Records written before the metrics
had one name each (version 1: flat keys ``diffid``, ``insertion_correct`` …) are read into the same typed
record, so an old run resumes without recomputing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores

RECORDS_DIR = "records"
MERGED_FILE = "records.jsonl"
# Version-1 keys → metric names; that format's games were the top-1 (paper) games.
_OLD_VALUES = {"diffid": "diffid_top1", "insertion": "insertion_top1", "deletion": "deletion_top1",
               "completeness_residual": "completeness_residual",
               "relative_completeness_residual": "completeness_relative", "confidence_auc": "confidence_auc",
               "distance_auc": "distance_auc"}
_OLD_CURVES = {"insertion_correct": "insertion_top1", "deletion_correct": "deletion_top1",
               "insertion_soft": "insertion_soft", "deletion_soft": "deletion_soft", "distance_curve": "distance"}


@dataclass(frozen=True)
class ImageRecord:
    """One image scored with one job's configuration: the method's scored result and where the image sits.

    Its JSON is the ``ScoredMethod``'s (without the configuration, which the summary keeps once per job
    under ``config_hash``) plus the image's identity and the scoring time.
    """

    image_id: str
    index: int  # position in the evaluation order
    label: int
    classifier: str
    config_hash: str
    job_index: int
    result: ScoredMethod
    metric_seconds: float  # scoring time of this image (its share of the batch)

    @property
    def key(self) -> tuple[str, str]:
        return self.image_id, self.config_hash

    def to_json(self) -> dict[str, Any]:
        data = self.result.to_json()
        del data["config"]
        return {**data, "image_id": self.image_id, "index": self.index, "label": self.label,
                "classifier": self.classifier, "config_hash": self.config_hash, "job_index": self.job_index,
                "metric_seconds": _clean(self.metric_seconds)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        if "scores" in data:
            result = ScoredMethod.from_json(data)
        else:
            result = ScoredMethod(method=data["method"], scores=_old_scores(data), seconds=_number(data.get("seconds")))
        return cls(image_id=data["image_id"], index=int(data["index"]), label=int(data["label"]),
                   classifier=data["classifier"], config_hash=data["config_hash"], job_index=int(data["job_index"]),
                   result=result, metric_seconds=_number(data.get("metric_seconds")))


def _old_scores(data: Mapping[str, Any]) -> Scores:
    """A version-1 record's flat keys as a scores record (the soft games stored per ratio only)."""
    values = {new: _number(data.get(old)) for old, new in _OLD_VALUES.items()}
    curves = {new: [_number(v) for v in data[old]] for old, new in _OLD_CURVES.items() if data.get(old) is not None}
    for name in ("insertion_soft", "deletion_soft"):
        if name in curves:
            values[name] = math.fsum(curves[name]) / len(curves[name])
    return Scores.from_json({"target": data["label"], "values": values, "curves": curves,
                             "original_correct": data.get("original_correct"),
                             "original_prob": data.get("original_prob"), "distance": data.get("distance")})


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _clean(value: float) -> float | None:
    """JSON-safe: NaN/inf become null (strict JSON has no NaN)."""
    return value if math.isfinite(value) else None


def rank_file(out_dir: Path, rank: int) -> Path:
    return out_dir / RECORDS_DIR / f"rank{rank}.jsonl"


def read_records(out_dir: Path) -> dict[tuple[str, str], ImageRecord]:
    """Every complete record written so far (a truncated last line from a crash is ignored)."""
    found: dict[tuple[str, str], ImageRecord] = {}
    for path in sorted((out_dir / RECORDS_DIR).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                record = ImageRecord.from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError):
                continue
            found.setdefault(record.key, record)
    return found


class RecordWriter:
    """Appends records to this process's file, flushing each batch so progress survives interruption."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def write(self, records: Iterable[ImageRecord]) -> None:
        lines = [json.dumps(r.to_json(), sort_keys=True) for r in records]
        if lines:
            with self.path.open("a") as handle:
                handle.write("\n".join(lines) + "\n")


def write_merged(out_dir: Path, records: Iterable[ImageRecord]) -> Path:
    """All records in evaluation order (image position, then job order) as one JSON-lines file."""
    ordered = sorted(records, key=lambda r: (r.index, r.job_index, r.image_id))
    path = out_dir / MERGED_FILE
    path.write_text("".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in ordered))
    return path
