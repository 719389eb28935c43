"""Attribution engine: spaces, path rules, the integrator, the method registry and ``explain``."""

from magig_core.attribution.api import METHODS, explain
from magig_core.attribution.registry import MethodSpec, PassCounts, all_methods, method_spec
from magig_core.attribution.result import Explanation, MethodOutput

__all__ = [
    "METHODS", "Explanation", "MethodOutput", "MethodSpec", "PassCounts", "all_methods", "explain", "method_spec",
]
