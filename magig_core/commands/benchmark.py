"""``python -m magig_core benchmark``: MA-GIG's cost per step against its floor, batched vs one by one."""

from __future__ import annotations

import argparse
import json


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--steps", type=int, default=20, help="path points N (default 20)")
    parser.add_argument("--batch", type=int, default=4, help="batch size for the batched run (default 4)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of the floor measurement")
    parser.add_argument("--tiny", action="store_true", help="a tiny autoencoder instead of SD's (smoke test)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the numbers to this file")


def run(args: argparse.Namespace) -> int:
    from magig_core.benchmark import run_benchmark

    result = run_benchmark(
        size=args.size, steps=args.steps, batch=args.batch, device=args.device, tiny=args.tiny, repeats=args.repeats
    )
    print(result.table())
    if args.json_path:
        numbers = {**result.__dict__, "step_ratio": result.step_ratio, "batch_speedup": result.batch_speedup}
        with open(args.json_path, "w") as handle:
            json.dump(numbers, handle, indent=2)
    return 0
