"""Per-image records on disk: append-only JSON lines per process, merged into one sorted file.

A record is one image × one job. Every process appends to its own file under ``records/``, so concurrent
ranks never share a file and an interrupted run loses at most the batch in flight; resuming reads every
file there and skips the (image, configuration) pairs already present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RECORDS_DIR = "records"
MERGED_FILE = "records.jsonl"


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    return record["image_id"], record["config_hash"]


def clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def rank_file(out_dir: Path, rank: int) -> Path:
    return out_dir / RECORDS_DIR / f"rank{rank}.jsonl"


def read_records(out_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every complete record written so far (a truncated last line from a crash is ignored)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((out_dir / RECORDS_DIR).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            found.setdefault(record_key(record), record)
    return found


class RecordWriter:
    """Appends records to this process's file, flushing each batch so progress survives interruption."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        lines = [json.dumps({k: clean(v) for k, v in r.items()}, sort_keys=True) for r in records]
        if lines:
            with self.path.open("a") as handle:
                handle.write("\n".join(lines) + "\n")


def write_merged(out_dir: Path, records: Iterable[dict[str, Any]]) -> Path:
    """All records in evaluation order (image position, then job order) as one JSON-lines file."""
    ordered = sorted(records, key=lambda r: (r["index"], r["job_index"], r["image_id"]))
    path = out_dir / MERGED_FILE
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))
    return path
