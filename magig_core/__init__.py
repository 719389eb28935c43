"""MA-GIG Explorer: Manifold-Aligned Guided Integrated Gradients and its baselines."""

from magig_core.runtime import prefer_passive_wait

prefer_passive_wait()  # before the imports below load torch and OpenMP: see magig_core.runtime

from magig_core.attribution import (  # noqa: E402
    METHODS,
    Explanation,
    MethodSpec,
    all_methods,
    explain,
    method_spec,
)
from magig_core.errors import MagigError  # noqa: E402
from magig_core.models import (  # noqa: E402
    ImageClassifier,
    WeightsUnavailableError,
    list_autoencoders,
    list_classifiers,
    load_autoencoder,
    load_classifier,
)

__all__ = [
    "METHODS",
    "Explanation",
    "ImageClassifier",
    "MagigError",
    "MethodSpec",
    "WeightsUnavailableError",
    "all_methods",
    "explain",
    "list_autoencoders",
    "list_classifiers",
    "load_autoencoder",
    "load_classifier",
    "method_spec",
]
__version__ = "0.1.0"
