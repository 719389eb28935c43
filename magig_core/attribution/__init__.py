"""Attribution engine: spaces, path rules and the integrator behind ``explain``."""

from magig_core.attribution.api import METHODS, explain
from magig_core.attribution.result import Explanation

__all__ = ["METHODS", "Explanation", "explain"]
