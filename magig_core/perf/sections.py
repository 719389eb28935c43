"""A benchmark run as named sections, each allowed to fail alone, written out after every section.

A device check may get only minutes on a borrowed GPU: a section that raises records its error and the
next one still runs; a section that would start after the time budget is recorded as skipped; and the
JSON + Markdown files are rewritten after each section, so a run killed from outside still leaves what
it measured.
"""

from __future__ import annotations

import json
import math
import platform
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

SCHEMA_VERSION = 1
STATUSES = ("ok", "error", "skipped")


@dataclass
class Table:
    """Rows of plain values under named columns (what a section shows in Markdown)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows}


@dataclass
class SectionResult:
    tables: list[Table] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def device_label(device: torch.device) -> str:
    """``NVIDIA H200`` or ``cpu (2 cores)``: what the numbers were measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from magig_core.runtime import available_cores

    return f"cpu ({available_cores()} cores)"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Report:
    """Collects sections; ``path`` names the files by suite, date and device. A progress bar (on a terminal)
    counts the ``sections`` the suite will run and names the one running."""

    def __init__(self, suite: str, device: torch.device, out_dir: Path, settings: dict[str, Any],
                 budget_seconds: float | None = None, *, sections: int) -> None:
        self.suite = suite
        self.device = device
        self.started = time.perf_counter()
        self.created = datetime.now().astimezone()
        self.budget_seconds = budget_seconds
        self.settings = settings
        self.sections: dict[str, dict[str, Any]] = {}
        stem = f"{suite}-{self.created:%Y%m%d-%H%M}-{slug(device_label(device))}"
        out_dir.mkdir(parents=True, exist_ok=True)
        self.json_path = out_dir / f"{stem}.json"
        self.markdown_path = out_dir / f"{stem}.md"
        self.progress = tqdm(total=sections, desc=f"benchmark {suite}", unit="section", disable=None,
                             dynamic_ncols=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def time_left(self) -> float:
        return math.inf if self.budget_seconds is None else self.budget_seconds - self.elapsed()

    def run(self, name: str, title: str, function: Callable[[], SectionResult]) -> None:
        """Run one section; its failure or a spent budget is recorded instead of stopping the suite."""
        entry: dict[str, Any] = {"title": title}
        self.progress.set_postfix_str(title)
        if self.time_left() <= 0:
            entry.update(status="skipped", reason=f"time budget of {self.budget_seconds:.0f} s spent")
        else:
            start = time.perf_counter()
            try:
                result = function()
                entry.update(status="ok", tables=[t.as_dict() for t in result.tables], values=result.values,
                             notes=result.notes)
            except Exception as err:  # one broken section must not cost the others
                entry.update(status="error", error=f"{type(err).__name__}: {err}",
                             traceback=traceback.format_exc(limit=8)[-4000:])
            entry["seconds"] = round(time.perf_counter() - start, 3)
        self.sections[name] = entry
        self.write()
        self.progress.update()
        if self.progress.n >= self.progress.total:
            self.progress.close()

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "suite": self.suite,
            "created": self.created.isoformat(timespec="seconds"),
            "device": device_label(self.device),
            "host": platform.node(),
            "settings": self.settings,
            "budget_seconds": self.budget_seconds,
            "elapsed_seconds": round(self.elapsed(), 3),
            "sections": self.sections,
        }

    def write(self) -> None:
        data = self.as_dict()
        self.json_path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
        self.markdown_path.write_text(markdown(data))


def markdown(data: dict[str, Any]) -> str:
    """The whole report as Markdown: one heading per section, its tables, values and notes."""
    lines = [f"# Benchmark `{data['suite']}` on {data['device']}", "",
             f"{data['created']}, {data['elapsed_seconds']:.0f} s. Settings: "
             + ", ".join(f"{k}={v}" for k, v in data["settings"].items()), ""]
    for name, section in data["sections"].items():
        lines += [f"## {section['title']} (`{name}`)", ""]
        if section["status"] != "ok":
            reason = section.get("error") or section.get("reason")
            lines += [f"**{section['status']}**: {reason}", ""]
            continue
        for table in section["tables"]:
            lines += [f"**{table['title']}**", "", _table(table["columns"], table["rows"]), ""]
        if section["values"]:
            lines += [f"- {key}: {_cell(value)}" for key, value in section["values"].items()] + [""]
        lines += [f"> {note}" for note in section["notes"]] + ([""] if section["notes"] else [])
    return "\n".join(lines)


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    return "\n".join([head, rule] + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4g}"
    return "–" if value is None else str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return str(value)
