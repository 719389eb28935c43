"""A forked worker (ZeroGPU's) starts with the run slots and the long-held locks free, whoever held them in the
parent: its run would otherwise wait until it is killed for running past its GPU time."""

from __future__ import annotations

import multiprocessing
import queue
import threading

import pytest
from torch import nn

from magig_core.explorer.slots import RunSlots
from magig_core.forking import ChildSafeLock
from magig_core.models.model_cache import ModelCache


def _child_run(results, slots: RunSlots, cache: ModelCache, lock: ChildSafeLock) -> None:
    with slots.hold(1.0), lock:
        model = cache.get_or_create("other", lambda: nn.Linear(1, 1))
    results.put(type(model).__name__)


def test_a_forked_child_takes_a_slot_lock_and_model_load_that_its_parents_other_thread_held() -> None:
    """Catches a worker forked while another visitor's run held the device's slot, a pass-cost measurement held
    its lock, and a model load held the model cache: each stays taken in the child, by a thread it lacks."""
    slots, cache, lock = RunSlots(1), ModelCache(), ChildSafeLock()
    holding, release = threading.Event(), threading.Event()

    def other_visitor() -> None:
        with slots.hold(5.0), lock:
            cache.get_or_create("slow", lambda: (holding.set(), release.wait(30), nn.Linear(1, 1))[-1])

    thread = threading.Thread(target=other_visitor, daemon=True)
    thread.start()
    assert holding.wait(5)
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = fork.Process(target=_child_run, args=(results, slots, cache, lock), daemon=True)
    child.start()
    try:
        assert results.get(timeout=20) == "Linear"
    except queue.Empty:
        pytest.fail("the forked child waited for what its parent's other thread held")
    finally:
        child.kill()
        release.set()
        thread.join(5)
    assert slots.busy == 0 and "slow" in cache  # the parent's own run went on and finished as usual
