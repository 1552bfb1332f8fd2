"""vibe-check: explainable speech emotion recognition with classical machine learning."""

from ._version import __version__

__all__ = ["__version__"]
