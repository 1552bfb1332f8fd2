"""Shared test fixtures: generated audio (never corpus audio in the repo) and the real corpus, if present."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe_check.data import generate_corpus

#: The shared 16 kHz RAVDESS copy next to the checkout (not part of the repository).
RAVDESS16K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess16k"


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    """The real 16 kHz RAVDESS folder; tests that need it are skipped when it is absent."""
    if not RAVDESS16K.is_dir() or not any(RAVDESS16K.glob("Actor_*/*.flac")):
        pytest.skip(f"real RAVDESS data not found at {RAVDESS16K} (run `vibe-check download` and resample)")
    return RAVDESS16K


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """A small RAVDESS-shaped generated corpus: 3 actors x 8 emotions, one take (45 clips of ~3 s).

    Session-scoped because rendering costs about 2 s; tests must not modify it (copy files out
    of it instead).
    """
    root = tmp_path_factory.mktemp("synthetic_corpus")
    generate_corpus(root, n_speakers=3, takes=1, seed=0)
    return root
