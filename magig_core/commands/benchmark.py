"""``python -m magig_core benchmark``: how fast the engine runs, and whether it runs right on a device.

``--suite step`` (default): MA-GIG's cost per step against its floor, batched vs one by one.
``--suite gpu``: the device check (equality with the CPU, precision errors, per-step cost, throughput,
memory, every method's seconds per image); shrinks itself to a CPU smoke test without CUDA.
``--suite cpu``: eager against channels_last, torch.compile and the other CPU tricks, in the talk setting.
``--suite contention``: thread counts and OpenMP wait policies with and without a CPU-burning neighbour.
``--suite real``: MA-GIG on the bundled real pair at 64 and 128 px (step against its floor, seconds per
image) and the app's time estimate against the measured run.
The last four write JSON + Markdown named by suite, date and device into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SUITES = ("step", "gpu", "cpu", "contention", "real")


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", choices=SUITES, default="step", help="what to measure (default step)")
    parser.add_argument("--size", type=int, default=None,
                        help="image side in pixels (step: 128; cpu and contention: 64; real: 64 and 128)")
    parser.add_argument("--steps", type=int, default=None,
                        help="path points N (step: 20; cpu: 200; contention: 24)")
    parser.add_argument("--batch", type=int, default=4, help="batch size for the step suite's batched run")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per timing (median)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke test that runs anywhere in seconds")
    parser.add_argument("--budget", type=float, default=None,
                        help="gpu suite: seconds after which remaining sections are skipped (default 420)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="folder for the JSON and Markdown reports (default benchmarks/results)")
    parser.add_argument("--json", dest="json_path", default=None, help="step suite: also write the numbers here")


def run(args: argparse.Namespace) -> int:
    if args.suite == "step":
        return _step(args)
    if args.suite == "gpu":
        from magig_core.perf.gpu_suite import DEFAULT_BUDGET_SECONDS, run_gpu_suite

        report = run_gpu_suite(args.out, device=args.device, tiny=args.tiny,
                               budget_seconds=args.budget if args.budget is not None else DEFAULT_BUDGET_SECONDS)
    elif args.suite == "cpu":
        from magig_core.perf.cpu_tricks import run_cpu_suite

        report = run_cpu_suite(args.out, size=args.size, steps=args.steps, repeats=args.repeats, tiny=args.tiny)
    elif args.suite == "real":
        from magig_core.perf.real_pair import run_real_suite

        report = run_real_suite(args.out, sizes=(args.size,) if args.size else None, steps=args.steps,
                                repeats=args.repeats, tiny=args.tiny)
    else:
        from magig_core.perf.contention import run_contention_suite

        report = run_contention_suite(args.out, size=args.size, steps=args.steps, repeats=args.repeats,
                                      tiny=args.tiny)
    print(report.markdown_path.read_text())
    print(f"Wrote {report.json_path} and {report.markdown_path}")
    failed = [name for name, section in report.sections.items() if section["status"] == "error"]
    return 1 if failed else 0


def _step(args: argparse.Namespace) -> int:
    from magig_core.perf import run_benchmark

    result = run_benchmark(size=args.size or 128, steps=args.steps or 20, batch=args.batch, device=args.device,
                           tiny=args.tiny, repeats=args.repeats or 3)
    print(result.table())
    if args.json_path:
        numbers = {**result.__dict__, "step_ratio": result.step_ratio, "batch_speedup": result.batch_speedup}
        with open(args.json_path, "w") as handle:
            json.dump(numbers, handle, indent=2)
    return 0
