"""Talk mode through the app's public API (gradio_client): slides, share links and reports reopen a run.

"Same result" is checked on the served map PNGs: a run reopened from its link or its report must give
pixel-identical maps.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from magig_core.demo.example_scenes import load_examples
from magig_core.explorer.settings import RunSettings
from magig_core.explorer.share import from_query

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning")

RUN = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "methods": ["ma-gig", "gig", "gi"], "steps": 10,
       "fraction": 0.2, "interpolation": "slerp", "objective": "prob", "target": "2: triangle", "precision": "fp32",
       "size": "classifier's own", "average": 1, "stability": 0}
VIEW = {"style": "heatmap", "scale": "shared"}
RESTORED = ("classifier", "autoencoder", "methods", "steps", "fraction", "interpolation", "objective",
            "target", "precision", "size", "average", "stability")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    import app

    _, local_url, _ = app.launch(app.demo, prevent_thread_lock=True, server_port=free_port(), quiet=True)
    yield local_url
    app.demo.close()


@pytest.fixture
def client(url, tmp_path) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))


@pytest.fixture(scope="module")
def example() -> str:
    return next(e["path"] for e in load_examples() if e["class_name"] == "ring")


def explain(client: Client, image: str, settings: dict) -> dict:
    outputs = client.predict(image=handle_file(image), **settings, **VIEW, api_name="/explain")
    return dict(zip(("maps", "frames", "position", "confidence", "distance", "manifold", "accumulation", "table",
                     "downloads", "status", "predictions", "agreement", "live"), outputs, strict=True))


def pixels(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"])) for item in gallery]


def assert_same_maps(first: dict, second: dict) -> None:
    assert [m["caption"].split(" · ")[0] for m in first["maps"]] == [m["caption"].split(" · ")[0]
                                                                     for m in second["maps"]]
    for a, b in zip(pixels(first["maps"]), pixels(second["maps"]), strict=True):
        np.testing.assert_array_equal(a, b)


def widget_values(restored: tuple) -> dict:
    """The settings widgets' values as restored by the app (dropdown updates carry theirs in 'value')."""
    values = dict(zip(RESTORED, restored, strict=True))
    values = {k: v["value"] if isinstance(v, dict) and "__type__" in v else v for k, v in values.items()}
    return values


def test_slides_of_the_session_s_run(url, tmp_path, example):
    """Two visitors run different images and step counts; each one's slides show their own run.

    Catches slides made from the process's last run instead of the session's: the visitor who ran first would
    get the other's animation (6 frames, one method) and maps slide.
    """
    first, second = (Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / name))
                     for name in ("a", "b"))
    other = next(e["path"] for e in load_examples() if e["class_name"] != "ring")
    explain(first, example, RUN)
    explain(second, other, RUN | {"methods": ["ig"], "steps": 6, "target": "top-1 prediction"})
    slides = {}
    for name, client in (("a", first), ("b", second)):
        files = client.predict("1920×1080", "per method", api_name="/slides")
        slides[name] = {Path(f).name: f for f in files}
        assert set(slides[name]) == {"talk_path.gif", "talk_path.mp4", "talk_slide.png"}
    for name, frames in (("a", RUN["steps"]), ("b", 6)):  # one frame per path image
        with Image.open(slides[name]["talk_path.gif"]) as gif:
            assert gif.size == (1920, 1080) and gif.n_frames == frames
    with Image.open(slides["a"]["talk_slide.png"]) as a, Image.open(slides["b"]["talk_slide.png"]) as b:
        assert a.size == b.size == (1920, 1080)
        assert np.abs(np.asarray(a.convert("RGB"), dtype=int) - np.asarray(b.convert("RGB"), dtype=int)).mean() > 1


def test_a_share_link_reopens_the_same_run(client, url, tmp_path, example):
    first = explain(client, example, RUN)
    query = client.predict(image=handle_file(example), **RUN, api_name="/share_link")
    assert query.startswith("?") and "example=ring_0.png" in query and "methods=ma-gig,gig,gi" in query
    shared = from_query(dict(parse_qsl(urlsplit(query).query)), RunSettings("x", "y"))
    assert shared.example == "ring_0.png"
    assert (shared.settings.steps, shared.settings.target, shared.settings.interpolation) == (10, 2, "slerp")
    reopened = {**RUN, "methods": list(shared.settings.methods), "steps": shared.settings.steps,
                "fraction": shared.settings.fraction, "interpolation": shared.settings.interpolation,
                "target": str(shared.settings.target)}
    fresh = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "fresh"))
    assert_same_maps(first, explain(fresh, example, reopened))


def test_a_report_restores_settings_and_image_and_reproduces_the_maps(client, url, tmp_path, example):
    first = explain(client, example, RUN)
    report = next(p for p in first["downloads"] if p.endswith("report.json"))
    assert json.loads(Path(report).read_text())["input_sha256"]
    fresh = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "fresh"))
    values = widget_values(fresh.predict(handle_file(report), api_name="/open_report"))
    assert values == {**RUN, "target": "2: triangle"}
    import app  # the image travels through a session state (not part of the API) into the input

    restored = app.load_report(report, "demo-shapes")
    assert app.show_shared_image(restored[app.UI.shared_image]) == example
    assert_same_maps(first, explain(fresh, example, values))


def test_only_handlers_that_always_set_a_plain_value_output_to_the_image() -> None:
    """Any update of the image (even gr.skip()) rebuilds it without its raw-upload preprocessing, after which
    a corrupt upload gets Gradio's opaque decoding error instead of the app's message (the browser test)."""
    import app

    def writers(component) -> set[str]:
        return {block_fn.fn.__name__ for block_fn in app.demo.fns.values()
                if block_fn.fn is not None and any(out._id == component._id for out in block_fn.outputs)}

    assert writers(app.UI.image) == {"pick_example", "show_shared_image"}
    for control in (app.UI.methods, app.UI.steps, app.UI.fraction):  # their raw preprocessing gives clear messages
        quick = {"quick_look"} if control is app.UI.steps else set()  # the quick look's plain number of points
        assert writers(control) == {"load_report", "apply_link"} | quick, control.label
