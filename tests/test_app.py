"""The web app through its public API (gradio_client), against a real server on a free local port.

One app is launched for the module; the demo models keep every run to a fraction of a second of compute.
Expected numbers come from ``explain()`` and the viz functions called directly, not from the app.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import Status
from PIL import Image

from magig_core.attribution.api import explain
from magig_core.demo.example_scenes import load_examples
from magig_core.explorer.settings import RunSettings
from magig_core.images import load_image, to_tensor
from magig_core.metrics.definitions import METRICS, metric
from magig_core.models.demo_shapes import load_demo_autoencoder, load_demo_classifier
from magig_core.viz import heatmap, robust_max, saliency

# Gradio's own queue code trips pandas 3 deprecation warnings; they are not this app's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning")

OUTPUTS = ("maps", "frames", "position", "confidence", "distance", "manifold", "accumulation", "table", "downloads",
           "status", "predictions", "agreement", "live")
VALID = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "fraction": 0.0, "interpolation": "lerp",
         "objective": "prob", "target": "top-1 prediction", "precision": "fp32", "style": "heatmap",
         "scale": "shared"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import app

    _, url, _ = app.launch(app.demo, prevent_thread_lock=True, server_port=free_port(), quiet=True)
    yield app, url
    app.demo.close()


@pytest.fixture(scope="module")
def models():
    return load_demo_classifier(), load_demo_autoencoder()


@pytest.fixture(scope="module")
def examples() -> list[str]:
    return [e["path"] for e in load_examples()]


def new_client(url: str, tmp_path) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


def run_explain(client: Client, image: str, methods: list[str], steps: int, **changes) -> dict:
    values = client.predict(image=handle_file(image), methods=methods, steps=steps, **(VALID | changes),
                            api_name="/explain")
    return dict(zip(OUTPUTS, values, strict=True))


def direct(models, image_path: str, method: str, steps: int, frames: int = 16):
    classifier, autoencoder = models
    image01 = to_tensor(load_image(image_path).image, classifier.input_size)
    with torch.no_grad():
        target = int(classifier(image01).argmax())
    # fraction 0 in the app keeps each guided method's paper value, as explain() does by default
    return explain(image01, classifier, method, autoencoder=autoencoder, targets=[target], steps=steps,
                   frames=min(frames, steps)), target


def attributions_from(result: dict) -> dict[str, np.ndarray]:
    npz = next(p for p in result["downloads"] if p.endswith(".npz"))
    with np.load(npz) as arrays:
        return {k: arrays[k] for k in arrays.files}


def test_named_endpoints_are_stable(server, tmp_path):
    _, url = server
    endpoints = new_client(url, tmp_path).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/explain", "/scrub", "/predict", "/estimate", "/cancel"} <= set(endpoints)
    names = [p["parameter_name"] for p in endpoints["/explain"]["parameters"]]
    assert names[:5] == ["image", "classifier", "autoencoder", "methods", "steps"]


def test_explain_streams_maps_plots_and_metrics_consistent_with_explain(server, models, examples, tmp_path):
    _, url = server
    client = new_client(url, tmp_path)
    result = run_explain(client, examples[0], ["ma-gig", "gig"], steps=8)

    references = {m: direct(models, examples[0], m, 8) for m in ("ma-gig", "gig")}
    saved = attributions_from(result)
    for method, (explanation, target) in references.items():
        np.testing.assert_allclose(saved[f"{method.replace('-', '_')}_attributions"],
                                   explanation.attributions[0].numpy(), rtol=1e-4, atol=1e-6)
        assert int(saved["target"]) == target

    captions = [item["caption"] for item in result["maps"]]
    assert [c.split(" ·")[0] for c in captions] == ["MA-GIG", "GIG"]
    maps = [saliency(saved[f"{m}_attributions"]) for m in ("ma_gig", "gig")]
    vmax = robust_max(maps)
    for item, saliency_map in zip(result["maps"], maps, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(item["image"]).convert("RGB")),
                                      heatmap(saliency_map, vmax))

    assert [f["caption"].split(" ·")[0] for f in result["frames"]] == ["MA-GIG", "GIG"]
    assert result["confidence"]["type"] == "matplotlib" and result["distance"]["type"] == "matplotlib"
    assert result["accumulation"]["type"] == "matplotlib"
    table = result["table"]
    assert table["headers"][:2] == ["Method", metric("diffid_top1").column()] and table["headers"][-1] == "Seconds"
    assert set(table["headers"][1:-1]) <= {m.column(distance) for m in METRICS for distance in ("LPIPS", "Pixel RMSE")}
    residual_column = table["headers"].index("Completeness residual ↓")
    for row, method in zip(table["data"], ("ma-gig", "gig"), strict=True):
        expected = float(references[method][0].completeness_residual[0])
        assert row[residual_column] == pytest.approx(round(expected, 4), abs=1.5e-4)
    assert "Explaining" in result["status"] and result["predictions"]["label"]


def test_scrub_shows_each_session_its_own_run(server, examples, tmp_path):
    """Two visitors explain different images; each one's slider shows the black baseline at t = 0 and its own
    image at t = 1.

    Catches a scrub that reads the last run of the process instead of the session's: visitor A, who ran
    first, would see B's image at t = 1.
    """
    _, url = server
    first, second = new_client(url, tmp_path / "a"), new_client(url, tmp_path / "b")
    run_explain(first, examples[1], ["ma-gig", "ig"], steps=8)
    run_explain(second, examples[4], ["ig"], steps=6)
    frames, *_ = first.predict(0.0, api_name="/scrub")
    assert [f["caption"].split(" ·")[1].strip() for f in frames] == ["t=0.00", "t=0.00"]
    for frame in frames:  # both paths start at the raw black baseline
        assert np.asarray(Image.open(frame["image"])).max() == 0
    for client, image, methods in ((first, examples[1], 2), (second, examples[4], 1)):
        last, *_ = client.predict(1.0, api_name="/scrub")
        assert len(last) == methods
        expected = np.asarray(load_image(image).image)
        np.testing.assert_array_equal(np.asarray(Image.open(last[0]["image"]).convert("RGB")), expected)


def test_a_repeated_request_replays_from_the_cache(server, examples, tmp_path):
    _, url = server
    first = run_explain(new_client(url, tmp_path / "a"), examples[2], ["ig", "gi"], steps=9)
    again = run_explain(new_client(url, tmp_path / "b"), examples[2], ["ig", "gi"], steps=9)
    assert "Replayed from the cache" not in first["status"] and "Replayed from the cache" in again["status"]
    np.testing.assert_array_equal(attributions_from(first)["ig_attributions"],
                                  attributions_from(again)["ig_attributions"])


def test_predict_and_estimate_endpoints(server, models, examples, tmp_path):
    _, url = server
    client = new_client(url, tmp_path)
    label = client.predict(handle_file(examples[2]), "demo-shapes", api_name="/predict")
    classifier, _ = models
    with torch.no_grad():
        probs = classifier(to_tensor(load_image(examples[2]).image, classifier.input_size)).softmax(-1)[0]
    assert label["label"] == classifier.class_names[int(probs.argmax())]
    assert label["confidences"][0]["confidence"] == pytest.approx(float(probs.max()), abs=1e-6)
    text = client.predict("demo-shapes", "demo-shapes", ["ma-gig", "gig"], 16, 0.05, "lerp", "prob", "fp32",
                          api_name="/estimate")
    assert text.startswith("Estimated run time") and "MA-GIG" in text


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


BAD_FILES = {
    "empty.png": (b"", "empty"),
    "notes.txt": (b"just some text", "not an image"),
    "corrupt.png": (png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))[:60], "not an image|damaged"),
    "dot.png": (png_bytes(Image.new("RGB", (1, 1))), "only 1×1 pixels"),
    "huge.png": (png_bytes(Image.new("L", (8000, 8000))), "too large"),
    "stripe.png": (png_bytes(Image.new("RGB", (400, 10))), "aspect ratio"),
}
CONVERTED_FILES = {
    "gray.png": (lambda: png_bytes(Image.new("L", (40, 40), 90)), "Grayscale"),
    "rgba.png": (lambda: png_bytes(Image.new("RGBA", (40, 40), (255, 0, 0, 0))), "Transparent"),
    "deep.png": (lambda: png_bytes(Image.fromarray(np.full((40, 40), 40000, np.uint16))), "8 bits"),
    "cmyk.jpg": (lambda: png_bytes(Image.new("CMYK", (40, 40), (0, 200, 200, 0)), "JPEG"), "CMYK"),
    "palette.gif": (lambda: png_bytes(Image.new("P", (40, 40), 3), "GIF"), None),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_give_a_clear_error_and_the_server_keeps_working(server, examples, tmp_path, name):
    _, url = server
    data, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    client = new_client(url, tmp_path)
    with pytest.raises(AppError, match=message):
        run_explain(client, str(path), ["ig"], steps=4)
    assert run_explain(client, examples[0], ["ig"], steps=5)["maps"]


@pytest.mark.parametrize("name", list(CONVERTED_FILES))
def test_unusual_image_modes_are_converted_and_explained(server, tmp_path, name):
    _, url = server
    make, note = CONVERTED_FILES[name]
    path = tmp_path / name
    path.write_bytes(make())
    result = run_explain(new_client(url, tmp_path), str(path), ["ig"], steps=4)
    assert len(result["maps"]) == 1
    if note:
        assert note in result["status"]


STEPS_MESSAGE = "^Steps must be a whole number between 4 and 400; got "


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": []}, "at least one method"),
        ({"methods": ["magic"]}, r"Unknown method\(s\) \['magic'\]: choose from gi, ig"),
        ({"methods": 5}, r'^methods must be a list of names, e\.g\. \["gig"\]; got 5\.$'),
        ({"steps": "nan"}, STEPS_MESSAGE + "'nan'"),  # was Gradio's generic "upstream app raised an exception"
        ({"steps": 7.5}, STEPS_MESSAGE + "7.5"),  # was silently run with 7 steps
        ({"steps": 1000}, STEPS_MESSAGE + "1000"),
        ({"fraction": -0.1}, r"selection fraction must be a number in \(0, 1\]"),
        ({"target": "hexagon"}, "Unknown target class"),
        ({"precision": "bf16"}, "needs a GPU"),
    ],
)
def test_invalid_parameters_give_a_clear_error(server, examples, tmp_path, changes, message):
    """Catches values that reach the handler unchecked (generic errors, silent truncation)."""
    _, url = server
    client = new_client(url, tmp_path)
    arguments = {"methods": ["ig"], "steps": 6} | changes
    with pytest.raises(AppError, match=message):
        run_explain(client, examples[0], **arguments)
    assert run_explain(client, examples[0], ["ig"], steps=6)["maps"]


def test_a_single_method_name_is_accepted_as_a_string(server, examples, tmp_path):
    """Catches "gig" being split into letters by the form ("Value 'g' is not in the list of choices")."""
    _, url = server
    result = run_explain(new_client(url, tmp_path), examples[1], "gig", steps=6)
    assert [item["caption"].split(" ·")[0] for item in result["maps"]] == ["GIG"]


def test_an_unexpected_failure_says_what_to_do_and_the_server_keeps_working(server, examples, tmp_path,
                                                                           monkeypatch):
    """Catches unexpected exceptions reaching visitors as Gradio's generic text, or taking the server down."""
    app, url = server
    client = new_client(url, tmp_path)

    def broken(settings):
        raise RuntimeError("estimator exploded")

    monkeypatch.setattr(app.EXPLORER, "estimate", broken)
    expected = (r"^Something went wrong on the server \(RuntimeError: estimator exploded\)\. Try again; "
                r"if it keeps happening, reload the page or choose other settings\.$")
    with pytest.raises(AppError, match=expected):
        run_explain(client, examples[0], ["ig"], steps=6)
    with pytest.raises(AppError, match=expected):
        client.predict("demo-shapes", "demo-shapes", ["ig"], 8, 0.0, "lerp", "prob", "fp32", api_name="/estimate")
    monkeypatch.undo()
    assert run_explain(client, examples[0], ["ig"], steps=6)["maps"]


