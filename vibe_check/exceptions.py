"""The package's own exception family.

Every error raised on purpose by vibe-check derives from :class:`VibeCheckError`, so callers can
catch one type. Each subclass also derives from the closest built-in (``ValueError``,
``FileNotFoundError``...) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "VibeCheckError",
    "AudioError",
    "AudioFileNotFoundError",
    "AudioDecodeError",
    "EmptyAudioError",
    "InvalidAudioError",
    "NoSpeechError",
    "AudioTooLongError",
    "DatasetError",
    "DownloadError",
    "ChecksumError",
    "UnsafeArchiveError",
    "FilenameError",
    "BundleError",
    "BundleIntegrityError",
    "IncompatibleBundleError",
    "UntrustedBundleError",
    "LeakageError",
    "SpeakerReferenceError",
]


class VibeCheckError(Exception):
    """Base class of every error vibe-check raises on purpose."""


# -- audio input ------------------------------------------------------------------------------
class AudioError(VibeCheckError, ValueError):
    """The audio given cannot be used."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio path does not exist."""


class AudioDecodeError(AudioError):
    """The file exists but is not audio soundfile can decode (corrupt or another file type)."""


class EmptyAudioError(AudioError):
    """The file or array holds no samples."""


class InvalidAudioError(AudioError):
    """The samples are unusable (NaN/inf, wrong shape or dtype, bad sample rate)."""


class NoSpeechError(AudioError):
    """Silence, or too little sound left after trimming to hold speech."""


class AudioTooLongError(AudioError):
    """The audio is longer than the configured maximum duration."""


# -- datasets -----------------------------------------------------------------------------------
class DatasetError(VibeCheckError):
    """A corpus folder or manifest is missing or unusable."""


class DownloadError(DatasetError):
    """The corpus could not be downloaded."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected checksum."""


class UnsafeArchiveError(DatasetError):
    """An archive holds an absolute path, a ``..`` component or a link."""


class FilenameError(DatasetError, ValueError):
    """A file name does not follow the RAVDESS 7-part scheme."""


# -- bundles ------------------------------------------------------------------------------------
class BundleError(VibeCheckError):
    """A model bundle cannot be written or loaded."""


class BundleIntegrityError(BundleError):
    """A bundle's content does not match the SHA-256 recorded beside it."""


class IncompatibleBundleError(BundleError):
    """A bundle was made with another feature definition or incompatible library versions."""


class UntrustedBundleError(BundleError):
    """A ``.skops`` bundle holds types outside the package's allow-list."""


class SpeakerReferenceError(VibeCheckError, ValueError):
    """A speaker-normalised model has no (or too few usable) reference clips of the speaker, or
    reference clips were given to a model that does not use them."""


# -- training -----------------------------------------------------------------------------------
class LeakageError(VibeCheckError):
    """A split puts the same speaker on both sides of a fold."""
