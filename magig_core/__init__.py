"""MA-GIG Explorer: Manifold-Aligned Guided Integrated Gradients and its baselines."""

from magig_core.attribution import METHODS, Explanation, explain

__all__ = ["METHODS", "Explanation", "explain"]
__version__ = "0.1.0"
