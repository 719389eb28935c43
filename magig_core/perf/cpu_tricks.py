"""``benchmark --suite cpu``: every CPU trick against eager and against the floor, in the talk setting.

The talk setting is the bundled TAEF2 + CIFAR-10 ResNet-56 at 64 px, 200 steps, one image, on the threads
the runtime policy gives this process. Each variant is a private copy of the models (plus, for global
switches, a context) and is timed round-robin with all the others, so load from elsewhere hits them alike.

Equality is judged on the path-independent part: one step's gradients at a fixed latent, compared with
the same computation in float64. A trick is equal to eager when its error is of the same order as eager's
own (fp32 rounding, reordered, is all a different kernel may add). Whole maps are compared statistically,
next to the same comparison for a one-ulp change of the input image: the guided selection is discontinuous,
and even EIG's map jumps when a path point crosses a ReLU kink, so each method's own sensitivity is the
yardstick for any change of arithmetic.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from magig_core import runtime
from magig_core.acceleration import channels_last, compile_autoencoder, compile_classifier
from magig_core.attribution import explain
from magig_core.attribution.result import Explanation
from magig_core.perf.compare import difference, explanation_difference
from magig_core.perf.networks import bundled_images, bundled_pair
from magig_core.perf.sections import Report, SectionResult, Table
from magig_core.perf.timing import floor_step, timed

ADOPT_SPEEDUP = 1.2
ACCURACY_SLACK = 4.0  # reordered fp32 sums stay within a few times eager's error; other algorithms do not
FLOOR_CALLS = 5  # floor steps per timing sample
CPU = torch.device("cpu")


@dataclass
class Variant:
    """Models (private copies) and an optional global switch under which they run."""

    name: str
    classifier: nn.Module
    autoencoder: nn.Module
    context: Callable[[], AbstractContextManager] = nullcontext
    precision: str = "fp32"
    changes_results: bool = False  # by design (reduced precision): reported, never adopted
    policy: bool = False  # a runtime choice (threads), decided by the contention suite, not adopted here
    setup_seconds: float = 0.0
    note: str = ""
    floors: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)


def run_cpu_suite(out_dir: Path, *, size: int | None = None, steps: int | None = None, repeats: int | None = None,
                  tiny: bool = False, with_compile: bool = True) -> Report:
    size = size or (8 if tiny else 64)
    steps = steps or (4 if tiny else 200)
    repeats = repeats or (1 if tiny else 3)
    runtime.threads_for_work(size * size)  # the shipped thread count for this size (unless --threads said)
    settings = {"models": "TAEF2 + CIFAR-10 ResNet-56", "size": size, "steps": steps, "runs": repeats,
                "threads": torch.get_num_threads(), "omp_wait_policy": runtime.plan_threads().wait_policy}
    report = Report("cpu", CPU, out_dir, settings, sections=3)
    image = bundled_images(1, size)
    variants: list[Variant] = []
    report.run("setup", "Variants", lambda: _setup(variants, image, with_compile))
    report.run("tricks", "MA-GIG per step by trick, against eager and the floor",
               lambda: _tricks(variants, image, steps, repeats))
    report.run("encode", "Encoding the two path ends", lambda: _encode(image, repeats))
    return report


# Variants ----------------------------------------------------------------------------------------

def _setup(variants: list[Variant], image: torch.Tensor, with_compile: bool) -> SectionResult:
    classifier, autoencoder = bundled_pair(CPU)
    variants.append(Variant("eager", classifier, autoencoder, note="the shipped configuration (frozen models)"))
    unfrozen_classifier, unfrozen_autoencoder = copy.deepcopy(classifier), copy.deepcopy(autoencoder)
    unfrozen_classifier.requires_grad_(True)
    unfrozen_autoencoder.requires_grad_(True)
    variants.append(Variant("parameters not frozen", unfrozen_classifier, unfrozen_autoencoder,
                            note="what freezing (already shipped) saves: no weight gradients"))
    variants.append(Variant("channels_last", channels_last(classifier), channels_last(autoencoder)))
    variants.append(Variant("BatchNorm folded into convolutions", fold_batchnorm(classifier), autoencoder))
    variants.append(Variant("flush denormals", classifier, autoencoder, context=_flush_denormal))
    variants.append(Variant("oneDNN off", classifier, autoencoder, context=_onednn_off))
    current, cores = torch.get_num_threads(), runtime.available_cores()
    for threads in sorted({1, cores} - {current}):
        variants.append(Variant(f"{threads} thread(s) instead of {current}", classifier, autoencoder, policy=True,
                                context=lambda threads=threads: _threads(threads),
                                note="thread count: runtime policy, see the contention suite"))
    variants.append(Variant("bf16 autocast", classifier, autoencoder, precision="bf16", changes_results=True,
                            note="the precision option: changes results by design"))
    if with_compile:
        variants.append(_compiled("torch.compile", classifier, autoencoder, image))
        variants.append(_compiled("torch.compile + BatchNorm folded", fold_batchnorm(classifier), autoencoder,
                                  image))
    table = Table("variants", ["variant", "setup (s)", "note"],
                  [[v.name, v.setup_seconds, v.note] for v in variants])
    return SectionResult([table])


def _compiled(name: str, classifier: nn.Module, autoencoder: nn.Module, image: torch.Tensor) -> Variant:
    seconds: dict[str, float] = {}
    results: dict[str, tuple[nn.Module, str | None]] = {}
    seconds["classifier"] = timed(lambda: results.setdefault("c", compile_classifier(classifier, image)), CPU)
    seconds["autoencoder"] = timed(lambda: results.setdefault("a", compile_autoencoder(autoencoder, image)), CPU)
    (compiled_classifier, classifier_reason), (compiled_autoencoder, decoder_reason) = results["c"], results["a"]
    reasons = [r for r in (classifier_reason, decoder_reason) if r]
    note = ("compiled (classifier forward, decoder); setup is the first trial step" if not reasons
            else f"fell back to eager: {reasons[0]}")
    return Variant(name, compiled_classifier, compiled_autoencoder, setup_seconds=sum(seconds.values()), note=note)


def fold_batchnorm(classifier: nn.Module) -> nn.Module:
    """A copy with every ``convK``→``bnK`` pair of a ResNet block folded into one convolution.

    Only modules whose forward is known to apply ``bnK`` straight to ``convK``'s output qualify (the
    CIFAR and torchvision ResNet blocks); anything else is left as it is.
    """
    from torchvision.models.resnet import BasicBlock as TorchvisionBasicBlock
    from torchvision.models.resnet import Bottleneck, ResNet

    from magig_core.models.cifar_resnet import BasicBlock, CifarResNet

    folded = copy.deepcopy(classifier)
    for module in folded.modules():
        if not isinstance(module, (BasicBlock, CifarResNet, TorchvisionBasicBlock, Bottleneck, ResNet)):
            continue
        for index in ("1", "2", "3"):
            conv, norm = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                setattr(module, f"conv{index}", fuse_conv_bn_eval(conv, norm))
                setattr(module, f"bn{index}", nn.Identity())
    return folded.requires_grad_(False)


@contextmanager
def _flush_denormal() -> Iterator[None]:
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextmanager
def _onednn_off() -> Iterator[None]:
    with warnings.catch_warnings():  # the flag helper also touches a TF32 switch meant for Intel GPUs
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


@contextmanager
def _threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Measurements ------------------------------------------------------------------------------------

def _tricks(variants: list[Variant], image: torch.Tensor, steps: int, repeats: int) -> SectionResult:
    eager = variants[0]
    with torch.no_grad():
        start, end = eager.autoencoder.encode(torch.cat([torch.zeros_like(image), image])).chunk(2)
    latent = (start + end) / 2  # mid-path: the target probability is not saturated there
    floors = {v.name: floor_step(v.classifier, v.autoencoder, latent, _dtype(v.precision)) for v in variants}
    for variant in variants:  # warm-up: allocations, kernel selection, (re)compilation at these shapes
        with variant.context():
            floors[variant.name]()
            _magig(variant, image, 3)
    for _ in range(repeats):  # round-robin: the variants share whatever load there is
        for variant in variants:
            with variant.context():
                variant.floors.append(timed(lambda f=floors[variant.name]: [f() for _ in range(FLOOR_CALLS)], CPU)
                                      / FLOOR_CALLS)
                result = _magig(variant, image, steps)
            variant.steps.append(result.timings["path"] / (steps - 1))
    exact = _float64(eager)
    exact_gradients, exact_eig = _gradients(exact, latent.double()), _eig(exact, image.double(), steps)
    reference = _magig(eager, image, steps)
    ulp_image = torch.nextafter(image, torch.full_like(image, 2.0)).clamp(0, 1)
    nudged = _magig(eager, ulp_image, steps)
    eager_step = _median(eager.steps)
    table = Table(f"MA-GIG, {steps} steps, {image.shape[-1]} px, batch 1, {torch.get_num_threads()} thread(s)",
                  ["variant", "floor (ms)", "MA-GIG step (ms)", "step / own floor", "speedup vs eager",
                   "gradient error vs fp64", "EIG error vs fp64", "MA-GIG corr", "MA-GIG rel L2",
                   "paths part at step", "adopt"])
    rows: list[tuple[Variant, float, float]] = []
    for variant in variants:
        with variant.context():
            gradient_error = max(difference(mine, exact)["max_rel"] for mine, exact in
                                 zip(_gradients(variant, latent), exact_gradients, strict=True))
            eig_error = difference(_eig(variant, image, steps).attributions, exact_eig.attributions)["rel_l2"]
            magig = _magig(variant, image, steps)
        whole = explanation_difference(magig, reference)
        rows.append((variant, gradient_error, eig_error))
        table.rows.append([variant.name, 1e3 * _median(variant.floors), 1e3 * _median(variant.steps),
                           _median(variant.steps) / _median(variant.floors), eager_step / _median(variant.steps),
                           gradient_error, eig_error, whole["correlation"], whole["rel_l2"],
                           _parting_step(magig, reference), None])
    eager_gradient_error = rows[0][1]
    adopted = []
    for row, (variant, gradient_error, _) in zip(table.rows, rows, strict=True):
        row[-1] = _verdict(variant, eager_step / _median(variant.steps), gradient_error, eager_gradient_error)
        adopted += [variant.name] if row[-1] == "yes" else []
    sensitivity = explanation_difference(nudged, reference)
    nudged_eig = difference(_eig(eager, ulp_image, steps).attributions, exact_eig.attributions)["rel_l2"]
    table.rows.append(["(eager, input changed by 1 ulp)", None, None, None, None, None, nudged_eig,
                       sensitivity["correlation"], sensitivity["rel_l2"], _parting_step(nudged, reference), "–"])
    notes = [f"Adopt: at least {ADOPT_SPEEDUP}× faster per MA-GIG step than eager, and as accurate as eager: "
             "its error against float64 in one step's gradients at a fixed mid-path latent (max relative) at "
             f"most {ACCURACY_SLACK:g}× eager's own. Reduced precision changes results by design and thread "
             "counts are runtime policy: neither is adopted here.",
             "Whole maps are compared statistically; the last row shows what a one-ulp change of the input "
             "does to them. The guided selection is discontinuous (and EIG's map jumps where a path point "
             "crosses a ReLU kink), so any change of arithmetic can part the paths; a trick is as equal as it "
             "can be when it parts them no more than that."]
    return SectionResult([table], values={"eager floor (ms)": 1e3 * _median(eager.floors),
                                          "eager MA-GIG step (ms)": 1e3 * eager_step,
                                          "eager gradient error vs fp64": eager_gradient_error,
                                          "adopted": ", ".join(adopted) or "none"}, notes=notes)


def _verdict(variant: Variant, speedup: float, gradient_error: float, eager_gradient_error: float) -> str:
    if variant.policy:
        return "policy"
    if variant.name == "eager":
        return "–"
    accurate = gradient_error <= ACCURACY_SLACK * eager_gradient_error + 1e-12
    return "yes" if speedup >= ADOPT_SPEEDUP and accurate and not variant.changes_results else "no"


def _float64(variant: Variant) -> Variant:
    return Variant("float64", copy.deepcopy(variant.classifier).double(), copy.deepcopy(variant.autoencoder).double())


def _encode(image: torch.Tensor, repeats: int) -> SectionResult:
    """The two encodes per run under autograd, no_grad (shipped) and inference_mode, interleaved."""
    _, autoencoder = bundled_pair(CPU)
    pair = torch.cat([image, torch.zeros_like(image)])
    modes = {"autograd on": nullcontext, "no_grad (shipped)": torch.no_grad, "inference_mode": torch.inference_mode}
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(max(3, repeats)):
        for name, mode in modes.items():
            samples[name].append(timed(lambda mode=mode: _encode_under(autoencoder, pair, mode), CPU))
    table = Table("encoding baseline + input, once per run", ["mode", "ms"],
                  [[name, 1e3 * _median(values)] for name, values in samples.items()])
    return SectionResult([table], notes=["Paid once per run, not per step: whatever it saves is noise next to "
                                         "the path."])


def _encode_under(autoencoder: nn.Module, images: torch.Tensor, mode: Callable[[], AbstractContextManager]) -> None:
    with mode():
        autoencoder.encode(images)


def _magig(variant: Variant, image: torch.Tensor, steps: int) -> Explanation:
    return explain(image, variant.classifier, "ma-gig", autoencoder=variant.autoencoder, steps=steps,
                   precision=variant.precision)


def _eig(variant: Variant, image: torch.Tensor, steps: int) -> Explanation:
    return explain(image, variant.classifier, "eig", autoencoder=variant.autoencoder, steps=min(steps, 50),
                   precision=variant.precision)


def _gradients(variant: Variant, latent: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One path step's two gradients at a fixed latent: w.r.t. the decoded image and the latent."""
    from magig_core.attribution.model import gradient_pass, wrap_classifier

    model = wrap_classifier(variant.classifier, device=CPU, dtype=latent.dtype,
                            autocast_dtype=_dtype(variant.precision))
    point = latent.detach().clone().requires_grad_(True)
    with model.autocast():
        decoded = variant.autoencoder.decode(point)
    image = model.normalize(decoded.to(latent.dtype))
    return gradient_pass(model, image, torch.zeros(1, dtype=torch.long), "prob", [image, point]).grads


def _parting_step(candidate: Explanation, reference: Explanation, tolerance: float = 1e-5) -> int | None:
    """The first path point whose target probability differs (None: the paths never part)."""
    parted = ((candidate.path_probs - reference.path_probs).abs() > tolerance).any(dim=0).nonzero()
    return int(parted[0, 0]) if len(parted) else None


def _dtype(precision: str) -> torch.dtype | None:
    return {"fp32": None, "bf16": torch.bfloat16}[precision]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
