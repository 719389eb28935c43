"""MA-GIG Explorer: the Gradio web app (``python app.py``), also the Hugging Face Spaces entry point.

Widgets, layout and callbacks only: every computation lives in ``magig_core.explorer``. The named
endpoints (``/explain``, ``/scrub``, ``/predict``, ``/estimate``, ``/cancel``) form a stable API for
``gradio_client``.
"""

from __future__ import annotations

try:  # ZeroGPU needs `spaces` imported before anything touches CUDA; elsewhere it is optional
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn=None, **_kwargs):
        return fn if callable(fn) else (lambda f: f)


import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pandas as pd
import torch
from gradio.data_classes import FileData

from magig_core.explorer.catalog import DEMO
from magig_core.explorer.estimate import describe
from magig_core.explorer.render import (
    MAP_SCALES,
    MAP_STYLES,
    confidence_figure,
    distance_figure,
    frames_at,
    method_maps,
    metrics_table,
    path_methods,
)
from magig_core.explorer.report import build_report, write_downloads
from magig_core.explorer.runner import RunCancelled
from magig_core.explorer.service import Explorer, RunState, parse_target
from magig_core.explorer.settings import (
    DEFAULT_METHODS,
    INTERPOLATIONS,
    METHOD_HINTS,
    METHOD_LABELS,
    OBJECTIVES,
    PRECISIONS,
    STEPS_RANGE,
    RunSettings,
    SettingsError,
)
from magig_core.images import ImageInputError

TITLE = "MA-GIG Explorer"
TOP1 = "top-1 prediction"
DEFAULT_CLASSIFIER = os.environ.get("MAGIG_CLASSIFIER", DEMO)
DEFAULT_AUTOENCODER = os.environ.get("MAGIG_AUTOENCODER", DEMO)
CONCURRENCY = int(os.environ.get("MAGIG_CONCURRENCY", "1"))  # runs sharing the model device at once
QUEUE_SIZE = int(os.environ.get("MAGIG_QUEUE_SIZE", "32"))
DOWNLOADS_ROOT = Path(tempfile.gettempdir()) / "magig-explorer-downloads"
DOWNLOADS_MAX_AGE_S = 3600

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
"""

EXPLORER = Explorer()
EXPLORER.catalog.check_all()  # say at start-up which models cannot be loaded here, and why


class CancelFlags:
    """One stop flag per browser session: the Cancel button sets it, the engine's callback polls it."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        with self._lock:
            flag = self._flags[session] = threading.Event()
            return flag

    def cancel(self, session: str) -> None:
        with self._lock:
            if session in self._flags:
                self._flags[session].set()

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]


CANCELS = CancelFlags()


def pick_example(evt: gr.SelectData) -> str:
    """A click in the example gallery puts that file into the input (a plain value, not a component update)."""
    return EXPLORER.examples[evt.index].path


def raw_upload(payload: FileData | None) -> str | None:
    """Hand the uploaded file itself to the app instead of letting ``gr.Image`` decode it.

    Gradio's own decoding fails with an opaque message on corrupt files and skips conversion for some modes;
    ``magig_core.images`` reads every file and explains what is wrong. (Set on the instance: subclassing a
    Gradio component would make Gradio write a ``.pyi`` stub next to this file.)
    """
    return None if payload is None or payload.path is None else str(payload.path)


# Handlers ----------------------------------------------------------------------------------------

def _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
              precision) -> RunSettings:
    class_names = EXPLORER.class_names(classifier)
    return RunSettings(
        classifier=classifier,
        autoencoder=autoencoder,
        methods=tuple(methods or ()),
        steps=int(steps),
        fraction=float(fraction),
        interpolation=interpolation,
        objective=objective,
        target=parse_target(target, class_names),
        precision=precision or "fp32",
    )


def _gpu_seconds(image, settings: RunSettings, *_args) -> int:
    """ZeroGPU time to request: generous for the chosen steps and methods, capped at five minutes."""
    return int(min(300, 20 + 0.15 * settings.steps * len(settings.methods)))


@gpu(duration=_gpu_seconds)
def _compute(image: str, settings: RunSettings, session: str, progress: gr.Progress) -> Iterator[RunState]:
    flag = CANCELS.start(session)
    try:
        yield from EXPLORER.run(image, settings, should_stop=flag.is_set,
                                on_progress=lambda done, text: progress(done, desc=text))
    finally:
        CANCELS.finish(session, flag)


def _label(state: RunState) -> dict[str, float]:
    return {p.name: p.probability for p in state.context.predictions}


