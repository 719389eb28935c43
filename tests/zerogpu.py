"""ZeroGPU's calling convention on this machine: ``spaces.GPU`` as a ZeroGPU Space runs it, minus the GPU.

Written from the ``spaces`` package's own worker code (0.51, ``spaces/zero/wrappers.py``). On a ZeroGPU Space a
call of a decorated generator function
- asks the scheduler for the duration its ``duration`` callable returns for the call's arguments (refused with
  ``gr.Error`` titled "ZeroGPU quota exceeded", "ZeroGPU illegal duration", "ZeroGPU client error"…);
- forks a worker process and sends it ``(args, kwargs)`` pickled through a multiprocessing queue (a closure or
  a lock in the arguments fails right there);
- runs the generator in the worker and sends every yielded value back pickled;
- when the server closes its generator (Cancel, a closed tab), sets a stop event that the worker checks after
  its next ``next()``: the worker's generator is closed at its next yield, not before;
- turns a worker exception into ``gr.Error("…", title="ZeroGPU worker error")`` (a ``gr.Error`` raised in the
  worker is re-raised as it is) and a worker that died, e.g. killed for exceeding its duration, into "GPU task
  aborted".
This module does the same with the package's own queue class and error constructor; the worker uses this
machine's device instead of a GPU. ``python tests/zerogpu.py app.py`` starts the app under it, with the variables
a ZeroGPU Space sets.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import spaces
from spaces.utils import SimpleQueue
from spaces.zero.gradio import error

FAILURE_ENV = "MAGIG_ZEROGPU_FAILURE"  # quota | illegal-duration | no-gpu | abort: a refusal to emulate
FAILURES = {
    "quota": ("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (60s requested vs. 12s left). "
              "Try again in 13:40:00."),
    "illegal-duration": ("ZeroGPU illegal duration", "The requested GPU duration (900s) is larger than the maximum "
                         "allowed"),
    "no-gpu": ("ZeroGPU client error", "No GPU was available"),
}
FORK = multiprocessing.get_context("fork")


@dataclass
class Call:
    """One call of a decorated function: what it asked for and how its worker ended."""

    duration: float
    started: float = field(default_factory=time.monotonic)
    pid: int | None = None
    ended: float | None = None  # when the worker process had exited
    closed: float | None = None  # when the server closed the generator


class EmulatedZeroGPU:
    """A drop-in for ``spaces.GPU`` (generator functions, as the app uses) with ZeroGPU's worker protocol.

    ``failure`` makes the scheduler refuse every call (``FAILURES``) or, with "abort", kills each worker after
    its first yield; ``duration_factor`` scales the time a worker may run before it is killed.
    """

    def __init__(self, failure: str | None = None, *, duration_factor: float = 1.0) -> None:
        self.failure = failure
        self.duration_factor = duration_factor
        self.calls: list[Call] = []

    def GPU(self, task: Callable[..., Any] | None = None, *, duration: Any = None,  # the name spaces exports
            size: str | None = None) -> Any:
        if task is None:
            return lambda function: self.GPU(function, duration=duration, size=size)
        return self._wrap(task, duration)

    def _wrap(self, task: Callable[..., Iterator[Any]], duration: Any) -> Callable[..., Iterator[Any]]:
        def handler(*args: Any, **kwargs: Any) -> Iterator[Any]:
            seconds = duration(*args, **kwargs) if callable(duration) else (duration or 60)
            call = Call(float(seconds))
            self.calls.append(call)
            if self.failure in FAILURES:
                title, message = FAILURES[self.failure]
                raise error(title, message)
            args_queue: SimpleQueue = SimpleQueue()
            results: SimpleQueue = SimpleQueue()
            stop = FORK.Event()
            limit = call.duration * self.duration_factor
            worker = FORK.Process(target=_worker, daemon=True,
                                  args=(task, args_queue, results, stop, self.failure == "abort", limit))
            worker.start()
            call.pid = worker.pid
            deadline = threading.Timer(limit, _kill, (worker,))  # ZeroGPU's limit
            deadline.daemon = True
            deadline.start()
            threading.Thread(target=_sentinel, args=(worker, results, call, deadline), daemon=True).start()
            try:
                args_queue.put((args, kwargs))  # pickled here, as ZeroGPU does before any GPU work
            except Exception:
                _kill(worker)
                raise
            while True:
                kind, value = _receive(results)
                if kind == "end":
                    return
                if kind == "aborted":
                    raise error("ZeroGPU worker error", "GPU task aborted")
                if kind == "error":
                    gradio_error, name, trace = value
                    print(trace, file=sys.stderr)
                    raise gradio_error if gradio_error is not None else error("ZeroGPU worker error", name)
                try:
                    yield value
                except GeneratorExit:
                    call.closed = time.monotonic()
                    stop.set()
                    raise

        return functools.wraps(task)(handler)


def _receive(results: SimpleQueue) -> tuple[str, Any]:
    message = results.get()
    return ("aborted", None) if message is None else message


def _worker(task: Callable[..., Iterator[Any]], args_queue: SimpleQueue, results: SimpleQueue,
            stop: Any, abort_after_first: bool, limit: float) -> None:
    """The forked worker: run the generator, send each value, close it at the first yield after a stop.

    Shortly before it is killed for running past ``limit``, it prints every thread's stack: a worker that waits
    for something its parent held at the fork shows where.
    """
    faulthandler.dump_traceback_later(max(0.1, limit - 0.5), file=sys.stderr)
    args, kwargs = args_queue.get()
    generator = task(*args, **kwargs)
    while True:
        try:
            value = next(generator)
        except StopIteration:
            break
        except Exception as err:
            gradio_error = err if isinstance(err, gr.Error) else None
            results.put(("error", (gradio_error, type(err).__name__, traceback.format_exc())))
            break
        if stop.is_set():
            generator.close()
            break
        try:
            results.put(("value", value))
        except Exception as err:  # an unpicklable value: ZeroGPU reports the error instead of the value
            results.put(("error", (None, type(err).__name__, traceback.format_exc())))
            break
        if abort_after_first:
            os.kill(os.getpid(), signal.SIGKILL)
    results.put(("end", None))


def _sentinel(worker: Any, results: SimpleQueue, call: Call, deadline: threading.Timer) -> None:
    """Like ZeroGPU's: when the worker has exited, wake the server with ``None`` (aborted unless it ended)."""
    worker.join()
    call.ended = time.monotonic()
    deadline.cancel()
    results.wlock_release()
    results.put(None)


def _kill(worker: Any) -> None:
    if worker.is_alive():
        worker.kill()


def main(app_file: str) -> None:
    """Run ``app_file`` as a ZeroGPU Space would, with this emulation in place of the scheduler and GPU."""
    emulation = EmulatedZeroGPU(os.environ.get(FAILURE_ENV) or None)
    spaces.GPU = emulation.GPU  # imported without SPACES_ZERO_GPU, so the package patched nothing
    os.environ["SPACES_ZERO_GPU"] = "true"
    sys.argv = [app_file]
    sys.path[0] = os.path.dirname(os.path.abspath(app_file))  # as `python app.py` would have it
    runpy.run_path(app_file, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1])
