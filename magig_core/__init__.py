"""MA-GIG Explorer: Manifold-Aligned Guided Integrated Gradients and its baselines."""

from magig_core.attribution import METHODS, Explanation, explain
from magig_core.models import (
    WeightsUnavailableError,
    list_autoencoders,
    list_classifiers,
    load_autoencoder,
    load_classifier,
)

__all__ = [
    "METHODS",
    "Explanation",
    "WeightsUnavailableError",
    "explain",
    "list_autoencoders",
    "list_classifiers",
    "load_autoencoder",
    "load_classifier",
]
__version__ = "0.1.0"
