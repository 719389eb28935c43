"""MA-GIG Explorer: the Gradio web app (``python app.py``), also the Hugging Face Spaces entry point.

Widgets, layout and callbacks only: every computation lives in ``magig_core.explorer``. Importing this module
does no work: ``create_app()`` loads the default models and builds the UI, ``launch()`` starts the gallery
warm-up and serves it, and ``app.demo`` (what ``gradio app.py`` reads) is built on first access. The named
endpoints (``/explain``, ``/scrub``, ``/predict``, ``/estimate``, ``/cancel``) form a stable API for
``gradio_client``; a run's controls reach a handler as one ``Form`` and the API names them one by one.
Handlers return dicts keyed by component, so an output list can never drift out of order with what a
handler produces.
"""

from __future__ import annotations

import contextlib
import os

# Idle OpenMP threads must sleep, not spin, on a CPU shared with other work (magig_core.runtime explains);
# OpenMP reads this once, when torch loads, and `spaces` may import torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ZeroGPU needs `spaces` imported before anything touches CUDA (explorer.device_run uses spaces.GPU); it is
# optional elsewhere: without it the GPU function runs in this process as it is.
with contextlib.suppress(ImportError):
    import spaces  # noqa: F401


import functools
import inspect
import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from gradio.data_classes import FileData

from magig_core import runtime
from magig_core.attribution import all_methods
from magig_core.attribution.context import OBJECTIVES, PRECISIONS
from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.attribution.registry import option_defaults
from magig_core.explorer.cancel import CancelFlags, RunCancelled, any_of
from magig_core.explorer.device_run import DeviceRunner, Tick, host_device, zero_gpu
from magig_core.explorer.estimate import describe, gpu_seconds
from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER
from magig_core.explorer.form import AUTO_SIZE, FORM_FIELDS, TOP1, Form, parse_size, takes_form, target_choices
from magig_core.explorer.gradio_queue import waiting_sessions, watch_current_event
from magig_core.explorer.live import FORMING_CAPTION, LiveMap, forming_picture
from magig_core.explorer.messages import user_message, zero_gpu_message
from magig_core.explorer.render import (
    MAP_SCALES,
    MAP_STYLES,
    METRICS_CAPTION,
    accumulation_figure,
    agreement_maps,
    confidence_figure,
    distance_figure,
    frames_at,
    manifold_figure,
    method_maps,
    metrics_table,
    path_methods,
)
from magig_core.explorer.report import DownloadFolders, build_report, write_downloads
from magig_core.explorer.service import Explorer, RunState, working_size
from magig_core.explorer.settings import (
    MAX_RUNS,
    QUICK_LOOK,
    QUICK_STEPS,
    STEPS_RANGE,
    RunSettings,
    SettingsError,
    methods_reading,
)
from magig_core.explorer.share import (
    SharedRun,
    example_name,
    example_of_file,
    from_query,
    read_report,
    restore,
    share_address,
    to_query,
)
from magig_core.explorer.slides import write_slides
from magig_core.explorer.stage import stage_css, stage_head, stage_html
from magig_core.explorer.warmup import Warmer, warm_policy
from magig_core.memory import freeze_startup_objects, limit_heap_arenas, release_memory
from magig_core.talk import TalkOptions

TITLE = "MA-GIG Explorer"
SIZES = (AUTO_SIZE, "64", "128", "256")
DEFAULT_CLASSIFIER = os.environ.get("MAGIG_CLASSIFIER", REAL_CLASSIFIER)
DEFAULT_AUTOENCODER = os.environ.get("MAGIG_AUTOENCODER", REAL_AUTOENCODER)
RUN_CONCURRENCY = int(os.environ.get("MAGIG_CONCURRENCY", "1"))  # explanations sharing the model device at once
QUICK_CONCURRENCY = int(os.environ.get("MAGIG_QUICK_CONCURRENCY", "4"))  # predictions, estimates, redraws
QUEUE_SIZE = int(os.environ.get("MAGIG_QUEUE_SIZE", "32"))
RUN_GROUP = {"concurrency_id": "runs", "concurrency_limit": RUN_CONCURRENCY}
QUICK_GROUP = {"concurrency_id": "quick", "concurrency_limit": QUICK_CONCURRENCY}

CSS = """
.gradio-container { font-size: 17px; }
#title h1 { font-size: 2.1em; margin: 0; }
#title p { font-size: 1.05em; margin: 0.2em 0 0 0; }
#maps img, #frames img, #input-image img { image-rendering: pixelated; }
#input-image img { width: 100%; height: 100%; object-fit: contain; }
#examples .thumbnail-item { height: 120px; }
#examples .caption-label { font-size: 13px; }
#maps .thumbnail-item, #frames .thumbnail-item { aspect-ratio: auto; height: 262px; }
#maps .caption-label, #frames .caption-label {
  font-size: 17px; font-weight: 600; left: 6px; right: auto; bottom: 6px; max-width: 96%; opacity: 0.92;
}
#run-btn { font-size: 1.3em; min-height: 56px; }
#estimate { font-size: 0.95em; }
/* the forming maps while a run walks, the agreement view for runs with stability runs: hidden when empty */
#live-map:not(:has(img)), #agreement:not(:has(img)) { display: none !important; }
#live-map img { image-rendering: pixelated; }
"""

