"""MA-GIG Explorer: the Gradio web app (``python app.py``), also the Hugging Face Spaces entry point.

Widgets, layout and callbacks only: every computation lives in ``magig_core.explorer``. The named
endpoints (``/explain``, ``/scrub``, ``/predict``, ``/estimate``, ``/cancel``) form a stable API for
``gradio_client``. Handlers return dicts keyed by component, so an output list can never drift out of
order with what a handler produces.
"""

from __future__ import annotations

import os

# Idle OpenMP threads must sleep, not spin, on a CPU shared with other work (magig_core.runtime explains);
# OpenMP reads this once, when torch loads, and `spaces` may import torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # ZeroGPU needs `spaces` imported before anything touches CUDA; elsewhere it is optional
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn=None, **_kwargs):
        return fn if callable(fn) else (lambda f: f)


import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd
import torch
from gradio.data_classes import FileData

from magig_core import runtime
from magig_core.attribution import all_methods
from magig_core.attribution.context import OBJECTIVES, PRECISIONS
from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.explorer.cancel import CancelFlags
from magig_core.explorer.catalog import DEMO
from magig_core.explorer.compute import RunCancelled
from magig_core.explorer.estimate import describe, gpu_seconds
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
from magig_core.explorer.report import DownloadFolders, build_report, write_downloads
from magig_core.explorer.service import Explorer, RunState, parse_target
from magig_core.explorer.settings import (
    DEFAULT_METHODS,
    STEPS_RANGE,
    RunSettings,
    SettingsError,
    methods_reading,
)
from magig_core.images import ImageInputError

TITLE = "MA-GIG Explorer"
TOP1 = "top-1 prediction"
AUTO_SIZE = "classifier's own"
SIZES = (AUTO_SIZE, "64", "128", "256")
DEFAULT_CLASSIFIER = os.environ.get("MAGIG_CLASSIFIER", DEMO)
DEFAULT_AUTOENCODER = os.environ.get("MAGIG_AUTOENCODER", DEMO)
CONCURRENCY = int(os.environ.get("MAGIG_CONCURRENCY", "1"))  # runs sharing the model device at once
QUEUE_SIZE = int(os.environ.get("MAGIG_QUEUE_SIZE", "32"))

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

# The model lock runs one computation at a time per process, so a run gets all cores this process may use;
# MAGIG_CONCURRENT_RUNS=2 shares them when two app processes run on one machine.
THREADS = runtime.configure_threads()
EXPLORER = Explorer()
EXPLORER.catalog.check_all()  # say at start-up which models cannot be loaded here, and why
CANCELS = CancelFlags()
DOWNLOADS = DownloadFolders(Path(tempfile.gettempdir()) / "magig-explorer-downloads")
UI = SimpleNamespace()  # the components, filled in by build_app; handlers key their outputs by them


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

def _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target, precision,
              size=AUTO_SIZE) -> RunSettings:
    class_names = EXPLORER.class_names(classifier)
    return RunSettings(
        classifier=classifier,
        autoencoder=autoencoder,
        methods=tuple(methods or ()),
        steps=int(steps),
        fraction=float(fraction) if fraction else None,  # 0: each guided method keeps its paper value
        interpolation=interpolation,
        objective=objective,
        target=parse_target(target, class_names),
        precision=precision or "fp32",
        size=None if size in (None, AUTO_SIZE) else int(size),
    )


def _gpu_duration(image, settings: RunSettings, session: str, expected_seconds: float, *_args) -> int:
    return int(expected_seconds)


@gpu(duration=_gpu_duration)
def _compute(image: str, settings: RunSettings, session: str, expected_seconds: float,
             progress: gr.Progress) -> Iterator[RunState]:
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


def _cleared(state: RunState | None) -> dict:
    """Outputs of a run that has not produced results yet (or of no run at all)."""
    return {UI.maps: [], UI.frames: [], UI.position: gr.Slider(value=0.5, interactive=False),
            UI.confidence_plot: None, UI.distance_plot: None, UI.table: None, UI.downloads: None,
            UI.status: _status(state) if state else "", UI.state: state,
            **({UI.predictions: _label(state)} if state else {})}


def _views(state: RunState, style: str, scale: str, position: float, *, downloads: bool) -> dict:
    """Every output for a state with results: maps, frames, slider, plots, table, and the files when done."""
    headers, rows = metrics_table(state.context, state.results)
    return {
        UI.maps: method_maps(state.context, state.results, style=style, scale=scale),
        UI.frames: frames_at(state.context, state.results, position),
        UI.position: _slider(state, position),
        UI.confidence_plot: confidence_figure(state.context, state.results, marker=position),
        UI.distance_plot: distance_figure(state.context, state.results, marker=position),
        UI.table: pd.DataFrame(rows, columns=headers),
        UI.downloads: _downloads(state) if downloads else None,
        UI.status: _status(state),
        UI.predictions: _label(state),
        UI.state: state,
    }


def _downloads(state: RunState) -> list[str]:
    report = build_report(state.settings, state.context, state.results, device=str(EXPLORER.device),
                          image_notes=state.notes)
    return [str(p) for p in write_downloads(report, state.context, state.results, DOWNLOADS.new())]


