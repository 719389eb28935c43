"""How close MA-GIG's step is to its floor, and what batching buys, measured in one run.

The floor of one path step is one decoder forward+backward plus one classifier forward+backward (the
work a single fused pass cannot avoid). Everything else (the guided rule, bookkeeping) is overhead.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from tqdm import tqdm

from magig_core.attribution import explain
from magig_core.perf.networks import resnet18_classifier, sd_config_autoencoder
from magig_core.perf.timing import floor_step, median_seconds


@dataclass
class BenchmarkResult:
    device: str
    size: int
    steps: int
    batch: int
    floor_step_seconds: float  # one decoder fwd+bwd + one classifier fwd+bwd, batch 1
    ma_gig_step_seconds: float  # MA-GIG wall time per path step, batch 1
    seconds_per_image_single: float
    seconds_per_image_batched: float
    guided_rule_share: float  # share of MA-GIG wall time spent in the guided rule

    @property
    def step_ratio(self) -> float:
        return self.ma_gig_step_seconds / self.floor_step_seconds

    @property
    def batch_speedup(self) -> float:
        return self.seconds_per_image_single / self.seconds_per_image_batched

    def table(self) -> str:
        rows = [
            ("device", self.device),
            ("image size / steps", f"{self.size}×{self.size} / {self.steps}"),
            ("floor per step (dec fwd+bwd + cls fwd+bwd)", f"{self.floor_step_seconds:.4f} s"),
            ("MA-GIG per step", f"{self.ma_gig_step_seconds:.4f} s"),
            ("ratio to floor", f"{self.step_ratio:.3f}×"),
            ("guided-rule share of wall time", f"{100 * self.guided_rule_share:.1f} %"),
            ("seconds per image, one by one", f"{self.seconds_per_image_single:.3f} s"),
            (f"seconds per image, batched B={self.batch}", f"{self.seconds_per_image_batched:.3f} s"),
            ("batched vs one-by-one throughput", f"{self.batch_speedup:.2f}×"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'quantity'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


def run_benchmark(
    *, size: int = 128, steps: int = 20, batch: int = 4, device: str | None = None, tiny: bool = False,
    repeats: int = 3, seed: int = 0,
) -> BenchmarkResult:
    torch.manual_seed(seed)
    target_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    autoencoder = sd_config_autoencoder(tiny).to(target_device)
    classifier = resnet18_classifier().to(target_device)
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(target_device)
    with torch.no_grad():
        latent = autoencoder.encode(images[:1])
    floor = floor_step(classifier, autoencoder, latent)

    def explain_one(index: int):
        return explain(images[index : index + 1], classifier, "ma-gig", autoencoder=autoencoder, steps=steps)

    progress = tqdm(total=batch + 2, desc="benchmark step", unit="run", disable=None, dynamic_ncols=True)
    floor()  # warm-ups: allocator, kernel selection
    explain_one(0)
    progress.update()
    # Floor and MA-GIG steps are measured interleaved so that load from elsewhere hits both alike.
    floors: list[float] = []
    single_runs = []
    for index in range(batch):
        floors.append(median_seconds(floor, repeats, target_device))
        single_runs.append(explain_one(index))
        progress.update()
    floor_seconds = statistics.median(floors)
    single_total = sum(r.timings["total"] for r in single_runs)
    batched = explain(images, classifier, "ma-gig", autoencoder=autoencoder, steps=steps)
    progress.update()
    progress.close()
    per_step = statistics.median(r.timings["path"] / (steps - 1) for r in single_runs)
    rule = sum(r.timings.get("guided_rule", 0.0) for r in single_runs)
    return BenchmarkResult(
        device=str(target_device) if target_device.type != "cuda" else torch.cuda.get_device_name(target_device),
        size=size, steps=steps, batch=batch, floor_step_seconds=floor_seconds, ma_gig_step_seconds=per_step,
        seconds_per_image_single=single_total / batch,
        seconds_per_image_batched=batched.timings["total"] / batch,
        guided_rule_share=rule / single_total,
    )
