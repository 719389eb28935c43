"""The evaluation loop: attribute a batch, score it at once, write its records, drop the attributions.

Images are grouped into fixed batches of the evaluation order and whole batches are dealt to processes,
so every image is explained in the same batch (and with the same seed) whatever the number of
processes: a run split over ranks gives the same records as one process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from magig_core.attribution import explain, method_spec
from magig_core.data.datasets import ImageSet
from magig_core.evaluation.distributed import ProcessGroup, shard
from magig_core.evaluation.plan import Job
from magig_core.evaluation.records import ImageRecord, RecordWriter
from magig_core.metrics.emprt import emprt
from magig_core.metrics.perceptual import FrameDistance
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores, score


@dataclass
class EvaluationSettings:
    batch_size: int
    metric_batch_size: int
    ratios: tuple[float, ...]
    imputation: str
    objective: str
    seed: int
    distance_images: int  # path-distance curves for the first N images of the order (0 = none)
    progress: bool
    metrics: tuple[str, ...] = ()  # metrics computed on request only (``emprt``)


def _batches(num_images: int, batch_size: int) -> list[range]:
    return [range(s, min(s + batch_size, num_images)) for s in range(0, num_images, batch_size)]


def run_jobs(
    image_set: ImageSet,
    jobs: list[Job],
    models: Callable[[Job], tuple[nn.Module, Any]],
    settings: EvaluationSettings,
    done: set[tuple[str, str]],
    writer: RecordWriter,
    group: ProcessGroup,
    device: torch.device,
    *,
    references: torch.Tensor | None = None,
    distance: FrameDistance | None = None,
) -> int:
    """Compute every missing record of this rank's batches; returns how many records were written."""
    batches = _batches(len(image_set), settings.batch_size)
    mine = [b for b in shard(len(batches), group) if _missing(image_set, batches[b], jobs, done)]
    todo = sum(len(_missing(image_set, batches[b], [job], done)) for b in mine for job in jobs)
    written = 0
    with tqdm(total=todo, unit="img", desc=f"rank {group.rank}" if group.distributed else "evaluate",
              disable=not settings.progress, dynamic_ncols=True) as bar:
        for b in mine:
            indices = batches[b]
            images = torch.stack([image_set.load(i) for i in indices]).to(device)
            labels = torch.tensor([image_set.items[i].label for i in indices], device=device)
            for job_index, job in enumerate(jobs):
                missing = _missing(image_set, indices, [job], done)
                if not missing:
                    continue
                records = _evaluate_batch(image_set, indices, images, labels, job, job_index, models(job), settings,
                                          seed=settings.seed + b, references=references, distance=distance)
                writer.write(r for r in records if r.image_id in missing)
                written += len(missing)
                bar.update(len(missing))
    return written


def _missing(image_set: ImageSet, indices: range, jobs: list[Job], done: set[tuple[str, str]]) -> set[str]:
    return {image_set.items[i].image_id for i in indices for job in jobs
            if (image_set.items[i].image_id, job.hash) not in done}


def _evaluate_batch(
    image_set: ImageSet,
    indices: range,
    images: torch.Tensor,
    labels: torch.Tensor,
    job: Job,
    job_index: int,
    models: tuple[nn.Module, Any],
    settings: EvaluationSettings,
    *,
    seed: int,
    references: torch.Tensor | None,
    distance: FrameDistance | None,
) -> list[ImageRecord]:
    classifier, autoencoder = models
    want_frames = distance is not None and indices.start < settings.distance_images
    spec = method_spec(job.method)
    steps = job.explain_kwargs.get("steps", spec.default_steps or 1)
    started = time.perf_counter()
    explanation = explain(
        images, classifier, job.method, autoencoder=autoencoder, targets=labels, objective=settings.objective,
        seed=seed, references=references,
        frames=steps if want_frames and spec.has_frames else 0, **job.explain_kwargs,
    )
    attribution_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = score(explanation, classifier, images, ratios=settings.ratios, imputation=settings.imputation,
                   batch_size=settings.metric_batch_size, distance=distance if want_frames else None,
                   autoencoder=autoencoder if want_frames else None)
    if "emprt" in settings.metrics:
        def rerun(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return explain(inputs, model, job.method, autoencoder=autoencoder, targets=targets,
                           objective=settings.objective, seed=seed, references=references,
                           **job.explain_kwargs).attributions

        values = emprt(rerun, classifier, images, labels, explanation.attributions)
        scores = [_with_value(s, "emprt", float(v)) for s, v in zip(scores, values, strict=True)]
    metric_seconds = time.perf_counter() - started
    del explanation  # attributions are never kept: each image's outcome is final once scored
    return [
        ImageRecord(image_id=image_set.items[i].image_id, index=i, label=image_set.items[i].label,
                    classifier=job.classifier, config_hash=job.hash, job_index=job_index,
                    result=ScoredMethod(job.method, scores[row], attribution_seconds / len(indices)),
                    metric_seconds=metric_seconds / len(indices))
        for row, i in enumerate(indices)
    ]


def _with_value(scores: Scores, name: str, value: float) -> Scores:
    return dataclasses.replace(scores, values={**scores.values, name: value})
