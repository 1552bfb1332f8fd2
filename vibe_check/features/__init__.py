"""Named acoustic features: prosody, voice quality, energy, timing, contour, spectral, cepstral, mel, chroma, covariation."""

from ._config import FEATURE_GROUPS, FEATURE_SET_VERSION, FeatureConfig
from ._contour import contour_features
from ._covariation import covariation_features, frame_descriptors
from ._extractor import FeatureExtractor, SignalInfo, describe_features, estimate_snr
from ._functionals import FUNCTIONALS, summarize
from ._manifest import METADATA_COLUMNS, build_manifest, feature_columns, file_sha256, load_manifest, manifest_errors, write_manifest
from ._prosody import pitch_track, prosody_features, timing_features, voice_quality_features
from ._spectral import (
    cepstral_features,
    chroma_features,
    contrast_features,
    energy_features,
    mel_features,
    power_spectrogram,
    spectral_features,
)

__all__ = [
    "FEATURE_GROUPS",
    "FEATURE_SET_VERSION",
    "FUNCTIONALS",
    "FeatureConfig",
    "METADATA_COLUMNS",
    "build_manifest",
    "feature_columns",
    "file_sha256",
    "load_manifest",
    "manifest_errors",
    "write_manifest",
    "FeatureExtractor",
    "SignalInfo",
    "cepstral_features",
    "chroma_features",
    "contour_features",
    "contrast_features",
    "covariation_features",
    "frame_descriptors",
    "describe_features",
    "energy_features",
    "estimate_snr",
    "mel_features",
    "pitch_track",
    "power_spectrogram",
    "prosody_features",
    "spectral_features",
    "summarize",
    "timing_features",
    "voice_quality_features",
]