def _status(state: RunState) -> str:
    context = state.context
    done = ", ".join(f"{r.label} {r.seconds:.1f} s" for r in state.results) or "starting"
    head = (f"Explaining **{context.target_name}** (class {context.target}) with "
            f"{state.settings.classifier} / {state.settings.autoencoder}: {done}.")
    if state.from_cache:
        head += " Replayed from the cache."
    elif len(state.results) < len(state.settings.methods):
        head += f" Running {len(state.results) + 1} of {len(state.settings.methods)}…"
    notes = "".join(f"\n\n> {note}" for note in state.notes)
    return head + notes


def _slider(state: RunState, position: float) -> dict:
    return gr.Slider(value=position, interactive=bool(path_methods(state.results)))


def _views(state: RunState, style: str, scale: str, position: float) -> tuple:
    """Maps, frames, slider, both plots and the table for the current state."""
    headers, rows = metrics_table(state.context, state.results)
    return (
        method_maps(state.context, state.results, style=style, scale=scale),
        frames_at(state.context, state.results, position),
        _slider(state, position),
        confidence_figure(state.context, state.results, marker=position),
        distance_figure(state.context, state.results, marker=position),
        pd.DataFrame(rows, columns=headers),
    )


def _downloads(state: RunState) -> list[str]:
    _prune_downloads()
    folder = DOWNLOADS_ROOT / uuid.uuid4().hex
    report = build_report(state.settings, state.context, state.results, device=str(EXPLORER.device),
                          image_notes=state.notes)
    return [str(p) for p in write_downloads(report, state.context, state.results, folder)]


def _prune_downloads() -> None:
    if not DOWNLOADS_ROOT.is_dir():
        return
    for folder in DOWNLOADS_ROOT.iterdir():
        if time.time() - folder.stat().st_mtime > DOWNLOADS_MAX_AGE_S:
            shutil.rmtree(folder, ignore_errors=True)


def explain(image, classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
            precision, style, scale, request: gr.Request,
            progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through this default
    """Explain the image with every selected method; maps, frames, plots and metrics stream in."""
    if image is None:
        raise gr.Error("No image yet: upload, paste or capture one, or click an example below the input.")
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                             precision)
        hit = EXPLORER.cached(image, settings)
        _, warning = describe(EXPLORER.estimate(settings), settings, on_gpu=EXPLORER.on_gpu)
        if warning and not hit:
            gr.Warning(warning, duration=15)
        for state in [hit] if hit else _compute(image, settings, request.session_hash, progress):
            if state.complete and not state.from_cache:
                EXPLORER.remember(image, state)
            if not state.results:  # set up: clear the previous run's outputs, show the predictions
                for note in state.notes:
                    gr.Warning(note, duration=12)
                yield [], [], _slider(state, 0.5), None, None, None, None, _status(state), _label(state), state
            elif state.from_cache or not state.complete:  # the final state repeats the last method's
                finished = len(state.results) == len(state.settings.methods)
                yield (*_views(state, style, scale, 0.5), _downloads(state) if finished else None,
                       _status(state), _label(state), state)
    except (ImageInputError, SettingsError) as err:
        raise gr.Error(str(err), duration=15) from err
    except RunCancelled as err:
        raise gr.Error(f"{err} Press Run to start again.", title="Cancelled", duration=6) from err
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        raise gr.Error("Out of GPU memory: lower the steps, select fewer methods, or try again when the "
                       "server is less busy.", duration=15) from err
    except ValueError as err:  # the engine's own checks of a method/setting combination
        raise gr.Error(f"These settings cannot be run: {err}", duration=15) from err


def scrub(position: float, state: RunState | None):
    """Show every path method's image at path position t, and mark t on both plots."""
    if state is None:
        return gr.skip(), gr.skip(), gr.skip()
    return (frames_at(state.context, state.results, position),
            confidence_figure(state.context, state.results, marker=position),
            distance_figure(state.context, state.results, marker=position))


def restyle(style: str, scale: str, state: RunState | None):
    """Redraw the maps as heatmaps or overlays, on a shared or per-method scale (no recomputation)."""
    if state is None:
        return gr.skip()
    return method_maps(state.context, state.results, style=style, scale=scale)


def predict(image, classifier):
    """Top-5 classes of the image; bad files are reported at once, before any run."""
    if image is None:
        return None
    try:
        predictions, notes = EXPLORER.predict(image, classifier)
    except ImageInputError as err:
        raise gr.Error(str(err), duration=15) from err
    for note in notes:
        gr.Info(note, duration=8)
    return {p.name: p.probability for p in predictions}


