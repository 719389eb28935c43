"""The web app through its public API (gradio_client), against a real server on a free local port.

One app is launched for the module; the demo models keep every run to a fraction of a second of compute.
Expected numbers come from ``explain()`` and the viz functions called directly, not from the app.
"""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from magig_core.attribution.api import explain
from magig_core.demo.examples import load_examples
from magig_core.demo.models import load_demo_autoencoder, load_demo_classifier
from magig_core.images import load_image, to_tensor
from magig_core.viz import heatmap, robust_max, saliency

# Gradio's own queue code trips pandas 3 deprecation warnings; they are not this app's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning")

OUTPUTS = ("maps", "frames", "position", "confidence", "distance", "table", "downloads", "status", "predictions")
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
    table = result["table"]
    assert table["headers"][:4] == ["Method", "DiffID (soft)", "Insertion (soft)", "Deletion (soft)"]
    residual_column = table["headers"].index("Completeness residual")
    for row, method in zip(table["data"], ("ma-gig", "gig"), strict=True):
        expected = float(references[method][0].completeness_residual[0])
        assert row[residual_column] == pytest.approx(round(expected, 4), abs=1.5e-4)
    assert "Explaining" in result["status"] and result["predictions"]["label"]


def test_scrub_shows_the_baseline_at_t0_in_the_same_session(server, examples, tmp_path):
    _, url = server
    client = new_client(url, tmp_path)
    run_explain(client, examples[1], ["ma-gig", "ig"], steps=8)
    frames, _, _ = client.predict(0.0, api_name="/scrub")
    assert [f["caption"].split(" ·")[1].strip() for f in frames] == ["t=0.00", "t=0.00"]
    for frame in frames:  # both paths start at the raw black baseline
        assert np.asarray(Image.open(frame["image"])).max() == 0
    last, _, _ = client.predict(1.0, api_name="/scrub")
    expected = np.asarray(load_image(examples[1]).image)
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


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": []}, "at least one method"),
        ({"methods": ["magic"]}, "not in the list of choices"),
        ({"steps": 1000}, "greater than maximum"),
        ({"fraction": -0.1}, "less than minimum"),
        ({"target": "hexagon"}, "Unknown target class"),
        ({"precision": "bf16"}, "needs a GPU"),
    ],
)
def test_invalid_parameters_give_a_clear_error(server, examples, tmp_path, changes, message):
    _, url = server
    client = new_client(url, tmp_path)
    arguments = {"methods": ["ig"], "steps": 6} | changes
    with pytest.raises(AppError, match=message):
        run_explain(client, examples[0], **arguments)
    assert run_explain(client, examples[0], ["ig"], steps=6)["maps"]


def test_unavailable_weights_fall_back_to_the_demo_models_and_say_why(server, examples, tmp_path, monkeypatch):
    app, url = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no cached torchvision weights
    result = run_explain(new_client(url, tmp_path), examples[0], ["ig"], steps=6, classifier="vgg16")
    assert "The classifier 'vgg16' is not available here" in result["status"]
    assert "with demo-shapes / demo-shapes" in result["status"] and result["maps"]
    assert app.EXPLORER.catalog.status("classifier", "vgg16").startswith("unavailable: Weights for 'vgg16'")
    assert "unavailable" in app.model_status()


def test_concurrent_requests_with_different_settings_equal_serial_runs(server, models, examples, tmp_path):
    _, url = server
    jobs = {
        ("ig", 12, examples[3]): None,
        ("gig", 10, examples[4]): None,
    }
    clients = {key: new_client(url, tmp_path / str(i)) for i, key in enumerate(jobs)}
    submitted = {key: clients[key].submit(image=handle_file(key[2]), methods=[key[0]], steps=key[1],
                                          **VALID, api_name="/explain") for key in jobs}
    for key, job in submitted.items():
        jobs[key] = dict(zip(OUTPUTS, job.result(timeout=300), strict=True))
    for (method, steps, image), result in jobs.items():
        expected, _ = direct(models, image, method, steps)
        np.testing.assert_allclose(attributions_from(result)[f"{method}_attributions"],
                                   expected.attributions[0].numpy(), rtol=1e-4, atol=1e-6)


def test_cancel_stops_the_engine_and_frees_the_models(server, examples, tmp_path):
    _, url = server
    from magig_core.explorer.compute import MODEL_LOCK

    client = new_client(url, tmp_path)
    job = client.submit(image=handle_file(examples[5]), methods=["ma-gig"], steps=400, **VALID,
                        api_name="/explain")
    deadline = time.monotonic() + 120
    while not MODEL_LOCK.locked():  # wait until the engine is inside the long run
        assert time.monotonic() < deadline and not job.done(), "the run never started"
        time.sleep(0.05)
    time.sleep(0.5)
    assert client.predict(api_name="/cancel") == "Cancelling…"
    released = threading.Event()

    def wait_for_lock() -> None:
        with MODEL_LOCK:
            released.set()

    threading.Thread(target=wait_for_lock, daemon=True).start()
    assert released.wait(timeout=15), "the engine kept running after Cancel"
    with pytest.raises(Exception):  # noqa: B017 - cancelled jobs raise CancelledError or AppError by version
        job.result(timeout=30)
    assert run_explain(client, examples[5], ["ig"], steps=7)["maps"]