def test_metrics_for_a_class_other_than_the_prediction_differ_across_methods(server, examples, tmp_path):
    """Catches the clamped soft scores: for a class the model does not predict every method got 0 / 1 / 1."""
    _, url = server
    result = run_explain(new_client(url, tmp_path), examples[0], ["gi", "ig", "gig", "ma-gig"], steps=10,
                         target="3")
    assert "class 3" in result["status"]
    titles = [metric(name).column() for name in ("diffid_prob", "insertion_prob", "deletion_prob")]
    columns = [result["table"]["headers"].index(title) for title in titles]
    triples = [tuple(row[c] for c in columns) for row in result["table"]["data"]]
    assert len(set(triples)) == len(triples)
    for diffid, insertion, deletion in triples:
        assert 0 < insertion < 1 and 0 < deletion < 1 and diffid == pytest.approx(insertion - deletion, abs=2e-4)


def test_unavailable_weights_fall_back_to_the_demo_models_and_say_why(server, examples, tmp_path, monkeypatch):
    app, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no cached torchvision weights
    result = run_explain(new_client(url, tmp_path), examples[0], ["ig"], steps=6, classifier="vgg16")
    assert "The classifier 'vgg16' is not available here" in result["status"]
    assert "with demo-shapes / demo-shapes" in result["status"] and result["maps"]
    assert app.EXPLORER.catalog.status("classifier", "vgg16").startswith("unavailable: Weights for 'vgg16'")
    assert "unavailable" in app.model_status()


