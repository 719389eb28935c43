"""The GPU function under ZeroGPU's calling convention (``tests/zerogpu.py``): a forked worker, pickled
arguments and yields, a stop at the next yield after the server closes the generator, ZeroGPU's refusals."""

from __future__ import annotations

import dataclasses
import math
import pickle
import threading
import time
from collections.abc import Iterator

import gradio as gr
import numpy as np
import pytest
import torch

from magig_core.bundled import bundled_path
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.device_run import DeviceRunner, Tick, relay
from magig_core.explorer.messages import user_message
from magig_core.explorer.service import Explorer, RunState
from magig_core.explorer.settings import RunSettings
from tests.zerogpu import FAILURES, EmulatedZeroGPU

PHOTO = str(bundled_path("photos", "chelsea_cat.jpg"))
REAL = {"classifier": "cifar10-resnet56", "autoencoder": "taef2", "size": 32}
STOP_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(torch.device("cpu"))


def assert_same(copy: object, original: object, where: str = "item") -> None:
    """Field by field: dataclasses, containers, numpy arrays (dtype, shape, values with NaNs), plain values."""
    assert type(copy) is type(original), where
    if dataclasses.is_dataclass(original):
        for name in (f.name for f in dataclasses.fields(original)):
            assert_same(getattr(copy, name), getattr(original, name), f"{where}.{name}")
    elif isinstance(original, dict):
        assert copy.keys() == original.keys(), where
        for key in original:
            assert_same(copy[key], original[key], f"{where}[{key!r}]")
    elif isinstance(original, (list, tuple)):
        assert len(copy) == len(original), where
        for index, (a, b) in enumerate(zip(copy, original, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(original, np.ndarray):
        assert copy.dtype == original.dtype and np.array_equal(copy, original, equal_nan=original.dtype.kind == "f")
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(copy), where
    else:
        assert copy == original, where


def test_relay_stops_its_run_within_one_step_of_being_closed() -> None:
    """Catches a relay that lets the run compute on (or never joins it) after the consumer has gone."""
    steps: list[int] = []
    workers: list[threading.Thread] = []

    def run(should_stop, on_progress) -> Iterator[str]:
        workers.append(threading.current_thread())
        for step in range(10_000):
            if should_stop():
                raise RunCancelled("stopped")
            time.sleep(0.002)
            steps.append(step)
            on_progress(step / 10_000, f"step {step}")
        yield "never reached"

    stream = relay(run, every=0.02)
    first = next(stream)
    assert isinstance(first, Tick)
    at_close = len(steps)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    assert len(steps) - at_close <= 1
    assert workers and not workers[0].is_alive()  # this relay's own worker: other runs may be alive elsewhere


@pytest.mark.parametrize("after_close", ["progress", "items"])
def test_a_closed_relay_never_waits_for_a_run_that_hands_over_again_before_its_next_stop_check(after_close) -> None:
    """Catches a close that deadlocks: the run, woken once, reaches another hand-over (progress queued from
    steps walked before the stop, or the results that follow a walk) before it polls the stop, and waits
    there for a consumer that has gone, while the close waits for the run. A slow machine makes this likely."""
    closed = threading.Event()

    def run(should_stop, on_progress) -> Iterator[str]:
        yield "first"
        closed.wait(5)
        if after_close == "progress":
            time.sleep(0.03)  # past `every`: the next progress hands a Tick over
            on_progress(0.5, "step queued before the stop")
        else:
            yield "scored"
            yield "final"
        yield "after"

    stream = relay(run, every=0.02)
    assert next(stream) == "first"
    closer = threading.Thread(target=stream.close, daemon=True)
    started = time.monotonic()
    closer.start()
    time.sleep(0.05)
    closed.set()
    closer.join(5)
    assert not closer.is_alive(), "the close never returned: the run waits at a hand-over nobody will take"
    assert time.monotonic() - started < 2.0


def test_relay_yields_ticks_every_few_steps_and_passes_errors_on() -> None:
    """Catches a relay that yields once per method (a closed run would compute on for a whole method) or
    swallows the run's own error."""
    def run(should_stop, on_progress) -> Iterator[str]:
        for step in range(40):
            time.sleep(0.005)
            on_progress(step / 40, "walking")
        yield "result"
        raise ValueError("bad settings")

    stream = relay(run, every=0.02)
    seen = []
    with pytest.raises(ValueError, match="bad settings"):
        seen.extend(stream)
    ticks = [item for item in seen if isinstance(item, Tick)]
    assert seen[-1] == "result" and len(ticks) >= 4  # 0.2 s of steps, a tick at least every 0.02 s (loaded CPU)


def test_the_gpu_functions_arguments_and_every_yield_survive_a_pickle_round_trip(explorer: Explorer) -> None:
    """Catches a closure, a lock, a model or a CUDA tensor among what crosses into or out of the worker: ZeroGPU
    pickles all of it, and the run fails at the first put ("Can't pickle local object ...")."""
    runner = DeviceRunner(explorer)
    arguments = (PHOTO, RunSettings(**REAL, methods=("ma-gig", "gig"), steps=6), 30)
    assert pickle.loads(pickle.dumps(arguments)) == arguments
    items = list(runner.stream(*arguments))
    assert isinstance(items[-1], RunState) and items[-1].complete
    for item in items:
        assert_same(pickle.loads(pickle.dumps(item)), item)  # nothing lost or replaced on the way


def test_a_closed_400_step_run_stops_its_worker_within_5_s_and_the_next_run_starts(explorer: Explorer) -> None:
    """Catches a worker that computes on after its visitor cancelled (ZeroGPU only stops it at its next
    yield, so a run that yields once per method keeps the GPU for the whole method)."""
    emulation = EmulatedZeroGPU()
    runner = DeviceRunner(explorer, gpu=emulation.GPU)
    long_run = runner.stream(PHOTO, RunSettings(**REAL, methods=("ma-gig",), steps=400), 120)
    while not isinstance(next(long_run), Tick):  # the set-up state first, then the path's progress
        pass
    long_run.close()
    call = emulation.calls[0]
    while call.ended is None and time.monotonic() - call.closed < STOP_WITHIN_S:
        time.sleep(0.02)
    assert call.ended is not None and call.ended - call.closed < STOP_WITHIN_S
    final = list(runner.stream(PHOTO, RunSettings(**REAL, methods=("gig",), steps=4), 30))[-1]
    assert final.complete and final.results[0].method == "gig"


@pytest.mark.parametrize("failure", [*FAILURES, "abort"])
def test_zero_gpu_refusals_and_aborted_workers_become_messages_that_say_what_to_do(
    explorer: Explorer, failure: str
) -> None:
    """Catches ZeroGPU's own failures reaching the visitor as a bare "ZeroGPU worker error" or a generic server
    error instead of what happened and what to do."""
    runner = DeviceRunner(explorer, gpu=EmulatedZeroGPU(failure).GPU)
    with pytest.raises(gr.Error) as raised:
        list(runner.stream(PHOTO, RunSettings(**REAL, methods=("gig",), steps=4), 30))
    message = user_message(raised.value)
    expected = {"quota": "Log in to Hugging Face", "illegal-duration": "fewer steps", "no-gpu": "try again",
                "abort": "stopped before the run finished"}[failure]
    assert expected in message.text


def test_a_run_past_its_requested_duration_is_aborted_with_a_message(explorer: Explorer) -> None:
    """Catches a duration request that the run outgrows: ZeroGPU kills the worker, and the visitor must learn why."""
    emulation = EmulatedZeroGPU(duration_factor=0.01)  # 30 s requested, killed after 0.3 s
    runner = DeviceRunner(explorer, gpu=emulation.GPU)
    with pytest.raises(gr.Error) as raised:
        list(runner.stream(PHOTO, RunSettings(**REAL, methods=("ma-gig",), steps=400), 30))
    assert "GPU time it asked for" in user_message(raised.value).text


def test_a_closure_among_the_arguments_fails_as_on_zero_gpu() -> None:
    """Catches an emulation that does not pickle the arguments (it would pass what ZeroGPU rejects)."""
    emulation = EmulatedZeroGPU()

    @emulation.GPU(duration=10)
    def task(poll) -> Iterator[int]:
        yield 1

    flag = threading.Event()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError), match="pickle"):
        list(task(lambda: flag.is_set()))


