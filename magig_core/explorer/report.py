"""Everything a run produced, as files a user can keep: attributions (npz), PNG maps, a JSON report."""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.explorer.render import export_figure
from magig_core.explorer.settings import RunSettings
from magig_core.explorer.share import input_digest
from magig_core.metrics.definitions import METRIC_NAMES, METRICS
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores
from magig_core.viz import heatmap, robust_max, saliency

REPORT_VERSION = 2  # 2: per method a ``ScoredMethod`` record (plus its path curves); 1: a flat ``metrics`` dict
_OLD_REPORT_KEYS = {"diffid": "diffid_prob", "insertion": "insertion_prob", "deletion": "deletion_prob"}


def build_report(settings: RunSettings, context: RunContext, results: Sequence[MethodResult], *,
                 device: str, image_notes: Sequence[str] = ()) -> dict[str, Any]:
    """Settings, the explained class, the top predictions and every method's numbers, JSON-ready."""
    return {
        "settings": asdict(settings),
        "device": device,
        "input_sha256": input_digest(context.image),  # lets a reopened report find its gallery image
        "target": {"index": context.target, "name": context.target_name,
                   "probability": context.target_probability},
        "predictions": [asdict(p) for p in context.predictions],
        "path_distance": {"name": context.distance_name, "fallback_reason": context.distance_note},
        "reconstruction_psnr_db": _json_number(context.reconstruction_psnr),
        "report_version": REPORT_VERSION,
        "metric_definitions": {m.name: m.definition for m in METRICS},
        "image_notes": list(image_notes),
        "methods": {
            r.method: {**_jsonable(r.scored.to_json()), "path_curves": _path_curves(r)}
            for r in results
        },
        "versions": _versions(),
    }


def report_results(report: dict[str, Any]) -> dict[str, ScoredMethod]:
    """Each method's scored result from a report, also from reports written before the metrics had one name
    each: those kept a flat ``metrics`` dict whose ``diffid``/``insertion``/``deletion`` were the probability
    games (now ``diffid_prob`` …)."""
    found = {}
    for method, entry in report["methods"].items():
        if "scores" in entry:
            found[method] = ScoredMethod.from_json({**entry, "method": method})
            continue
        old = entry["metrics"]
        values = {_OLD_REPORT_KEYS.get(k, k): v for k, v in old.items() if _OLD_REPORT_KEYS.get(k, k) in METRIC_NAMES}
        scores = Scores.from_json({"target": report["target"]["index"], "values": values})
        seconds = old.get("seconds")
        found[method] = ScoredMethod(method, scores, math.nan if seconds is None else float(seconds),
                                     dict(entry.get("config") or {}))
    return found


def write_downloads(report: dict[str, Any], context: RunContext, results: Sequence[MethodResult],
                    folder: Path) -> list[Path]:
    """Write report.json, attributions.npz, maps.png and one heatmap PNG per method into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "attributions.npz", folder / "maps.png"]
    paths[0].write_text(json.dumps(report, indent=2))
    arrays: dict[str, np.ndarray] = {"input": context.image, "target": np.array(context.target)}
    for r in results:
        key = r.method.replace("-", "_")
        arrays[f"{key}_attributions"] = r.attributions
        arrays[f"{key}_path_probs"] = r.path_probs
        for name in ("gradient_frames", "contribution_frames", "accumulation", "accumulation_mass"):
            if getattr(r, name) is not None:
                arrays[f"{key}_{name}"] = getattr(r, name)
    # zlib releases the interpreter: the archive is packed while the figure is drawn (0.17 -> 0.11 s a run)
    with ThreadPoolExecutor(1) as compressing:
        archive = compressing.submit(np.savez_compressed, paths[1], **arrays)
        export_figure(context, results).savefig(paths[2])
        vmax = robust_max([saliency(r.attributions) for r in results])
        for r in results:
            path = folder / f"map_{r.method}.png"
            Image.fromarray(heatmap(saliency(r.attributions), vmax)).save(path)
            paths.append(path)
        archive.result()
    return paths


def _path_curves(result: MethodResult) -> dict[str, Any]:
    """Target probability and the share of the attribution collected along the path; distance to the input and
    off-manifold distance at the frames."""
    curves: dict[str, Any] = {"t": _jsonable(result.path_t), "probability": _jsonable(result.path_probs)}
    for key in ("accumulation", "accumulation_mass"):
        if getattr(result, key) is not None:
            curves[key] = _jsonable(getattr(result, key))
    if result.frame_t is not None:
        curves["frame_t"] = _jsonable(result.frame_t)
        for key in ("distances", "off_manifold"):
            values = getattr(result, key)
            if values is not None:
                curves[key] = _jsonable(values)
    return curves


def _json_number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, float):
        return _json_number(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("magig-explorer", "torch", "gradio"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


class DownloadFolders:
    """Fresh folders for each run's downloads under one root; folders older than ``max_age`` are removed."""

    def __init__(self, root: Path, max_age_seconds: float = 3600.0) -> None:
        self.root = root
        self.max_age_seconds = max_age_seconds

    def new(self) -> Path:
        self.prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def prune(self) -> None:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if time.time() - folder.stat().st_mtime > self.max_age_seconds:
                shutil.rmtree(folder, ignore_errors=True)
