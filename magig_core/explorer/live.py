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
    """The consumer went away: the worker leaves its walk at the next shown position."""


def stream(method: str, work: Callable[[WatchFn, Progress], Result], on_progress: Progress | None = None
           ) -> Iterator[LiveMap | Result]:
    """Run ``work(watch, progress)`` in a worker thread; yield a ``LiveMap`` per shown position, then its result.

    The worker's progress reports and errors are handed over too: ``on_progress`` is called and errors are
    raised here, in the consumer's thread, so a caller that pauses at every hand-over (the device relay) is
    only ever called from one thread. Closing the iterator early stops the walk at its next shown position.
    """
    updates: queue.Queue = queue.Queue()
    closed = threading.Event()

    def watch(snapshot: PathSnapshot) -> None:
        if closed.is_set():
            raise _Stopped
        updates.put(("live", live_map(method, snapshot)))

    def progress(done: float, text: str) -> None:
        updates.put(("progress", (done, text)))

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
            kind, value = updates.get()
            if kind == "progress":
                if on_progress is not None:
                    on_progress(*value)
            elif kind == "live":
                yield value
            elif kind == "error":
                raise value
            else:
                yield value
                return
    finally:
        closed.set()
        worker.join()
