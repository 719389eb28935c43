"""The repository as it is pushed to a Space and installed by users: licences, notices, citation, LFS rules,
file sizes, the run-time/dev requirements split and the Space's front matter."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 10 * 1024 * 1024  # the Hub refuses larger files outside LFS
PAPER_TITLE = "Manifold-Aligned Guided Integrated Gradients for Reliable Feature Attribution"


def tracked_files() -> list[Path]:
    """What a push sends: the files git tracks (skips outside a git checkout, e.g. an unpacked sdist)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def is_binary(path: Path) -> bool:
    """git's own test: a NUL byte in the first 8000 bytes (plus anything that is not UTF-8 text)."""
    head = path.read_bytes()[:8000]
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start < len(head) - 4  # a multi-byte character cut at the 8000-byte mark is still text
    return False


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(match.group(1))


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(normalize(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_license_is_the_full_apache_2_text_and_agrees_with_the_metadata() -> None:
    """Catches a missing LICENSE, a short notice instead of the licence text, or metadata naming another licence."""
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    for phrase in ("Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION",
                   "9. Accepting Warranty or Additional Liability.", "END OF TERMS AND CONDITIONS"):
        assert phrase in text
    assert len(text.split()) > 1500  # the licence itself, not a pointer to it
    assert front_matter()["license"] == "apache-2.0"
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_every_bundled_binary_is_named_in_the_notices_with_an_existing_licence_file() -> None:
    """Catches a weight or image added to the repository without saying whose it is and under which licence."""
    notices = (REPO / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    unnamed = []
    for path in tracked_files():
        if not is_binary(path):
            continue
        relative = path.relative_to(REPO)
        folders = [str(parent) for parent in relative.parents if str(parent) != "."]
        if path.name not in notices and not any(f"{folder}/" in notices for folder in folders):
            unnamed.append(str(relative))
    assert not unnamed, f"binary files the notices do not mention: {unnamed}"
    links = re.findall(r"\]\(([^)#]+)\)", notices)
    assert links and all((REPO / link).exists() for link in links), [link for link in links
                                                                     if not (REPO / link).exists()]
    for licence in ("MIT", "BSD-2-Clause", "CC0", "GPL-2.0-or-later", "CIFAR-10"):
        assert licence in notices


def test_citation_cites_the_paper_and_the_software_and_the_readme_cites_the_paper() -> None:
    """Catches a missing or malformed CITATION.cff, or a README that never names the paper it implements."""
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["title"] and citation["authors"] and citation["license"] == "Apache-2.0"
    paper = citation["preferred-citation"]
    assert paper["title"] == PAPER_TITLE
    assert [author["family-names"] for author in paper["authors"]] == ["Kim", "Lim", "Lee", "Choi"]
    arxiv = re.search(r"\d{4}\.\d{5}", paper["url"]).group(0)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Manifold-Aligned Guided\nIntegrated Gradients" in readme or PAPER_TITLE in readme
    assert arxiv in readme and "CITATION.cff" in readme


def test_every_binary_file_has_an_lfs_rule_and_none_exceeds_10_mb() -> None:
    """Catches a binary (weights, images) the Hub would refuse as a plain git blob, or a file over its 10 MB limit.

    Binary is decided from the content, independently of the rules in .gitattributes.
    """
    files = tracked_files()
    binaries = [str(path.relative_to(REPO)) for path in files if is_binary(path)]
    assert binaries, "the repository bundles weights and images; none detected means the check is broken"
    attributes = subprocess.run(["git", "check-attr", "filter", "--stdin"], cwd=REPO, input="\n".join(binaries),
                                capture_output=True, text=True, check=True).stdout.splitlines()
    unmatched = [line.split(":")[0] for line in attributes if not line.endswith(": filter: lfs")]
    assert not unmatched, f"binary files without an LFS rule in .gitattributes: {unmatched}"
    large = [str(path.relative_to(REPO)) for path in files if path.stat().st_size > MAX_FILE_BYTES]
    assert not large, f"files over 10 MB: {large}"


def _imported_modules(paths: list[Path]) -> set[str]:
    modules = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"magig_core", "app", "__future__"}


def test_requirements_list_every_run_time_import_and_no_test_tool() -> None:
    """Catches an app import missing from requirements.txt (the Space fails to start), a test or dev tool in it
    (the Space installs what it never uses), or a run-time module importing a test-only package."""
    runtime = requirement_names(REPO / "requirements.txt")
    dev_text = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in dev_text
    dev_only = requirement_names(REPO / "requirements-dev.txt") - runtime
    assert {"pytest", "captum", "playwright", "ruff"} <= dev_only
    distributions = importlib.metadata.packages_distributions()
    sources = [REPO / "app.py", *sorted((REPO / "magig_core").rglob("*.py"))]
    imported = {module: {normalize(d) for d in distributions.get(module, [module])}
                for module in _imported_modules(sources)}
    missing = {module: dists for module, dists in imported.items() if not dists & runtime}
    assert not missing, f"imported at run time but not in requirements.txt: {missing}"
    leaking = {module: dists for module, dists in imported.items() if dists & dev_only}
    assert not leaking, f"test-only packages imported at run time: {leaking}"


def test_front_matter_matches_what_is_tested_and_preloads_only_offered_models() -> None:
    """Catches a Gradio version other than the pinned one, a Python ZeroGPU does not offer, paid hardware as the
    default, a long start-up timeout, or a preload of a repository the app does not offer (or that is gone)."""
    from magig_core.models.zoo import list_autoencoders

    meta = front_matter()
    gradio_pin = next(line for line in (REPO / "requirements.txt").read_text().splitlines()
                      if line.startswith("gradio"))
    major_minor = ".".join(meta["sdk_version"].split(".")[:2])
    assert f">={major_minor}," in gradio_pin and meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert str(meta["python_version"]) in {"3.10", "3.12"}
    assert meta["suggested_hardware"] == "cpu-basic"
    timeout = re.fullmatch(r"(\d+)([mh])", meta["startup_duration_timeout"])
    assert timeout and int(timeout.group(1)) * (60 if timeout.group(2) == "h" else 1) <= 15
    offered = {info.repo_id: info for info in list_autoencoders() if info.repo_id}
    for entry in meta["preload_from_hub"]:
        repo, *files = entry.split()
        assert repo in offered, f"{repo} is preloaded but the app offers no model from it"
        subfolder = offered[repo].subfolder
        assert all(name.startswith(f"{subfolder}/") for name in ",".join(files).split(",") if subfolder)
