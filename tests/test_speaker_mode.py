"""The speaker-normalised mode: training on speaker-centred features, predicting with reference clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vibe_check.cli import main
from vibe_check.exceptions import SpeakerReferenceError
from vibe_check.features import FeatureConfig
from vibe_check.models import CustomEmotionModel
from vibe_check.training import EmotionTrainer, center_by_group, evaluate_speaker_references


def test_center_by_group_gives_every_group_mean_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(5, 2, (30, 4)) + np.repeat([[0.0], [10.0], [-7.0]], 10, axis=0)
    before = X.copy()
    groups = rng.permutation(np.repeat(["a", "b", "c"], 10))
    Z = center_by_group(X, groups)
    for g in "abc":
        rows = groups == g
        np.testing.assert_allclose(Z[rows], X[rows] - X[rows].mean(axis=0), atol=1e-12)
    np.testing.assert_array_equal(X, before)  # the input is not modified


def _speaker_manifest(n_speakers=10, per_class=6, n_classes=8, n_features=40, seed=0) -> pd.DataFrame:
    """Feature rows = emotion signal + a large per-speaker offset (the voice) + noise."""
    rng = np.random.default_rng(seed)
    emotions = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"][:n_classes]
    means = rng.normal(0, 0.5, (n_classes, n_features))
    rows = []
    for s in range(1, n_speakers + 1):
        voice = rng.normal(0, 3.0, n_features)
        for c, emotion in enumerate(emotions):
            for k in range(per_class):
                x = means[c] + voice + rng.normal(0, 1, n_features)
                rows.append({"path": f"s{s}_{emotion}_{k}.wav", "actor": s, "gender": "female" if s % 2 else "male",
                             "emotion": emotion, "augmentation": "none", **{f"x{j:02d}": v for j, v in enumerate(x)}})
    df = pd.DataFrame(rows)
    # The trainer needs a feature definition; these columns stand in for the default one's.
    cfg = FeatureConfig()
    df.attrs.update(feature_names=[f"x{j:02d}" for j in range(n_features)], feature_config=cfg.to_dict(), feature_hash=cfg.hash)
    return df


def test_speaker_normalisation_removes_the_voice_and_is_measured_with_held_out_references():
    manifest = _speaker_manifest()
    plain = EmotionTrainer(models=["lda"], n_splits=5).fit(manifest)
    adapted = EmotionTrainer(models=["lda"], n_splits=5, speaker_normalization=True).fit(manifest)
    f_plain = plain.cv_results_["lda"].summary["macro_f1"]["mean"]
    f_adapted = adapted.cv_results_["lda"].summary["macro_f1"]["mean"]
    assert f_adapted > f_plain + 0.2, (f_plain, f_adapted)
    # The training matrix is centred per speaker.
    for a in manifest["actor"].unique():
        np.testing.assert_allclose(adapted._X_train[manifest["actor"].to_numpy() == a].mean(axis=0), 0, atol=1e-9)
    table = evaluate_speaker_references(adapted, manifest, [4, None])
    assert table["n_references"].tolist() == [4, "all"]
    # More references estimate the speaker's mean better; any reference beats none here.
    assert table["macro_f1_mean"].iloc[1] >= table["macro_f1_mean"].iloc[0] - 0.05
    assert table["macro_f1_mean"].min() > f_plain + 0.1
    # References from a single emotion shift every clip of the speaker towards the others.
    skewed = evaluate_speaker_references(adapted, manifest, [4], reference_emotions=["calm"])
    assert skewed["macro_f1_mean"].iloc[0] < table["macro_f1_mean"].iloc[0]
    with pytest.raises(ValueError, match="fewer than 7"):
        evaluate_speaker_references(adapted, manifest, [7], reference_emotions=["calm"])
    with pytest.raises(ValueError, match="speaker_normalization=True"):
        evaluate_speaker_references(plain, manifest, [4])


def test_augmented_copies_are_centred_on_their_own_kind():
    manifest = _speaker_manifest(n_speakers=4, n_classes=3, per_class=3)
    noisy = manifest.copy()
    noisy["augmentation"] = "noise"
    feature_cols = [c for c in manifest if c.startswith("x")]
    noisy[feature_cols] += 10.0  # a copy kind that shifts every feature
    both = pd.concat([manifest, noisy], ignore_index=True)
    trainer = EmotionTrainer(models=["lda"], n_splits=2, speaker_normalization=True).fit(both)
    X = trainer._X_train
    np.testing.assert_allclose(X[: len(manifest)], X[len(manifest):], atol=1e-9)


@pytest.fixture(scope="module")
def speaker_bundles(trained_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("speaker_models")
    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(trained_models["manifest"])
    written = trainer.save_bundles(out, command="pytest")
    return trainer, written


def test_speaker_bundles_are_named_and_described_as_such(speaker_bundles):
    trainer, written = speaker_bundles
    assert written["best"].name == "best_emotion_speaker_model.pkl"
    assert written["lda"].name == "lda_emotion_speaker_model.pkl"
    model = CustomEmotionModel(written["best"])
    assert model.speaker_normalized
    assert model.metadata["speaker_normalization"]["min_reference_clips"] == 4
    assert "speaker-normalised" in model.metadata["cv"]["protocol"]
    assert model.info()["speaker_normalized"] is True and model.info()["speaker_references"] == 0


def test_a_speaker_model_needs_references_and_predicts_relative_to_them(speaker_bundles, trained_models, tmp_path):
    _, written = speaker_bundles
    model = CustomEmotionModel(written["best"])
    manifest = trained_models["manifest"]
    clips = manifest.loc[manifest["actor"] == manifest["actor"].iloc[0], "path"].tolist()
    with pytest.raises(SpeakerReferenceError, match="for_speaker"):
        model.predict_emotion_from_file(clips[0])
    with pytest.raises(SpeakerReferenceError, match="for_speaker"):
        model.predict_batch(clips[:2])
    with pytest.raises(SpeakerReferenceError, match="3 usable reference clip"):
        model.for_speaker(clips[:3])
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.warns(UserWarning, match="broken.wav"):
        adapted = model.for_speaker([*clips[1:6], str(bad)])
    assert adapted.n_speaker_references_ == 5 and model.speaker_mean_ is None  # the original is unchanged
    raw = np.vstack([model.extractor.extract_file(p) for p in clips[1:6]])
    np.testing.assert_allclose(adapted.speaker_mean_, raw.mean(axis=0))
    target = model.extractor.extract_file(clips[0]) - raw.mean(axis=0)
    expected = model.pipeline.predict_proba(target[None, :])[0]
    got = adapted.predict_emotion_from_file(clips[0])["probabilities"]
    np.testing.assert_allclose([got[c] for c in adapted.classes_], expected[adapted._columns.argsort()], atol=1e-9)
    batch = adapted.predict_batch([clips[0], str(bad)])
    assert batch[0]["emotion"] == adapted.classes_[np.argmax([got[c] for c in adapted.classes_])]
    assert batch[1]["error"]["type"] == "AudioDecodeError"
    assert "speaker_references=5" in repr(adapted)
    explained = adapted.explain(clips[0], top_k=2)
    assert explained["predicted"] == batch[0]["emotion"]
    assert all("from the speaker's average" in item["sentence"] for item in explained["towards"] + explained["away"])


def test_a_plain_model_refuses_references(trained_models):
    model = CustomEmotionModel(trained_models["best"])
    assert not model.speaker_normalized
    with pytest.raises(SpeakerReferenceError, match="--speaker-normalize"):
        model.for_speaker(trained_models["manifest"]["path"].tolist()[:5])


def test_cli_predict_with_speaker_references(speaker_bundles, trained_models, tmp_path, capsys):
    _, written = speaker_bundles
    bundle = tmp_path / written["best"].name
    shutil.copy(written["best"], bundle)
    shutil.copy(written["best"].with_suffix(".json"), bundle.with_suffix(".json"))
    manifest = trained_models["manifest"]
    clips = manifest.loc[manifest["actor"] == manifest["actor"].iloc[0], "path"].tolist()
    assert main(["predict", "--model", str(bundle), clips[0]]) == 1
    assert "--speaker-reference" in capsys.readouterr().err
    assert main(["predict", "--model", str(bundle), clips[0], "--speaker-reference", *clips[1:6]]) == 0
    assert clips[0] in capsys.readouterr().out
    references = tmp_path / "references"  # a folder of the speaker's recordings works too
    references.mkdir()
    for clip in clips[1:6]:
        shutil.copy(clip, references / Path(clip).name)
    assert main(["predict", "--model", str(bundle), clips[0], "--speaker-reference", str(references)]) == 0


def _files(paths, field="files"):
    return [(field, (Path(p).name, Path(p).read_bytes(), "audio/wav")) for p in paths]


def test_the_service_classifies_a_clip_relative_to_its_speakers_references(speaker_bundles, trained_models, ready_client):
    pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
    pytest.importorskip("multipart", reason="serving needs python-multipart")
    from vibe_check.serving import ServeSettings, create_app

    _, written = speaker_bundles
    manifest = trained_models["manifest"]
    clips = manifest.loc[manifest["actor"] == manifest["actor"].iloc[0], "path"].tolist()
    references, clip = clips[1:6], clips[0]
    expected = CustomEmotionModel(written["best"]).for_speaker(references).predict_emotion_from_file(clip)
    app = create_app(written["best"], settings=ServeSettings(drift=False))
    client = ready_client(app)
    info = client.get("/model").json()  # what a client (the web page) needs to know first
    assert info["speaker_normalized"] is True and info["min_reference_clips"] == 4
    # Before any reference: the clip cannot be classified, and says how to proceed.
    r = client.post("/predict", content=Path(clip).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 422 and "?speaker=<id>" in r.json()["error"]["message"]
    r = client.post("/predict?speaker=alice", content=Path(clip).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "UnknownSpeakerError"
    # Three references and a broken file: the broken one is reported, the others kept, not enough yet.
    r = client.post("/speakers/alice/references",
                    files=_files(references[:3]) + [("files", ("broken.wav", b"not audio", "audio/wav"))])
    body = r.json()
    assert r.status_code == 200 and body["n_references"] == 3 and body["added"] == 3 and not body["ready"]
    assert body["results"][3]["error"]["type"] == "AudioDecodeError" and body["min_reference_clips"] == 4
    r = client.post("/predict?speaker=alice", content=Path(clip).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 422 and "3 reference clip(s) of the speaker, 4 needed" in r.json()["error"]["message"]
    r = client.post("/speakers/alice/references", files=_files(references[3:]))
    assert r.json()["n_references"] == 5 and r.json()["ready"]
    assert client.get("/speakers/alice").json() == {"speaker": "alice", "n_references": 5, "min_reference_clips": 4,
                                                     "ready": True}
    r = client.post("/predict?speaker=alice", content=Path(clip).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 200, r.text
    assert r.json()["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-9)
    r = client.post("/predict?speaker=alice&explain=true", content=Path(clip).read_bytes(),
                    headers={"content-type": "audio/wav"})
    assert r.status_code == 200 and r.json()["explanation"]["predicted"] == expected["emotion"]
    # The model is adapted per request; its SHAP explainer is built once and shared with every copy.
    explainers = app.state.service.model._explainers
    assert set(explainers) == {"shap"} and app.state.service.model_for("alice")._explainers is explainers
    r = client.post("/predict/batch?speaker=alice", files=_files([clip]))
    assert r.json()["results"][0]["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-9)
    metrics = client.get("/metrics").text
    assert "vibe_check_speakers 1.0" in metrics
    assert 'vibe_check_item_errors_total{endpoint="/speakers/{speaker_id}/references",error_type="AudioDecodeError"} 1.0' in metrics
    # Ids are checked; a speaker can be forgotten.
    assert client.get("/speakers/not%20an%20id").status_code == 422
    assert client.get("/speakers/..%2Fetc").status_code in (404, 422)  # never a path
    assert client.get("/speakers/agent-07.left").status_code == 404  # a valid id, not stored
    # Only unusable clips for a new speaker: refused, and no speaker appears.
    r = client.post("/speakers/bob/references", files=[("files", ("notes.wav", b"not audio", "audio/wav"))])
    assert r.status_code == 422 and "none of the 1 reference clip(s) of 'bob' could be used" in r.json()["error"]["message"]
    assert client.get("/speakers/bob").status_code == 404
    assert client.delete("/speakers/alice").json() == {"speaker": "alice", "deleted": True}
    assert client.get("/speakers/alice").status_code == 404
    assert client.delete("/speakers/alice").status_code == 404


def test_a_service_of_a_plain_model_takes_no_speaker_references(trained_models, ready_client):
    pytest.importorskip("fastapi", reason="serving needs the 'serve' extra")
    pytest.importorskip("multipart", reason="serving needs python-multipart")
    from vibe_check.serving import ServeSettings, create_app

    clip = trained_models["manifest"]["path"].iloc[0]
    client = ready_client(create_app(trained_models["best"], settings=ServeSettings(drift=False)))
    r = client.post("/speakers/alice/references", files=_files([clip]))
    assert r.status_code == 422 and "takes no speaker references" in r.json()["error"]["message"]
    r = client.post("/predict?speaker=alice", content=Path(clip).read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "SpeakerReferenceError"


def test_the_reference_store_is_bounded():
    from vibe_check.serving._speakers import SpeakerReferences

    store = SpeakerReferences(max_speakers=2, max_reference_clips=3)
    store.add("a", [np.full((1, 2), i) for i in range(5)])
    assert [int(r[0, 0]) for r in store.rows("a")] == [2, 3, 4]  # the most recent clips
    store.add("b", [np.zeros((1, 2))])
    store.rows("a")  # a use: "b" is now the least recently used
    store.add("c", [np.zeros((1, 2))])
    assert "a" in store and "b" not in store and len(store) == 2
    assert store.remove("a") and not store.remove("a") and store.count("a") is None
    with pytest.raises(ValueError):
        SpeakerReferences(max_speakers=0)


def test_evaluate_centres_each_speaker_on_their_clips(speaker_bundles, tmp_path):
    from vibe_check.data import generate_corpus
    from vibe_check.exceptions import DatasetError
    from vibe_check.training._evaluate import evaluate_bundle

    _, written = speaker_bundles
    corpus = tmp_path / "unseen"
    generate_corpus(corpus, n_speakers=2, takes=1, seed=99)
    m = evaluate_bundle(written["best"], corpus, cache_dir=tmp_path / "cache")
    assert m["speaker_normalized"] is True and m["n"] == 30 and m["accuracy"] > 0.25
    # Clips labelled by a CSV have no speaker to centre on.
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = []
    for i, src in enumerate(sorted(corpus.rglob("*.wav"))[:6]):
        shutil.copy(src, clips / f"clip_{i}.wav")
        rows.append({"file": f"clip_{i}.wav", "emotion": "angry"})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DatasetError, match="speaker by speaker"):
        evaluate_bundle(written["best"], clips, labels_csv=tmp_path / "labels.csv", cache_dir=tmp_path / "cache")


def test_reference_evaluation_with_test_time_speed_copies():
    manifest = _speaker_manifest(n_speakers=6, n_classes=4, per_class=4)
    copy = manifest.copy()
    copy["augmentation"] = "speed_0.9"
    both = pd.concat([manifest, copy], ignore_index=True)  # copies identical to their clips
    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(both)
    plain = evaluate_speaker_references(trainer, both, [4, None])
    tta = evaluate_speaker_references(trainer, both, [4, None], test_time_augmentation=True)
    pd.testing.assert_frame_equal(plain, tta)
    no_copies = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(manifest)
    with pytest.raises(ValueError, match="speed copies"):
        evaluate_speaker_references(no_copies, manifest, [4], test_time_augmentation=True)