def counting(log: str, steps: int, delay: float) -> Iterator[int]:
    """A GPU task that records each step it reaches in ``log`` (the worker is another process)."""
    for step in range(steps):
        time.sleep(delay)
        with open(log, "a") as file:
            file.write(f"{step}\n")
        yield step


def failing(message: str) -> Iterator[int]:
    yield 0
    raise ValueError(message)


@pytest.fixture
def real_zero_gpu(monkeypatch: pytest.MonkeyPatch):
    """The ``spaces`` package's own ZeroGPU wrapper, with its scheduler API answered here and no GPU to set up."""
    wrappers = pytest.importorskip("spaces.zero.wrappers")
    from spaces.zero import client
    from spaces.zero.api import ScheduleResponse

    granted = ScheduleResponse(idle=False, nvidiaIndex=0, nvidiaUUID="none", allowToken="token")
    monkeypatch.setattr(client, "schedule", lambda **_: granted)
    monkeypatch.setattr(client, "release", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(wrappers, "worker_init", lambda **_: None)

    def gpu(task=None, *, duration=None, size=None):
        if task is None:
            return lambda function: gpu(function, duration=duration, size=size)
        return wrappers.generator_function_wrapper(task, duration, size)
    return gpu


@pytest.mark.parametrize("implementation", ["emulation", "spaces"])
def test_the_emulation_behaves_as_the_spaces_package_does(implementation, real_zero_gpu, tmp_path) -> None:
    """Catches an emulation that drifts from ZeroGPU's real worker code: both must stop a closed generator at
    its next yield, refuse a closure argument with a pickling error and report a worker's exception as
    "ZeroGPU worker error"."""
    gpu = EmulatedZeroGPU().GPU if implementation == "emulation" else real_zero_gpu
    log = tmp_path / "steps.log"
    stream = gpu(counting, duration=30)(str(log), 1000, 0.05)
    assert next(stream) == 0
    stream.close()
    time.sleep(1.0)
    reached = log.read_text().split()
    time.sleep(0.5)
    assert log.read_text().split() == reached and len(reached) <= 20  # stopped for good, at most 1 s on
    flag = threading.Event()
    with pytest.raises(pickle.PicklingError):
        list(gpu(counting, duration=30)(lambda: flag.is_set(), 1, 0.0))
    with pytest.raises(gr.Error) as raised:
        list(gpu(failing, duration=30)("bad input"))
    assert raised.value.title == "ZeroGPU worker error" and "ValueError" in raised.value.message
