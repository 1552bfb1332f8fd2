"""Model bundles and inference."""

from ._bundle import SKOPS_TRUSTED_TYPES, load_bundle, read_bundle_metadata, save_bundle

__all__ = ["SKOPS_TRUSTED_TYPES", "load_bundle", "read_bundle_metadata", "save_bundle"]
