"""What a forked child must not inherit: locks and run slots taken by its parent's other threads.

A ZeroGPU worker is a fork of the server. The child has only the thread that forked, so a lock that another
thread held at that moment (a model being loaded for a visitor's prediction, a pass cost being measured) or a
run slot it had taken (a run finishing) stays taken in the child for ever, and the child's run waits until it
is killed for running past its GPU time. Objects that hold such state for long register here and start afresh
in the child.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Protocol


class StartsAfresh(Protocol):
    def start_afresh_after_fork(self) -> None:
        """In a forked child: drop what the parent's other threads held."""


_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()


def start_afresh_in_forked_children(owner: StartsAfresh) -> None:
    _REGISTERED.add(owner)


class ChildSafeLock:
    """A lock (reentrant on request) that a forked child gets free, whoever held it in the parent.

    Only for locks the forking thread itself never holds while forking: the child's copy is replaced, not
    released.
    """

    def __init__(self, *, reentrant: bool = False) -> None:
        self._make = threading.RLock if reentrant else threading.Lock
        self._lock = self._make()
        start_afresh_in_forked_children(self)

    def start_afresh_after_fork(self) -> None:
        self._lock = self._make()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def _start_afresh() -> None:
    for owner in list(_REGISTERED):
        owner.start_afresh_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_start_afresh)
