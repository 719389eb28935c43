"""CPU threads and OpenMP's wait policy, chosen on purpose for machines that other work shares.

torch starts one OpenMP thread per core it sees, and idle OpenMP threads spin for a while before they
sleep. When another process holds one of the cores (a browser and slides on a speaker's laptop, a shared
Spaces CPU, a second run of the app) the spinning threads take the time the working thread needs: a
24-step MA-GIG on two cores with one busy took 105 s with the defaults against 2 s with one thread or
with ``OMP_WAIT_POLICY=PASSIVE``. So every entry point asks for the passive policy before torch loads
OpenMP (it reads the variable once, at load), and gives each concurrent run its share of the cores.

A sleeping thread has to be woken at every layer, and that wake-up is paid per layer whatever the layer's
size: for small images the second thread costs more than it brings (the bundled pair at 64 px ran 1.4x
faster on one thread than on two; at 128 px two threads were 1.1x faster). So a run on small images gets
fewer threads: at most one per ``MIN_PIXELS_PER_THREAD`` pixels of a network pass (``for_work``), under
the passive policy (spinning threads need no wake-up, so they keep all cores).

This module imports nothing heavy: the package imports it before torch.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"
OPENMP_DEFAULT = "(OpenMP default)"  # spinning for a while before sleeping
THREADS_ENV = "MAGIG_THREADS"  # threads per run, overriding everything else
RUNS_ENV = "MAGIG_CONCURRENT_RUNS"  # runs that share this machine's cores at once (default 1)
AUTOMATIC = "cores // runs"  # the plan's source when nobody chose a number
MIN_PIXELS_PER_THREAD = 64 * 64  # measured crossing: one thread wins at 64 px, two at 128 px (2 cores)
CGROUP_V2_LIMIT = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


_policy_in_effect: str | None = None  # what OpenMP read when torch loaded, once prefer_passive_wait knows it


def prefer_passive_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Ask OpenMP for sleeping idle threads unless the user chose a policy; False when it comes too late.

    Too late means torch is already imported: OpenMP has read its environment and keeps its policy.
    """
    global _policy_in_effect
    env = os.environ if environ is None else environ
    in_time = "torch" not in sys.modules
    before = env.get(WAIT_POLICY_ENV, OPENMP_DEFAULT)
    env.setdefault(WAIT_POLICY_ENV, PASSIVE)
    if environ is None:
        _policy_in_effect = env[WAIT_POLICY_ENV] if in_time else before
    return in_time


def cgroup_cpu_limit(v2: Path = CGROUP_V2_LIMIT, v1_quota: Path = CGROUP_V1_QUOTA,
                     v1_period: Path = CGROUP_V1_PERIOD) -> float | None:
    """CPUs a container may use (its CFS quota), or None without a limit.

    Containers (Spaces, CI runners) often show the host's core count while their quota is two CPUs; a
    thread per visible core then oversubscribes the quota exactly like a busy neighbour does.
    """
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


@dataclass(frozen=True)
class ThreadPlan:
    """How many torch threads one run uses, and why."""

    threads: int
    cores: int
    concurrent_runs: int
    source: str  # what decided: the caller, MAGIG_THREADS, OMP_NUM_THREADS, or cores // runs
    wait_policy: str  # OMP_WAIT_POLICY as OpenMP read it when torch loaded (as far as this process knows)

    def describe(self) -> str:
        return (f"{self.threads} thread(s) per run ({self.source}; {self.cores} core(s), "
                f"{self.concurrent_runs} concurrent run(s)), OMP_WAIT_POLICY={self.wait_policy}")

    def for_work(self, pixels: int) -> ThreadPlan:
        """This plan for network passes over ``pixels`` pixels (batch x height x width): an automatic plan
        under the passive policy keeps at most one thread per ``MIN_PIXELS_PER_THREAD``; spinning threads
        pay no wake-up (two stay faster at 64 px on an idle machine), and a number someone chose stays."""
        if not self.source.startswith(AUTOMATIC) or self.wait_policy.upper() != PASSIVE:
            return self
        threads = max(1, min(self.threads, pixels // MIN_PIXELS_PER_THREAD))
        capped = f"{AUTOMATIC}, at most one per {MIN_PIXELS_PER_THREAD} pixels"
        return replace(self, threads=threads, source=self.source if threads == self.threads else capped)


def plan_threads(*, threads: int | None = None, concurrent_runs: int | None = None,
                 cores: int | None = None, environ: Mapping[str, str] | None = None) -> ThreadPlan:
    """Threads per run: the caller's number, else MAGIG_THREADS, else OMP_NUM_THREADS, else an equal
    share of the cores among the concurrent runs (MAGIG_CONCURRENT_RUNS, or torchrun's processes on this
    node, or 1), at least one.
    """
    env = os.environ if environ is None else environ
    cores = available_cores() if cores is None else cores
    runs = concurrent_runs or _positive(env.get(RUNS_ENV)) or _positive(env.get("LOCAL_WORLD_SIZE")) or 1
    policy = (_policy_in_effect if environ is None else None) or env.get(WAIT_POLICY_ENV, OPENMP_DEFAULT)
    for source, value in (("caller", threads), (THREADS_ENV, _positive(env.get(THREADS_ENV))),
                          ("OMP_NUM_THREADS", _positive(env.get("OMP_NUM_THREADS")))):
        if value:
            return ThreadPlan(int(value), cores, runs, source, policy)
    return ThreadPlan(max(1, cores // runs), cores, runs, AUTOMATIC, policy)


_configured: ThreadPlan | None = None  # the entry point's plan (app, CLI); None in a user's own script


def configure_threads(*, threads: int | None = None, concurrent_runs: int | None = None) -> ThreadPlan:
    """Apply ``plan_threads`` to torch (process-wide: worker threads, e.g. the app's handlers, follow) and
    remember it, so that ``threads_for_work`` can fit it to each run's images."""
    import torch

    global _configured
    _configured = plan_threads(threads=threads, concurrent_runs=concurrent_runs)
    torch.set_num_threads(_configured.threads)
    return _configured


def threads_for_work(pixels: int) -> ThreadPlan | None:
    """Fit the configured plan to passes over ``pixels`` pixels and apply it; None (and torch's threads
    untouched) when no entry point configured threads, as in a user's script that set its own."""
    if _configured is None:
        return None
    import torch

    plan = _configured.for_work(pixels)
    torch.set_num_threads(plan.threads)
    return plan


_torch_threads_at_import: int | None = None  # torch's thread count when the library loaded (remember_torch_threads)


def remember_torch_threads() -> None:
    """Note torch's thread count as the library loads: a later change to it is the user's own choice."""
    import torch

    global _torch_threads_at_import
    _torch_threads_at_import = torch.get_num_threads()


@contextmanager
def library_threads(pixels: int) -> Iterator[ThreadPlan | None]:
    """The work-sized plan for one library call (``explain`` from a user's script), restored afterwards.

    A notebook's plain ``explain()`` would otherwise keep torch's thread per core, and under the passive
    policy a busy neighbour core makes those threads' wake-ups dominate small images. Left alone (yields
    None) when an entry point configured threads (the app, the CLI: they fit their own plan) or when the
    user changed torch's threads after importing the library.
    """
    import torch

    before = torch.get_num_threads()
    if _configured is not None or (_torch_threads_at_import is not None and before != _torch_threads_at_import):
        yield None
        return
    plan = plan_threads().for_work(pixels)
    torch.set_num_threads(plan.threads)
    try:
        yield plan
    finally:
        torch.set_num_threads(before)


def _positive(value: str | int | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else 0
    except ValueError:
        return None
    return number if number > 0 else None
