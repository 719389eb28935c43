"""``python -m magig_core <command>``: each command lives in its own module under ``commands/``.

A command module exposes ``build_parser(parser)`` and ``run(args) -> int``; it is imported only when
chosen, so ``--help`` stays fast and one command's heavy imports never slow another.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys

from magig_core import runtime

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
    with contextlib.suppress(argparse.ArgumentError):  # demo-train/-table keep their own reproducible default
        command_parser.add_argument(
            "--threads", type=int, default=None,
            help=f"CPU threads per run (default: ${runtime.THREADS_ENV}, else $OMP_NUM_THREADS, else the "
                 f"available cores divided by ${runtime.RUNS_ENV} or by torchrun's processes on this machine)")
    args = command_parser.parse_args(argv[1:])
    runtime.configure_threads(threads=args.threads)
    return int(module.run(args) or 0)
