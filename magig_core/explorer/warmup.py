"""The gallery's results computed in the background at start-up, so that a click during a talk replays
a finished run instead of computing one.

Visitors come first: every visitor call (a run, a prediction, an estimate) is counted by ``Activity``,
and a warm-up run stops within one path step as soon as one starts, waits until the explorer is idle
again and retries. The work is bounded (a time budget, runs expected to take longer than a limit are
skipped), can be stopped, and is off on Hugging Face Spaces, where the result cache fills lazily: the
first click computes, later clicks replay.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.examples import Example
from magig_core.explorer.settings import RunSettings

if TYPE_CHECKING:
    from magig_core.explorer.service import Explorer

WARM_ENV = "MAGIG_WARM_EXAMPLES"  # eager | lazy (also on/off, 1/0)
BUDGET_SECONDS = 600.0  # all warm-up runs together
MAX_RUN_SECONDS = 60.0  # examples whose run is expected to take longer are left to the first click
ATTEMPTS = 3  # a run interrupted by visitors is retried this often
IDLE_POLL_SECONDS = 0.25


def warm_policy(env: Mapping[str, str] = os.environ) -> Literal["eager", "lazy"]:
    """``eager``: compute the examples at start-up; ``lazy``: the first click computes (default on Spaces)."""
    value = env.get(WARM_ENV, "").strip().lower()
    if value in ("eager", "on", "1", "true", "yes"):
        return "eager"
    if value in ("lazy", "off", "0", "false", "no"):
        return "lazy"
    return "lazy" if env.get("SYSTEM") == "spaces" else "eager"


class Activity:
    """Visitor calls in progress; calls made by background work (marked per thread) do not count."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._count > 0

    @property
    def in_background(self) -> bool:
        """Whether the calling thread is doing background work (which yields to visitors)."""
        return getattr(self._local, "background", False)

    @contextmanager
    def visitor(self) -> Iterator[None]:
        counted = not self.in_background
        if counted:
            with self._lock:
                self._count += 1
        try:
            yield
        finally:
            if counted:
                with self._lock:
                    self._count -= 1

    @contextmanager
    def background(self) -> Iterator[None]:
        self._local.background = True
        try:
            yield
        finally:
            self._local.background = False


def visitor_call(method: Callable) -> Callable:
    """Count an ``Explorer`` method (plain or generator) as visitor activity while it runs."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            with self.activity.visitor():
                yield from method(self, *args, **kwargs)
        return generator

    @functools.wraps(method)
    def plain(self, *args, **kwargs):
        with self.activity.visitor():
            return method(self, *args, **kwargs)
    return plain


@dataclass
class WarmItem:
    example: Example
    settings: RunSettings
    attempts: int = 0


@dataclass
class WarmProgress:
    total: int
    done: list[str] = field(default_factory=list)  # captions of examples now cached
    skipped: list[str] = field(default_factory=list)  # "caption: reason"
    finished: bool = False

    def line(self) -> str:
        state = "" if self.finished else " (warming up)"
        text = f"{len(self.done)} of {self.total} examples ready to replay{state}"
        return text + (f"; skipped: {'; '.join(self.skipped)}" if self.skipped else "")


class Warmer:
    """Runs each example once in a daemon thread and stores the finished runs in the explorer's cache."""

    def __init__(self, explorer: Explorer, items: list[WarmItem], *, budget_seconds: float = BUDGET_SECONDS,
                 max_run_seconds: float = MAX_RUN_SECONDS) -> None:
        self.explorer = explorer
        self.budget_seconds = budget_seconds
        self.max_run_seconds = max_run_seconds
        self.progress = WarmProgress(total=len(items))
        self._queue = deque(items)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="magig-warmup", daemon=True)
        explorer.cache.max_entries += len(items)  # room for the examples on top of the visitors' runs

    def start(self) -> Warmer:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop within one path step (the current run is dropped, nothing half-done is cached)."""
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the warm-up to end; True when it has."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _interrupted(self) -> bool:
        return self._stop.is_set() or self.explorer.activity.busy

    def _work(self) -> None:
        deadline = time.monotonic() + self.budget_seconds
        with self.explorer.activity.background():
            while self._queue and not self._stop.is_set():
                if time.monotonic() > deadline:
                    self.progress.skipped += [f"{i.example.caption}: time budget used up" for i in self._queue]
                    break
                while self.explorer.activity.busy and not self._stop.wait(IDLE_POLL_SECONDS):
                    continue
                if not self._stop.is_set():
                    self._warm(self._queue.popleft())
        self.progress.finished = True

    def _warm(self, item: WarmItem) -> None:
        explorer, caption = self.explorer, item.example.caption
        try:
            if explorer.cached(item.example.path, item.settings) is not None:
                self.progress.done.append(caption)
                return
            expected = explorer.estimate(item.settings).total
            if expected > self.max_run_seconds:
                self.progress.skipped.append(f"{caption}: about {expected:.0f} s, computed on first click")
                return
            final = None
            for state in explorer.run(item.example.path, item.settings, should_stop=self._interrupted):
                final = state
            if final is not None and final.complete:
                explorer.remember(item.example.path, final)
                self.progress.done.append(caption)
        except RunCancelled:
            item.attempts += 1
            if not self._stop.is_set() and item.attempts < ATTEMPTS:
                self._queue.append(item)  # a visitor came first; try again when the explorer is idle
            elif not self._stop.is_set():
                self.progress.skipped.append(f"{caption}: interrupted by visitors {ATTEMPTS} times")
        except Exception as err:  # one bad example must not stop the others
            self.progress.skipped.append(f"{caption}: {err}")


def plan(examples: list[Example], settings_for: Callable[[Example], RunSettings | None]) -> list[WarmItem]:
    """One item per example that has settings to warm (``settings_for`` may leave an example out)."""
    return [WarmItem(e, s) for e in examples if (s := settings_for(e)) is not None]
