"""The method registry's contract: every registered method works everywhere the product names methods.

A new method module inherits these checks for free: it must declare a label, hint, colour, table order
and cost, accept its aliases through ``explain()``, the CLI and ``evaluate``, and appear in the app.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import magig_core
from magig_core import METHODS, explain
from magig_core.attribution import PassCounts, all_methods, method_spec
from magig_core.attribution.registry import known_keywords
from magig_core.cli import main
from magig_core.evaluation.plan import build_jobs, parse_methods, parse_per_method
from magig_core.explorer.estimate import PassSeconds, estimate
from magig_core.explorer.settings import RunSettings
from tests.conftest import IdentityAutoencoder, small_cnn

SPECS = all_methods()
ROOT = Path(magig_core.__file__).resolve().parents[1]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_method_declares_what_the_product_shows(spec) -> None:
    assert spec.label and spec.hint and len(spec.hint) < 80
    assert re.fullmatch(r"#[0-9a-f]{6}", spec.color)
    assert spec.space in ("pixels", "latent", "none")
    assert dataclasses.is_dataclass(spec.options)
    assert spec.shared_options <= set(spec.option_names)
    passes = spec.cost(spec.options(), 1000)
    assert isinstance(passes, PassCounts) and passes.classifier_forward >= 1
    assert (passes.decoder_forward > 0) == spec.needs_autoencoder


def test_names_orders_and_colours_are_unique() -> None:
    assert tuple(spec.name for spec in SPECS) == METHODS
    for attribute in ("name", "label", "color", "paper_order"):
        values = [getattr(spec, attribute) for spec in SPECS]
        assert len(set(values)) == len(values), attribute
    paper = ("gi", "ig", "ig2", "agi", "eig", "mig", "gig", "ma-gig")
    assert [name for name in METHODS if name in paper] == list(paper)  # the paper's Table 1 rows


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_aliases_work_through_explain_and_evaluate(spec) -> None:
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for alias in (spec.name, spec.name.upper(), *spec.aliases):
        result = explain(image, small_cnn(), alias, autoencoder=IdentityAutoencoder(), steps=4,
                         references=torch.rand(2, 3, 8, 8), agi_iterations=1)
        assert result.method == spec.name
        assert parse_methods(alias.upper()) == [spec.name]


def test_the_cli_accepts_the_label_as_a_method_name(tmp_path, capsys) -> None:
    """``explain --methods MA-GIG`` once failed asking for an autoencoder although explain() knew the name."""
    assert main(["explain", "--methods", "MA-GIG,Blur-IG,latent-gig", "--steps", "4", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert " ma-gig " in printed and " blur-ig " in printed


def test_the_apps_method_list_is_the_registry() -> None:
    import app

    assert [value for _, value in app._method_choices()] == list(METHODS)
    assert all(label.startswith(method_spec(value).label) for label, value in app._method_choices())


class CountingClassifier(nn.Module):
    """Counts the images each forward pass takes and the images whose input gradient a backward pass makes."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network, self.forwards, self.backwards = network, 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards += x.shape[0]
        if x.requires_grad:
            x.register_hook(lambda grad: self._backward(grad.shape[0]))
        return self.network(x)

    def _backward(self, rows: int) -> None:
        self.backwards += rows


class CountingAutoencoder(IdentityAutoencoder):
    def __init__(self) -> None:
        self.encodes, self.decodes, self.decode_backwards = 0, 0, 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.encodes += images.shape[0]
        return super().encode(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.decodes += latents.shape[0]
        if latents.requires_grad:
            latents.register_hook(lambda grad: setattr(self, "decode_backwards", self.decode_backwards + len(grad)))
        return latents * 1.0


SETUP_FORWARDS = 2  # explain() runs the classifier once on the input and once on the baseline, for every method


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_method_s_cost_counts_the_network_passes_it_makes(spec) -> None:
    """Runs the method on one image and counts what the networks really saw against ``spec.cost``.

    Catches a cost that forgets a pass (Grad-CAM's layer-finding forward), counts a sweep the method skips or
    an image twice: the app's time estimate and its GPU request are built from these counts. MIG's
    energy threshold is 0 so that every sweep runs (its cost is the most it can spend).
    """
    classifier, autoencoder = CountingClassifier(small_cnn(num_classes=4)), CountingAutoencoder()
    steps = 8 if "steps" in spec.option_names else None
    mig = {"mig_energy_threshold": 0.0} if spec.name == "mig" else {}
    references = torch.rand(3, 3, 16, 16) if spec.draws_references else None
    explain(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)), classifier, spec.name, steps=steps,
            autoencoder=autoencoder, references=references, normalization=((0.0,) * 3, (1.0,) * 3), **mig)
    options = spec.make_options({"steps": steps, **{k.removeprefix("mig_"): v for k, v in mig.items()}})
    counted = PassCounts(classifier.forwards - SETUP_FORWARDS, classifier.backwards, autoencoder.decodes,
                         autoencoder.decode_backwards, autoencoder.encodes)
    assert counted == spec.cost(options, 4)
    seconds = estimate(RunSettings("c", "a", methods=(spec.name,), steps=10), PassSeconds(0.01, 0.02, 0.03, 0.05), 10)
    assert seconds.per_method[spec.name] > 0


