"""Stop flags per visitor: a front end sets one, the engine's progress callback polls it every path step."""

from __future__ import annotations

import threading


class CancelFlags:
    """One stop flag per session; a new run of the same session replaces the previous flag."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            flag = self._flags[session] = threading.Event()
            return flag

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
