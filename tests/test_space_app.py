"""The app as a ZeroGPU Space runs it: every explanation through the emulated ``@spaces.GPU`` worker
(``tests/zerogpu.py``: forked, pickled arguments and yields, stopped at its next yield), driven through
gradio_client; quick calls never use the GPU function; share links name the Space's page."""

from __future__ import annotations

import socket
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from magig_core.bundled import bundled_path
from magig_core.demo.example_scenes import load_examples
from magig_core.explorer.device_run import DeviceRunner
from magig_core.explorer.share import share_address
from tests.zerogpu import EmulatedZeroGPU

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning"),
]

PHOTO = str(bundled_path("photos", "chelsea_cat.jpg"))
REAL = {"classifier": "cifar10-resnet56", "autoencoder": "taef2", "size": "64"}
DEMO = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "size": "64"}  # runs of a fraction of a second
STOP_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def space():
    """The process's app with its GPU function under the emulated ZeroGPU worker."""
    import app

    demo = app.demo
    emulation = EmulatedZeroGPU()
    plain = app.RUNNER
    app.RUNNER = DeviceRunner(app.EXPLORER, gpu=emulation.GPU)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, url, _ = app.launch(demo, prevent_thread_lock=True, server_port=port, quiet=True)
    yield url, emulation
    demo.close()
    app.RUNNER = plain


def client_of(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def explain_photo(client: Client, methods: list[str], steps: int):
    return client.submit(image=handle_file(PHOTO), methods=methods, steps=steps, **REAL, api_name="/explain")


def explain_scene(client: Client, methods: list[str], steps: int):
    scene = load_examples()[0]["path"]
    return client.submit(image=handle_file(scene), methods=methods, steps=steps, **DEMO, api_name="/explain")


def test_a_gallery_photo_run_returns_maps_for_ma_gig_and_gig_from_the_gpu_worker(space) -> None:
    """Catches a GPU function whose arguments or yields cannot cross ZeroGPU's process boundary (the visitor
    saw "Something went wrong" at the first pickle) and a duration request other than the run's estimate."""
    url, emulation = space
    before = len(emulation.calls)
    maps = explain_photo(client_of(url), ["ma-gig", "gig"], 8).result(timeout=300)[0]
    assert [item["caption"].split(" ·")[0] for item in maps] == ["MA-GIG", "GIG"]
    (call,) = emulation.calls[before:]
    assert 20 <= call.duration <= 120 and call.pid is not None  # estimate with headroom, within ZeroGPU's cap


def test_a_cancelled_400_step_run_stops_its_worker_within_5_s_and_the_next_visitor_runs(space) -> None:
    """Catches a worker that keeps computing after its visitor cancelled: ZeroGPU stops it only at its next
    yield, so the run must yield every few steps; and the next visitor's run must then start."""
    url, emulation = space
    visitor = client_of(url)
    job = explain_scene(visitor, ["ma-gig"], 400)
    deadline = time.monotonic() + 120
    while not any("step" in (unit.desc or "") for unit in job.status().progress_data or []):
        assert time.monotonic() < deadline, "the run never reported a path step"
        time.sleep(0.05)
    call = emulation.calls[-1]
    assert visitor.predict(api_name="/cancel") == "Cancelling…"  # what the Cancel button calls
    cancelled = time.monotonic()
    while call.ended is None and time.monotonic() - cancelled < STOP_WITHIN_S:
        time.sleep(0.05)
    assert call.ended is not None, f"the worker still ran {STOP_WITHIN_S} s after Cancel"
    with pytest.raises(AppError, match="Cancelled"):
        job.result(timeout=30)
    maps = explain_scene(client_of(url), ["gig"], 4).result(timeout=300)[0]
    assert [item["caption"].split(" ·")[0] for item in maps] == ["GIG"]


def test_predictions_estimates_and_scrubbing_never_use_the_gpu_function(space) -> None:
    """Catches a quick call routed through ``@spaces.GPU``: on ZeroGPU it would spend the visitor's GPU quota
    and wait for a GPU, instead of answering at once on the CPU."""
    url, emulation = space
    client = client_of(url)
    before = len(emulation.calls)
    top5 = client.predict(image=handle_file(PHOTO), classifier=REAL["classifier"], size=REAL["size"],
                          api_name="/predict")
    assert top5["label"] == "cat"
    assert "Estimated run time" in client.predict(methods=["ma-gig", "gig"], steps=8, **REAL,
                                                  api_name="/estimate")
    assert len(emulation.calls) == before
    explain_scene(client, ["gig"], 5).result(timeout=300)  # steps no other test runs: not a cached result
    assert len(emulation.calls) == before + 1
    frames = client.predict(0.25, api_name="/scrub")[0]
    assert len(frames) == 1 and len(emulation.calls) == before + 1


def test_zero_gpu_failures_reach_the_visitor_as_advice_and_the_server_stays_up(space) -> None:
    """Catches ZeroGPU's refusals and aborted workers surfacing as a bare "ZeroGPU worker error" (or taking the
    server down): the visitor must learn what happened and what to do, and the next run must work."""
    url, emulation = space
    client = client_of(url)
    try:
        for failure, advice in (("quota", "Log in to Hugging Face"), ("abort", "stopped before the run finished")):
            emulation.failure = failure
            with pytest.raises(AppError, match=advice):
                explain_scene(client, ["gig"], 6).result(timeout=300)
    finally:
        emulation.failure = None
    assert explain_scene(client, ["gig"], 6).result(timeout=300)[0]


def test_share_links_name_the_spaces_page_on_a_space_and_stay_relative_elsewhere(space, monkeypatch) -> None:
    """Catches share links built from the app's ``*.hf.space`` frame (not the Space's page) on a Space, or a
    Space address leaking into local links."""
    url, _ = space
    client = client_of(url)
    local = client.predict(image=handle_file(PHOTO), methods=["ma-gig", "gig"], steps=8, **REAL,
                           api_name="/share_link")
    assert local.startswith("?") and "example=chelsea_cat.jpg" in local
    monkeypatch.setenv("SPACE_ID", "someone/ma-gig")
    hosted = client.predict(image=handle_file(PHOTO), methods=["ma-gig", "gig"], steps=8, **REAL,
                            api_name="/share_link")
    assert hosted == "https://huggingface.co/spaces/someone/ma-gig" + local
    assert share_address("?a=1", {}) == "?a=1"