EXPLORER: Explorer  # models, examples and caches of this process: set by create_app()
RUNNER: DeviceRunner  # the GPU function that runs explanations (on ZeroGPU in a forked worker): create_app()
THREADS: runtime.ThreadPlan | None = None  # torch's threads for a run, fitted by create_app()
WARMER: Warmer | None = None  # the gallery warm-up, started by launch()
CANCELS = CancelFlags()
DOWNLOADS = DownloadFolders(Path(tempfile.gettempdir()) / "magig-explorer-downloads")
LIVE_SECONDS = 0.5  # the forming maps are redrawn at most this often (a numpy picture: about 3 ms each)
UI = SimpleNamespace()  # the components, filled in by create_app; handlers key their outputs by them
LOG = logging.getLogger("magig.app")
# A share link is the Space's page on a Space (share_address), else a query put behind this page's address.
SHARE_LINK_JS = "(link) => link && link.startsWith('?') ? location.origin + location.pathname + link : link"
SLIDE_SIZES = {"1280×720": (1280, 720), "1920×1080": (1920, 1080)}


def pick_example(evt: gr.SelectData) -> dict:
    """A click in the example gallery puts that file into the input and selects the models it is meant for.

    The image goes in as a plain value, never a component update (that would rebuild the image block).
    """
    example = EXPLORER.examples[evt.index]
    return {UI.image: example.path, UI.classifier: example.classifier, UI.autoencoder: example.autoencoder}


def raw_upload(payload: FileData | None) -> str | None:
    """Hand the uploaded file itself to the app instead of letting ``gr.Image`` decode it.

    Gradio's own decoding fails with an opaque message on corrupt files and skips conversion for some modes;
    ``magig_core.images`` reads every file and explains what is wrong. (Set on the instance: subclassing a
    Gradio component would make Gradio write a ``.pyi`` stub next to this file.)
    """
    return None if payload is None or payload.path is None else str(payload.path)


def raw_value(payload: Any) -> Any:
    """Pass an API value through untouched, so ``magig_core.explorer.form`` can say what is wrong with it.

    Gradio's own checks answer "nan" steps with a generic server error and a bare method name with
    "Value 'g' is not in the list of choices".
    """
    return payload


