"""``python -m magig_core <command>``: each command lives in its own module under ``commands/``.

A command module exposes ``build_parser(parser)`` and ``run(args) -> int``; it is imported only when
chosen, so ``--help`` stays fast and one command's heavy imports never slow another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("magig_core.commands.explain", "explain images with one or more methods and save maps"),
    "benchmark": ("magig_core.commands.benchmark", "time MA-GIG against its per-step floor"),
    "demo-train": ("magig_core.commands.demo_train", "render the demo world and train its bundled models"),
    "evaluate": ("magig_core.commands.evaluate", "reproduce the paper's faithfulness tables (DiffID/Ins/Del)"),
    "demo-table": ("magig_core.commands.demo_table", "score all eight methods on demo images against true masks"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m magig_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.print_help() if not argv else parser.parse_args(argv)
        return 0 if not argv else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    command_parser = argparse.ArgumentParser(prog=f"python -m magig_core {name}", description=COMMANDS[name][1])
    module.build_parser(command_parser)
    args = command_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)
