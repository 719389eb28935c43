"""``benchmark --suite real``: MA-GIG on the bundled real pair, as a talk runs it, and the app's estimate.

For each working size: one path step against its floor (one TAEF2 decoder forward+backward plus one
CIFAR-10 ResNet-56 forward+backward, measured interleaved with whole MA-GIG runs), seconds per image at
the chosen step count, and the time the app predicts for the run before it starts (a fresh ``Explorer``,
so the estimate comes from pass counts, not from earlier runs) against the time the run then takes in
the explorer (explanation, metrics and path curves).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from magig_core import runtime
from magig_core.attribution import explain
from magig_core.bundled import bundled_path
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER
from magig_core.perf.networks import bundled_images, bundled_pair
from magig_core.perf.sections import Report, SectionResult, Table
from magig_core.perf.timing import floor_step, interleaved

SIZES = (64, 128)
STEPS = 200
PHOTO = ("photos", "chelsea_cat.jpg")


def run_real_suite(out_dir: Path, *, sizes: tuple[int, ...] | None = None, steps: int | None = None,
                   repeats: int | None = None, tiny: bool = False) -> Report:
    sizes = sizes or ((16,) if tiny else SIZES)
    steps = steps or (4 if tiny else STEPS)
    repeats = repeats or (1 if tiny else 3)
    device = torch.device("cpu")
    report = Report("real", device, out_dir, {"sizes": list(sizes), "steps": steps, "repeats": repeats},
                    sections=2)
    report.run("step", "MA-GIG on the bundled pair: step against its floor, seconds per image",
               lambda: _steps(sizes, steps, repeats, device))
    report.run("estimate", "The app's estimate before a run against the run's time",
               lambda: _estimates(sizes, steps))
    return report


FLOOR_STEPS_PER_SAMPLE = 5


def _steps(sizes: tuple[int, ...], steps: int, repeats: int, device: torch.device) -> SectionResult:
    table = Table(f"MA-GIG, {steps} steps, batch 1", ["size (px)", "threads", "floor step (ms)",
                                                       "MA-GIG step (ms)", "step / floor", "seconds per image"])
    classifier, autoencoder = bundled_pair(device)
    for size in sizes:
        runtime.threads_for_work(size * size)  # what `explain --size` would use (unless --threads said)
        table.rows.append([size, torch.get_num_threads(),
                           *_step_row(classifier, autoencoder, size, steps, repeats, device)])
    return SectionResult(tables=[table])


def _step_row(classifier, autoencoder, size: int, steps: int, repeats: int, device: torch.device) -> list[float]:
    """Floor and MA-GIG step (ms), their ratio, and seconds per image, measured interleaved."""
    image = bundled_images(1, size).to(device)
    with torch.no_grad():
        latent = autoencoder.encode(image)
    step = floor_step(classifier, autoencoder, latent)
    per_step: list[float] = []

    def ma_gig() -> None:
        result = explain(image, classifier, "ma-gig", autoencoder=autoencoder, steps=steps)
        per_step.append(result.timings["path"] / (steps - 1))

    def floor() -> None:
        for _ in range(FLOOR_STEPS_PER_SAMPLE):
            step()

    medians = interleaved({"floor": floor, "path": ma_gig}, repeats, device)
    floor_ms = 1000 * medians["floor"] / FLOOR_STEPS_PER_SAMPLE
    step_ms = 1000 * sorted(per_step)[len(per_step) // 2]
    return [floor_ms, step_ms, step_ms / floor_ms, medians["path"]]


def _estimates(sizes: tuple[int, ...], steps: int) -> SectionResult:
    from magig_core.explorer.service import Explorer, working_size
    from magig_core.explorer.settings import DEFAULT_METHODS, RunSettings

    table = Table("MA-GIG and GIG on a photograph through the explorer",
                  ["size (px)", "threads", "estimate (s)", "measured (s)", "estimate / measured"])
    photo = str(bundled_path(*PHOTO))
    classifier, _, _ = Explorer(torch.device("cpu")).classifier(REAL_CLASSIFIER)
    runtime.threads_for_work(math.prod(working_size(classifier, None)))  # as the app: once, to its default size
    for size in sizes:
        explorer = Explorer(torch.device("cpu"))  # fresh: no run history, so the estimate is from pass counts
        settings = RunSettings(REAL_CLASSIFIER, REAL_AUTOENCODER, methods=DEFAULT_METHODS, steps=steps,
                               size=size)
        predicted = explorer.estimate(settings).total
        started = time.perf_counter()
        for _ in explorer.run(photo, settings):
            pass
        measured = time.perf_counter() - started
        table.rows.append([size, torch.get_num_threads(), predicted, measured, predicted / measured])
    return SectionResult(tables=[table], notes=["The estimate is said before the run starts; the app's goal is "
                                                "to be within 30 % of the measured time."])