def explain(image, classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
            precision, style, scale, size, request: gr.Request,
            progress=gr.Progress()):  # noqa: B008 - Gradio injects progress through this default
    """Explain the image with every selected method; maps, frames, plots and metrics stream in."""
    if image is None:
        raise gr.Error("No image yet: upload, paste or capture one, or click an example below the input.")
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                             precision, size)
        hit = EXPLORER.cached(image, settings)
        expected = EXPLORER.estimate(settings)
        _, warning = describe(expected, settings, on_gpu=EXPLORER.on_gpu)
        if warning and not hit:
            gr.Warning(warning, duration=15)
        states = [hit] if hit else _compute(image, settings, request.session_hash, gpu_seconds(expected), progress)
        for state in states:
            if state.complete and not state.from_cache:
                EXPLORER.remember(image, state)
            if not state.results:  # set up: clear the previous run's outputs, show the predictions
                for note in state.notes:
                    gr.Warning(note, duration=12)
                yield _cleared(state)
            elif state.from_cache or not state.complete:  # the final state repeats the last method's
                finished = len(state.results) == len(state.settings.methods)
                yield _views(state, style, scale, 0.5, downloads=finished)
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
        return {}
    return {UI.frames: frames_at(state.context, state.results, position),
            UI.confidence_plot: confidence_figure(state.context, state.results, marker=position),
            UI.distance_plot: distance_figure(state.context, state.results, marker=position)}


def restyle(style: str, scale: str, state: RunState | None):
    """Redraw the maps as heatmaps or overlays, on a shared or per-method scale (no recomputation)."""
    if state is None:
        return {}
    return {UI.maps: method_maps(state.context, state.results, style=style, scale=scale)}


def predict(image, classifier, size):
    """Top-5 classes of the image; bad files are reported at once, before any run."""
    if image is None:
        return None
    try:
        predictions, notes = EXPLORER.predict(image, classifier, None if size in (None, AUTO_SIZE) else int(size))
    except ImageInputError as err:
        raise gr.Error(str(err), duration=15) from err
    for note in notes:
        gr.Info(note, duration=8)
    return {p.name: p.probability for p in predictions}


def show_cached(image, classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                precision, style, scale, size):
    """When the image (e.g. an example) was already explained with these settings, show it at once."""
    if image is None:
        return _cleared(None)
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, target,
                             precision, size)
        state = EXPLORER.cached(image, settings)
    except (ImageInputError, SettingsError):
        return _cleared(None)  # `predict` reports the problem; here the old results are just cleared
    if state is None:
        return _cleared(None)
    return _views(state, style, scale, 0.5, downloads=True)


def estimate(classifier, autoencoder, methods, steps, fraction, interpolation, objective, precision, size):
    """Expected run time for the chosen settings, with advice when a CPU run would take minutes."""
    if not methods:
        return "Select at least one method."
    try:
        settings = _settings(classifier, autoencoder, methods, steps, fraction, interpolation, objective, None,
                             precision, size)
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
    return {UI.target: gr.Dropdown(choices=[TOP1] + [f"{i}: {n}" for i, n in enumerate(names)], value=TOP1),
            UI.classifier: gr.Dropdown(value=used), UI.model_status: model_status()}


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


def cancel(request: gr.Request) -> str:
    CANCELS.cancel(request.session_hash)
    return "Cancelling…"


# Layout ------------------------------------------------------------------------------------------

def _method_choices() -> list[tuple[str, str]]:
    return [(f"{spec.label}: {spec.hint}", spec.name) for spec in all_methods()]


