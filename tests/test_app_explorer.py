"""The explorer library behind the app: settings, estimates, runs, exports, caching (no web server)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from magig_core.attribution import PassCounts, method_spec
from magig_core.attribution.api import explain
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.compute import prepare, run_methods, stream_methods
from magig_core.explorer.estimate import PassSeconds, RunHistory, describe, estimate
from magig_core.explorer.form import parse_target
from magig_core.explorer.render import accumulation_figure, frames_at, method_maps, metrics_table
from magig_core.explorer.report import build_report, report_results, write_downloads
from magig_core.explorer.result_cache import ResultCache, run_key
from magig_core.explorer.settings import RunSettings, SettingsError, validate
from magig_core.metrics import PixelRmseDistance
from magig_core.models.zoo import fastest_autoencoder
from magig_core.viz import heatmap, robust_max, saliency
from tests.conftest import small_cnn, tiny_vae

NAMES = ["disc", "square", "triangle"]


def settings(**changes) -> RunSettings:
    base = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "methods": ("ma-gig", "gig"), "steps": 8}
    return RunSettings(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "on_gpu", "message"),
    [
        ({"methods": ()}, False, "at least one method"),
        ({"methods": ("gig", "gig")}, False, "only once"),
        ({"methods": ("magic",)}, False, "Unknown method"),
        ({"steps": 2}, False, "between 4 and 400"),
        ({"fraction": 0.0}, False, r"\(0, 1\]"),
        ({"interpolation": "cubic"}, False, "Interpolation"),
        ({"precision": "bf16"}, False, "needs a GPU"),
        ({"target": 7}, False, "does not exist"),
        ({"autoencoder": ""}, False, "need an autoencoder"),
    ],
)
def test_invalid_settings_name_the_control_to_fix(changes, on_gpu, message):
    with pytest.raises(SettingsError, match=message):
        validate(settings(**changes), on_gpu=on_gpu, num_classes=3)


def test_valid_settings_pass_and_bf16_is_fine_on_gpu():
    assert validate(settings(precision="bf16"), on_gpu=True, num_classes=3).precision == "bf16"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("top-1 prediction", None), ("2", 2), ("1: square", 1), ("Triangle", 2), (0, 0)],
)
def test_parse_target_accepts_index_label_or_name(value, expected):
    assert parse_target(value, NAMES) == expected


def test_parse_target_rejects_unknown_names():
    with pytest.raises(SettingsError, match="Unknown target class"):
        parse_target("hexagon", NAMES)


def test_estimate_scales_with_steps_and_counts_decoder_passes():
    cost = PassSeconds(classifier_forward=0.004, classifier_backward=0.006, decoder_forward=0.03, decoder_backward=0.07)
    small, large = estimate(settings(steps=10), cost), estimate(settings(steps=100), cost)
    assert large.per_method["ma-gig"] > 5 * small.per_method["ma-gig"]
    # MA-GIG walks N=100 points: 99 decodes + 2 encodes, 98 decoder backwards, and one classifier pass more
    # than GIG (the raw baseline and its reconstruction both at the first point). Counted by hand.
    gap = large.per_method["ma-gig"] - large.per_method["gig"]
    assert math.isclose(gap, (99 + 2) * 0.03 + 98 * 0.07 + (0.004 + 0.006))
    assert method_spec("gi").cost(method_spec("gi").options(), 1000) == PassCounts(1, 1)


def test_observed_rates_replace_the_pass_count_guess():
    cost = PassSeconds(classifier_forward=0.004, classifier_backward=0.006)
    history = RunHistory()
    history.record("gig", settings(steps=10), "cpu", seconds=5.0)  # 0.5 s per step observed
    result = estimate(settings(steps=40), cost, history=history, device="cpu")
    assert result.per_method["gig"] == pytest.approx(20.0)
    assert result.per_method["ma-gig"] == pytest.approx(estimate(settings(steps=40), cost).per_method["ma-gig"])
    assert result.source == "from earlier runs and measured"
    assert estimate(settings(steps=40), cost, history=history, device="cuda").source == "measured"


def test_the_time_runs_took_beyond_their_walks_is_added_once_every_method_was_observed():
    """Catches an estimate of the walks alone: a 32-point run spends about a third of its time on set-up and
    scores, so the walks alone came out 30 % short."""
    cost = PassSeconds(classifier_forward=0.004, classifier_backward=0.006)
    history = RunHistory()
    run = settings(steps=10, methods=("gig", "ma-gig"))
    history.record("gig", run, "cpu", seconds=2.0)
    history.record_overhead(run, "cpu", 1.0)
    history.record_overhead(run, "cpu", 2.0)  # averaged with the earlier run, as the rates are
    partly = estimate(settings(steps=20, methods=("gig", "ma-gig")), cost, history=history, device="cpu", workers=2)
    assert partly.overhead == 0.0  # the guessed MA-GIG already counts its metric passes
    history.record("ma-gig", run, "cpu", seconds=6.0)
    observed = estimate(settings(steps=20, methods=("gig", "ma-gig")), cost, history=history, device="cpu", workers=2)
    assert observed.total == pytest.approx(12.0 + 1.5)  # MA-GIG's 20 steps on its own worker, then the rest
    line, _ = describe(observed, settings(steps=20), on_gpu=False)
    assert "set-up and scores 2 s" in line and "**14 s**" in line


def test_slow_cpu_runs_get_a_warning_with_cheaper_settings():
    slow = settings(steps=200, autoencoder="sd2", methods=("ma-gig", "mig"))
    cost = PassSeconds.from_hints(0.3, 4.3, "hints")
    line, warning = describe(estimate(slow, cost), slow, on_gpu=False)
    assert "Estimated run time" in line and "min" in line
    assert f"the {fastest_autoencoder().name} autoencoder" in warning and "lower the steps" in warning
    assert "deselect MIG" in warning  # MIG's energy descent costs ~7x MA-GIG's decoder passes
    assert describe(estimate(slow, cost), slow, on_gpu=True)[1] is None


def cached_run(number: int, nbytes: int = 48):
    """A stand-in for a finished run whose input picture holds ``nbytes`` bytes."""
    return SimpleNamespace(image=np.full(nbytes, number, np.uint8)), []


def test_result_cache_is_keyed_by_content_and_settings_and_bounded():
    cache = ResultCache(max_entries=2)
    image = torch.zeros(1, 3, 4, 4)
    keys = [run_key(image, settings(steps=s)) for s in (8, 9, 10)]
    assert run_key(image.clone(), settings(steps=8)) == keys[0]
    assert run_key(image + 1e-3, settings(steps=8)) != keys[0]
    runs = [cached_run(number) for number in range(3)]
    for key, entry in zip(keys, runs, strict=True):
        cache.put(key, entry)
    assert cache.get(keys[0]) is None and cache.get(keys[2]) is runs[2]


def test_result_cache_is_bounded_in_bytes():
    """Catches a count-only bound: three 512 px runs with frames would hold hundreds of MB."""
    cache = ResultCache(max_entries=10, max_bytes=250)
    for number in range(3):
        cache.put(f"run{number}", cached_run(number, 100))
    assert cache.get("run0") is None and cache.get("run2") is not None and cache.nbytes == 200
    cache.put("huge", cached_run(9, 251))  # larger than the whole budget: not stored, nothing evicted
    assert cache.get("huge") is None and cache.nbytes == 200


@pytest.fixture(scope="module")
def run():
    """One small run (MA-GIG, GIG, GI) with tiny random models; the reference explanations come direct."""
    classifier, autoencoder = small_cnn(num_classes=3), tiny_vae()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    chosen = settings(methods=("ma-gig", "gig", "gi"), steps=8, frames=4)
    distance = PixelRmseDistance(reason="test")
    context = prepare(image, classifier, chosen, distance, autoencoder)
    progress: list[tuple[float, str]] = []
    results = list(run_methods(image, classifier, autoencoder, chosen, context, distance,
                               on_progress=lambda f, text: progress.append((f, text))))
    return SimpleNamespace(classifier=classifier, autoencoder=autoencoder, image=image, settings=chosen,
                           context=context, results=results, progress=progress)


def test_runs_carry_the_manifold_diagnostics(run):
    """The input's reconstruction PSNR and each frame's distance to its own reconstruction, recomputed here
    (catches frames compared with the input's reconstruction, or a PSNR of the unclamped decode)."""
    autoencoder, image = run.autoencoder, run.image
    with torch.no_grad():
        rebuilt = autoencoder.decode(autoencoder.encode(image)).clamp(0, 1)
    mse = float((rebuilt.double() - image.double()).pow(2).mean())
    assert run.context.reconstruction_psnr == pytest.approx(10 * math.log10(1 / mse), rel=1e-6)
    for result in run.results:
        if result.method == "gi":
            assert result.off_manifold is None and math.isnan(result.scores["off_manifold_auc"])
            continue
        direct = explain(image, run.classifier, result.method, autoencoder=autoencoder,
                         targets=[run.context.target], steps=8, frames=4)
        frames = direct.frames[0].clamp(0, 1)
        with torch.no_grad():
            own = autoencoder.decode(autoencoder.encode(frames)).clamp(0, 1)
        expected = (own.double() - frames.double()).pow(2).flatten(1).mean(1).sqrt()
        np.testing.assert_allclose(result.off_manifold, expected.numpy(), rtol=1e-4, atol=1e-6)
        assert result.scores["off_manifold_auc"] > 0


def test_runner_matches_explain_called_directly(run):
    classifier, autoencoder, image, context = run.classifier, run.autoencoder, run.image, run.context
    with torch.no_grad():
        assert context.target == int(classifier(image).argmax())
    for result in run.results:
        direct = explain(image, classifier, result.method, autoencoder=autoencoder, targets=[context.target],
                         steps=8, fraction=0.05 if result.method == "ma-gig" else None,
                         frames=0 if result.method == "gi" else 4)
        np.testing.assert_allclose(result.attributions, direct.attributions[0].numpy(), rtol=1e-5, atol=1e-7)
        assert math.isclose(result.scores["completeness_residual"], float(direct.completeness_residual[0]),
                            rel_tol=1e-5, abs_tol=1e-8)
        if result.method == "gi":
            assert math.isnan(result.scores["confidence_auc"])  # no path, no area
            continue
        probs = direct.path_probs[0].double().numpy()
        t = np.linspace(0, 1, len(probs))
        trapezoid = float(np.sum((probs[1:] + probs[:-1]) * np.diff(t)) / 2)
        assert math.isclose(result.scores["confidence_auc"], trapezoid, rel_tol=1e-9)
        np.testing.assert_allclose(result.frame_t, direct.frame_indices.numpy() / (len(probs) - 1))
        np.testing.assert_allclose(result.frame_probs, direct.frame_probs[0].numpy(), rtol=1e-6)


def test_runner_reports_progress_and_frames(run):
    labels = ["MA-GIG", "GIG", "GI"]
    starts = [text for _, text in run.progress if text.endswith("starting")]
    assert starts == [f"{label}: starting" for label in labels]
    for fraction, text in run.progress:  # method i of 3 at step d of t has done (i + d/t) / 3 of the run
        label, _, state = text.partition(": ")
        done, total = (0, 1) if state == "starting" else map(int, state.removeprefix("step ").split("/"))
        assert fraction == pytest.approx((labels.index(label) + done / total) / 3), text
    magig = run.results[0]
    assert magig.frames.shape == (4, 16, 16, 3) and magig.frames.dtype == np.uint8
    assert magig.frame_t[0] == 0 and magig.frame_t[-1] == 1 and np.all(np.diff(magig.frame_t) > 0)
    assert magig.distances[-1] == pytest.approx(0.0, abs=1e-6)  # the last frame is the raw input
    assert run.results[2].frames is None and math.isnan(run.results[2].scores["distance_auc"])


def test_render_uses_one_colour_scale_and_skips_pathless_methods(run):
    context, results = run.context, run.results
    pictures = method_maps(context, results, scale="shared")
    vmax = robust_max([saliency(r.attributions) for r in results])
    for (image, caption), result in zip(pictures, results, strict=True):
        np.testing.assert_array_equal(image, heatmap(saliency(result.attributions), vmax))
        assert caption.startswith(result.label)
    for (image, _), result in zip(method_maps(context, results, scale="per method"), results, strict=True):
        own = saliency(result.attributions)
        np.testing.assert_array_equal(image, heatmap(own, robust_max([own])))
    frames = frames_at(context, results, 0.4)
    assert [caption.split(" ·")[0] for _, caption in frames] == ["MA-GIG", "GIG"]
    nearest = results[0].frame_t[np.abs(results[0].frame_t - 0.4).argmin()]
    assert f"t={nearest:.2f}" in frames[0][1]
    np.testing.assert_array_equal(frames[0][0], results[0].frames[results[0].frame_at(0.4)])
    lines = accumulation_figure(context, results).axes[0].get_lines()  # GI has no path to collect along
    assert [line.get_label().split(" ·")[0] for line in lines] == ["MA-GIG", "GIG"]
    np.testing.assert_array_equal(lines[0].get_ydata(), results[0].accumulation_mass)
    assert f"t50 {results[0].scores['t50']:.2f}" in lines[0].get_label()
    headers, rows = metrics_table(context, results)
    assert headers[1:4] == ["DiffID top-1 ↑", "Insertion top-1 ↑", "Deletion top-1 ↓"]
    assert "Pixel RMSE AUC ↓" in headers and "Energy in mask ↑" not in headers  # no masks: no empty column
    assert len(rows) == 3


def test_the_stage_steps_each_path_method_s_gradients_with_its_path_images(run):
    """The stage's third row holds every path method's input gradient at each path image, as pictures the
    browser steps with the path (same schedule); a method without a path says so. Catches a gradient row
    built from the contributions, cut short, or left out of the grid's rows."""
    import base64
    import io

    from PIL import Image

    from magig_core.animation import feature_rows
    from magig_core.explorer.stage import stage_html

    page = stage_html(run.settings, run.context, run.results)
    assert "--rows: 3" in page and "GI: no gradients along a path" in page
    for result in run.results[:2]:
        cell = page.split(f'id="stage-gradient-{result.method}"')[1].split("</figure>")[0]
        path_cell = page.split(f'id="stage-path-{result.method}"')[1].split("</figure>")[0]
        assert cell.split(">")[0].split("data-schedule=")[1] == path_cell.split(">")[0].split("data-schedule=")[1]
        pictures = [np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split('"')[0]))))
                    for uri in cell.split("base64,")[1:]]
        expected, _ = feature_rows(result.gradient_frames, result.contribution_frames)
        assert len(pictures) == len(result.frames)
        np.testing.assert_array_equal(np.stack(pictures), expected)