def show_cached(image, classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                precision, style, scale):
    """When the image (e.g. an example) was already explained with these settings, show it at once."""
    blank = (None, None, gr.Slider(value=0.5, interactive=False), None, None, None, None, "", gr.skip(), None)
    if image is None:
        return blank
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                             precision)
        state = EXPLORER.cached(image, settings)
    except (ImageInputError, SettingsError):
        return blank  # `predict` reports the problem; here the old results are just cleared
    if state is None:
        return blank
    return (*_views(state, style, scale, 0.5), _downloads(state), _status(state), _label(state), state)


def estimate(classifier, autoencoder, methods, steps, fraction, interpolation, objective, precision):
    """Expected run time for the chosen settings, with advice when a CPU run would take minutes."""
    if not methods:
        return "Select at least one method."
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, None,
                             precision)
        line, warning = describe(EXPLORER.estimate(settings), settings, on_gpu=EXPLORER.on_gpu)
    except SettingsError as err:
        return f"⚠️ {err}"
    return line + (f"\n\n⚠️ **{warning}**" if warning else "")


def on_classifier(classifier):
    """New classifier: its class list for the target chooser, and what happened when loading it."""
    _, used, notes = EXPLORER.classifier(classifier)
    names = EXPLORER.class_names(used)
    for note in notes:
        gr.Warning(note, duration=15)
    return (gr.Dropdown(choices=[TOP1] + [f"{i}: {n}" for i, n in enumerate(names)], value=TOP1),
            gr.Dropdown(value=used), model_status())


def on_autoencoder(autoencoder):
    _, used, notes = EXPLORER.autoencoder(autoencoder)
    for note in notes:
        gr.Warning(note, duration=15)
    return gr.Dropdown(value=used), model_status()


def model_status() -> str:
    """Every model with what it is, its CPU cost and whether it could be loaded here."""
    lines = [f"Running on **{EXPLORER.device.type.upper()}**.", "", "| model | what | status |", "|---|---|---|"]
    for kind in ("classifier", "autoencoder"):
        for choice in EXPLORER.catalog.choices(kind):
            status = EXPLORER.catalog.status(kind, choice.name)
            lines.append(f"| {kind} **{choice.name}** | {choice.description}; {choice.cost_hint} | {status} |")
    return "\n".join(lines)


def cancel(request: gr.Request) -> str:
    CANCELS.cancel(request.session_hash)
    return "Cancelling…"


# Layout ------------------------------------------------------------------------------------------