def test_shared_values_reach_only_the_methods_that_share_them() -> None:
    methods = ["ig2", "eig", "ma-gig", "gig"]
    assert parse_per_method("200", "steps", methods, int) == {"eig": 200, "ma-gig": 200, "gig": 200}
    assert parse_per_method("slerp", "interpolation", methods) == {"ma-gig": "slerp"}
    assert parse_per_method("ig2=150", "steps", methods, int) == {"ig2": 150}
    assert parse_per_method("eig=slerp", "interpolation", methods) == {"eig": "slerp"}
    jobs = build_jobs(["c"], methods, common={}, steps=parse_per_method("200", "steps", methods, int),
                      fractions={}, interpolations={}, autoencoders={})
    assert {job.method: job.explain_kwargs.get("steps") for job in jobs}["ig2"] is None
    assert RunSettings("c", "a", methods=("ig2", "eig"), steps=32, interpolation="slerp").options_for("eig") == \
        {"steps": 32}


def test_unknown_keywords_are_refused_and_known_ones_listed_in_help() -> None:
    with pytest.raises(TypeError, match="unknown keyword"):
        explain(torch.rand(1, 3, 8, 8), small_cnn(), "ig", stepz=4)
    for keyword in known_keywords() - {"steps", "fraction", "interpolation", "schedule"}:
        field = keyword.split("_", 2)[-1] if keyword.count("_") else keyword
        assert field.split("_")[0] in explain.__doc__, keyword


def _method_names_in(node: ast.AST, names: set[str]) -> list[str]:
    values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [v.value for v in values if isinstance(v, ast.Constant) and str(v.value).lower() in names]


def test_explain_is_short_and_no_module_outside_the_methods_branches_on_a_method_name() -> None:
    """No ``if method == "ig2"``, no method-keyed table: such code is how the tables drifted apart."""
    assert len(inspect.getsource(explain).splitlines()) < 50
    names = {alias.lower() for spec in SPECS for alias in (spec.name, *spec.aliases)}
    allowed_tables = {"magig_core/explorer/settings.py"}  # DEFAULT_METHODS: the comparison the app opens with
    found = []
    for path in [*sorted((ROOT / "magig_core").rglob("*.py")), ROOT / "app.py"]:
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("magig_core/attribution/methods/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                hits = [n for side in (node.left, *node.comparators) for n in _method_names_in(side, names)]
            elif isinstance(node, ast.Dict):
                hits = [n for key in node.keys if key is not None for n in _method_names_in(key, names)]
            elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and relative not in allowed_tables:
                hits = _method_names_in(node, names)
                hits = hits if len(hits) > 1 else []
            else:
                continue
            found += [f"{relative}:{node.lineno} {hit!r}" for hit in hits]
    assert found == []


class _Affine(nn.Module):
    """F = <w, v>: constant gradient, so a path's sum is exactly w · (end − start)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 3 * 8 * 8, generator=torch.Generator().manual_seed(4)),
                              requires_grad=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ self.w.T


class _Shrinking:
    """A lossy autoencoder: decode(encode(x)) = 0.8 x + 0.1, so reconstructions differ from the images."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images.clone()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return 0.8 * latents + 0.1


def test_residuals_against_the_raw_images_and_against_the_paths_own_endpoints() -> None:
    """EIG's path ends at reconstructions: its path residual is 0, its completeness residual is the gap."""
    model, autoencoder = _Affine().double(), _Shrinking()
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    black = torch.zeros_like(image)
    eig = explain(image, model, "eig", autoencoder=autoencoder, steps=5, targets=[0], objective="logit")
    w = model.w[0]
    recon_gap = w @ ((0.8 * image + 0.1) - image).flatten() - w @ ((0.8 * black + 0.1) - black).flatten()
    assert eig.path_residual.item() == pytest.approx(0.0, abs=1e-9)
    assert eig.completeness_residual.item() == pytest.approx(abs(recon_gap.item()), rel=1e-9)
    anchored = explain(image, model, "ma-gig", autoencoder=autoencoder, steps=5, targets=[0], objective="logit")
    assert anchored.completeness_residual.item() == pytest.approx(0.0, abs=1e-9)
    assert anchored.path_residual.item() == pytest.approx(0.0, abs=1e-9)
