"""What recording where the attribution is collected costs: a run with the path record against one without.

"Without" replaces the record, in this process only, by one that keeps what the integrator kept before
it (the running sum and each segment's signed sum): no absolute mass, no gradient or running-map copies
at the shown positions. Both variants run alternately on the same images and models; the ratio of the
fastest runs is printed with the share of a run spent inside the record (timed around its calls: on a busy
machine the fastest-run ratio is mostly noise, this share is not), the peak resident memory of each variant
(sampled every 2 ms) and the bytes the record's results hold.
Run: ``MAGIG_THREADS=1 python benchmarks/path_record_overhead.py`` (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from magig_core import explain, load_autoencoder, load_classifier, runtime
from magig_core.attribution import integrator
from magig_core.attribution.path_record import PathRecord, RecordedPath
from magig_core.data.datasets import cifar10_test
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER
from magig_core.memory import release_memory, rss_bytes


class UnrecordedPath(PathRecord):
    """The running sum and the signed segment sums only, as the integrator kept them before the record."""

    def collect(self, contribution: torch.Tensor) -> None:
        self._sums.append(contribution.flatten(1).sum(dim=1))
        self._running = contribution.clone() if self._running is None else self._running.add_(contribution)

    def visit(self, grad: torch.Tensor | None, image01: Callable[[], torch.Tensor] | None = None) -> None:
        self._visited += 1

    def finish(self) -> RecordedPath:
        return RecordedPath(self._running, torch.stack(self._sums, dim=1), None, None, None)


class TimedRecord(PathRecord):
    """The real record, with the seconds spent inside it added up: its share of a run, robust to a busy
    machine because both sides of the ratio slow down together."""

    seconds = 0.0

    def collect(self, contribution: torch.Tensor) -> None:
        started = time.perf_counter()
        super().collect(contribution)
        TimedRecord.seconds += time.perf_counter() - started

    def visit(self, grad: torch.Tensor | None, image01: Callable[[], torch.Tensor] | None = None) -> None:
        started = time.perf_counter()
        super().visit(grad, image01)
        TimedRecord.seconds += time.perf_counter() - started

    def finish(self) -> RecordedPath:
        started = time.perf_counter()
        recorded = super().finish()
        TimedRecord.seconds += time.perf_counter() - started
        return recorded


@contextmanager
def recording_with(record: type[PathRecord]) -> Iterator[None]:
    integrator.PathRecord = record
    try:
        yield
    finally:
        integrator.PathRecord = PathRecord


def peak_rss(run: Callable[[], object]) -> tuple[object, float, int]:
    """Run once; return its result, its seconds and the highest resident memory seen meanwhile."""
    release_memory()
    peak, done = [rss_bytes() or 0], threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], rss_bytes() or 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return result, seconds, max(peak[0], rss_bytes() or 0)


def recorded_bytes(result) -> int:
    fields = (result.gradient_frames, result.contribution_frames, result.segment_mass)
    return sum(t.numel() * t.element_size() for t in fields if t is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="ma-gig,ig")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/path_record_overhead.json"))
    args = parser.parse_args()
    runtime.configure_threads()
    classifier, autoencoder = load_classifier(REAL_CLASSIFIER), load_autoencoder(REAL_AUTOENCODER)
    image = cifar10_test(size=args.size).load(0).unsqueeze(0)
    report = {"size": args.size, "steps": args.steps, "frames": args.frames, "repeats": args.repeats,
              "threads": torch.get_num_threads(), "methods": {}}
    for method in args.methods.split(","):
        def run(method: str = method) -> object:
            return explain(image, classifier, method, autoencoder=autoencoder, steps=args.steps, frames=args.frames)

        run()  # warm-up: first passes allocate and pick kernels
        timings: dict[str, list[float]] = {"recorded": [], "unrecorded": []}
        peaks: dict[str, int] = {"recorded": 0, "unrecorded": 0}
        held = 0
        inside: list[float] = []
        for _ in range(args.repeats):
            with recording_with(UnrecordedPath):
                _, seconds, peak = peak_rss(run)
            timings["unrecorded"].append(seconds)
            peaks["unrecorded"] = max(peaks["unrecorded"], peak)
            TimedRecord.seconds = 0.0
            with recording_with(TimedRecord):
                result, seconds, peak = peak_rss(run)
            timings["recorded"].append(seconds)
            inside.append(TimedRecord.seconds / seconds)
            peaks["recorded"] = max(peaks["recorded"], peak)
            held = recorded_bytes(result)
        ratio = min(timings["recorded"]) / min(timings["unrecorded"])
        memory_ratio = peaks["recorded"] / peaks["unrecorded"]
        report["methods"][method] = {"seconds": timings, "time_ratio": ratio, "record_share": inside,
                                     "peak_rss_bytes": peaks, "peak_rss_ratio": memory_ratio, "recorded_bytes": held}
        print(f"{method}: fastest {min(timings['recorded']):.3f} s recorded vs {min(timings['unrecorded']):.3f} s "
              f"without (ratio {ratio:.3f}); inside the record {100 * max(inside):.2f} % of a run at most; peak RSS "
              f"{peaks['recorded'] / 2**20:.0f} vs {peaks['unrecorded'] / 2**20:.0f} MiB (ratio {memory_ratio:.3f}); "
              f"the record's results hold {held / 2**10:.0f} KiB", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} ({args.size} px, {args.steps} steps, {args.frames} frames, "
          f"{report['threads']} thread(s), machine shared with other jobs)")


if __name__ == "__main__":
    main()
