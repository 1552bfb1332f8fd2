"""Training: speaker-independent protocol, metrics, selection, bundles, evaluation and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold, KFold

from vibe_check.cli import main
from vibe_check.data import SENTIMENT_OF_EMOTION, generate_corpus
from vibe_check.exceptions import DatasetError, LeakageError
from vibe_check.features import build_manifest
from vibe_check.models import load_bundle, read_bundle_metadata
from vibe_check.training import (
    EmotionTrainer,
    GroupedClassifier,
    check_speaker_independent,
    classification_metrics,
    expected_calibration_error,
    labels_for_task,
    make_model,
    speaker_folds,
)
from vibe_check.training._cv import fit_predict_fold
from vibe_check.training._evaluate import evaluate_bundle
from vibe_check.training._train import ModelCV

SMALL = {"random_forest": {"model__n_estimators": 40}, "hist_gb": {"model__max_iter": 20}}


# -- protocol -------------------------------------------------------------------------------------
def test_speaker_folds_are_disjoint_and_cover_everything():
    groups = np.repeat(np.arange(1, 11), 6)
    y = np.tile(np.arange(6), 10)
    folds = speaker_folds(y, groups, n_splits=5, random_state=3)
    assert len(folds) == 5
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(len(y)))
    for tr, te in folds:
        assert set(groups[tr]).isdisjoint(groups[te])


def test_a_leaky_split_is_detected():
    groups = np.repeat(np.arange(5), 4)
    leaky = list(KFold(4, shuffle=True, random_state=0).split(groups))
    with pytest.raises(LeakageError, match="speaker"):
        check_speaker_independent(leaky, groups)


def test_trainer_refuses_leaky_cv(trained_models):
    with pytest.raises(LeakageError):
        EmotionTrainer(cv=KFold(3, shuffle=True, random_state=0), models=["logreg"]).fit(trained_models["manifest"])


def test_trainer_refuses_a_manifest_without_its_feature_definition(trained_models):
    # A guessed definition would save a bundle that computes other features than it was fit on.
    manifest = trained_models["manifest"].copy()
    manifest.attrs = {}
    with pytest.raises(DatasetError, match="lost its feature definition"):
        EmotionTrainer(models=["logreg"], n_splits=3).fit(manifest)


def test_too_few_speakers_for_the_folds():
    with pytest.raises(ValueError, match="speakers"):
        speaker_folds(np.zeros(6), np.array([1, 1, 2, 2, 3, 3]), n_splits=5)


def test_scaler_only_sees_the_training_side():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    X[30:] += 100.0  # a test side far from the training side would move a leaky scaler's mean
    y = np.arange(40) % 2
    train, test = np.arange(30), np.arange(30, 40)
    _, model = fit_predict_fold(make_model("logreg"), X, y, train, test, n_classes=2, fold=0)
    np.testing.assert_allclose(model.named_steps["scaler"].mean_, X[train].mean(axis=0))


# -- metrics --------------------------------------------------------------------------------------
def test_metrics_on_known_predictions():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = classification_metrics(y, proba, ["a", "b"], gender=["male", "male", "female", "female"], actor=[1, 1, 2, 2])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion"] == [[1, 1], [0, 2]]
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert m["uar"] == pytest.approx(0.75)
    assert m["per_gender"]["male"]["accuracy"] == pytest.approx(0.5)
    assert m["gender_gap"] == pytest.approx(0.5)
    assert "gender_gap" not in classification_metrics(y, proba, ["a", "b"], gender=["male"] * 4)  # unmeasurable, not 0
    assert m["per_actor"] == {"1": 0.5, "2": 1.0}
    assert m["confusion_normalized"][0] == [0.5, 0.5]


def test_ece_of_overconfident_predictions():
    # Always 90% sure, right half the time: ECE = |0.5 - 0.9| = 0.4.
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error(y, proba) == pytest.approx(0.4)


def test_sentiment_mapping():
    labels = labels_for_task(["happy", "surprised", "calm", "neutral", "sad", "angry", "fearful", "disgust"], "sentiment")
    assert labels.tolist() == ["positive", "positive", "neutral", "neutral", "negative", "negative", "negative", "negative"]
    with pytest.raises(ValueError):
        labels_for_task(["happy"], "valence")


# -- the trainer on generated speech --------------------------------------------------------------
def test_make_model_ensemble_is_the_trainers(trained_models):
    members = [name for name, _ in make_model("ensemble").estimators]
    assert sorted(members) == sorted(trained_models["trainer"].ensemble_members_)


def test_cross_validation_results(trained_models):
    trainer, manifest = trained_models["trainer"], trained_models["manifest"]
    assert list(trainer.cv_results_) == ["logreg", "random_forest", "hist_gb", "lda", "ensemble"]
    for name, r in trainer.cv_results_.items():
        # Every clip is predicted exactly once, by a model that never saw its speaker.
        assert sorted(r.oof["path"]) == sorted(manifest["path"])
        actors = manifest["actor"].to_numpy()
        for m, (train, test) in zip(r.fold_metrics, trainer.folds_):
            # What the model was fit on never shares a speaker with what it was scored on.
            assert set(actors[train]).isdisjoint(actors[test])
            assert sorted(set(actors[test])) == sorted(m["test_actors"])
        proba = r.oof[[f"proba_{c}" for c in trainer.classes_]].to_numpy()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert 0 <= r.summary["macro_f1"]["mean"] <= 1 and r.summary["macro_f1"]["std"] >= 0
    table = trainer.metrics_table()
    assert table["best"].sum() == 1
    best = table.loc[table["best"], "model"].item()
    top = table.loc[table["macro_f1_mean"].idxmax()]
    assert table.loc[table["best"], "macro_f1_mean"].item() >= top["macro_f1_mean"] - top["macro_f1_std"] / np.sqrt(3) - 1e-9
    assert best == trainer.best_model_
    # Generated emotions are learnable: far above chance (1/8) for speakers never heard.
    assert table["macro_f1_mean"].max() > 0.4


def test_an_interrupted_training_run_resumes_from_its_cached_fits(trained_models, tmp_path, monkeypatch):
    """With ``memory``, every fold fit and refit is kept as it finishes: a run stopped part-way
    fits only the rest when started again, and ends with the results of an uninterrupted run."""
    import vibe_check.training._train as train_module

    manifest = trained_models["manifest"]
    settings = dict(models=["logreg", "lda"], n_splits=3, random_state=0)
    fits = []
    real_fold, real_refit = train_module.fit_predict_fold, train_module.fit_clone

    def counting_fold(*args, **kwargs):
        fits.append("fold")
        if stop_after is not None and len(fits) > stop_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        return real_fold(*args, **kwargs)

    def counting_refit(*args, **kwargs):
        fits.append("refit")
        return real_refit(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit_predict_fold", counting_fold)
    monkeypatch.setattr(train_module, "fit_clone", counting_refit)
    cache = tmp_path / "fits"
    stop_after = 3  # 2 models x (3 folds + 1 refit) = 8 fits; the 4th is interrupted
    with pytest.raises(KeyboardInterrupt):
        EmotionTrainer(**settings, memory=cache).fit(manifest)
    done = len(fits) - 1
    stop_after, fits[:] = None, []
    resumed = EmotionTrainer(**settings, memory=cache).fit(manifest)
    assert len(fits) == 8 - done  # only what the first run had not finished
    fits.clear()
    fresh = EmotionTrainer(**settings).fit(manifest)  # no cache: the reference
    assert len(fits) == 8
    for name in fresh.cv_results_:
        pd.testing.assert_frame_equal(resumed.cv_results_[name].oof, fresh.cv_results_[name].oof)
        X = manifest[fresh.feature_names_in_].to_numpy()
        np.testing.assert_array_equal(resumed.estimators_[name].predict_proba(X), fresh.estimators_[name].predict_proba(X))
    fits.clear()
    EmotionTrainer(**settings, memory=cache).fit(manifest)
    assert fits == []  # a repeated run fits nothing
    EmotionTrainer(**settings, memory=cache, model_params={"logreg": {"model__C": 0.5}}).fit(manifest)
    assert len(fits) == 4  # another setting of one model refits that model only
    fits.clear()
    EmotionTrainer(**settings, memory=cache).fit(manifest.iloc[:-1].copy())
    assert len(fits) == 8  # other rows: nothing is reused


def test_selection_keeps_the_cheaper_model_within_one_standard_error():
    def cv(name, mean, std):
        return ModelCV(name, [], {"macro_f1": {"mean": mean, "std": std}}, pd.DataFrame(), [], [])

    trainer = EmotionTrainer()
    trainer.folds_ = [None] * 4  # standard error = std / 2
    trainer.cv_results_ = {m.name: m for m in (cv("logreg", 0.55, 0.04), cv("lda", 0.56, 0.04), cv("ensemble", 0.58, 0.04))}
    assert trainer._select() == "lda"  # 0.56 >= 0.58 - 0.02
    trainer.cv_results_["ensemble"] = cv("ensemble", 0.60, 0.04)
    assert trainer._select() == "ensemble"  # nothing cheaper within 0.02 of 0.60
    trainer.cv_results_["ensemble"] = cv("ensemble", 0.60, 0.10)
    assert trainer._select() == "lda"  # a noisy lead is no lead


def test_lda_uses_equal_priors_like_the_balanced_class_weights_elsewhere():
    from sklearn.base import clone
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (180, 4)), rng.normal(1, 1, (20, 4))]
    y = np.r_[np.zeros(180, int), np.ones(20, int)]
    lda = make_model("lda").fit(X, y)[-1]
    assert lda.priors_.tolist() == [0.5, 0.5]
    assert "priors" not in lda.get_params() and clone(lda).get_params() == lda.get_params()
    plain = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(X, y)
    # equal priors predict the rare class more often than frequency priors do
    assert (lda.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    # three classes after two: the priors follow the classes of each fit
    assert make_model("lda").fit(np.r_[X, X[:30] + 3], np.r_[y, np.full(30, 2)])[-1].priors_.tolist() == [1 / 3] * 3


def test_ensemble_is_the_mean_of_its_members(trained_models):
    trainer = trained_models["trainer"]
    X = trained_models["manifest"][trainer.feature_names_in_].to_numpy()[:10]
    members = [trainer.estimators_[m].predict_proba(X) for m in trainer.ensemble_members_]
    np.testing.assert_allclose(trainer.estimators_["ensemble"].predict_proba(X), np.mean(members, axis=0), atol=1e-9)


@pytest.mark.parametrize("models", [["ensemble"], ["logreg", "ensemble"]])
def test_an_ensemble_listed_with_too_few_members_is_the_default_one(trained_models, models):
    """Fewer than two models to vote over: the ensemble is the default one, the LDA included."""
    trainer = EmotionTrainer(models=models, n_splits=3, model_params=SMALL).fit(trained_models["manifest"])
    assert trainer.ensemble_members_ == trained_models["trainer"].ensemble_members_
    assert "lda" in trainer.ensemble_members_


def test_an_ensemble_votes_over_the_listed_models(trained_models):
    trainer = EmotionTrainer(models=["logreg", "lda", "ensemble"], n_splits=3).fit(trained_models["manifest"])
    assert trainer.ensemble_members_ == ["logreg", "lda"]
    assert set(trainer.cv_results_) == {"logreg", "lda", "ensemble"}


def test_bundles_on_disk(trained_models):
    out = trained_models["dir"]
    trainer = trained_models["trainer"]
    for name in ("logreg", "random_forest", "hist_gb", "lda", "ensemble"):
        assert (out / f"{name}_emotion_model.pkl").exists()
        meta = json.loads((out / f"{name}_emotion_model.json").read_text())
        for key in ("classes", "feature_names", "feature_config", "feature_hash", "task", "label_mapping", "cv",
                    "data_summary", "versions", "random_seed", "created_at", "command", "sha256"):
            assert key in meta, key
        assert meta["model_name"] == name
        assert meta["is_best"] == (name == trainer.best_model_)
    best = load_bundle(out / "best_emotion_model.pkl")
    assert best["metadata"]["model_name"] == trainer.best_model_
    assert list(best["label_encoder"].classes_) == best["metadata"]["classes"]
    assert best["extra"]["background"].shape[1] == len(best["metadata"]["feature_names"])
    assert not list(out.glob(".*tmp*"))


def test_sentiment_task_bundle(trained_models, tmp_path):
    trainer = EmotionTrainer(task="sentiment", models=["logreg"], n_splits=3).fit(trained_models["manifest"])
    assert list(trainer.classes_) == ["negative", "neutral", "positive"]
    written = trainer.save_bundles(tmp_path)
    meta = read_bundle_metadata(written["best"])
    assert meta["task"] == "sentiment" and meta["label_mapping"]["angry"] == "negative"
    assert written["best"].name == "best_sentiment_model.pkl"


@pytest.fixture(scope="module")
def sentiment_trainer(trained_models):
    small = {"random_forest": {"model__n_estimators": 20}, "hist_gb": {"model__max_iter": 10}}
    return EmotionTrainer(task="sentiment", n_splits=3, model_params=small).fit(trained_models["manifest"])


def test_sentiment_is_read_off_emotion_models(sentiment_trainer, trained_models):
    trainer = sentiment_trainer
    manifest = trained_models["manifest"]
    X = manifest[trainer.feature_names_in_].to_numpy()
    for name, est in trainer.estimators_.items():
        P = est.predict_proba(X)
        assert P.shape == (len(X), 3) and np.allclose(P.sum(axis=1), 1.0)
        if name == "ensemble":
            continue
        assert isinstance(est, GroupedClassifier) and list(est.estimator_.classes_) == list(range(8))
        # each sentiment's probability is the sum of its emotions'
        fine = est.estimator_.predict_proba(X)
        for j, sentiment in enumerate(trainer.classes_):
            members = [k for k, e in enumerate(trainer.fine_classes_) if SENTIMENT_OF_EMOTION[e] == sentiment]
            np.testing.assert_allclose(P[:, j], fine[:, members].sum(axis=1))
    oof = trainer.cv_results_["logreg"].oof
    assert set(oof["y_true"]) == {"negative", "neutral", "positive"}
    assert "sum of its emotions'" in trainer.bundle_metadata("logreg")["cv"]["protocol"]


def test_sentiment_cv_matches_grouping_the_emotion_cv(trained_models):
    # The same folds (forced through cv=) give the same out-of-fold sentiment as summing the
    # emotion model's out-of-fold probabilities: the grouping adds no information of its own.
    manifest = trained_models["manifest"]
    folds = [(tr, te) for tr, te in GroupKFold(3).split(manifest, groups=manifest["actor"])]
    emo = EmotionTrainer(models=["logreg"], cv=folds).fit(manifest)
    sen = EmotionTrainer(task="sentiment", models=["logreg"], cv=folds).fit(manifest)
    proba = emo.cv_results_["logreg"].oof
    summed = np.column_stack([proba[[f"proba_{e}" for e in emo.classes_ if SENTIMENT_OF_EMOTION[e] == s]].sum(axis=1)
                              for s in sen.classes_])
    got = sen.cv_results_["logreg"].oof[[f"proba_{s}" for s in sen.classes_]].to_numpy()
    np.testing.assert_allclose(got, summed, atol=1e-9)


def test_sentiment_directly_on_three_classes(trained_models):
    trainer = EmotionTrainer(task="sentiment", models=["lda"], n_splits=3, sentiment_from_emotions=False).fit(trained_models["manifest"])
    assert not isinstance(trainer.estimators_["lda"], GroupedClassifier)
    assert "sum of its emotions'" not in trainer.bundle_metadata("lda")["cv"]["protocol"]


def test_sentiment_bundles_predict_explain_and_round_trip(sentiment_trainer, trained_models, tmp_path):
    from vibe_check.explain import shap_values
    from vibe_check.models import CustomEmotionModel

    written = sentiment_trainer.save_bundles(tmp_path, formats=("pkl", "skops"))
    clip = next(iter(sorted(trained_models["corpus"].rglob("*.wav"))))
    for key in ("ensemble", "random_forest", "ensemble.skops"):
        model = CustomEmotionModel(written[key])
        result = model.predict_emotion_from_file(clip)
        assert set(result["probabilities"]) == {"negative", "neutral", "positive"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    model = CustomEmotionModel(written["ensemble"])
    assert model._fast_proba is not None  # the flattened trees serve grouped models too
    X = np.asarray(model.extra["background"][:5], dtype=np.float64)
    res = shap_values(model.pipeline, X, feature_names=model.feature_names, classes=model.classes_,
                      background=model.extra["background"])
    # probability-space SHAP values add up to the sentiment probabilities
    np.testing.assert_allclose(res.values.sum(axis=1) + res.base_values, model.pipeline.predict_proba(X), atol=1e-6)


def test_unknown_model_name(trained_models):
    with pytest.raises(ValueError, match="unknown model"):
        EmotionTrainer(models=["svm"]).fit(trained_models["manifest"])


# -- evaluation on unseen speakers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def unseen_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("unseen")
    generate_corpus(root, n_speakers=2, takes=1, seed=99)  # other seed: other voices
    # ... and other actor numbers (21, 22: same genders), as RAVDESS numbers name people.
    for wav in sorted(root.rglob("*.wav")):
        actor = int(wav.stem.split("-")[-1]) + 20
        target = root / f"Actor_{actor:02d}" / f"{wav.stem[:-2]}{actor:02d}.wav"
        target.parent.mkdir(exist_ok=True)
        wav.rename(target)
    return root


def test_evaluate_on_unseen_speakers(trained_models, unseen_corpus, tmp_path):
    m = evaluate_bundle(trained_models["best"], unseen_corpus, cache_dir=tmp_path / "cache")
    assert m["n"] == 30 and m["classes_in_data"] == m["classes"]
    assert m["heard_actors"] == []
    assert set(m["per_gender"]) == {"male", "female"}
    assert len(m["confusion"]) == 8 and m["accuracy"] > 0.25


def test_evaluate_with_csv_labels_and_a_class_subset(trained_models, unseen_corpus, tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    rows = []
    for i, src in enumerate(sorted(unseen_corpus.rglob("*.wav"))):
        emotion = src.name.split("-")[2]
        if emotion in ("05", "04"):  # angry, sad only
            dst = data / f"clip_{i:03d}.wav"  # not a RAVDESS name: labels must come from the CSV
            shutil.copy(src, dst)
            rows.append({"file": dst.name, "emotion": {"05": "angry", "04": "sad"}[emotion]})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    m = evaluate_bundle(trained_models["best"], data, labels_csv=tmp_path / "labels.csv", cache_dir=tmp_path / "cache")
    assert m["n"] == len(rows) == 8
    assert m["classes_in_data"] == ["angry", "sad"] and len(m["classes"]) == 8
    # The model still answers with any of its 8 classes: its choice is not narrowed to the labels present.
    assert np.array(m["confusion"]).shape == (8, 8)
    assert sum(v["support"] for v in m["per_class"].values()) == 8


def test_evaluate_on_one_emotion_is_not_a_free_score(trained_models, unseen_corpus, tmp_path):
    data = tmp_path / "angry"
    data.mkdir()
    for src in unseen_corpus.rglob("*.wav"):
        if src.name.split("-")[2] == "05":
            shutil.copy(src, data / src.name)
    m = evaluate_bundle(trained_models["best"], data, cache_dir=tmp_path / "cache")
    assert m["classes_in_data"] == ["angry"] and m["n"] == 4
    pred = np.array(m["confusion"]).sum(axis=0)
    assert m["accuracy"] == pred[m["classes"].index("angry")] / m["n"]  # a wrong emotion counts wrong


def test_evaluate_with_a_missing_label_csv(trained_models, unseen_corpus, tmp_path):
    with pytest.raises(DatasetError, match="cannot read the label CSV"):
        evaluate_bundle(trained_models["best"], unseen_corpus, labels_csv=tmp_path / "nowhere.csv")


def test_evaluate_rejects_labels_the_model_does_not_know(trained_models, unseen_corpus, tmp_path):
    wav = next(unseen_corpus.rglob("*.wav"))
    pd.DataFrame([{"file": wav.name, "emotion": "bored"}]).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(DatasetError, match="bored"):
        evaluate_bundle(trained_models["best"], wav.parent, labels_csv=tmp_path / "l.csv", cache_dir=tmp_path / "cache")


# -- the command line ---------------------------------------------------------------------------------
def test_cli_train_then_evaluate(trained_models, unseen_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data-dir", str(trained_models["corpus"]), "--output-dir", "out", "--folds", "3",
                 "--models", "logreg", "--n-jobs", "1", "--no-progress", "--metrics-textfile", "out/training.prom",
                 "--pushgateway", "http://127.0.0.1:1"])  # nothing listens there
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "logreg" in captured.out and "speaker-independent" in captured.out
    assert "vibe_check_training_cv_macro_f1" in (tmp_path / "out" / "training.prom").read_text()
    assert "warning: training metrics not exported" in captured.err  # the gateway is down; the run still succeeds
    assert (tmp_path / "out" / "best_emotion_model.pkl").exists()
    fits = tmp_path / "data" / ".feature_cache" / "fits"
    assert any(fits.rglob("output.pkl"))  # the fits, for a resumed run
    monkeypatch.setattr("vibe_check.training._cli.FIT_CACHE_BYTES", 1)  # the cache is bounded: all but nothing over
    assert main(["train", "--data-dir", str(trained_models["corpus"]), "--output-dir", "out", "--folds", "3",
                 "--models", "lda", "--n-jobs", "1", "--no-progress"]) == 0
    assert not any(fits.rglob("output.pkl"))
    capsys.readouterr()
    code = main(["evaluate", "--model", "out/best_emotion_model.pkl", "--data-dir", str(unseen_corpus), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    for key in ("n", "accuracy", "macro_f1", "uar", "per_class", "confusion", "per_gender", "classes", "bundle", "feature_hash"):
        assert key in result
    assert "macro-F1" in captured.err and "not speaker-independent" not in captured.err
    # Scoring it on speakers it was trained on is allowed, and said to be no evidence.
    assert main(["evaluate", "--model", "out/best_emotion_model.pkl", "--data-dir", str(trained_models["corpus"])]) == 0
    assert "are in this model's training data: these figures are not speaker-independent" in capsys.readouterr().err


@pytest.mark.parametrize("direct", [False, True])
def test_cli_sentiment_from_emotions_or_direct(trained_models, tmp_path, capsys, monkeypatch, direct):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data-dir", str(trained_models["corpus"]), "--output-dir", "out", "--folds", "3", "--task", "sentiment",
            "--models", "lda", "--augment", "none", "--n-jobs", "1", "--no-progress"] + (["--sentiment-direct"] if direct else [])
    assert main(args) == 0, capsys.readouterr().err
    protocol = read_bundle_metadata(tmp_path / "out" / "best_sentiment_model.pkl")["cv"]["protocol"]
    assert ("sum of its emotions'" in protocol) is not direct


def test_cli_train_without_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("vibe_check.training._cli.DEFAULT_DATA_DIRS", ("nowhere",))
    assert main(["train"]) == 2
    assert "vibe-check download" in capsys.readouterr().err


# -- real data -------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_train_on_some_ravdess_actors_and_evaluate_on_others(ravdess_dir, tmp_path):
    train_files = [p for a in range(1, 7) for p in sorted((ravdess_dir / f"Actor_{a:02d}").glob("*.flac"))]
    manifest = build_manifest(train_files, tmp_path / "m.parquet", n_jobs=2, progress=False)
    trainer = EmotionTrainer(models=["logreg"], n_splits=3, n_jobs=2).fit(manifest)
    written = trainer.save_bundles(tmp_path / "models")
    test_dir = tmp_path / "unseen"
    for a in (19, 20):
        shutil.copytree(ravdess_dir / f"Actor_{a:02d}", test_dir / f"Actor_{a:02d}")
    m = evaluate_bundle(written["best"], test_dir, n_jobs=2, cache_dir=tmp_path / "cache")
    assert m["n"] == 120
    # Six training actors are few, but real emotion cues carry over to new speakers (chance: 0.125).
    assert m["macro_f1"] > 0.25
