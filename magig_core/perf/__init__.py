"""Benchmarks: MA-GIG's step against its floor, the GPU check, CPU tricks for talks, CPU contention."""

from magig_core.perf.networks import resnet18_classifier, sd_config_autoencoder
from magig_core.perf.step import BenchmarkResult, run_benchmark

__all__ = ["BenchmarkResult", "resnet18_classifier", "run_benchmark", "sd_config_autoencoder"]
