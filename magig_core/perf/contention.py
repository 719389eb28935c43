"""``benchmark --suite contention``: MA-GIG with and without a busy neighbour, by threads and wait policy.

OpenMP reads its wait policy once, when torch loads, so every configuration runs in a fresh worker
process (this module run as a script) with its environment set before that; "OpenMP default" workers
import torch before magig_core, whose import would otherwise ask for the passive policy. The neighbour
is a process that burns one core, started before the workers and stopped after them; "two runs at once"
starts two workers together, as two app processes or two talks sharing a machine would.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from magig_core import runtime
from magig_core.perf.sections import Report, SectionResult, Table

DEFAULT = "OpenMP default"
PACKAGE = "package defaults"  # a plain explain() from a script: no thread count or policy set by anyone
WORKER = ("import sys, runpy\n"
          "if sys.argv[1] == 'default':\n"
          "    import torch  # noqa: F401 - loads OpenMP before magig_core can ask for the passive policy\n"
          "runpy.run_module('magig_core.perf.contention', run_name='__main__')\n")
BURNER = "while True:\n    pass\n"


@dataclass(frozen=True)
class Scenario:
    threads: int  # per run; 0 under PACKAGE: whatever explain() picks itself
    policy: str  # DEFAULT or an OMP_WAIT_POLICY value
    neighbour: bool  # one core kept busy by another process
    runs: int = 1  # runs started at once

    @property
    def label(self) -> str:
        load = "busy neighbour" if self.neighbour else "idle"
        if self.policy == PACKAGE:
            return f"plain explain(), {PACKAGE}, {load}"
        return f"{self.runs} run(s) × {self.threads} thread(s), {self.policy}, {load}"


def scenarios(cores: int) -> list[Scenario]:
    """Threads 1 and all cores × both policies × idle/busy, a plain explain() idle/busy, then two
    concurrent runs three ways."""
    thread_counts = sorted({1, cores})
    single = [Scenario(t, p, n) for n in (False, True) for p in (DEFAULT, runtime.PASSIVE) for t in thread_counts]
    plain = [Scenario(0, PACKAGE, False), Scenario(0, PACKAGE, True)]
    concurrent = [Scenario(cores, DEFAULT, False, 2), Scenario(cores, runtime.PASSIVE, False, 2),
                  Scenario(max(1, cores // 2), runtime.PASSIVE, False, 2)]
    return single + plain + concurrent


def run_contention_suite(out_dir: Path, *, size: int | None = None, steps: int | None = None,
                         repeats: int | None = None, tiny: bool = False,
                         chosen: list[Scenario] | None = None, timeout: float | None = None) -> Report:
    size, steps, repeats = size or (8 if tiny else 64), steps or (4 if tiny else 24), repeats or 1
    timeout = timeout or (60.0 if tiny else 150.0)
    cores = runtime.available_cores()
    settings = {"models": "TAEF2 + CIFAR-10 ResNet-56", "size": size, "steps": steps, "repeats": repeats,
                "cores": cores, "timeout_s": timeout}
    report = Report("contention", torch.device("cpu"), out_dir, settings, sections=1)
    report.run("runs", "MA-GIG wall time under contention",
               lambda: _measure(chosen or scenarios(cores), size, steps, repeats, timeout, cores))
    return report


def _measure(chosen: list[Scenario], size: int, steps: int, repeats: int, timeout: float,
             cores: int) -> SectionResult:
    def shipped_threads(runs: int) -> int:
        passive = {runtime.WAIT_POLICY_ENV: runtime.PASSIVE}
        return runtime.plan_threads(concurrent_runs=runs, cores=cores, environ=passive).for_work(size * size).threads

    table = Table(f"TAEF2 + ResNet-56, {size} px, {steps} steps, batch 1; seconds per run (slowest of "
                  "concurrent runs), median of repeats", ["scenario", "seconds", "vs same run idle", "policy"])
    measured: dict[Scenario, float | None] = {}
    for scenario in chosen:
        times = [_run_scenario(scenario, size, steps, timeout) for _ in range(repeats)]
        measured[scenario] = None if None in times else statistics.median(times)
    for scenario, seconds in measured.items():
        idle = measured.get(Scenario(scenario.threads, scenario.policy, False, scenario.runs))
        shipped = scenario.policy == PACKAGE or (scenario.policy == runtime.PASSIVE
                                                 and scenario.threads == shipped_threads(scenario.runs))
        table.rows.append([scenario.label, seconds if seconds is not None else f"> {timeout:.0f} (timed out)",
                           seconds / idle if seconds is not None and idle else None,
                           "shipped" if shipped else ""])
    notes = [f"'shipped' marks what magig_core.runtime picks here: {shipped_threads(1)} thread(s) for one run "
             f"of {size} px on {cores} core(s), {shipped_threads(2)} per run for two, OMP_WAIT_POLICY=PASSIVE, "
             "set before torch loads."]
    return SectionResult([table], notes=notes)


def _run_scenario(scenario: Scenario, size: int, steps: int, timeout: float) -> float | None:
    """Seconds of the slowest of ``scenario.runs`` workers started together, or None past the timeout."""
    unset = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", runtime.THREADS_ENV, runtime.RUNS_ENV)
    env = {key: value for key, value in os.environ.items() if key not in unset}
    if scenario.policy not in (DEFAULT, PACKAGE):
        env["OMP_WAIT_POLICY"] = scenario.policy
    mode = "default" if scenario.policy == DEFAULT else "set"
    command = [sys.executable, "-c", WORKER, mode, str(scenario.threads), str(size), str(steps)]
    with _busy_core() if scenario.neighbour else nullcontext():
        workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
                   for _ in range(scenario.runs)]
        deadline = time.monotonic() + timeout
        results = []
        for worker in workers:
            try:
                out, _ = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
                results.append(json.loads(out.strip().splitlines()[-1])["seconds"])
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.communicate()
                results.append(None)
    return None if None in results else max(results)


@contextmanager
def _busy_core() -> Iterator[None]:
    burner = subprocess.Popen([sys.executable, "-c", BURNER])
    try:
        time.sleep(0.5)  # let it take its core
        yield
    finally:
        burner.kill()
        burner.wait()


def _worker(threads: int, size: int, steps: int) -> None:
    """Time one MA-GIG run (after a short warm-up) and print its seconds as JSON; threads 0 leaves the
    thread count to explain() itself."""
    from magig_core.attribution import explain
    from magig_core.perf.networks import bundled_images, bundled_pair

    if threads:
        torch.set_num_threads(threads)
    classifier, autoencoder = bundled_pair(torch.device("cpu"))
    image = bundled_images(1, size)
    explain(image, classifier, "ma-gig", autoencoder=autoencoder, steps=3)
    start = time.perf_counter()
    explain(image, classifier, "ma-gig", autoencoder=autoencoder, steps=steps)
    print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    _worker(*(int(value) for value in sys.argv[2:5]))