def build_app() -> gr.Blocks:
    """The whole UI; the Run event and the model-touching events share one concurrency group."""
    classifiers = EXPLORER.catalog.choices("classifier")
    autoencoders = EXPLORER.catalog.choices("autoencoder")
    _, first_classifier, _ = EXPLORER.classifier(DEFAULT_CLASSIFIER)
    first_autoencoder = EXPLORER.autoencoder(DEFAULT_AUTOENCODER)[1]
    class_names = EXPLORER.class_names(first_classifier)

    with gr.Blocks(title=TITLE, fill_width=True, delete_cache=(3600, 3600)) as demo:
        with gr.Sidebar(label="Settings", open=True, width=360):
            classifier = gr.Dropdown([c.name for c in classifiers], value=first_classifier, label="Classifier",
                                     info="Weights load on first use; see 'Models' below.")
            autoencoder = gr.Dropdown([c.name for c in autoencoders], value=first_autoencoder,
                                      label="Autoencoder (MA-GIG, EIG, MIG)", info="TAESD is the fast one on CPU.")
            methods = gr.CheckboxGroup([(f"{METHOD_LABELS[m]}: {METHOD_HINTS[m]}", m) for m in METHOD_LABELS],
                                       value=list(DEFAULT_METHODS), label="Methods to compare")
            steps = gr.Slider(*STEPS_RANGE, value=32, step=1, label="Steps (path points)",
                              info="The paper uses 200; 16–32 give a quick look.")
            fraction = gr.Slider(0.01, 1.0, value=0.05, step=0.01, label="MA-GIG selection fraction",
                                 info="Share of latent coordinates moved per step (paper: 0.05); GIG keeps "
                                      "its paper setting, 0.1.")
            interpolation = gr.Radio(list(INTERPOLATIONS), value="lerp", label="MA-GIG partial move")
            objective = gr.Radio(list(OBJECTIVES), value="prob", label="Objective",
                                 info="prob: softmax probability (paper); logit: raw logit.")
            precision = gr.Radio(list(PRECISIONS), value="fp32", label="Precision (GPU only)",
                                 visible=EXPLORER.on_gpu)
            with gr.Accordion("Models", open=bool(EXPLORER.catalog.unavailable())):
                status_models = gr.Markdown(model_status(), elem_id="model-status")

        gr.Markdown(f"# {TITLE}\nWhich pixels made the classifier decide? Integrated-gradient paths through an "
                    "autoencoder's latent space (MA-GIG) stay on natural-looking images; pixel-space paths "
                    "(GIG, IG) do not. Pick an image, press **Run**, then drag the path slider.",
                    elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                image = gr.Image(type="filepath", image_mode=None, label="Input image", height=280,
                                 sources=["upload", "clipboard", "webcam"], elem_id="input-image")
                image.preprocess = raw_upload  # never return a gr.Image(...) update: it would rebuild the block
                target = gr.Dropdown([TOP1] + [f"{i}: {n}" for i, n in enumerate(class_names)], value=TOP1,
                                     allow_custom_value=True, label="Class to explain", elem_id="target")
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run-btn", scale=3)
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)
                estimate_md = gr.Markdown(elem_id="estimate")
                predictions = gr.Label(num_top_classes=5, label="Top-5 predictions", elem_id="predictions")
            with gr.Column(scale=3):
                maps = gr.Gallery(label="Attribution maps", columns=4, height=310,
                                  object_fit="contain", format="png", elem_id="maps", preview=False)
                with gr.Row():
                    style = gr.Radio(list(MAP_STYLES), value="heatmap", label="Map style", show_label=False, container=False,
                                     elem_id="map-style")
                    scale = gr.Radio(list(MAP_SCALES), value="per method", label="Colour scale", show_label=False,
                                     container=False,
                                     elem_id="map-scale")
                frames = gr.Gallery(label="Path images at the slider's position", columns=4, height=310,
                                    object_fit="contain", format="png", elem_id="frames", preview=False)
                position = gr.Slider(0, 1, value=0.5, step=0.01, interactive=False, elem_id="position",
                                     label="Path position t (0 = black baseline, 1 = input)")
                status = gr.Markdown(elem_id="status")
        examples = gr.Gallery([(e.path, e.caption) for e in EXPLORER.examples], label="Examples: click one, then Run",
                              columns=len(EXPLORER.examples), height=170, allow_preview=False, format="png",
                              interactive=False, elem_id="examples")
        with gr.Row():
            confidence_plot = gr.Plot(label="Confidence along the path", show_label=False,
                                      elem_id="confidence-plot")
            distance_plot = gr.Plot(label="Distance to the input along the path", show_label=False,
                                    elem_id="distance-plot")
        table = gr.Dataframe(label="Metrics per method (faithfulness: soft scores on this one image)",
                             interactive=False, elem_id="metrics")
        downloads = gr.File(label="Downloads: attributions (npz), maps (PNG), report (JSON)",
                            file_count="multiple", interactive=False, elem_id="downloads")
        state = gr.State(None, time_to_live=3600)

        settings_inputs = [classifier, autoencoder, methods, steps, fraction, interpolation, objective]
        run_inputs = [image, *settings_inputs, target, precision, style, scale]
        run_outputs = [maps, frames, position, confidence_plot, distance_plot, table, downloads, status,
                       predictions, state]
        model_group = {"concurrency_id": "models", "concurrency_limit": CONCURRENCY}

        run_event = run.click(explain, run_inputs, run_outputs, api_name="explain", show_progress_on=[status],
                              **model_group)
        examples.select(pick_example, None, image, api_visibility="undocumented", show_progress="hidden")
        stop.click(cancel, None, status, cancels=[run_event], queue=False, api_name="cancel")
        position.input(scrub, [position, state], [frames, confidence_plot, distance_plot], api_name="scrub",
                       show_progress="hidden", trigger_mode="always_last")
        gr.on([style.change, scale.change], restyle, [style, scale, state], maps, show_progress="hidden",
              api_visibility="undocumented")
        image.change(predict, [image, classifier], predictions, api_name="predict", **model_group).success(
            show_cached, run_inputs, run_outputs, api_visibility="undocumented", **model_group)
        classifier.change(on_classifier, classifier, [target, classifier, status_models],
                          api_visibility="undocumented", **model_group)
        autoencoder.change(on_autoencoder, autoencoder, [autoencoder, status_models],
                           api_visibility="undocumented", **model_group)
        estimate_inputs = [*settings_inputs, precision]
        gr.on([demo.load, *(c.change for c in estimate_inputs)], estimate, estimate_inputs, estimate_md,
              api_name="estimate", show_progress="hidden", **model_group)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and styling (Gradio 6 takes them at launch time)."""
    theme = gr.themes.Soft(primary_hue="red", secondary_hue="blue", text_size="lg")
    options = {"theme": theme, "css": CSS, "max_file_size": "50mb", "footer_links": ["api"]}
    return demo.launch(**(options | kwargs))


demo = build_app()

if __name__ == "__main__":
    launch(demo)
