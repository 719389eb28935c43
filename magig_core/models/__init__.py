"""The model zoo: classifiers and autoencoders by name, cached, with clear errors when weights are missing."""

from magig_core.errors import WeightsUnavailableError
from magig_core.models.autoencoders import load_autoencoder
from magig_core.models.classifiers import load_classifier
from magig_core.models.devices import default_device
from magig_core.models.diffusers_autoencoder import DiffusersAutoencoder
from magig_core.models.image_classifier import ImageClassifier
from magig_core.models.mar import convert_mar_state_dict
from magig_core.models.model_cache import clear_model_cache, set_cache_size
from magig_core.models.taef2 import TAEF2Autoencoder
from magig_core.models.zoo import (
    AUTOENCODERS,
    CLASSIFIERS,
    ModelInfo,
    cpu_seconds_per_step,
    list_autoencoders,
    list_classifiers,
    model_info,
)

__all__ = [
    "AUTOENCODERS",
    "CLASSIFIERS",
    "DiffusersAutoencoder",
    "ImageClassifier",
    "ModelInfo",
    "TAEF2Autoencoder",
    "WeightsUnavailableError",
    "clear_model_cache",
    "convert_mar_state_dict",
    "cpu_seconds_per_step",
    "default_device",
    "list_autoencoders",
    "list_classifiers",
    "load_autoencoder",
    "load_classifier",
    "model_info",
    "set_cache_size",
]