def build_app() -> gr.Blocks:
    """The whole UI; the Run event and the model-touching events share one concurrency group."""
    classifiers = EXPLORER.catalog.choices("classifier")
    autoencoders = EXPLORER.catalog.choices("autoencoder")
    _, first_classifier, _ = EXPLORER.classifier(DEFAULT_CLASSIFIER)
    first_autoencoder = EXPLORER.autoencoder(DEFAULT_AUTOENCODER)[1]
    class_names = EXPLORER.class_names(first_classifier)
    guided, partial = ", ".join(methods_reading("fraction")), ", ".join(methods_reading("interpolation"))

    with gr.Blocks(title=TITLE, fill_width=True, delete_cache=(3600, 3600)) as demo:
        with gr.Sidebar(label="Settings", open=True, width=360):
            UI.classifier = gr.Dropdown([c.name for c in classifiers], value=first_classifier, label="Classifier",
                                        info="Weights load on first use; see 'Models' below.")
            UI.autoencoder = gr.Dropdown([c.name for c in autoencoders], value=first_autoencoder,
                                         label="Autoencoder (latent methods)", info="See 'Models' for CPU costs.")
            UI.methods = gr.CheckboxGroup(_method_choices(), value=list(DEFAULT_METHODS), label="Methods to compare")
            UI.steps = gr.Slider(*STEPS_RANGE, value=32, step=1, label="Steps (path points)",
                                 info="The paper uses 200; 16–32 give a quick look. IG2 keeps its 201 search steps.")
            UI.size = gr.Radio(list(SIZES), value=AUTO_SIZE, label="Working resolution (pixels)",
                               info="The image is explained at this size; larger is sharper and slower.")
            UI.fraction = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label=f"Selection fraction ({guided})",
                                    info="Share of coordinates moved per guided step; 0 keeps each method's "
                                         "paper value (GIG 0.1, MA-GIG 0.05).")
            UI.interpolation = gr.Radio(list(INTERPOLATIONS), value="lerp", label=f"Partial move ({partial})")
            UI.objective = gr.Radio(list(OBJECTIVES), value="prob", label="Objective",
                                    info="prob: softmax probability (paper); logit: raw logit.")
            UI.precision = gr.Radio(list(PRECISIONS), value="fp32", label="Precision (GPU only)",
                                    visible=EXPLORER.on_gpu)
            with gr.Accordion("Models", open=bool(EXPLORER.catalog.unavailable())):
                UI.model_status = gr.Markdown(model_status(), elem_id="model-status")

        gr.Markdown(f"# {TITLE}\nWhich pixels made the classifier decide? Integrated-gradient paths through an "
                    "autoencoder's latent space (MA-GIG) stay on natural-looking images; pixel-space paths "
                    "(GIG, IG) do not. Pick an image, press **Run**, then drag the path slider.",
                    elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                UI.image = gr.Image(type="filepath", image_mode=None, label="Input image", height=280,
                                    sources=["upload", "clipboard", "webcam"], elem_id="input-image")
                UI.image.preprocess = raw_upload  # never return a gr.Image(...) update: it would rebuild the block
                UI.target = gr.Dropdown([TOP1] + [f"{i}: {n}" for i, n in enumerate(class_names)], value=TOP1,
                                        allow_custom_value=True, label="Class to explain", elem_id="target")
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="run-btn", scale=3)
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)
                UI.estimate = gr.Markdown(elem_id="estimate")
                UI.predictions = gr.Label(num_top_classes=5, label="Top-5 predictions", elem_id="predictions")
            with gr.Column(scale=3):
                UI.maps = gr.Gallery(label="Attribution maps", columns=4, height=310,
                                     object_fit="contain", format="png", elem_id="maps", preview=False)
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
                              label="Examples: click one, then Run", columns=len(EXPLORER.examples), height=170,
                              allow_preview=False, format="png", interactive=False, elem_id="examples")
        with gr.Row():
            UI.confidence_plot = gr.Plot(label="Confidence along the path", show_label=False,
                                         elem_id="confidence-plot")
            UI.distance_plot = gr.Plot(label="Distance to the input along the path", show_label=False,
                                       elem_id="distance-plot")
        UI.table = gr.Dataframe(label="Metrics per method (faithfulness: soft scores on this one image)",
                                interactive=False, elem_id="metrics")
        UI.downloads = gr.File(label="Downloads: attributions (npz), maps (PNG), report (JSON)",
                               file_count="multiple", interactive=False, elem_id="downloads")
        UI.state = gr.State(None, time_to_live=3600)

        settings_inputs = [UI.classifier, UI.autoencoder, UI.methods, UI.steps, UI.fraction, UI.interpolation,
                           UI.objective]
        run_inputs = [UI.image, *settings_inputs, UI.target, UI.precision, UI.style, UI.scale, UI.size]
        run_outputs = [UI.maps, UI.frames, UI.position, UI.confidence_plot, UI.distance_plot, UI.table,
                       UI.downloads, UI.status, UI.predictions, UI.state]
        model_group = {"concurrency_id": "models", "concurrency_limit": CONCURRENCY}

        run_event = run.click(explain, run_inputs, run_outputs, api_name="explain", show_progress_on=[UI.status],
                              **model_group)
        examples.select(pick_example, None, UI.image, api_visibility="undocumented", show_progress="hidden")
        stop.click(cancel, None, UI.status, cancels=[run_event], queue=False, api_name="cancel")
        UI.position.input(scrub, [UI.position, UI.state], [UI.frames, UI.confidence_plot, UI.distance_plot],
                          api_name="scrub", show_progress="hidden", trigger_mode="always_last")
        gr.on([UI.style.change, UI.scale.change], restyle, [UI.style, UI.scale, UI.state], [UI.maps],
              show_progress="hidden", api_visibility="undocumented")
        UI.image.change(predict, [UI.image, UI.classifier, UI.size], UI.predictions, api_name="predict",
                        **model_group).success(show_cached, run_inputs, run_outputs, api_visibility="undocumented",
                                               **model_group)
        UI.classifier.change(on_classifier, UI.classifier, [UI.target, UI.classifier, UI.model_status],
                             api_visibility="undocumented", **model_group)
        UI.autoencoder.change(on_autoencoder, UI.autoencoder, [UI.autoencoder, UI.model_status],
                              api_visibility="undocumented", **model_group)
        estimate_inputs = [*settings_inputs, UI.precision, UI.size]
        gr.on([demo.load, *(c.change for c in estimate_inputs)], estimate, estimate_inputs, UI.estimate,
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
    print(f"MA-GIG Explorer: {THREADS.describe()}")
    launch(demo)
