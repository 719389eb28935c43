"""Every command speaks the same options the same way: ``--methods`` as one comma list with aliases and
``all``, ``--device`` defaulting to CUDA when present, and outputs written under the working folder."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

import magig_core
from magig_core import METHODS
from magig_core.cli import COMMANDS
from magig_core.evaluation.plan import parse_methods


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = {}
    for name, (module, _) in COMMANDS.items():
        parser = argparse.ArgumentParser(prog=name)
        importlib.import_module(module).build_parser(parser)
        for action in parser._actions:  # read one option at a time
            action.required = False
        parsers[name] = parser
    return parsers


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_methods_is_one_comma_list_with_aliases_and_all_in_every_command() -> None:
    """Catches a command that takes space-separated names (``nargs``) or a closed ``choices`` list, where
    ``ma_gig,IG`` or ``all`` would be refused or read as one unknown name."""
    with_methods = {name: p for name, p in _parsers().items() if _option(p, "--methods") is not None}
    assert {"explain", "evaluate", "demo-table"} <= set(with_methods)
    for name, parser in with_methods.items():
        action = _option(parser, "--methods")
        assert action.nargs is None and action.choices is None, name
        assert parse_methods(action.default), name  # the default itself is valid syntax
        assert parse_methods(parser.parse_args(["--methods", "MA_GIG,ig"]).methods) == ["ma-gig", "ig"], name
        assert parse_methods(parser.parse_args(["--methods", "all"]).methods) == list(METHODS), name


def test_device_defaults_to_cuda_when_present_in_every_command() -> None:
    """Catches a command that pins the CPU (or its own spelling such as ``auto``) as its default device."""
    with_device = {name: p for name, p in _parsers().items() if _option(p, "--device") is not None}
    assert {"explain", "evaluate", "demo-table", "benchmark"} <= set(with_device)
    for name, parser in with_device.items():
        action = _option(parser, "--device")
        assert action.default is None and "cuda when available" in action.help, name


def test_demo_table_writes_under_runs_by_default_never_into_the_package() -> None:
    """Catches a default output path inside the installed package (or the repository's docs)."""
    parser = _parsers()["demo-table"]
    out = parser.parse_args([]).out
    assert out == Path("runs") / "demo_table.md" and not out.is_absolute()
    package = Path(magig_core.__file__).resolve().parent
    with pytest.raises(ValueError):
        out.resolve().relative_to(package)