def friendly(handler: Callable) -> Callable:
    """Turn every failure of a handler (a generator too) into a ``gr.Error`` that says what to do next."""

    def translate(err: Exception) -> gr.Error:
        if isinstance(err, gr.Error) and zero_gpu_message(err) is None:  # ZeroGPU's own errors get advice
            return err
        if isinstance(err, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        message = user_message(err)
        if message.unexpected:
            LOG.exception("unexpected failure in %s", handler.__name__)
        duration = 6 if isinstance(err, RunCancelled) else 15
        return gr.Error(message.text, title=message.title, duration=duration, print_exception=False)

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as err:
                raise translate(err) from err
        return streaming

    @functools.wraps(handler)
    def plain(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as err:
            raise translate(err) from err
    return plain


# Handlers ----------------------------------------------------------------------------------------

def _runs_on_gpu() -> bool:
    """Whether explanations run on a GPU: this process's own, or ZeroGPU's for each run."""
    return EXPLORER.on_gpu or zero_gpu()


def _settings(form: Form) -> RunSettings:
    return form.settings(EXPLORER.class_names(form.classifier))


def _form_inputs(without: tuple[str, ...] = ()) -> list:
    """The run's controls in ``Form``'s order: the inputs of every handler that takes a form."""
    return [getattr(UI, name) for name in FORM_FIELDS if name not in without]


def _label(state: RunState) -> dict[str, float]:
    return {p.name: p.probability for p in state.context.predictions}


def _status(state: RunState) -> str:
    context = state.context
    done = ", ".join(f"{r.label} {r.seconds:.1f} s" for r in state.results) or "starting"
    head = (f"Explaining **{context.target_name}** (class {context.target}, p = {context.target_probability:.3g} "
            f"on the input) with {state.settings.classifier} / {state.settings.autoencoder}: {done}.")
    if state.from_cache:
        head += " Replayed from the cache."
    elif len(state.results) < len(state.settings.methods):
        head += f" Running {len(state.results) + 1} of {len(state.settings.methods)}…"
    notes = "".join(f"\n\n> {note}" for note in state.notes)
    return head + notes


def _slider(state: RunState, position: float) -> dict:
    return gr.Slider(value=position, interactive=bool(path_methods(state.results)))


def _cleared(state: RunState | None) -> dict:
    """Outputs of a run that has not produced results yet (or of no run at all)."""
    return {UI.maps: [], UI.agreement: [], UI.frames: [], UI.live: None,
            UI.position: gr.Slider(value=0.5, interactive=False),
            UI.confidence_plot: None, UI.distance_plot: None, UI.manifold_plot: None,
            UI.accumulation_plot: None, UI.table: None,
            UI.downloads: None,
            UI.status: _status(state) if state else "", UI.state: state,
            **({UI.predictions: _label(state)} if state else {})}


def _views(state: RunState, style: str, scale: str, position: float, *, downloads: bool) -> dict:
    """Every output for a state with results: maps, frames, slider, plots, table, and the files when done."""
    return {**_walked_views(state, style, scale, position), **_scored_views(state, position),
            UI.downloads: _downloads(state) if downloads else None, UI.live: None}


def _walked_views(state: RunState, style: str, scale: str, position: float) -> dict:
    """What a finished walk changes: the maps, path images, slider, confidence curve and status."""
    return {
        UI.maps: method_maps(state.context, state.results, style=style, scale=scale),
        UI.agreement: agreement_maps(state.results),
        UI.frames: frames_at(state.context, state.results, position),
        UI.position: _slider(state, position),
        UI.confidence_plot: _drawn(UI.confidence_plot, confidence_figure(state.context, state.results,
                                                                           marker=position)),
        UI.accumulation_plot: _drawn(UI.accumulation_plot, accumulation_figure(state.context, state.results,
                                                                                 marker=position)),
        UI.status: _status(state),
        UI.predictions: _label(state),
        UI.state: state,
    }


def _scored_views(state: RunState, position: float) -> dict:
    """What a finished scoring changes: the table, the distance curves and the map and agreement captions'
    numbers (the maps' pixels are those of the walk)."""
    headers, rows = metrics_table(state.context, state.results)
    return {
        UI.distance_plot: _drawn(UI.distance_plot, distance_figure(state.context, state.results, marker=position)),
        UI.manifold_plot: _drawn(UI.manifold_plot, manifold_figure(state.context, state.results, marker=position)),
        UI.table: pd.DataFrame(rows, columns=headers),
        UI.status: _status(state),
        UI.state: state,
    }


def _update(state: RunState, previous: RunState, style: str, scale: str) -> dict:
    """The outputs one streamed state changes: a new map redraws the walk's views, new scores the table and
    curves (and the captions of the maps)."""
    walked = [r.method for r in state.results] != [r.method for r in previous.results]
    views = _walked_views(state, style, scale, 0.5) if walked else {}
    if not walked:
        views.update(_scored_views(state, 0.5))
        views[UI.maps] = method_maps(state.context, state.results, style=style, scale=scale)
        views[UI.agreement] = agreement_maps(state.results)
    return views


def _drawn(plot: gr.Plot, figure: Any) -> Any:
    """The figure rendered for the page now, once: the run's last update re-sends every view (API clients
    read only the last one), and a rendered plot goes out again without being drawn again."""
    return plot.postprocess(figure)


def _forming(forming: dict[str, LiveMap]) -> np.ndarray | None:
    """The picture of the maps forming while some method walks its path (None, and so hidden, otherwise)."""
    return forming_picture(list(forming.values())) if forming else None


def _downloads(state: RunState) -> list[str]:
    """Written after the last scores are on screen: drawing maps.png while the last method is being scored
    would hold the interpreter and delay the scores themselves."""
    report = build_report(state.settings, state.context, state.results, device=str(EXPLORER.device),
                          image_notes=state.notes)
    return [str(p) for p in write_downloads(report, state.context, state.results, DOWNLOADS.new())]


@friendly
@takes_form()
def explain(image, form: Form, style, scale, request: gr.Request,
            progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through this default
    """Explain the image with every selected method; maps, frames, plots and metrics stream in.

    The run itself is ``RUNNER.stream``, the GPU function (on ZeroGPU a forked worker): only the image's path,
    the settings and the GPU seconds go in, only states and progress ticks come out. It yields a tick every
    few path steps; here, at each one, the run stops when the visitor pressed Cancel, cancelled through the
    API or went away (closed tab, killed script), by closing the stream, which ends the run at once (on
    ZeroGPU at the worker's next yield), so the next visitor starts.
    """
    if image is None:
        raise gr.Error("No image yet: upload, paste or capture one, or click an example below the input.")
    settings = _settings(form)
    hit = EXPLORER.cached(image, settings)
    expected = EXPLORER.estimate(settings)
    _, warning = describe(expected, settings, on_gpu=_runs_on_gpu())
    if warning and not hit:
        gr.Warning(warning, duration=15)
    flag = CANCELS.start(request.session_hash)
    should_stop = any_of(flag.is_set, watch_current_event())
    stream = iter([hit]) if hit else RUNNER.stream(image, settings, gpu_seconds(expected))
    doing = "the set-up"
    forming: dict[str, LiveMap] = {}  # the latest snapshot of each method still walking
    drawn = 0.0
    try:
        previous, shown = None, {}
        for state in stream:
            if should_stop():
                raise RunCancelled(f"Cancelled during {doing}.")
            if isinstance(state, Tick):
                doing = state.text.split(":")[0]
                progress(state.done, desc=state.text)
                continue
            if state.live is not None:  # a method's map forming while its path is walked
                forming[state.live.method] = state.live
                if time.monotonic() - drawn >= LIVE_SECONDS:
                    drawn = time.monotonic()
                    yield {UI.live: _forming(forming)}
                continue
            for result in state.results:
                forming.pop(result.method, None)
            if state.complete and not state.from_cache:
                EXPLORER.remember(image, state)
            if not state.results:  # set up: clear the previous run's outputs, show the predictions
                for note in state.notes:
                    gr.Warning(note, duration=12)
                shown = _cleared(state)
                yield shown
            elif state.from_cache or previous is None:
                yield _views(state, style, scale, 0.5, downloads=state.scored)
            elif not state.complete:  # the final state repeats the last method's
                update = {**_update(state, previous, style, scale), UI.live: _forming(forming)}
                shown.update(update)
                yield update
                if state.scored:  # everything is on screen; the files follow, with the whole view for API clients
                    yield {**shown, UI.downloads: _downloads(state)}
            previous = state
    finally:
        if hasattr(stream, "close"):
            stream.close()  # a run nobody reads any more stops here (on ZeroGPU: its worker, at its next yield)
        CANCELS.finish(request.session_hash, flag)
        release_memory()  # a run leaves figures and autograd graphs in cycles, and freed heap pages


@friendly
@takes_form(without=("target",))
def announce(form: Form, request: gr.Request):
    """On Run: if the device is busy, say at once how long this run will wait (the run itself queues)."""
    if CANCELS.running(request.session_hash):  # the run has started already: its own status says the rest
        return gr.skip()
    own = EXPLORER.estimate(_settings(form))
    line = EXPLORER.wait_line(request.session_hash, waiting_sessions(RUN_GROUP["concurrency_id"]), own)
    return gr.skip() if line is None else line


@friendly
def scrub(position: float, state: RunState | None):
    """Show every path method's image at path position t, and mark t on the four plots."""
    if state is None:
        return {}
    return {UI.frames: frames_at(state.context, state.results, position),
            UI.confidence_plot: confidence_figure(state.context, state.results, marker=position),
            UI.distance_plot: distance_figure(state.context, state.results, marker=position),
            UI.manifold_plot: manifold_figure(state.context, state.results, marker=position),
            UI.accumulation_plot: accumulation_figure(state.context, state.results, marker=position)}


@friendly
def restyle(style: str, scale: str, state: RunState | None):
    """Redraw the maps as heatmaps or overlays, on a shared or per-method scale (no recomputation)."""
    if state is None:
        return {}
    return {UI.maps: method_maps(state.context, state.results, style=style, scale=scale)}


@friendly
def predict(image, classifier, size):
    """Top-5 classes of the image; bad files are reported at once, before any run."""
    if image is None:
        return None
    predictions, notes = EXPLORER.predict(image, classifier, parse_size(size))
    for note in notes:
        gr.Info(note, duration=8)
    return {p.name: p.probability for p in predictions}


@friendly
@takes_form()
def show_cached(image, form: Form, style, scale):
    """When the image (e.g. an example) was already explained with these settings, show it at once."""
    if image is None:
        return _cleared(None)
    try:
        state = EXPLORER.cached(image, _settings(form))
    except ValueError:  # bad file or settings: `predict` and the Run button report them
        return _cleared(None)
    if state is None:
        return _cleared(None)
    return _views(state, style, scale, 0.5, downloads=True)


@friendly
@takes_form(without=("target",))
def estimate(form: Form):
    """Expected run time for the chosen settings, with advice when a CPU run would take minutes."""
    if not form.methods:
        return "Select at least one method."
    try:
        settings = _settings(form)
        line, warning = describe(EXPLORER.estimate(settings), settings, on_gpu=_runs_on_gpu())
    except ValueError as err:
        return f"⚠️ {user_message(err).text}"
    return line + (f"\n\n⚠️ **{warning}**" if warning else "")


def quick_look() -> int:
    """The quick look's path points, one click from the paper's default (a plain value for the slider)."""
    return QUICK_STEPS


@friendly
def on_classifier(classifier, pending: dict | None):
    """New classifier: its class list for the target chooser (top-1, or the target of a shared run or report
    that waited for this list), and what happened when loading it.

    Choosing the waiting target here, in the same update as the list, leaves no moment in which a later
    event could see top-1 and drop it.
    """
    _, used, notes = EXPLORER.classifier(classifier)
    names = EXPLORER.class_names(used)
    for note in notes:
        gr.Warning(note, duration=15)
    waiting = pending is not None and pending["classifier"] == used  # else it could not be loaded here
    return {UI.target: gr.Dropdown(choices=target_choices(names), value=pending["target"] if waiting else TOP1),
            UI.classifier: gr.Dropdown(value=used), UI.model_status: model_status(),
            UI.pending_target: None}


@friendly
def on_autoencoder(autoencoder):
    _, used, notes = EXPLORER.autoencoder(autoencoder)
    for note in notes:
        gr.Warning(note, duration=15)
    return {UI.autoencoder: gr.Dropdown(value=used), UI.model_status: model_status()}


def model_status() -> str:
    """Every model with what it is, its CPU cost and whether it could be loaded here."""
    lines = [f"Running on **{EXPLORER.device.type.upper()}**.", "", "| model | what | status |", "|---|---|---|"]
    for kind in ("classifier", "autoencoder"):
        for choice in EXPLORER.catalog.choices(kind):
            status = EXPLORER.catalog.status(kind, choice.name)
            lines.append(f"| {kind} **{choice.name}** | {choice.description}; {choice.cost_hint} | {status} |")
    return "\n".join(lines)


@friendly
def cancel(request: gr.Request) -> str:
    CANCELS.cancel(request.session_hash)
    return "Cancelling…"


# Talk mode: stage view, slides, shared links and reports -------------------------------------------

@friendly
def refresh_stage(state: RunState | None, style: str, scale: str) -> str:
    """The stage's HTML for the current results (every path image embedded; the browser steps through them)."""
    if state is None:
        return stage_html(None, None, [])
    return stage_html(state.settings, state.context, state.results, style=style, scale=scale)


@friendly
def make_slides(state: RunState | None, size: str, scale: str) -> list[str]:
    """Path animation (GIF, MP4) and 16:9 maps slide (on the colour scale chosen for the maps) of the results."""
    if state is None or not state.results:
        raise gr.Error("Nothing to put on slides yet: run an example first.", duration=8)
    options = TalkOptions(size=SLIDE_SIZES[size], scale=scale)
    paths, notes = write_slides(state.context, state.results, DOWNLOADS.new(), options)
    for note in notes:
        gr.Info(note, duration=8)
    return [str(p) for p in paths]


@friendly
@takes_form()
def share_link(image, form: Form) -> str:
    """The query string that reopens these settings (and the image, when it is a gallery example)."""
    try:
        settings = _settings(form)
    except SettingsError as err:
        raise gr.Error(str(err), duration=10) from err
    example = example_of_file(EXPLORER.examples, image)
    if image is not None and example is None:
        gr.Info("An uploaded image cannot travel in a link: the link carries the settings only.", duration=8)
    return share_address(to_query(settings, example_name(example) if example else None))


def _restore(shared: SharedRun, classifier_now: str, source: str) -> dict:
    """Widget values for a shared run; the target waits for the classifier's class list when that changes."""
    try:
        restored = restore(shared, EXPLORER, sizes=SIZES, offered_methods=[name for _, name in _method_choices()],
                           classifier_now=classifier_now, source=source)
    except SettingsError as err:
        raise gr.Error(str(err), duration=12) from err
    gr.Info(restored.message(source), duration=10)
    form, names = restored.form, EXPLORER.class_names(restored.form.classifier)
    return {
        **({UI.shared_image: (restored.example.path, time.time_ns())} if restored.example else {}),
        **{getattr(UI, name): getattr(form, name) for name in FORM_FIELDS if name != "target"},
        UI.target: gr.Dropdown(choices=target_choices(names), value=form.target),
        UI.pending_target: restored.pending_target,
    }


@friendly
def open_link(classifier_now: str, request: gr.Request):
    """Note the run a shared link describes (its query string); a plain visit changes nothing.

    The widgets are set by ``apply_link`` when this state changes: a page load that set them directly would
    have to send every visitor ``gr.skip()`` updates, and any update makes Gradio rebuild a component for
    the session without the raw preprocessing the app gives its inputs.
    """
    params = dict(request.query_params) if request is not None else {}
    try:
        shared = from_query(params, RunSettings(DEFAULT_CLASSIFIER, DEFAULT_AUTOENCODER))
    except SettingsError as err:
        raise gr.Error(str(err), duration=12) from err
    return gr.skip() if shared is None else (shared, classifier_now, time.time_ns())


@friendly
def apply_link(link: tuple[SharedRun, str, int]) -> dict:
    shared, classifier_now, _ = link
    return _restore(shared, classifier_now, "link")


@friendly
def load_report(path: str | None, classifier_now: str) -> dict:
    """Restore the settings (and the gallery image) of a report.json from the downloads."""
    if path is None:
        raise gr.Error("Choose a report.json from a run's downloads.", duration=8)
    try:
        shared = read_report(path, EXPLORER)
    except SettingsError as err:
        raise gr.Error(str(err), duration=12) from err
    return _restore(shared, classifier_now, "report")


@friendly
def show_shared_image(shared: tuple[str, int] | None) -> str | None:
    """Put a shared run's gallery image into the input as a plain value.

    Any update of the image component (even ``gr.skip()``) makes Gradio rebuild it for the session without
    its raw-upload preprocessing, so only handlers that always set a plain value may output to it.
    """
    return None if shared is None else shared[0]


def warm_status() -> str:
    return "" if WARMER is None else f"Examples: {WARMER.progress.line()}."


def _talk_mode(demo: gr.Blocks) -> None:
    """The stage overlay and the talk tools (slides, share link, report), with their events."""
    UI.stage = gr.HTML(stage_html(None, None, []), elem_id="stage", js_on_load=None, apply_default_css=False,
                       container=False, padding=False)
    UI.shared_image = gr.State(None)  # (path, stamp): the image goes in by its own event, as a plain value
    UI.link = gr.State(None)  # (shared run, classifier at load, stamp) from the page's query string
    with gr.Accordion("Talk mode: stage view, slides, sharing", open=False, elem_id="talk"):
        gr.Markdown("**Stage view** (button under Run, or open the page with `?view=stage`): maps and path "
                    "images only, full window; ← → step along the path, space plays, Esc leaves.")
        with gr.Row():
            slide_size = gr.Radio(list(SLIDE_SIZES), value="1280×720", label="Slide size", scale=1)
            slides = gr.Button("Make slides: path animation (GIF, MP4) and maps (PNG)", elem_id="slides-btn",
                               scale=2)
        slide_files = gr.File(label="Slides", file_count="multiple", interactive=False, elem_id="slide-files")
        with gr.Row():
            share = gr.Button("Share link for these settings", elem_id="share-btn", scale=1)
            link = gr.Textbox(label="Link (reopens the settings and the gallery image)", buttons=["copy"],
                              interactive=False, elem_id="share-link", scale=3)
        report = gr.File(label="Open a report.json from the downloads to restore its settings",
                         file_types=[".json"], type="filepath", elem_id="open-report")
        gr.Markdown(warm_status, elem_id="warm-status")
    settings = _form_inputs()
    restored = [UI.shared_image, *settings, UI.pending_target]
    gr.on([UI.maps.change], refresh_stage, [UI.state, UI.style, UI.scale], UI.stage, show_progress="hidden",
          api_visibility="undocumented")
    slides.click(make_slides, [UI.state, slide_size, UI.scale], slide_files, api_name="slides")
    share.click(share_link, [UI.image, *settings], link, api_name="share_link").then(
        None, link, link, js=SHARE_LINK_JS)
    report.upload(load_report, [report, UI.classifier], restored, api_name="open_report")
    demo.load(open_link, UI.classifier, UI.link, api_visibility="undocumented")
    UI.link.change(apply_link, UI.link, restored, api_visibility="undocumented", show_progress="hidden")
    UI.shared_image.change(show_shared_image, UI.shared_image, UI.image, api_visibility="undocumented",
                           show_progress="hidden")


# Layout ------------------------------------------------------------------------------------------

def _method_choices() -> list[tuple[str, str]]:
    return [(f"{spec.label}: {spec.hint}", spec.name) for spec in all_methods()]


def _steps_info() -> str:
    paper = "/".join(sorted({str(default) for _, default in option_defaults("steps")}))
    kept = "".join(f" {spec.label} keeps its {default}." for spec, default in option_defaults("steps", shared=False))
    return f"The paper uses {paper}; 16–32 give a quick look.{kept}"


def _fraction_info() -> str:
    paper = ", ".join(f"{spec.label} {default}" for spec, default in option_defaults("fraction"))
    return f"Share of coordinates moved per guided step; 0 keeps each method's paper value ({paper})."


def create_app() -> gr.Blocks:
    """Load the default models, check which others load here, and build the UI (``launch`` serves it).

    The handlers answer the components of the app built last: build one app per process.
    """
    _start_services()
    demo = _build_ui()
    freeze_startup_objects()  # after loading models and building the UI: see magig_core.memory
    return demo


def _start_services() -> None:
    """The process's explorer and thread plan, made once."""
    global EXPLORER, RUNNER, THREADS
    if "EXPLORER" in globals():
        return
    limit_heap_arenas(runtime.available_cores())  # before the server's threads: see magig_core.memory
    # Explanations share the cores this process may use (MAGIG_CONCURRENCY runs at once); MAGIG_CONCURRENT_RUNS
    # or MAGIG_THREADS override it, e.g. when several app processes share one machine (magig_core.runtime).
    runtime.configure_threads(concurrent_runs=None if runtime.RUNS_ENV in os.environ else RUN_CONCURRENCY)
    EXPLORER = Explorer(host_device(), run_slots=RUN_CONCURRENCY)
    RUNNER = DeviceRunner(EXPLORER)  # decorated here, before launch(), as ZeroGPU requires
    # Fitted once, to the default models' working size: a thread count that changed between runs would change
    # the guided paths' last bits, and a shared link must give the same maps.
    THREADS = runtime.threads_for_work(math.prod(working_size(EXPLORER.classifier(DEFAULT_CLASSIFIER)[0], None)))
    EXPLORER.catalog.check_all()  # say at start-up which models cannot be loaded here, and why


def _build_ui() -> gr.Blocks:
    """The whole UI; explanations queue for the model device, every other event runs beside them."""
    classifiers = EXPLORER.catalog.choices("classifier")
    autoencoders = EXPLORER.catalog.choices("autoencoder")
    _, first_classifier, _ = EXPLORER.classifier(DEFAULT_CLASSIFIER)
    first_autoencoder = EXPLORER.autoencoder(DEFAULT_AUTOENCODER)[1]
    class_names = EXPLORER.class_names(first_classifier)
    opening = Form.of(RunSettings(first_classifier, first_autoencoder), class_names)
    guided, partial = ", ".join(methods_reading("fraction")), ", ".join(methods_reading("interpolation"))

    with gr.Blocks(title=TITLE, fill_width=True, delete_cache=(3600, 3600)) as demo:
        with gr.Sidebar(label="Settings", open=True, width=360):
            UI.classifier = gr.Dropdown([c.name for c in classifiers], value=first_classifier, label="Classifier",
                                        elem_id="classifier",
                                        info="Weights load on first use; see 'Models' below.")
            UI.autoencoder = gr.Dropdown([c.name for c in autoencoders], value=first_autoencoder,
                                         label="Autoencoder (latent methods)", info="See 'Models' for CPU costs.",
                                         elem_id="autoencoder")
            UI.methods = gr.CheckboxGroup(_method_choices(), value=opening.methods, label="Methods to compare",
                                          elem_id="methods")
            UI.steps = gr.Slider(*STEPS_RANGE, value=opening.steps, step=1, label="Steps (path points)",
                                 info=_steps_info(), elem_id="steps")
            quick_look_button = gr.Button(f"Quick look: {QUICK_STEPS} points ({QUICK_LOOK})", size="sm",
                                          elem_id="quick-look")
            with gr.Accordion("How far can a map be trusted?", open=False):
                UI.stability = gr.Slider(0, MAX_RUNS, value=opening.stability, step=1, label="Stability runs",
                                         info="0: off. K ≥ 2 re-runs each method with N, N − 1, … points (K times "
                                              "the time) and shows the agreement of their top 10 % of pixels.",
                                         elem_id="stability")
                UI.average = gr.Slider(1, MAX_RUNS, value=opening.average, step=1, label="Average over runs",
                                       info="Each map is the mean of this many runs with N, N − 1, … points.",
                                       elem_id="average")
            UI.size = gr.Radio(list(SIZES), value=opening.size, label="Working resolution (pixels)",
                               info="The image is explained at this size; larger is sharper and slower.",
                               elem_id="size")
            UI.fraction = gr.Slider(0.0, 1.0, value=opening.fraction, step=0.01,
                                    label=f"Selection fraction ({guided})", info=_fraction_info(), elem_id="fraction")
            UI.interpolation = gr.Radio(list(INTERPOLATIONS), value=opening.interpolation,
                                        label=f"Partial move ({partial})", elem_id="interpolation")
            UI.objective = gr.Radio(list(OBJECTIVES), value=opening.objective, label="Objective",
                                    info="prob: softmax probability (paper); logit: raw logit.", elem_id="objective")
            UI.precision = gr.Radio(list(PRECISIONS), value=opening.precision, label="Precision (GPU only)",
                                    visible=_runs_on_gpu(), elem_id="precision")
            with gr.Accordion("Models", open=bool(EXPLORER.catalog.unavailable())):
                UI.model_status = gr.Markdown(model_status(), elem_id="model-status")

        gr.Markdown(f"# {TITLE}\nWhich pixels made the classifier decide? MA-GIG integrates along a path of "
                    "images decoded by an autoencoder, so its path shows the picture emerging from black; GIG's "
                    "path moves raw pixels and shows speckle. Real CIFAR-10 networks are bundled: pick an example, "
                    "press **Run**, then drag the path slider or open the stage view.", elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                UI.image = gr.Image(type="filepath", image_mode=None, label="Input image", height=280,
                                    sources=["upload", "clipboard", "webcam"], elem_id="input-image")
                UI.image.preprocess = raw_upload  # never return a gr.Image(...) update: it would rebuild the block
                UI.target = gr.Dropdown(target_choices(class_names), value=opening.target,
                                        allow_custom_value=True, label="Class to explain", elem_id="target")
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run-btn", scale=3)
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)
                gr.Button("Stage view: maps and path, full window (Esc leaves)", elem_id="stage-open", size="md")
                UI.estimate = gr.Markdown(elem_id="estimate")
                UI.predictions = gr.Label(num_top_classes=5, label="Top-5 predictions", elem_id="predictions")
            with gr.Column(scale=3):
                UI.maps = gr.Gallery(label="Attribution maps", columns=4, height=310,
                                     object_fit="contain", format="png", elem_id="maps", preview=False)
                UI.live = gr.Image(label=FORMING_CAPTION, type="numpy", format="png", interactive=False,
                                   height=320, buttons=[], elem_id="live-map")
                UI.agreement = gr.Gallery(label="Agreement of the perturbed runs (with stability runs ≥ 2): share "
                                          "with the pixel in their top 10 % (white: every run)", columns=4,
                                          height=250, object_fit="contain", format="png", elem_id="agreement",
                                          preview=False)
                with gr.Row():
                    UI.style = gr.Radio(list(MAP_STYLES), value="heatmap", label="Map style", show_label=False,
                                        container=False, elem_id="map-style")
                    UI.scale = gr.Radio(list(MAP_SCALES), value="per method", label="Colour scale",
                                        show_label=False, container=False, elem_id="map-scale")
                UI.frames = gr.Gallery(label="Path images at the slider's position", columns=4, height=310,
                                       object_fit="contain", format="png", elem_id="frames", preview=False)
                UI.position = gr.Slider(0, 1, value=0.5, step=0.01, interactive=False, elem_id="position",
                                        label="Path position t (0 = black baseline, 1 = input)")
                UI.status = gr.Markdown(elem_id="status")
        examples = gr.Gallery([(e.path, e.caption) for e in EXPLORER.examples],
                              label="Examples: click one (it selects the models it is meant for), then Run",
                              columns=min(len(EXPLORER.examples), 10), height=290,
                              allow_preview=False, format="png", interactive=False, elem_id="examples")
        with gr.Row():
            UI.confidence_plot = gr.Plot(label="Confidence along the path", show_label=False, format="png",
                                         elem_id="confidence-plot")
            UI.distance_plot = gr.Plot(label="Distance to the input along the path", show_label=False, format="png",
                                       elem_id="distance-plot")
            UI.manifold_plot = gr.Plot(label="Distance of each path image to its own reconstruction", format="png",
                                       show_label=False, elem_id="manifold-plot")
            UI.accumulation_plot = gr.Plot(label="Share of the map collected along the path", show_label=False,
                                           format="png", elem_id="accumulation-plot")
        UI.table = gr.Dataframe(label=METRICS_CAPTION, interactive=False, elem_id="metrics")
        UI.downloads = gr.File(label="Downloads: attributions (npz), maps (PNG), report (JSON)",
                               file_count="multiple", interactive=False, elem_id="downloads")
        UI.state = gr.State(None, time_to_live=3600)
        UI.pending_target = gr.State(None)  # a shared run's target, waiting for its classifier's class list

        run_inputs = [UI.image, *_form_inputs(), UI.style, UI.scale]
        plots = [UI.confidence_plot, UI.distance_plot, UI.manifold_plot, UI.accumulation_plot]
        run_outputs = [UI.maps, UI.frames, UI.position, *plots, UI.table, UI.downloads, UI.status, UI.predictions,
                       UI.state, UI.agreement, UI.live]
        for control in (UI.methods, UI.steps, UI.fraction):  # checked by the explorer, with clear messages
            control.preprocess = raw_value
        estimate_inputs = _form_inputs(without=("target",))

        # Explanations take turns on the model device (RUN_GROUP, shown their place in the queue); everything
        # else is quick and has its own pool (QUICK_GROUP), so it never waits behind an explanation.
        run.click(announce, estimate_inputs, UI.status, show_progress="hidden", api_visibility="undocumented",
                  **QUICK_GROUP)
        run_event = run.click(explain, run_inputs, run_outputs, api_name="explain", show_progress_on=[UI.status],
                              **RUN_GROUP)
        stop.click(cancel, None, UI.status, cancels=[run_event], queue=False, api_name="cancel")
        quick_look_button.click(quick_look, None, UI.steps, queue=False, api_visibility="undocumented")
        examples.select(pick_example, None, [UI.image, UI.classifier, UI.autoencoder], api_visibility="undocumented",
                        show_progress="hidden", **QUICK_GROUP)
        UI.position.input(scrub, [UI.position, UI.state], [UI.frames, *plots],
                          api_name="scrub", show_progress="hidden", trigger_mode="always_last", **QUICK_GROUP)
        gr.on([UI.style.change, UI.scale.change], restyle, [UI.style, UI.scale, UI.state], [UI.maps],
              show_progress="hidden", api_visibility="undocumented", **QUICK_GROUP)
        UI.image.change(predict, [UI.image, UI.classifier, UI.size], UI.predictions, api_name="predict",
                        **QUICK_GROUP).success(show_cached, run_inputs, run_outputs, api_visibility="undocumented",
                                               **QUICK_GROUP)
        UI.classifier.change(on_classifier, [UI.classifier, UI.pending_target],
                             [UI.target, UI.classifier, UI.model_status, UI.pending_target],
                             api_visibility="undocumented", **QUICK_GROUP)
        UI.autoencoder.change(on_autoencoder, UI.autoencoder, [UI.autoencoder, UI.model_status],
                              api_visibility="undocumented", **QUICK_GROUP)
        gr.on([demo.load, *(c.change for c in estimate_inputs)], estimate, estimate_inputs, UI.estimate,
              api_name="estimate", show_progress="hidden", **QUICK_GROUP)
        _talk_mode(demo)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=QUICK_CONCURRENCY)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Start the gallery warm-up and serve the app with its theme and styling (Gradio 6 takes them at launch).

    The warm-up computes the examples' results in the background, with each example's own models and the
    page's opening settings; on Spaces (or with MAGIG_WARM_EXAMPLES=off) the cache fills lazily instead: the
    first click computes, later ones replay.
    """
    global WARMER
    if WARMER is None and warm_policy() == "eager":
        WARMER = EXPLORER.warm_examples(lambda example: RunSettings(example.classifier, example.autoencoder))
    theme = gr.themes.Soft(primary_hue="red", secondary_hue="blue", text_size="lg")
    options = {"theme": theme, "css": CSS + stage_css(), "head": stage_head(), "max_file_size": "50mb",
               "footer_links": ["api"]}
    return demo.launch(**(options | kwargs))


def __getattr__(name: str) -> Any:
    """``app.demo``: the app, built on first access (``gradio app.py`` and Spaces' reloader read it)."""
    if name == "demo":
        global demo
        demo = create_app()
        return demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    demo = create_app()
    if THREADS is not None:
        print(f"MA-GIG Explorer: {THREADS.describe()}")
    launch(demo)
