"""Help texts of the options one value can set for several methods, built from the methods' own defaults.

The registry knows which methods read ``--steps``, ``--fraction`` and ``--interpolation`` and what each
defaults to; restating "gig=0.1,ma-gig=0.05" by hand would go stale the day a default changes.
"""

from __future__ import annotations

from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.attribution.registry import option_defaults


def steps_help() -> str:
    shared = sorted({default for _, default in option_defaults("steps")})
    kept = ", ".join(f"{spec.label} keeps its {default}" for spec, default in option_defaults("steps", shared=False))
    return (f"path points: N for every method with a path ({kept}), or method=N,... "
            f"(default: the paper's, {'/'.join(map(str, shared))})")


def fraction_help() -> str:
    defaults = option_defaults("fraction")
    labels = " and ".join(spec.label for spec, _ in defaults)
    pairs = ",".join(f"{spec.name}={default}" for spec, default in defaults)
    return f"guided selection fraction: F for {labels}, or {pairs} (the defaults)"


def interpolation_help() -> str:
    labels = " and ".join(f"{spec.label}" for spec, _ in option_defaults("interpolation"))
    kept = option_defaults("interpolation", shared=False)
    named = ", ".join(f"{spec.name}={INTERPOLATIONS[-1]}" for spec, _ in kept)
    return (f"{' or '.join(INTERPOLATIONS)} for {labels}'s partial moves, or method=VALUE"
            + (f" (e.g. {named}: a single value leaves it at its own)" if kept else ""))