def test_live_runs_stream_each_map_forming_and_end_exactly_at_the_final_map(run):
    """A live run yields each path method's running map at every shown position before its result; the last
    one IS the final map, and the results equal those of a run without streaming. Catches a stream that ends
    a segment early, maps taken from another method, and a worker thread whose failure is lost."""
    from magig_core.explorer.live import LiveMap

    items = [item for _, item in stream_methods(run.image, run.classifier, run.autoencoder, run.settings,
                                                 run.context, PixelRmseDistance(), live=True)]
    results = [item for item in items if not isinstance(item, LiveMap) and not item.pending]
    assert [r.method for r in results] == ["ma-gig", "gig", "gi"]
    for result, plain in zip(results, run.results, strict=True):
        np.testing.assert_array_equal(result.attributions, plain.attributions)
        index = items.index(result)
        streamed = [item for item in items[:index] if isinstance(item, LiveMap) and item.method == result.method]
        if result.method == "gi":
            assert streamed == []
            continue
        assert [m.done for m in streamed] == [1, 3, 6, 8]  # the 4 shown positions of 8 points
        np.testing.assert_array_equal(streamed[-1].partial, result.attributions)
        assert not np.array_equal(streamed[1].partial, streamed[-1].partial)
        assert streamed[-1].collected[-1] == pytest.approx(float(result.attributions.astype(np.float64).sum()),
                                                           rel=1e-4, abs=1e-7)

    polls: list[int] = []

    def stop_inside_the_walk() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(RunCancelled, match="MA-GIG"):  # raised in the method's thread, re-raised here
        list(stream_methods(run.image, run.classifier, run.autoencoder, run.settings, run.context,
                            PixelRmseDistance(), live=True, should_stop=stop_inside_the_walk))