RUNNING = {Status.PROCESSING, Status.ITERATING, Status.PROGRESS, Status.LOG}


def running(job) -> bool:
    return not job.done() and job.status().code in RUNNING


def serial_attributions(app, image: str, method: str, steps: int) -> np.ndarray:
    """What the method gives on its own: explain() with the options the app passes, no server involved."""
    classifier, autoencoder, _, _ = app.EXPLORER.models(RunSettings("demo-shapes", "demo-shapes", (method,)))
    image01, _ = app.EXPLORER.image_tensor(image, classifier)
    settings = RunSettings("demo-shapes", "demo-shapes", (method,), steps=steps)
    with torch.no_grad():
        target = int(classifier(image01).argmax())
    references = app.EXPLORER.references(tuple(image01.shape[-2:])) if method == "ig2" else None
    result = explain(image01, classifier, method, autoencoder=autoencoder, targets=[target], references=references,
                     frames=settings.num_frames, **settings.options_for(method))
    return result.attributions[0].numpy()


def test_runs_submitted_together_take_turns_while_quick_calls_pass_and_equal_serial_runs(server, examples,
                                                                                         tmp_path):
    """Two visitors press Run at the same moment while a third keeps asking for top-5 predictions.

    Catches, and only because the requests are really in flight together: runs sharing the device at once
    (one must be seen queued while the other computes), quick endpoints waiting behind explanations (a
    prediction must come back while the same run is still computing), and runs disturbing each other or
    being disturbed by those predictions (IG2's hook on the shared classifier): every map must equal its
    serial run.
    """
    app, url = server
    plans = {"a": (["ig2", "ma-gig"], 40, examples[3]), "b": (["gig"], 10, examples[4])}
    clients = {key: new_client(url, tmp_path / key) for key in plans}
    together = threading.Barrier(len(plans))
    jobs = {}

    def submit(key: str) -> None:
        methods, steps, image = plans[key]
        together.wait()
        jobs[key] = clients[key].submit(image=handle_file(image), methods=methods, steps=steps, **VALID,
                                        api_name="/explain")

    submitters = [threading.Thread(target=submit, args=(key,)) for key in plans]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    quick = new_client(url, tmp_path / "quick")
    one_queued_while_other_ran = False
    predictions_during_a_run = 0
    deadline = time.monotonic() + 300
    while not all(job.done() for job in jobs.values()):
        assert time.monotonic() < deadline, "the runs did not finish"
        codes = [job.status().code for job in jobs.values()]
        one_queued_while_other_ran |= Status.IN_QUEUE in codes and bool(RUNNING & set(codes))
        busy = [job for job in jobs.values() if running(job)]
        quick.predict(handle_file(examples[0]), "demo-shapes", "classifier's own", api_name="/predict")
        predictions_during_a_run += any(running(job) for job in busy)
    assert predictions_during_a_run >= 3, "predictions waited for the explanations to finish"
    assert one_queued_while_other_ran, "the two runs were never seen one computing, the other queued"

    for key, (methods, steps, image) in plans.items():
        saved = attributions_from(dict(zip(OUTPUTS, jobs[key].result(), strict=True)))
        for method in methods:
            np.testing.assert_allclose(saved[f"{method.replace('-', '_')}_attributions"],
                                       serial_attributions(app, image, method, steps), rtol=1e-4, atol=1e-6)


