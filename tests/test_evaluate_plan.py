"""Option parsing, job configuration hashes and the Table 1 Markdown layout."""

from __future__ import annotations

import numpy as np
import pytest

from magig_core.evaluation.plan import (
    PlanError,
    build_jobs,
    parse_methods,
    parse_per_method,
    require_autoencoders,
)
from magig_core.evaluation.summary import add_paired_differences, markdown_table, uncertainty_table

METHODS = ["ma-gig", "ig", "gig", "eig"]


def test_per_method_values() -> None:
    assert parse_per_method("0.05", "fraction", METHODS, float) == {"ma-gig": 0.05, "gig": 0.05}
    assert parse_per_method("gig=0.1,ma-gig=0.05", "fraction", METHODS, float) == {"gig": 0.1, "ma-gig": 0.05}
    assert parse_per_method("50", "steps", METHODS, int) == {m: 50 for m in METHODS}
    assert parse_per_method(None, "steps", METHODS, int) == {}
    with pytest.raises(PlanError, match="does not apply to ig"):
        parse_per_method("ig=0.1", "fraction", METHODS, float)
    with pytest.raises(PlanError, match="method=value"):
        parse_per_method("0.1,0.2", "fraction", METHODS, float)
    with pytest.raises(PlanError, match="--steps"):
        parse_per_method("many", "steps", METHODS, int)


def test_methods_accept_aliases_and_reject_unknown_names() -> None:
    assert parse_methods("IG, magig ,ig") == ["ig", "ma-gig"]
    with pytest.raises(PlanError, match="unknown method"):
        parse_methods("ig,lime")
    with pytest.raises(PlanError, match="eig needs an autoencoder"):
        require_autoencoders(["ig", "eig"], {})


def test_jobs_follow_the_paper_row_order_and_hash_their_settings() -> None:
    common = {"seed": 0, "imputation": "mean"}
    kwargs = {"steps": {"ig": 10}, "fractions": {"ma-gig": 0.05}, "interpolations": {},
              "autoencoders": {"ma-gig": "mar", "eig": "sd2"}}
    jobs = build_jobs(["resnet18", "vgg16"], METHODS, common=common, **kwargs)
    assert [(j.classifier, j.method) for j in jobs[:4]] == [("resnet18", m) for m in ("ig", "eig", "gig", "ma-gig")]
    assert jobs[0].explain_kwargs == {"steps": 10} and jobs[3].explain_kwargs == {"fraction": 0.05}
    assert len({j.hash for j in jobs}) == 8
    again = build_jobs(["resnet18", "vgg16"], METHODS, common=common, **kwargs)
    assert [j.hash for j in again] == [j.hash for j in jobs]
    other = build_jobs(["resnet18"], ["ig"], common={**common, "seed": 1}, **kwargs)
    assert other[0].hash != jobs[0].hash
    with pytest.raises(PlanError, match="steps"):
        build_jobs(["resnet18"], ["ig"], common=common, **{**kwargs, "steps": {"ig": 1}})


def test_markdown_table_layout() -> None:
    rows = [
        {"classifier": c, "method": m, "diffid_top1": d, "insertion_top1": i, "deletion_top1": i - d, "images": 500}
        for c, m, d, i in [("resnet18", "gig", 0.25, 0.33), ("resnet18", "ma-gig", 0.27, 0.34),
                           ("vgg16", "gig", 0.28, 0.34), ("vgg16", "ma-gig", 0.33, 0.38)]
    ]
    table = markdown_table(rows, [0.1, 0.5], "imagenet").strip().splitlines()
    assert table[0] == "**imagenet**"
    assert table[2] == ("| Method | resnet18 DiffID top-1 ↑ | resnet18 Insertion top-1 ↑ | resnet18 Deletion top-1 ↓ | "
                        "vgg16 DiffID top-1 ↑ | vgg16 Insertion top-1 ↑ | vgg16 Deletion top-1 ↓ |")
    assert table[4] == "| GIG | 0.2500 | 0.3300 | 0.0800 | 0.2800 | 0.3400 | 0.0600 |"
    assert table[5] == "| MA-GIG | **0.2700** | 0.3400 | 0.0700 | **0.3300** | 0.3800 | 0.0500 |"
    assert "500 images" in table[-1] and "0.1, 0.5" in table[-1]


def test_paired_differences_and_standard_errors_against_numpy() -> None:
    """Pairing is by image: a table that subtracted the two means' errors, or unpaired images, would differ."""
    diffids = {"gig": [0.1, 0.3, 0.5, -0.2], "ma-gig": [0.2, 0.3, 0.8, 0.1]}
    results = [{"classifier": "c", "method": m, "images": 4, "diffid_top1": float(np.mean(v)),
                "diffid_top1_se": float(np.std(v, ddof=1) / 2), "image_diffid_top1": dict(zip("dcba", v, strict=True))}
               for m, v in diffids.items()]
    results[1]["image_diffid_top1"] = dict(zip("dcba", diffids["ma-gig"], strict=True))
    add_paired_differences(results, "ma-gig")
    differences = np.subtract(diffids["gig"], diffids["ma-gig"])
    assert results[0]["paired_diffid_top1"] == pytest.approx(differences.mean())
    assert results[0]["paired_diffid_top1_se"] == pytest.approx(differences.std(ddof=1) / np.sqrt(4))
    assert "paired_diffid_top1" not in results[1]
    lines = uncertainty_table(results).splitlines()
    assert lines[0] == ("| Method | Classifier | images | DiffID top-1 ± s.e. | "
                        "paired Δ DiffID top-1 vs MA-GIG ± s.e. |")
    se = differences.std(ddof=1) / 2
    assert lines[2] == (f"| GIG | c | 4 | {np.mean(diffids['gig']):.4f} ± {np.std(diffids['gig'], ddof=1) / 2:.4f} | "
                        f"{differences.mean():+.4f} ± {se:.4f} |")
    assert lines[3].endswith("| – |")


def test_all_means_every_registered_method() -> None:
    from magig_core import METHODS

    assert parse_methods("all") == list(METHODS)
