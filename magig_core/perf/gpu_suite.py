"""``benchmark --suite gpu``: one short run that proves the engine on a GPU and measures it.

Sections, in order of importance so that a short device lease spends itself on what matters first:
the environment; CPU-vs-device equality of every registered method (fp32, small case); MA-GIG's time per
path step against its floor in fp32/bf16/fp16; bf16 and fp16 error against fp32; MA-GIG throughput at
B = 1, 8, 32 with peak memory; seconds per image for every method in the layout of the paper's Table 12.
No downloads: the paper-sized networks are the SD VAE architecture and ResNet-18 with random weights (a
step costs the same as with trained weights), next to the bundled TAEF2 + CIFAR-10 ResNet-56. Without a
GPU (or with ``tiny``) every size shrinks so the same code runs on a CPU in seconds.
"""

from __future__ import annotations

import platform
import subprocess
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from magig_core import runtime
from magig_core.attribution import all_methods, explain
from magig_core.attribution.registry import MethodSpec, method_spec
from magig_core.attribution.result import Explanation
from magig_core.perf.compare import explanation_difference, strict_fp32
from magig_core.perf.networks import bundled_images, bundled_pair, random_images, random_pair
from magig_core.perf.sections import Report, SectionResult, Table, device_label
from magig_core.perf.timing import floor_step, median_seconds, timed

GIB = 2**30
DEFAULT_BUDGET_SECONDS = 420.0  # leaves a minute of an 8-minute lease for start-up and copying results


@dataclass(frozen=True)
class GpuSuiteSettings:
    size: int = 256  # paper-sized runs (step vs floor, throughput, Table 12)
    steps: int = 200
    batches: tuple[int, ...] = (1, 8, 32)
    repeats: int = 5  # floor measurements per median
    small_size: int = 32  # CPU-vs-device equality on the bundled models
    small_steps: int = 16
    bundled_size: int = 64  # the talk setting: precision errors and the bundled column of Table 12
    references: int = 100  # IG2's reference bank (the paper's size)
    agi_iterations: int | None = None  # None: the paper's 15
    tiny: bool = False


TINY = GpuSuiteSettings(size=32, steps=4, batches=(1, 2), repeats=1, small_size=8, small_steps=4,
                        bundled_size=8, references=4, agi_iterations=2, tiny=True)


def run_gpu_suite(out_dir: Path, *, device: str | None = None, tiny: bool = False,
                  budget_seconds: float | None = DEFAULT_BUDGET_SECONDS) -> Report:
    """Run every section (each may fail alone) and write JSON + Markdown under ``out_dir``."""
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    settings = TINY if tiny or target.type != "cuda" else GpuSuiteSettings()
    sections = [
        ("environment", "Environment", lambda: environment(target)),
        ("equality", "CPU vs device, fp32, every method", lambda: equality(settings, target)),
        ("step", "MA-GIG per step against the floor", lambda: step_vs_floor(settings, target)),
        ("precision", "bf16 and fp16 against fp32", lambda: precision_error(settings, target)),
        ("throughput", "MA-GIG throughput by batch size", lambda: throughput(settings, target, report)),
        ("methods", "Seconds per image, every method (Table 12 layout)", lambda: methods_table(settings, target,
                                                                                                report)),
    ]
    report = Report("gpu", target, out_dir, {**asdict(settings), "device": str(target)}, budget_seconds,
                    sections=len(sections))
    for name, title, function in sections:
        report.run(name, title, function)
    return report


# Sections ----------------------------------------------------------------------------------------