def seconds_per_step(table: dict, steps: int) -> float:
    return table["data"][0][table["headers"].index("Seconds")] / steps


def cancel_by_job(job, client) -> None:
    job.cancel()  # gradio_client's own cancel: Gradio cancels the event's task


def cancel_by_endpoint(job, client) -> None:
    assert client.predict(api_name="/cancel") == "Cancelling…"  # what the app's Cancel button calls


def assert_cancelled(job) -> None:
    """The job ended without a result: gradio_client marks its own cancel, the app says "Cancelled"."""
    try:
        job.result(timeout=30)
    except AppError as err:
        assert "Cancelled during" in str(err)
    except (CancelledError, KeyError):  # gradio_client's cancel ends the job with an empty message
        assert job.status().code == Status.CANCELLED
    except ValueError as err:  # gradio_client's cancel and its event stream ended in the same instant
        assert "Did not expect 2 tasks to be done" in str(err)
    else:
        pytest.fail("the cancelled run delivered a result")


@pytest.mark.parametrize("cancel", [cancel_by_job, cancel_by_endpoint], ids=["job.cancel", "cancel-endpoint"])
def test_a_cancelled_run_stops_within_a_few_path_steps_and_the_next_run_starts_at_once(server, examples, tmp_path,
                                                                                      cancel, monkeypatch):
    """Catches a cancel that only stops the display: the engine's step counter (its progress callback, read in
    the server's process) would go on through the ~1200 path steps left of the long run, and the next
    visitor's request would wait behind them. Both times are measured here, on this machine, so the test
    holds on a fast machine as on a slow one.
    """
    app, url = server
    ticks: list[float] = []  # when the long run's engine reported a path step
    real_run = app.EXPLORER.run

    def counted_run(image, settings, *, on_progress=None, **kwargs):
        def tick(done: float, text: str) -> None:
            if settings.steps == 400:
                ticks.append(time.monotonic())
            if on_progress is not None:
                on_progress(done, text)
        return real_run(image, settings, on_progress=tick, **kwargs)

    monkeypatch.setattr(app.EXPLORER, "run", counted_run)
    client, other = new_client(url, tmp_path / "a"), new_client(url, tmp_path / "b")
    step = seconds_per_step(run_explain(client, examples[5], ["ma-gig"], steps=60)["table"], 60)
    started = time.monotonic()
    quick_steps = 5 + [cancel_by_job, cancel_by_endpoint].index(cancel)  # never a replay from the cache
    assert run_explain(other, examples[3], ["ig"], steps=quick_steps)["maps"]
    quick = time.monotonic() - started

    job = client.submit(image=handle_file(examples[5]), methods=["ma-gig", "eig", "gig"], steps=400, **VALID,
                        api_name="/explain")
    deadline = time.monotonic() + 120
    while not any("step" in (unit.desc or "") for unit in job.status().progress_data or []):
        assert time.monotonic() < deadline and not job.done(), "the long run never reported a path step"
        time.sleep(0.01)
    bound = 2 * quick + 20 * step + 1.0
    assert 1150 * step > 4 * bound, "the long run is too short here to tell a stop from a finish; raise its steps"

    stopped = time.monotonic()
    cancel(job, client)
    assert run_explain(other, examples[2], ["ig"], steps=quick_steps)["maps"]
    assert time.monotonic() - stopped < bound
    assert_cancelled(job)
    counted = len(ticks)
    assert ticks and ticks[-1] < stopped + bound
    time.sleep(20 * step)
    assert len(ticks) == counted, "the engine went on stepping after the cancel"


def test_stability_runs_fill_the_stability_column_and_the_agreement_view(server, examples, tmp_path):
    """Two stability runs of GIG through the API: the agreement view shows one grey map (white where both
    runs put the pixel in their top 10 %, grey where one did) and the table's stability IoU is the overlap
    read back from that picture. Catches the control not reaching the engine, the column left empty, and an
    agreement view drawn from another method or run."""
    _, url = server
    result = run_explain(new_client(url, tmp_path), examples[0], ["gig"], steps=6, stability=2)
    [item] = result["agreement"]
    assert item["caption"].startswith("GIG · stability IoU")
    grey = np.asarray(Image.open(item["image"]).convert("L")).astype(int)
    assert set(np.unique(grey)) <= {0, 127, 128, 255}
    table = result["table"]
    iou = table["data"][0][table["headers"].index(metric("stability_iou").column())]
    assert iou == pytest.approx((grey == 255).sum() / (grey > 0).sum(), abs=1e-4)
