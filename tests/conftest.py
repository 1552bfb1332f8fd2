"""Shared test fixtures: generated audio (never corpus audio in the repo) and the real corpus, if present."""

from __future__ import annotations

import time
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


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> dict:
    """Bundles trained on a generated corpus (6 actors x 8 emotions), shared by the inference,
    explanation and serving tests.

    Returns a dict with ``dir`` (bundles in ``.pkl`` and ``.skops``), ``best`` (path of
    ``best_emotion_model.pkl``), ``paths`` (model name -> ``.pkl``), ``corpus`` (the audio folder),
    ``manifest`` (the feature manifest) and ``trainer`` (the fitted EmotionTrainer).
    Tests must not modify these files: copy them first.
    """
    from vibe_check.features import build_manifest
    from vibe_check.training import EmotionTrainer

    root = tmp_path_factory.mktemp("trained")
    corpus = root / "corpus"
    generate_corpus(corpus, n_speakers=6, takes=1, seed=1)
    manifest = build_manifest(corpus, root / "manifest.parquet", progress=False)
    # Smaller forests and fewer boosting rounds than the defaults keep the fixture at a few seconds.
    small = {"random_forest": {"model__n_estimators": 60}, "hist_gb": {"model__max_iter": 25}}
    trainer = EmotionTrainer(n_splits=3, random_state=0, model_params=small).fit(manifest)
    out = root / "models"
    written = trainer.save_bundles(out, formats=("pkl", "skops"), command="pytest fixture")
    return {
        "dir": out,
        "best": written["best"],
        "paths": {k: v for k, v in written.items() if not k.endswith(".skops") and k != "best"},
        "corpus": corpus,
        "manifest": manifest,
        "trainer": trainer,
    }


@pytest.fixture
def ready_client():
    """Start a service app (its lifespan loads the bundle) and wait until ``/readyz`` answers 200.

    Call it with the app; it returns the ``TestClient``, which is closed when the test ends.
    """
    pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
    from fastapi.testclient import TestClient

    clients = []

    def start(app, timeout: float = 30.0):
        client = TestClient(app).__enter__()
        clients.append(client)
        deadline = time.monotonic() + timeout
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
