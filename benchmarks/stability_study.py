"""How far one map can be trusted, and what the path-point count and averaging do to it, on the bundled real pair.

For IG, Blur IG, GIG and MA-GIG (bundled ResNet-56 + TAEF2) on gallery photographs of CIFAR-10 classes and
bundled CIFAR-10 test images, each explained for its true class:

- **points**: at 16, 32, 64, 128 and 200 path points (``--points``), DiffID (the paper's top-1 protocol and the
  probability variant) and seconds per image, on every image or on the first n where ``--images-at`` says
  so; stability (top-10 % IoU and rank correlation between the runs at N and N − 1 points) on the first
  ``--stability-images``;
- **averaging**: for each sweep of ``--sweeps`` (``N:K1/K2/…:images``), 2·max K runs per image at N, N − 1,
  …; the mean of the first K runs gives DiffID, and stability compares it with the mean of the next K
  (disjoint runs, so an average of K against an independent average of K);
- **MA-GIG − GIG** paired over images at each point count, at each K, and at equal cost: each method
  averaged over as many of its runs as fit in the time of one MA-GIG run (at most the sweep's max K).

Work is split by method, point count and chunk of images over ``--workers`` processes of one thread each.
Run: ``nice -n 10 python benchmarks/stability_study.py`` (writes benchmarks/results/stability_study.{json,md});
``--tiny`` checks the pipeline in a minute. Nothing here chooses a default: it reports.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

METHODS = ("ig", "blur-ig", "gig", "ma-gig")
POINTS = (16, 32, 64, 128, 200)
_STATE: dict = {}


def _init(size: int, photos: int, thumbnails: int, cache: Path) -> None:
    """Worker start: one thread, the bundled pair and the image set loaded once."""
    os.environ["MAGIG_THREADS"] = "1"
    import torch

    from magig_core import load_autoencoder, load_classifier
    from magig_core.data.bundled_sets import photos_and_cifar10
    from magig_core.explorer.examples import REAL_AUTOENCODER, REAL_CLASSIFIER

    torch.set_num_threads(1)
    images, labels, names = photos_and_cifar10(photos, thumbnails, size)
    _STATE.update(classifier=load_classifier(REAL_CLASSIFIER), autoencoder=load_autoencoder(REAL_AUTOENCODER),
                  images=images, labels=labels, names=names, cache=cache)


def _run(task: tuple[str, int, list[int]]) -> dict:
    """One method at one point count on some images: per-image DiffIDs, maps, attributions and seconds."""
    import torch

    from magig_core import explain
    from magig_core.metrics.stability import pixel_maps

    method, points, rows = task
    cached = _STATE["cache"] / f"{method}-{points}-{rows[0]}-{rows[-1]}.pt"
    if cached.is_file():
        return torch.load(cached, weights_only=False) | {"reused": True}
    images, labels = _STATE["images"][rows], _STATE["labels"][rows]
    started = time.perf_counter()
    result = explain(images, _STATE["classifier"], method, autoencoder=_STATE["autoencoder"], targets=labels,
                     steps=points)
    seconds = (time.perf_counter() - started) / len(rows)
    record = {"method": method, "points": points, "rows": rows, "seconds": seconds,
              **_scores(result.attributions, images, labels),
              "maps": pixel_maps(result.attributions).numpy(), "attributions": result.attributions.numpy()}
    torch.save(record, cached)
    return record


def _scores(attributions, images, labels) -> dict:
    from magig_core.metrics import faithfulness

    scores = faithfulness(_STATE["classifier"], images, attributions, labels)
    prob = scores.insertion_prob.double().mean(1) - scores.deletion_prob.double().mean(1)
    return {"diffid_top1": scores.image_diffid.tolist(), "diffid_prob": prob.tolist()}


def _score_task(task: tuple[list[int], object]) -> dict:
    import torch

    rows, attributions = task
    return _scores(torch.as_tensor(attributions), _STATE["images"][rows], _STATE["labels"][rows])


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return (values[0] if values else float("nan")), float("nan")
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _fmt(pair: tuple[float, float]) -> str:
    mean, se = pair
    return f"{mean:+.3f} ± {se:.3f}" if not math.isnan(se) else f"{mean:+.3f}"


def _pairs(maps_a, maps_b) -> tuple[list[float], list[float]]:
    """Per-image IoU and rank correlation of two map stacks [B,H,W]."""
    import torch

    from magig_core.metrics.stability import stability

    agreement = stability(torch.stack([torch.as_tensor(maps_a), torch.as_tensor(maps_b)]).unsqueeze(2))
    return agreement.iou.tolist(), agreement.rank.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8, help="gallery photographs of CIFAR-10 classes (at most)")
    parser.add_argument("--thumbnails", type=int, default=42, help="bundled CIFAR-10 test images")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--points", default=",".join(map(str, POINTS)))
    parser.add_argument("--images-at", default="",
                        help="fewer images at these point counts (N:images,...); the others use every image")
    parser.add_argument("--stability-images", type=int, default=50)
    parser.add_argument("--sweeps", default="32:1/2/4/8:50,200:1/2/4:50",
                        help="averaging sweeps N:K1/K2/...:images (2·max K runs per image at N, N − 1, ...)")
    parser.add_argument("--chunk", type=int, default=5, help="images per explain() call (lockstep batch)")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--tiny", action="store_true", help="3 images, 8 and 9 points, K up to 2: a pipeline check")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stability_study"))
    parser.add_argument("--cache", type=Path, default=Path("runs/stability_study"),
                        help="each finished run is kept here; a rerun with the same size reuses it")
    args = parser.parse_args()
    points = [8, 9] if args.tiny else [int(p) for p in args.points.split(",")]
    if args.tiny:
        args.photos, args.thumbnails, args.stability_images = 1, 2, 2
        args.images_at, args.sweeps = "9:2", "8:1/2:2"
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    cache = args.cache / f"{args.size}px-{args.photos}p-{args.thumbnails}t" if not args.tiny else args.cache / "tiny"
    cache.mkdir(parents=True, exist_ok=True)
    initargs = (args.size, args.photos, args.thumbnails, cache)
    with context.Pool(args.workers, initializer=_init, initargs=initargs) as pool:
        names = pool.apply(_image_names)
        count = len(names)
        stable = min(args.stability_images, count)
        fewer = dict(tuple(int(v) for v in item.split(":")) for item in args.images_at.split(",") if item)
        images_at = {n: min(fewer.get(n, count), count) for n in points}
        sweeps = _sweeps(args.sweeps, count)
        tasks = _tasks(images_at, stable, sweeps, args.chunk)
        done = {}
        reused = 0
        for result in pool.imap_unordered(_run, tasks):
            reused += result.get("reused", False)
            for i, row in enumerate(result["rows"]):
                done[(result["method"], result["points"], row)] = {
                    key: result[key][i] for key in ("diffid_top1", "diffid_prob", "maps", "attributions")
                } | {"seconds": result["seconds"]}
            print(f"{len(done)} runs, {time.perf_counter() - started:.0f} s: {result['method']} "
                  f"{result['points']} points, {result['seconds']:.2f} s/image", flush=True)
        report = _analyse(done, pool, images_at, stable, sweeps)
    report["setup"] = {"images": count, "images_at": images_at, "photos": sum("/" not in n for n in names),
                       "names": names,
                       "size": args.size, "stability_images": stable,
                       "workers": args.workers, "threads_per_worker": 1, "chunk": args.chunk,
                       "seconds": time.perf_counter() - started, "tasks": len(tasks), "reused_tasks": reused,
                       "command": " ".join(["nice -n 10 python benchmarks/stability_study.py", *sys.argv[1:]])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = args.out.with_name(args.out.name + ("_tiny" if args.tiny else ""))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    markdown = _markdown(report)
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


def _image_names() -> list[str]:
    return list(_STATE["names"])


def _sweeps(spec: str, count: int) -> dict[int, dict]:
    """``N:K1/K2/…:images,…`` as {N: {"ks": [K…], "images": n}}."""
    sweeps = {}
    for item in spec.split(","):
        n, ks, images = item.split(":")
        sweeps[int(n)] = {"ks": sorted(int(k) for k in ks.split("/")), "images": min(int(images), count)}
    return sweeps


def _tasks(images_at: dict[int, int], stable: int, sweeps: dict[int, dict],
           chunk: int) -> list[tuple[str, int, list[int]]]:
    """Every (method, point count, images) run the tables need, each once: the short point counts, the
    N − 1 runs for stability, the runs of the averaging sweep, then the long point counts."""
    needed: dict[tuple[str, int], set[int]] = {}
    for n in sorted(images_at):
        for m in METHODS:
            needed.setdefault((m, n), set()).update(range(images_at[n]))
            needed.setdefault((m, n - 1), set()).update(range(min(stable, images_at[n])))
    for n, sweep in sweeps.items():
        for r in range(2 * max(sweep["ks"])):
            for m in METHODS:
                needed.setdefault((m, n - r), set()).update(range(sweep["images"]))
    longest = max(images_at, key=lambda n: (images_at[n] == max(images_at.values()), n))
    order = sorted(needed, key=lambda key: key[1] > longest)
    return [(m, n, rows[i:i + chunk]) for m, n in order for rows in [sorted(needed[(m, n)])]
            for i in range(0, len(rows), chunk)]


def _analyse(done: dict, pool, images_at: dict[int, int], stable: int, sweeps: dict[int, dict]) -> dict:
    import numpy as np

    report: dict = {"points": {}, "sweeps": {}}
    for n, count in sorted(images_at.items()):
        row = {}
        for m in METHODS:
            runs = [done[(m, n, i)] for i in range(count)]
            again = [done[(m, n - 1, i)] for i in range(min(stable, count))]
            iou, rank = _pairs(np.stack([r["maps"] for r in runs[:len(again)]]), np.stack([r["maps"] for r in again]))
            row[m] = {"diffid_top1": [r["diffid_top1"] for r in runs], "diffid_prob": [r["diffid_prob"] for r in runs],
                      "seconds": statistics.fmean(r["seconds"] for r in runs), "stability_iou": iou,
                      "stability_rank": rank}
        report["points"][n] = row
    for n, sweep in sweeps.items():
        report["sweeps"][n] = _sweep(done, pool, n, sweep["ks"], sweep["images"])
    return report


def _sweep(done: dict, pool, n: int, ks: Sequence[int], images: int) -> dict:
    """One averaging sweep at N points: per K the mean of runs 1…K scored, and compared with runs K+1…2K."""
    import numpy as np

    runs = 2 * max(ks)
    seconds = {m: statistics.fmean(done[(m, n - r, i)]["seconds"] for r in range(runs) for i in range(images))
               for m in METHODS}
    result: dict = {"images": images, "ks": list(ks), "k": {}, "equal_cost": {}, "seconds_per_run": seconds}
    averages: dict = {}
    tasks = []
    for m in METHODS:
        stack = np.stack([[done[(m, n - r, i)]["attributions"] for i in range(images)]
                          for r in range(runs)])  # [runs, B, 3, H, W]
        equal = max(1, min(max(ks), int(seconds["ma-gig"] // seconds[m])))
        for k in sorted(set(ks) | {equal}):
            first, second = stack[:k].mean(0), stack[k:2 * k].mean(0)
            averages[(m, k)] = (first, second)
            tasks.append((list(range(images)), first))
        result["equal_cost"][m] = {"runs": equal, "seconds": seconds[m] * equal}
    scored = pool.map(_score_task, tasks)
    for (key, (first, second)), scores in zip(averages.items(), scored, strict=True):
        m, k = key
        iou, rank = _pairs(np.abs(first).sum(1), np.abs(second).sum(1))
        result["k"].setdefault(k, {})[m] = {**scores, "stability_iou": iou, "stability_rank": rank,
                                            "seconds": seconds[m] * k}
    return result


def _markdown(report: dict) -> str:
    setup = report["setup"]
    lines = [f"Bundled ResNet-56 + TAEF2, {setup['size']} px, {setup['images']} images ({setup['photos']} gallery "
             f"photographs, the rest bundled CIFAR-10 test images), true-class targets; {setup['workers']} "
             f"processes × {setup['threads_per_worker']} thread; run time {setup['seconds'] / 60:.1f} min "
             f"({setup.get('reused_tasks', 0)} of {setup.get('tasks', '?')} tasks reused from the cache of earlier "
             "invocations). "
             f"Command: `{setup['command']}`.", "",
             f"**Against path points.** DiffID per image, mean ± s.e. over the images of the row (the first n of "
             f"the set); stability (runs at N and N − 1 points) on the first {setup['stability_images']}; seconds "
             f"per image in batches of up to {setup['chunk']}, one thread.", "",
             "| points | images | method | DiffID top-1 | DiffID prob | stability IoU | stability rank | s / image |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, row in report["points"].items():
        for m in METHODS:
            r = row[m]
            lines.append(f"| {n} | {setup['images_at'][n]} | {m} | {_fmt(_mean_se(r['diffid_top1']))} | "
                         f"{_fmt(_mean_se(r['diffid_prob']))} | "
                         f"{_fmt(_mean_se(r['stability_iou']))} | {_fmt(_mean_se(r['stability_rank']))} | "
                         f"{r['seconds']:.2f} |")
    lines += ["", "**MA-GIG − GIG, paired over images.**", "",
              "| setting | DiffID top-1 | DiffID prob |", "| --- | --- | --- |"]
    for n, row in report["points"].items():
        lines.append(f"| {n} points, one run ({setup['images_at'][n]} images) | {_diff(row, 'diffid_top1')} | "
                     f"{_diff(row, 'diffid_prob')} |")
    for n, sweep in report["sweeps"].items():
        for k, row in sorted(sweep["k"].items(), key=lambda item: int(item[0])):
            if int(k) in sweep["ks"]:
                lines.append(f"| {n} points, mean of {k} ({sweep['images']} images) | {_diff(row, 'diffid_top1')} | "
                             f"{_diff(row, 'diffid_prob')} |")
        equal = sweep["equal_cost"]["gig"]["runs"]
        at_cost = {"ma-gig": _at(sweep, 1)["ma-gig"], "gig": _at(sweep, equal)["gig"]}
        lines.append(f"| equal cost at {n} points: GIG mean of {equal} vs one MA-GIG run | "
                     f"{_diff(at_cost, 'diffid_top1')} | {_diff(at_cost, 'diffid_prob')} |")
    for n, sweep in report["sweeps"].items():
        lines += ["", f"**Against averaging at {n} points** ({sweep['images']} images, runs at {n}, {n - 1}, … "
                  "points; stability: the mean of runs 1…K against the mean of runs K+1…2K).", "",
                  "| K | method | DiffID top-1 | DiffID prob | stability IoU | stability rank | s / image |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for k in sweep["ks"]:
            for m in METHODS:
                r = _at(sweep, k)[m]
                lines.append(f"| {k} | {m} | {_fmt(_mean_se(r['diffid_top1']))} | "
                             f"{_fmt(_mean_se(r['diffid_prob']))} | {_fmt(_mean_se(r['stability_iou']))} | "
                             f"{_fmt(_mean_se(r['stability_rank']))} | {r['seconds']:.2f} |")
        lines += ["", f"Equal cost at {n} points (runs of each method that fit in one MA-GIG run's time): "
                  + ", ".join(f"{m} {sweep['equal_cost'][m]['runs']}" for m in METHODS) + "."]
    return "\n".join(lines) + "\n"


def _at(sweep: dict, k: int) -> dict:
    """The sweep's row for K (keys are strings once the report went through JSON)."""
    return sweep["k"][k] if k in sweep["k"] else sweep["k"][str(k)]


def _diff(row: dict, key: str) -> str:
    return _fmt(_mean_se([a - b for a, b in zip(row["ma-gig"][key], row["gig"][key], strict=True)]))


if __name__ == "__main__":
    main()