def test_cancel_stops_inside_a_method(run):
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(RunCancelled, match="MA-GIG"):
        list(run_methods(run.image, run.classifier, run.autoencoder, replace(run.settings, steps=50), run.context,
                         PixelRmseDistance(), should_stop=stop_after_three))
    assert calls["n"] == 4  # the engine's callback raised at the first poll after the stop


def test_downloads_hold_the_attributions_and_a_json_report(run, tmp_path):
    context, results = run.context, run.results
    report = build_report(run.settings, context, results, device="cpu", image_notes=["note"])
    paths = write_downloads(report, context, results, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        ["report.json", "attributions.npz", "maps.png", "map_ma-gig.png", "map_gig.png", "map_gi.png"])
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["target"]["index"] == context.target and saved["settings"]["steps"] == 8
    assert saved["methods"]["gi"]["scores"]["values"]["distance_auc"] is None  # NaN is written as null
    reopened = report_results(saved)["ma-gig"]
    assert reopened.scores.values == pytest.approx(results[0].scores.values, nan_ok=True)
    assert (reopened.method, reopened.seconds, reopened.config["steps"]) == ("ma-gig", results[0].seconds, 8)
    assert saved["path_distance"] == {"name": "pixel-rmse", "fallback_reason": "test"}
    assert saved["reconstruction_psnr_db"] == pytest.approx(context.reconstruction_psnr)
    curves = saved["methods"]["ma-gig"]["path_curves"]
    np.testing.assert_allclose(curves["off_manifold"], results[0].off_manifold)
    assert len(curves["frame_t"]) == len(curves["off_manifold"]) and len(curves["probability"]) == 8
    assert "off_manifold" not in saved["methods"]["gi"]["path_curves"]
    with np.load(tmp_path / "attributions.npz") as arrays:
        np.testing.assert_array_equal(arrays["ma_gig_attributions"], results[0].attributions)
        assert int(arrays["target"]) == context.target
        # the stretches between shown positions add up to the map; gradients sit at the same positions
        np.testing.assert_allclose(arrays["ma_gig_contribution_frames"].sum(axis=0), arrays["ma_gig_attributions"],
                                   rtol=1e-4, atol=1e-6)
        assert arrays["ma_gig_gradient_frames"].shape == arrays["ma_gig_contribution_frames"].shape
        assert "gi_gradient_frames" not in arrays
    assert curves["accumulation"][0] == 0 and curves["accumulation"][-1] == pytest.approx(1)
    assert len(curves["accumulation_mass"]) == 8 and "accumulation" not in saved["methods"]["gi"]["path_curves"]


