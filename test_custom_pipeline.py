#!/usr/bin/env python
"""End-to-end check of the whole pipeline on generated speech, runnable without pytest.

    python test_custom_pipeline.py        # exit code 0 when every check passes, 1 otherwise

generated audio -> feature manifest -> speaker-independent training -> bundle -> reload ->
prediction from a file, an array and a batch (with a bad item) -> explanation.
It is also part of the pytest suite (tests/test_custom_pipeline_script.py).
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import soundfile as sf

FAILURES: list[str] = []


def check(condition: bool, what: str) -> None:
    print(f"  {'ok  ' if condition else 'FAIL'} {what}")
    if not condition:
        FAILURES.append(what)


def run(workdir: Path) -> None:
    from vibe_check.data import generate_corpus
    from vibe_check.exceptions import NoSpeechError
    from vibe_check.features import build_manifest, load_manifest
    from vibe_check.models import CustomEmotionModel
    from vibe_check.training import EmotionTrainer

    print("generated data")
    corpus = generate_corpus(workdir / "corpus", n_speakers=6, takes=1, seed=7)
    check(len(corpus) == 90 and set(corpus["actor"]) == set(range(1, 7)), "90 clips from 6 speakers, RAVDESS-named")
    held_out = corpus[corpus["actor"] == 6]
    train_files = corpus.loc[corpus["actor"] != 6, "path"].tolist()

    print("manifest")
    manifest = build_manifest(train_files, workdir / "manifest.parquet", progress=False)
    check(len(manifest) == len(train_files), "one row per training file")
    check(np.isfinite(manifest[manifest.attrs["feature_names"]].to_numpy()).all(), "every feature finite")
    reloaded = load_manifest(workdir / "manifest.parquet")
    check(reloaded.attrs["feature_hash"] == manifest.attrs["feature_hash"], "manifest round-trips with its feature hash")

    print("training (speaker-independent)")
    trainer = EmotionTrainer(n_splits=5, models=["logreg", "random_forest", "hist_gb", "ensemble"],
                             model_params={"random_forest": {"model__n_estimators": 60}, "hist_gb": {"model__max_iter": 30}}).fit(manifest)
    actors = manifest["actor"].to_numpy()
    check(all(set(actors[train]).isdisjoint(actors[test]) for train, test in trainer.folds_),
          "every fold speaker-disjoint (the rows a model was fit on share no speaker with those it was scored on)")
    best_f1 = trainer.cv_results_[trainer.best_model_].summary["macro_f1"]["mean"]
    check(best_f1 > 0.3, f"best CV macro-F1 {best_f1:.2f} well above chance (0.125)")

    print("bundle")
    written = trainer.save_bundles(workdir / "models", formats=("pkl", "skops"))
    check(written["best"].exists() and written["best"].with_suffix(".json").exists(), "best bundle and sidecar written")

    print("reload and predict")
    model = CustomEmotionModel(written["best"])
    skops_model = CustomEmotionModel(written["best.skops"])
    check(list(model.classes_) == sorted(set(manifest["emotion"])), "classes are the 8 emotions")
    path = held_out["path"].iloc[0]
    from_file = model.predict_emotion_from_file(path)
    check(abs(sum(from_file["probabilities"].values()) - 1.0) < 1e-6, "file prediction: probabilities sum to 1")
    y, sr = sf.read(path, dtype="float32")
    from_array = model.predict_emotion_from_array(y, sr)
    check(from_array["emotion"] == from_file["emotion"]
          and abs(from_array["confidence"] - from_file["confidence"]) < 1e-9, "array prediction equals file prediction")
    check(skops_model.predict_emotion_from_file(path)["probabilities"] == from_file["probabilities"],
          ".skops bundle predicts exactly like the .pkl")
    items = held_out["path"].tolist() + [np.zeros(16000, dtype=np.float32)]
    batch = model.predict_batch(items[:-1] + [(items[-1], 16000)], n_jobs=1)
    check(len(batch) == len(items), "batch: one result per item, in order")
    check("error" in batch[-1] and batch[-1]["error"]["type"] == NoSpeechError.__name__, "batch: silence reported as NoSpeechError, batch goes on")
    predicted = [r["emotion"] for r in batch[:-1]]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, held_out["emotion"])]))
    check(accuracy > 0.25, f"held-out speaker accuracy {accuracy:.2f} above chance")

    print("explanation")
    explanation = model.explain(path, top_k=3)
    check(explanation["predicted"] == from_file["emotion"], "explanation is about the predicted emotion")
    towards = explanation.get("towards", [])
    check(len(towards) > 0 and all(r["name"] in model.feature_names for r in towards), "top reasons are named features")
    check(all(r["contribution"] > 0 for r in towards) and all(r["contribution"] < 0 for r in explanation.get("away", [])),
          "reasons towards push up, reasons away push down")
    check(all(explanation["predicted"] in r["sentence"] for r in towards), "each reason reads as a sentence about the emotion")


def main() -> int:
    started = time.perf_counter()
    FAILURES.clear()
    with tempfile.TemporaryDirectory(prefix="vibe-check-e2e-") as tmp:
        try:
            run(Path(tmp))
        except Exception:  # an unexpected exception is a failed check, reported with its traceback
            traceback.print_exc()
            FAILURES.append("unexpected exception")
    print(f"\n{'all checks passed' if not FAILURES else f'{len(FAILURES)} check(s) failed'} "
          f"in {time.perf_counter() - started:.1f} s")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
