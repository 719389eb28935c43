"""How many explanations may use the model device at once, and when the next one will get its turn.

Explanations are long (seconds to minutes) and saturate the device, so they take turns in a bounded number
of slots (1 by default: on a CPU two runs only split the cores). Quick work (a prediction, one forward
pass) never takes a slot. Each holder states its expected duration, so a newcomer can be told how long it
will wait.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from magig_core.explorer.cancel import RunCancelled, StopPoll, never
from magig_core.forking import start_afresh_in_forked_children

POLL_SECONDS = 0.05  # how often a waiting run checks whether it is still wanted


class RunSlots:
    """A counting semaphore for explanations that knows each holder's expected duration."""

    def __init__(self, limit: int = 1) -> None:
        if limit < 1:
            raise ValueError(f"at least one run must be allowed at a time; got {limit}")
        self.limit = limit
        self._holders: dict[int, tuple[float, float]] = {}  # token → (start time, expected seconds)
        self._tokens = itertools.count()
        self._changed = threading.Condition()
        start_afresh_in_forked_children(self)

    def start_afresh_after_fork(self) -> None:
        """A forked worker runs alone: the holders were its parent's threads, which it does not have."""
        self._holders.clear()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, expected_seconds: float, should_stop: StopPoll = never) -> Iterator[None]:
        """Wait for a free slot (raising ``RunCancelled`` if the run stops being wanted meanwhile), hold it."""
        with self._changed:
            while len(self._holders) >= self.limit:
                if should_stop():
                    raise RunCancelled("Cancelled while waiting for the model device.")
                self._changed.wait(POLL_SECONDS)
            token = next(self._tokens)
            self._holders[token] = (time.monotonic(), max(0.0, expected_seconds))
        try:
            yield
        finally:
            with self._changed:
                del self._holders[token]
                self._changed.notify()

    @property
    def busy(self) -> int:
        with self._changed:
            return len(self._holders)

    def expected_wait(self, queued: Sequence[float] = ()) -> float:
        """Seconds until a run behind ``queued`` (expected seconds of each run ahead, in order) gets a slot.

        Holders are assumed to need their expected duration minus the time they have run (never less than
        zero); each queued run takes the slot that frees first.
        """
        now = time.monotonic()
        with self._changed:
            free_at = [max(0.0, start + expected - now) for start, expected in self._holders.values()]
        free_at += [0.0] * (self.limit - len(free_at))
        heapq.heapify(free_at)
        for seconds in queued:
            heapq.heapreplace(free_at, free_at[0] + max(0.0, seconds))
        return free_at[0]
