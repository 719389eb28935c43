"""Explanations on the device, under Hugging Face ZeroGPU's calling convention and the same way everywhere else.

ZeroGPU runs a ``@spaces.GPU`` function in a forked worker process: its arguments reach the worker pickled
through a queue, every value it yields comes back pickled, and a generator that the server closes (Cancel, a
closed tab) is closed in the worker only at its next yield. So only plain data crosses here: in, the image as a
file path, a ``RunSettings`` (a frozen dataclass of plain values) and the GPU seconds requested; out,
``RunState`` snapshots (numpy; the running method's map forming included) and ``Tick`` progress records.
Stop flags, client watches, progress widgets and
models never cross: the server decides when to stop and closes the generator, and the worker uses the models it
inherited at the fork (or loads them onto its GPU). The worker yields a ``Tick`` after at most ``TICK_SECONDS``
of path steps, so a closed run stops within that and one step. Without ZeroGPU, ``spaces.GPU`` returns the
function unchanged and the very same generator runs in the server process, on a CPU or a GPU.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from magig_core.explorer.cancel import RunCancelled, StopPoll
from magig_core.explorer.service import Explorer, RunState
from magig_core.explorer.settings import RunSettings
from magig_core.models.devices import default_device

T = TypeVar("T")
Progress = Callable[[float, str], None]
GpuDecorator = Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]

TICK_SECONDS = 0.1  # longest stretch of path steps between two yields: what a closed run may still compute


@dataclass(frozen=True)
class Tick:
    """Progress of a run in the worker: the fraction done and what is being computed."""

    done: float
    text: str


def zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (the variable ZeroGPU sets; ``spaces`` reads the same)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def host_device() -> torch.device:
    """The server process's own device. On ZeroGPU a GPU exists only inside ``@spaces.GPU`` calls, so
    predictions, estimates and scrubbing run on the CPU there; elsewhere the process uses its GPU if it has one."""
    return torch.device("cpu") if zero_gpu() else default_device()


def spaces_gpu() -> GpuDecorator:
    """``spaces.GPU`` when the package is installed (a pass-through outside ZeroGPU), else a pass-through."""
    try:
        import spaces
    except ImportError:
        def passthrough(task: Callable[..., Any] | None = None, **_options: Any) -> Any:
            return task if callable(task) else (lambda function: function)
        return passthrough
    return spaces.GPU


class DeviceRunner:
    """The explorer's runs as one GPU function: ``stream(image, settings, seconds)`` yields ``RunState`` and
    ``Tick`` values, and stops at its next yield once closed."""

    def __init__(self, explorer: Explorer, gpu: GpuDecorator | None = None) -> None:
        self.explorer = explorer
        self._device_explorers: dict[torch.device, Explorer] = {explorer.device: explorer}
        self.stream = (gpu or spaces_gpu())(duration=requested_seconds)(self._stream)

    def _stream(self, image: str, settings: RunSettings, seconds: int) -> Iterator[RunState | Tick]:
        explorer = self._explorer_here()

        def run(should_stop: StopPoll, on_progress: Progress) -> Iterator[RunState]:
            return explorer.run(image, settings, should_stop=should_stop, on_progress=on_progress, live=True)

        yield from relay(run)

    def _explorer_here(self) -> Explorer:
        """The explorer for the device this call has: under ZeroGPU the worker's GPU, with its own models
        (the server keeps CPU ones); elsewhere the server's explorer itself."""
        device = default_device()
        if device not in self._device_explorers:
            self._device_explorers[device] = Explorer(device, run_slots=1)
        return self._device_explorers[device]


def requested_seconds(image: str, settings: RunSettings, seconds: int) -> int:
    """ZeroGPU's duration callable: called with the GPU function's own arguments, it returns the request."""
    return seconds


def relay(run: Callable[[StopPoll, Progress], Iterator[T]], *, every: float = TICK_SECONDS) -> Iterator[T | Tick]:
    """Yield ``run``'s items, and a ``Tick`` whenever ``every`` seconds of its steps have passed.

    ``run`` gets a stop poll and a progress callback and calls the callback at every path step; it runs in a
    thread that waits at every hand-over until the consumer asks for the next value. Closing this generator
    sets the stop poll, so ``run`` stops at its next step (raising) and the thread is joined before the close
    returns: nothing keeps computing for a run nobody wants. A hand-over after the close raises instead of
    waiting: the run may reach one (progress queued from earlier steps, the results after a walk) before it
    polls the stop, and a wait there would hold the close, and the visitor's slot, for ever.
    """
    stop = threading.Event()
    handed: queue.Queue[tuple[str, Any]] = queue.Queue()
    resume = threading.Semaphore(0)
    last = time.monotonic()

    def hand_over(value: T | Tick) -> None:
        if stop.is_set():
            raise RunCancelled("The run was closed.")
        handed.put(("value", value))
        resume.acquire()  # the close releases once: the one hand-over that can be waiting then
        if stop.is_set():
            raise RunCancelled("The run was closed.")

    def progress(done: float, text: str) -> None:
        nonlocal last
        if time.monotonic() - last >= every:
            hand_over(Tick(done, text))
            last = time.monotonic()

    def work() -> None:
        try:
            for item in run(stop.is_set, progress):
                hand_over(item)
        except BaseException as err:  # re-raised in the consumer, where the caller can see it
            handed.put(("error", err))
        else:
            handed.put(("end", None))

    thread = threading.Thread(target=work, name="device-run", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handed.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            resume.release()
    finally:
        stop.set()
        resume.release()  # a thread paused at a hand-over goes on to its next step, sees the stop and ends
        thread.join()

