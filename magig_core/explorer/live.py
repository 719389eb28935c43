"""A method's map while its path is walked: the engine's running sum, streamed to a front end.

``explain`` calls its ``watch`` at every shown path position from inside the walk; a front end that is a
generator (Gradio streams what a handler yields) cannot yield from inside that call, so ``stream`` runs the
method in a worker thread and hands each snapshot over as it comes.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from magig_core.attribution import method_spec
from magig_core.attribution.path_record import PathSnapshot, WatchFn
from magig_core.viz import to_uint8

Result = TypeVar("Result")
Progress = Callable[[float, str], None]
PROGRESS_SECONDS = 0.05  # how often the worker's latest progress report is passed on


@dataclass(frozen=True)
class LiveMap:
    """One method's running map at one shown path position (first image of the batch), numpy on the CPU."""

    method: str
    t: float  # path position of the point just walked
    done: int  # points walked
    total: int  # points on the path
    image: np.ndarray | None  # uint8 [H,W,3] the path image there
    partial: np.ndarray  # float32 [3,H,W] the attribution collected so far (the final map at the walk's end)
    collected_t: np.ndarray  # [k] path positions walked so far, in walk order
    collected: np.ndarray  # [k] signed sum of the map collected by each of them

    @property
    def label(self) -> str:
        return method_spec(self.method).label


def live_map(method: str, snapshot: PathSnapshot) -> LiveMap:
    return LiveMap(
        method=method, t=snapshot.t, done=snapshot.done, total=snapshot.total,
        image=to_uint8(snapshot.image[0]) if snapshot.image is not None else None,
        partial=snapshot.partial[0].detach().float().cpu().numpy(),
        collected_t=snapshot.collected_t.numpy(), collected=snapshot.collected[0].detach().cpu().numpy(),
    )


class _Stopped(Exception):
    """The consumer went away: the worker leaves its walk at its next hand-over."""


def stream(method: str, work: Callable[[WatchFn, Progress], Result], on_progress: Progress | None = None
           ) -> Iterator[LiveMap | Result]:
    """Run ``work(watch, progress)`` in a worker thread; yield a ``LiveMap`` per shown position, then its result.

    ``on_progress`` and errors reach the consumer's thread: the latest progress report is passed on every
    ``PROGRESS_SECONDS`` (never a hand-over per path step: two thread switches per step slowed every other
    request of the server), errors are raised here, so a caller that pauses at every hand-over (the device
    relay) is only ever called from one thread. The worker waits at each shown position until the consumer
    asks for the next value; closing the iterator early stops the walk there.
    """
    updates: queue.Queue = queue.Queue()
    resume = threading.Semaphore(0)
    closed = threading.Event()
    latest: list[tuple[float, str] | None] = [None]

    def watch(snapshot: PathSnapshot) -> None:
        if closed.is_set():
            raise _Stopped
        updates.put(("live", live_map(method, snapshot)))
        resume.acquire()
        if closed.is_set():
            raise _Stopped

    def progress(done: float, text: str) -> None:
        latest[0] = (done, text)

    def forward() -> None:
        report, latest[0] = latest[0], None
        if report is not None and on_progress is not None:
            on_progress(*report)

    def run() -> None:
        try:
            updates.put(("result", work(watch, progress)))
        except BaseException as err:  # handed to the consumer, which raises it
            updates.put(("error", err))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                              name=f"explain-{method}")
    worker.start()
    try:
        while True:
            try:
                kind, value = updates.get(timeout=PROGRESS_SECONDS)
            except queue.Empty:
                forward()
                continue
            forward()
            if kind == "error":
                raise value
            yield value
            if kind != "live":
                return
            resume.release()
    finally:
        closed.set()
        resume.release()  # a worker waiting at a shown position sees the close and leaves its walk
        worker.join()
