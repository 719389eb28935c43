"""The package as users install it: a wheel, in a fresh environment outside this checkout, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_explains_offline_with_its_bundled_models(tmp_path) -> None:
    """Catches bundled weights, examples or label files left out of the package data (only a checkout works)."""
    source = _source_tree(tmp_path / "source")
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(wheels)], cwd=tmp_path)
    env_dir = tmp_path / "env"
    _run([sys.executable, "-m", "venv", str(env_dir)], cwd=tmp_path)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co., not magig_core
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(next(wheels.glob("*.whl")))],
         cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    location = _run([str(python), "-c", "import magig_core; print(magig_core.__file__)"], cwd=work)
    assert Path(location.strip()).is_relative_to(env_dir)
    assert (Path(location.strip()).parent / "assets" / "models" / "taef2" / "LICENSE-taesd.txt").is_file()
    photo = Path(_run([str(python), "-c", "from magig_core.bundled import bundled_path; "
                       "print(bundled_path('photos', 'chelsea_cat.jpg'))"], cwd=work).strip())
    printed = _run([str(python), "-m", "magig_core", "explain", str(photo), "--methods", "ig,ma-gig", "--steps", "4",
                    "--out", "out"], cwd=work)
    assert "ma-gig" in printed and "reconstruction PSNR" in printed
    summary = json.loads((work / "out" / "chelsea_cat_summary.json").read_text())
    assert summary["methods"]["ma-gig"]["class_name"] == "cat"  # ResNet-56 at 64 px, p ≈ 1.0


@pytest.mark.slow
def test_an_editable_install_and_a_checkout_find_the_top_level_assets(tmp_path) -> None:
    """Catches asset lookup that only works in one layout: the wheel's ``magig_core/assets`` (the folder mapped
    in at build time), or a checkout's top-level ``assets/`` that an editable install leaves in place."""
    source = _source_tree(tmp_path / "source")
    env_dir = tmp_path / "env"
    # No pip or setuptools of its own: the build uses this environment's setuptools, as the wheel build does.
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp_path)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "-e", str(source)],
         cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = "from magig_core.bundled import bundled_path; print(bundled_path('photos', 'chelsea_cat.jpg'))"
    editable = Path(_run([str(python), "-c", probe], cwd=work).strip())
    assert editable == source / "assets" / "photos" / "chelsea_cat.jpg" and editable.is_file()
    checkout = Path(_run([sys.executable, "-c", probe], cwd=REPO).strip())
    assert checkout == REPO / "assets" / "photos" / "chelsea_cat.jpg" and checkout.is_file()


def _source_tree(source: Path) -> Path:
    """The files a build reads, copied so the build leaves no trace in this checkout."""
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE", "THIRD_PARTY_NOTICES.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("magig_core", "assets"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return source


def _run(command: list[str], *, cwd: Path) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PIP_NO_INDEX="1")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout
