"""What Gradio's queue knows about events, read from inside a handler's worker thread.

Gradio stops a generator only between two of its yields when the client disconnects or cancels, and never
interrupts a plain function. An explanation yields once per method, so an abandoned run would keep the
model device busy until its method ends (minutes on a CPU), and ``/cancel`` itself waits for that. Yet
Gradio records both facts at once: a closed event stream marks the event dead (``Event.alive``), and every
cancellation route (``job.cancel()`` in gradio_client, a ``cancels=`` button, the ``/cancel`` route)
cancels the event's asyncio task, which then waits for the worker thread. ``watch_current_event`` turns
these into a poll cheap enough for every path step.

These are Gradio internals (checked against Gradio 6.31). Outside a Gradio event, or where they differ,
the poll always answers "still wanted" and runs stop only through explicit flags.
"""

from __future__ import annotations

import asyncio
from typing import Any

from magig_core.explorer.cancel import StopPoll, never

_TASK_SEPARATOR = "<gradio-sep>"  # Gradio names an event's task "<session>_<fn><gradio-sep><event id>"


def watch_current_event() -> StopPoll:
    """A poll that turns true once the client of the event being handled has gone away or cancelled it."""
    context = _context()
    if context is None:
        return never
    queue, event_id = context
    event = getattr(queue, "event_ids_to_events", {}).get(event_id)
    task = _event_task(queue, event_id)

    def gone() -> bool:
        if event is not None and not getattr(event, "alive", True):
            return True
        return task is not None and _cancel_requested(task)

    return gone


def waiting_sessions(concurrency_id: str) -> list[str]:
    """Sessions of the events waiting in one concurrency group of the running app, first in line first."""
    context = _context()
    if context is None:
        return []
    groups = getattr(context[0], "event_queue_per_concurrency_id", {})
    group = groups.get(concurrency_id)
    events = list(getattr(group, "queue", []))
    return [event.session_hash for event in events if getattr(event, "alive", True)]


def _context() -> tuple[Any, str] | None:
    """(Gradio's queue, the current event's id), or None outside a queued Gradio event."""
    try:
        from gradio.context import LocalContext
    except ImportError:
        return None
    blocks = LocalContext.blocks.get(None)
    event_id = LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is None or event_id is None:
        return None
    return queue, event_id


def _event_task(queue: Any, event_id: str) -> asyncio.Task | None:
    """The asyncio task Gradio runs the event in; the set may change under us, so copy it with retries."""
    for _ in range(10):
        try:
            tasks = list(getattr(queue, "_asyncio_tasks", ()))
        except RuntimeError:  # "Set changed size during iteration": the event loop added or removed a task
            continue
        return next((t for t in tasks if t.get_name().endswith(_TASK_SEPARATOR + event_id)), None)
    return None


def _cancel_requested(task: asyncio.Task) -> bool:
    cancelling = getattr(task, "cancelling", None)  # Python ≥ 3.11
    return bool(cancelling()) if cancelling is not None else task.cancelled()
