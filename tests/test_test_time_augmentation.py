"""Test-time augmentation: a clip classified together with speed copies of itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vibe_check.cli import main
from vibe_check.data import speed_perturb
from vibe_check.explain import model_explainer
from vibe_check.exceptions import BundleError
from vibe_check.models import CustomEmotionModel
from vibe_check.training import EmotionTrainer, evaluate_test_time_augmentation


def _with_copies(manifest: pd.DataFrame, kinds=("speed_0.9", "speed_1.1")) -> pd.DataFrame:
    """The manifest plus one row per clip and kind with the clip's own features: enough for the
    trainer to record speed copies, without extracting any."""
    copies = []
    for kind in kinds:
        c = manifest.copy()
        c["augmentation"] = kind
        copies.append(c)
    out = pd.concat([manifest, *copies], ignore_index=True)
    out.attrs = dict(manifest.attrs)
    return out


@pytest.fixture(scope="module")
def tta_bundle(trained_models, tmp_path_factory):
    manifest = _with_copies(trained_models["manifest"])
    trainer = EmotionTrainer(models=["lda"], n_splits=3).fit(manifest)
    written = trainer.save_bundles(tmp_path_factory.mktemp("tta"), command="pytest")
    return trainer, manifest, written["best"]


def test_a_model_classifies_the_clip_with_its_speed_copies(tta_bundle, trained_models):
    _, _, bundle = tta_bundle
    plain = CustomEmotionModel(bundle)
    model = CustomEmotionModel(bundle, test_time_augmentation=True)
    assert plain.test_time_speeds == () and model.test_time_speeds == (0.9, 1.1)
    clips = trained_models["manifest"]["path"].tolist()[:3]
    sr = model.extractor.config.sample_rate
    expected = []
    for path in clips:
        y = model.decode(path)
        rows = [model.features(y)[0]] + [model.features(speed_perturb(y, sr, f))[0] for f in (0.9, 1.1)]
        log_p = np.log(model.predict_proba_features(np.vstack(rows))).mean(axis=0)
        expected.append(np.exp(log_p) / np.exp(log_p).sum())
    np.testing.assert_allclose(model.predict_proba(clips), expected, atol=1e-9)
    one = model.predict_emotion_from_file(clips[0])
    np.testing.assert_allclose([one["probabilities"][c] for c in model.classes_], expected[0], atol=1e-9)
    batch = model.predict_batch([clips[1], "missing.wav"])
    assert batch[0]["emotion"] == model.classes_[np.argmax(expected[1])] and "error" in batch[1]
    # A clip just long enough on its own, whose faster copy is not: the error says which and what to do.
    from vibe_check.data import synthesize_utterance
    from vibe_check.exceptions import NoSpeechError

    short = synthesize_utterance("angry", duration=1.0)[4000:8200]  # 0.26 s: its 1.1x copy has 0.24 s of sound
    plain.predict_emotion_from_array(short, sr)
    with pytest.raises(NoSpeechError, match="1.1x speed copy.*without test-time augmentation"):
        model.predict_emotion_from_array(short, sr)
    # Without the option, one row per clip as before.
    np.testing.assert_allclose(plain.predict_proba(clips[:1])[0],
                               plain.predict_proba_features(plain.features(plain.decode(clips[0]))[0])[0])


def test_a_bundle_without_speed_copies_refuses_test_time_augmentation(trained_models, capsys):
    with pytest.raises(BundleError, match="without speed-perturbed copies"):
        CustomEmotionModel(trained_models["best"], test_time_augmentation=True)
    clip = trained_models["manifest"]["path"].iloc[0]
    assert main(["predict", "--model", str(trained_models["best"]), "--test-time-augmentation", clip]) == 1
    assert "speed-perturbed" in capsys.readouterr().err


def test_cli_predict_with_test_time_augmentation(tta_bundle, trained_models, capsys):
    _, _, bundle = tta_bundle
    clip = trained_models["manifest"]["path"].iloc[0]
    assert main(["predict", "--model", str(bundle), "--test-time-augmentation", "--json", clip]) == 0
    assert '"emotion"' in capsys.readouterr().out


def test_evaluation_uses_each_held_out_clips_own_copies(tta_bundle, trained_models):
    trainer, manifest, _ = tta_bundle
    table = evaluate_test_time_augmentation(trainer, manifest, ["lda"])
    row = table.iloc[0]
    # Copies identical to their clip change nothing.
    assert row["tta_macro_f1_mean"] == pytest.approx(row["macro_f1_mean"])
    assert row["macro_f1_mean"] == pytest.approx(trainer.cv_results_["lda"].summary["macro_f1"]["mean"])
    assert row["speeds"] == "0.9x, 1.1x" and row["folds_better"] == 0
    with pytest.raises(ValueError, match="no speed copies"):
        evaluate_test_time_augmentation(trained_models["trainer"], trained_models["manifest"])
    incomplete = manifest.drop(index=manifest.index[(manifest["augmentation"] == "speed_1.1")][:1]).reset_index(drop=True)
    incomplete.attrs = dict(manifest.attrs)
    partial = EmotionTrainer(models=["lda"], n_splits=3).fit(incomplete)
    with pytest.raises(ValueError, match="lacks the copy"):
        evaluate_test_time_augmentation(partial, incomplete)


def test_speaker_mode_centres_each_speed_copy_on_the_references_copies(trained_models, tmp_path):
    manifest = _with_copies(trained_models["manifest"])
    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(manifest)
    bundle = trainer.save_bundles(tmp_path, command="pytest")["best"]
    model = CustomEmotionModel(bundle, test_time_augmentation=True)
    base = trained_models["manifest"]
    clips = base.loc[base["actor"] == base["actor"].iloc[0], "path"].tolist()
    adapted = model.for_speaker(clips[1:6])
    sr = model.extractor.config.sample_rate
    raw = {f: [] for f in (1.0, 0.9, 1.1)}
    for path in clips[1:6]:
        y = model.decode(path)
        for f in raw:
            raw[f].append(model.extractor.extract_prepared(y if f == 1.0 else speed_perturb(y, sr, f))[0])
    means = np.vstack([np.mean(raw[f], axis=0) for f in (1.0, 0.9, 1.1)])
    np.testing.assert_allclose(adapted.speaker_mean_, means[0])
    y = model.decode(clips[0])
    rows = np.vstack([model.extractor.extract_prepared(y if f == 1.0 else speed_perturb(y, sr, f))[0]
                      for f in (1.0, 0.9, 1.1)]) - means
    log_p = np.log(model.predict_proba_features(rows)).mean(axis=0)
    np.testing.assert_allclose(adapted.predict_proba([clips[0]])[0], np.exp(log_p) / np.exp(log_p).sum(), atol=1e-9)


def test_evaluate_a_bundle_with_test_time_augmentation(tta_bundle, trained_models, tmp_path):
    from vibe_check.data import generate_corpus, parse_filename
    from vibe_check.training._evaluate import evaluate_bundle

    _, _, bundle = tta_bundle
    corpus = tmp_path / "unseen"
    generate_corpus(corpus, n_speakers=2, takes=1, seed=99)
    m = evaluate_bundle(bundle, corpus, cache_dir=tmp_path / "cache", test_time_augmentation=True)
    assert m["test_time_speeds"] == [0.9, 1.1] and m["n"] == 30
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    model = CustomEmotionModel(bundle, test_time_augmentation=True)
    truth = np.array([parse_filename(f).emotion for f in files])
    assert m["accuracy"] == pytest.approx(float(np.mean(model.predict(files) == truth)))
    with pytest.raises(BundleError, match="speed-perturbed"):
        evaluate_bundle(trained_models["best"], corpus, cache_dir=tmp_path / "cache", test_time_augmentation=True)


def test_clip_rows_and_clip_proba_are_the_stages_of_a_prediction(tta_bundle, trained_models):
    _, _, bundle = tta_bundle
    model = CustomEmotionModel(bundle, test_time_augmentation=True)
    path = trained_models["manifest"]["path"].iloc[0]
    y = model.decode(path)
    rows, info = model.clip_rows(y)
    assert rows.shape == (3, len(model.feature_names))
    np.testing.assert_array_equal(rows[0], model.features(y)[0])
    np.testing.assert_allclose(model.clip_proba(rows), model.predict_proba([path])[0], atol=1e-12)
    plain = CustomEmotionModel(bundle)
    assert plain.clip_rows(y)[0].shape == (1, len(model.feature_names))
    # The explanation is of the model's own answer over the clip and its speed copies: for this
    # LDA (a softmax of logits) its SHAP values add up to that answer exactly, not to the clip's
    # row alone (which the copies move here: they are real speed copies, unlike the training ones).
    explained, result = model.explain(path, top_k=2), model.predict_emotion_from_file(path)
    assert explained["predicted"] == result["emotion"]
    assert explained["probability"] == pytest.approx(result["confidence"], abs=1e-9)
    assert explained["output"] == pytest.approx(explained["probability"], abs=1e-9)
    assert explained["rows"] == 3 and not explained["approximate"] and "speed copies (0.9x, 1.1x)" in explained["explains"]
    alone = plain.explain(path, top_k=2)  # the clip's row alone: another answer, another explanation
    assert abs(alone["probabilities"][result["emotion"]] - explained["probability"]) > 1e-6


def test_the_service_can_classify_with_speed_copies(tta_bundle, trained_models, ready_client):
    pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
    pytest.importorskip("multipart", reason="serving needs python-multipart")
    import time
    from pathlib import Path

    from fastapi.testclient import TestClient

    from vibe_check.serving import ServeSettings, create_app
    from vibe_check.serving._cli import settings_from_args

    _, _, bundle = tta_bundle
    path = trained_models["manifest"]["path"].iloc[0]
    expected = CustomEmotionModel(bundle, test_time_augmentation=True).predict_emotion_from_file(path)
    client = ready_client(create_app(bundle, settings=ServeSettings(test_time_augmentation=True, drift=False)))
    assert client.get("/model").json()["test_time_speeds"] == [0.9, 1.1]
    r = client.post("/predict", content=Path(path).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 200, r.text
    got = r.json()["probabilities"]
    assert got == pytest.approx(expected["probabilities"], abs=1e-9)
    # A bundle trained without speed copies cannot be served so: /readyz says why.
    app = create_app(trained_models["best"], settings=ServeSettings(test_time_augmentation=True, drift=False))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while app.state.service.load_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        r = client.get("/readyz")
        assert r.status_code == 503 and "speed-perturbed" in r.json()["error"]["message"]
    with pytest.raises(ValueError, match="loaded without it"):
        create_app(CustomEmotionModel(bundle), settings=ServeSettings(test_time_augmentation=True))
    from vibe_check.cli import build_parser

    args = build_parser(["serve"]).parse_args(["serve", "--model", str(bundle), "--test-time-augmentation"])
    assert settings_from_args(args).test_time_augmentation is True


@pytest.mark.parametrize("name", ["lda", "logreg", "hist_gb", "random_forest", "ensemble"])
def test_the_explanation_explains_the_answer_over_the_speed_copies(trained_models, name):
    """The service's ``?explain=true`` and ``model.explain`` with test-time augmentation: the SHAP
    values explain the answer returned (exactly for softmax models), and say what they explain."""
    model = CustomEmotionModel(trained_models["paths"][name])
    model.test_time_speeds = (0.85, 0.9, 1.1, 1.15)  # as a bundle trained with speed copies would have
    path = trained_models["manifest"]["path"].iloc[3]
    rows, info = model.clip_rows(model.decode(path))
    proba = model.clip_proba(rows)
    out = model.explain_rows(rows, info, top_k=3, proba=proba)
    k = int(np.argmax(proba))
    assert out["predicted"] == model.classes_[k] and out["probability"] == pytest.approx(proba[k], abs=1e-12)
    total = out["base_value"] + sum(i["contribution"] for i in out["towards"] + out["away"]) + out["rest"]
    assert total == pytest.approx(out["output"], abs=1e-9)
    row_p = model.predict_proba_features(rows)
    if name in ("lda", "logreg", "hist_gb"):  # softmax of the mean logits: exact
        assert out["output"] == pytest.approx(out["probability"], abs=1e-9) and not out["approximate"]
    else:  # the mean of the rows' probabilities, said to be an approximation
        assert out["output"] == pytest.approx(row_p[:, k].mean(), abs=1e-9)
        assert out["approximate"] and "approximation" in out["explains"] and "approximation" in out["summary"]
    assert out["rows"] == 5 and "the clip and its 4 speed copies (0.85x, 0.9x, 1.1x, 1.15x)" in out["explains"]
    # The explainer alone, given the rows, makes the same answer as the model.
    again = model_explainer(model).explain(rows, top_k=3)
    assert again["probability"] == pytest.approx(out["probability"], abs=1e-12) and again["output"] == pytest.approx(out["output"])
