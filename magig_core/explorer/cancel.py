"""Stopping runs: per-visitor stop flags, and one poll that combines every reason to stop.

A front end sets a flag (its Cancel control), the server sees a client vanish or cancel (``gradio_queue``);
the engine's progress callback polls ``any_of(...)`` every path step and raises ``RunCancelled``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from magig_core.errors import MagigError

StopPoll = Callable[[], bool]


class RunCancelled(MagigError):
    """Raised from the engine's progress callback to stop a run that nobody wants any more."""


def never() -> bool:
    return False


def any_of(*polls: StopPoll) -> StopPoll:
    """One poll that is true as soon as any of ``polls`` is."""
    return lambda: any(poll() for poll in polls)


class CancelFlags:
    """One stop flag per session; a new run of the same session replaces the previous flag."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            flag = self._flags[session] = threading.Event()
            return flag

    def running(self, session: str) -> bool:
        """Whether the session has a run in progress."""
        with self._lock:
            return session in self._flags

    def cancel(self, session: str) -> bool:
        """Stop the session's run; False when it has none running."""
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]