def environment(device: torch.device) -> SectionResult:
    values: dict[str, Any] = {
        "device": device_label(device), "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu_threads": torch.get_num_threads(), "available_cores": runtime.available_cores(),
        "omp_wait_policy": runtime.plan_threads().wait_policy, "commit": _commit(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        values |= {"gpu_memory_gib": round(properties.total_memory / GIB, 1),
                   "compute_capability": f"{properties.major}.{properties.minor}",
                   "cudnn_conv_fp32_precision": _conv_precision()}
    return SectionResult(values=values)


def equality(settings: GpuSuiteSettings, device: torch.device) -> SectionResult:
    """Every method on the CPU and on the device, same images and models, true fp32 on both."""
    cpu = torch.device("cpu")
    images = bundled_images(2, settings.small_size)
    bank = bundled_images(6, settings.small_size)[2:]
    reference_models, device_models = bundled_pair(cpu), bundled_pair(device)
    other = device_label(device) if device.type == "cuda" else "cpu again (no CUDA device)"
    table = Table(f"CPU vs {other}: TAEF2 + ResNet-56, {settings.small_size} px, {settings.small_steps} steps, "
                  "2 images", ["method", "max rel diff", "rel L2", "correlation", "|ΔF(x)|"])
    references = {}
    for spec in all_methods():
        with strict_fp32():
            references[spec.name] = _explain(spec, *reference_models, images, bank, settings,
                                             steps=settings.small_steps)
            candidate = _explain(spec, *device_models, images, bank, settings, steps=settings.small_steps)
        table.rows.append([spec.name, *_difference_row(candidate, references[spec.name])])
    notes = ["fp32 with TF32 off on the device (cuDNN convolutions default to TF32). Guided methods (gig, "
             "ma-gig) select coordinates by |gradient| rank, a discontinuous rule: a last-bit difference can "
             "swap a selection and the paths part, so judge them by rel L2 and correlation; |ΔF(x)| is "
             "path-independent and should be at rounding level."]
    if device.type == "cuda":
        candidate = _explain(method_spec("ma-gig"), *device_models, images, bank, settings,
                             steps=settings.small_steps)
        table.rows.append(["ma-gig, device with TF32 (default flags)",
                           *_difference_row(candidate, references["ma-gig"])])
    return SectionResult([table], notes=notes)


def step_vs_floor(settings: GpuSuiteSettings, device: torch.device) -> SectionResult:
    """Wall time per MA-GIG step against one decoder fwd+bwd + one classifier fwd+bwd, batch 1."""
    table = Table(f"batch 1, {settings.steps} steps",
                  ["models", "size", "precision", "floor (ms)", "MA-GIG step (ms)", "ratio", "guided rule %"])
    modes = ["fp32", "fp32 (TF32 off)", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    for label, models, size in _model_pairs(settings, device):
        classifier, autoencoder = models
        images = _images_for(label, 1, size).to(device)
        for mode in modes:
            precision = mode.split()[0]
            with strict_fp32() if "TF32 off" in mode else nullcontext():
                with torch.no_grad():
                    latent = autoencoder.encode(images)
                floor = floor_step(classifier, autoencoder, latent, _autocast(precision))
                floor()
                floor_seconds = median_seconds(floor, settings.repeats, device)
                explain(images, classifier, "ma-gig", autoencoder=autoencoder, steps=3, precision=precision)
                result = explain(images, classifier, "ma-gig", autoencoder=autoencoder, steps=settings.steps,
                                 precision=precision)
            per_step = result.timings["path"] / (settings.steps - 1)
            table.rows.append([label, size, mode, 1e3 * floor_seconds, 1e3 * per_step, per_step / floor_seconds,
                               100 * result.timings.get("guided_rule", 0.0) / result.timings["path"]])
    return SectionResult([table], notes=["The floor is the work a fused step cannot avoid; the ratio is "
                                         "MA-GIG's whole step (guided rule, bookkeeping, syncs) over it."])


def precision_error(settings: GpuSuiteSettings, device: torch.device) -> SectionResult:
    """bf16/fp16 autocast of the networks against fp32 on the same device (the path rule stays fp32)."""
    classifier, autoencoder = bundled_pair(device)
    images = bundled_images(2, settings.bundled_size).to(device)
    bank = bundled_images(6, settings.bundled_size)[2:]
    precisions = ["bf16", "fp16"] if device.type == "cuda" else ["bf16"]
    table = Table(f"TAEF2 + ResNet-56, {settings.bundled_size} px, {settings.steps} steps, 2 images, "
                  "against fp32 (default flags)",
                  ["method", "precision", "max rel diff", "rel L2", "correlation", "|ΔF(x)|"])
    for spec in all_methods():
        reference = _explain(spec, classifier, autoencoder, images, bank, settings, steps=settings.steps)
        for precision in precisions:
            candidate = _explain(spec, classifier, autoencoder, images, bank, settings, steps=settings.steps,
                                 precision=precision)
            table.rows.append([spec.name, precision, *_difference_row(candidate, reference)])
    notes = [] if device.type == "cuda" else ["fp16 needs CUDA: not measured here."]
    return SectionResult([table], notes=notes)


def throughput(settings: GpuSuiteSettings, device: torch.device, report: Report) -> SectionResult:
    """MA-GIG images per second by batch size; a failed size (e.g. out of memory) is recorded in its row."""
    classifier, autoencoder = random_pair(settings.tiny, device)
    table = Table(f"SD-arch VAE + ResNet-18 (random weights), {settings.size} px, {settings.steps} steps, fp32",
                  ["batch", "seconds", "images/s", "s/image", "vs one by one", "peak memory (GiB)"])
    single_rate = None
    for batch in settings.batches:
        if report.time_left() <= 0:
            table.rows.append([batch, "skipped: time budget spent", None, None, None, None])
            continue
        try:
            images = random_images(batch, settings.size, seed=batch).to(device)
            explain(images, classifier, "ma-gig", autoencoder=autoencoder, steps=3)
            _reset_peak(device)
            seconds = timed(lambda images=images: explain(images, classifier, "ma-gig", autoencoder=autoencoder,
                                                          steps=settings.steps), device)
        except Exception as err:  # e.g. out of memory at the largest batch: keep the others
            table.rows.append([batch, f"{type(err).__name__}: {str(err)[:120]}", None, None, None, None])
            _release(device)
            continue
        rate = batch / seconds
        single_rate = rate if batch == 1 else single_rate
        table.rows.append([batch, seconds, rate, 1 / rate, rate / single_rate if single_rate else None,
                           _peak_gib(device)])
    return SectionResult([table])


def methods_table(settings: GpuSuiteSettings, device: torch.device, report: Report) -> SectionResult:
    """Seconds per image (batch 1, paper defaults) for every registered method; the second of two runs."""
    columns = []
    for label, (classifier, autoencoder), size in _model_pairs(settings, device):
        images = _images_for(label, 1, size).to(device)
        bank = _images_for(label, settings.references, size, seed=1)
        seconds, peaks = {}, {}
        for spec in all_methods():
            if report.time_left() <= 0:
                seconds[spec.name] = peaks[spec.name] = None
                continue
            run = partial(_explain, spec, classifier, autoencoder, images, bank, settings,
                          steps=settings.steps if settings.tiny else None)
            if not settings.tiny:
                run()  # the first run pays for allocations and kernel selection at this method's shapes
            _reset_peak(device)
            seconds[spec.name] = timed(run, device)
            peaks[spec.name] = _peak_gib(device)
        columns.append((f"{label}, {size} px", seconds, peaks))
    header = ["method"] + [f"{name} (s)" for name, _, _ in columns]
    if device.type == "cuda":
        header += [f"{name} peak (GiB)" for name, _, _ in columns]
    table = Table("seconds per image, batch 1" + (", paper defaults" if not settings.tiny
                                                   else f", {settings.steps} steps"), header)
    for spec in all_methods():
        row = [spec.label] + [seconds[spec.name] for _, seconds, _ in columns]
        if device.type == "cuda":
            row += [peaks[spec.name] for _, _, peaks in columns]
        table.rows.append(row)
    return SectionResult([table], notes=["Random weights cost what trained ones cost per pass, but methods "
                                         "that stop early (AGI, MIG's threshold) may stop at other points."])


# Helpers -----------------------------------------------------------------------------------------

def _model_pairs(settings: GpuSuiteSettings, device: torch.device) -> list[tuple[str, tuple[nn.Module, nn.Module],
                                                                                 int]]:
    torch.manual_seed(0)
    return [("SD-arch VAE + ResNet-18 (random)", random_pair(settings.tiny, device), settings.size),
            ("TAEF2 + ResNet-56", bundled_pair(device), settings.bundled_size)]


def _images_for(label: str, count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random images for random networks, CIFAR-10 test images for the bundled ones."""
    if label.startswith("TAEF2"):
        return bundled_images(count, size) if seed == 0 else bundled_images(count + 10, size)[10:]
    return random_images(count, size, seed)


def _explain(spec: MethodSpec, classifier: nn.Module, autoencoder: nn.Module, images: torch.Tensor,
             bank: torch.Tensor, settings: GpuSuiteSettings, *, steps: int | None,
             precision: str = "fp32") -> Explanation:
    options: dict[str, Any] = {"steps": steps, "precision": precision}
    if spec.needs_autoencoder:
        options["autoencoder"] = autoencoder
    if spec.draws_references:
        options["references"] = bank
    if settings.agi_iterations is not None:
        options["agi_iterations"] = settings.agi_iterations
    return explain(images, classifier, spec.name, **options)


def _difference_row(candidate: Explanation, reference: Explanation) -> list[float]:
    numbers = explanation_difference(candidate, reference)
    return [numbers["max_rel"], numbers["rel_l2"], numbers["correlation"], numbers["output_gap"]]


def _autocast(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _conv_precision() -> str:
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return str(conv.fp32_precision)
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


def _commit() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None

