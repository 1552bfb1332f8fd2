"""Model bundles and inference."""

from ._bundle import SKOPS_TRUSTED_TYPES, load_bundle, read_bundle_metadata, save_bundle
from ._custom import CustomEmotionModel, InferenceItem

__all__ = ["CustomEmotionModel", "InferenceItem", "SKOPS_TRUSTED_TYPES", "load_bundle", "read_bundle_metadata", "save_bundle"]