def test_a_report_from_before_the_metric_names_reads_its_probability_games_as_diffid_prob():
    """Catches an old report's ``diffid`` (the mean-probability game) read as the paper's top-1 DiffID."""
    old = {"target": {"index": 3}, "methods": {"ig": {"metrics": {
        "diffid": 0.25, "insertion": 0.5, "deletion": 0.25, "completeness_residual": 0.01,
        "completeness_relative": 0.02, "confidence_auc": None, "seconds": 1.5}}}}
    result = report_results(json.loads(json.dumps(old)))["ig"]
    scores = result.scores
    assert result.seconds == 1.5 and scores.target == 3
    assert (scores["diffid_prob"], scores["insertion_prob"], scores["deletion_prob"]) == (0.25, 0.5, 0.25)
    assert scores["completeness_relative"] == 0.02 and math.isnan(scores["diffid_top1"])
    assert math.isnan(scores["confidence_auc"])


def test_cpu_estimates_use_the_model_zoo_hints_without_loading_models():
    """sd2's 4.3 s decoder pass would take seconds to measure: the hints (scaled by area) are used instead."""
    from magig_core.explorer.estimate import FORWARD_SHARE
    from magig_core.explorer.service import Explorer

    explorer = Explorer(torch.device("cpu"))
    cost = explorer.pass_cost(settings(classifier="resnet18", autoencoder="sd2"))
    assert cost.source == "model-zoo CPU cost hints"
    assert cost.classifier_forward == pytest.approx(0.28 * FORWARD_SHARE)
    assert cost.decoder_backward == pytest.approx(4.3 * (1 - FORWARD_SHARE))
    half = explorer.pass_cost(settings(classifier="resnet18", autoencoder="sd2", size=128))
    assert half.decoder_forward == pytest.approx(cost.decoder_forward / 4)
    assert explorer.catalog.unavailable() == {}  # nothing was loaded (offline, resnet18 would have failed)
