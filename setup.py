"""Package layout that pyproject.toml cannot express: the top-level assets/ folder (weights, photographs,
CIFAR-10 images) is shipped inside the package as ``magig_core/assets``, next to every discovered module."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["magig_core", "magig_core.*"]), "magig_core.assets"],
    package_dir={"magig_core.assets": "assets"},
)
