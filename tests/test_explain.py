"""Explanations: SHAP shapes and additivity in every output space, the ensemble route, aggregates,
held-out importances, local explanations in words, plots and the HTML report.

Models come from the session fixture ``trained_models`` (bundles trained on a generated corpus);
outputs go to ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from vibe_check.explain import (
    REPORT_SECTIONS,
    Explainer,
    ExplanationError,
    FoldModels,
    PipelineShap,
    explain_instance,
    explain_model,
    impurity_importance,
    logits_to_probability_shap,
    permutation_importance,
    plot_group_importance,
    plot_permutation,
    plot_reliability,
    plot_shap_bar,
    plot_shap_beeswarm,
    shap_values,
    unsupported_reason,
    write_report,
)
from vibe_check.explain._shap import _as_3d, _softmax
from vibe_check.explain._words import feature_unit, plain_label, sentence
from vibe_check.models import load_bundle
from vibe_check.training import reliability_curve

NATIVE_SPACE = {"logreg": "log-odds", "lda": "log-odds", "random_forest": "probability", "hist_gb": "log-odds", "ensemble": "probability"}
SENTENCE = re.compile(r"^.+ (high|low|typical) \((?P<name>\w+) = \S+( [^,]+)?, typical \S+\) -> (towards|away from) (?P<cls>\w+)$")


@pytest.fixture(scope="module")
def trainer(trained_models):
    return trained_models["trainer"]


@pytest.fixture(scope="module")
def rows(trainer) -> np.ndarray:
    return trainer._X_train[::6]  # 15 clips of every class and actor


@pytest.fixture(scope="module")
def fold_models(trainer) -> FoldModels:
    return FoldModels(trainer, max_folds=1)


@pytest.fixture(scope="module")
def augmented_trainer(trained_models):
    """An LDA trained with one augmented copy per clip whose features differ from the clip's (so
    that a copy's row can be told from an original's)."""
    from vibe_check.training import EmotionTrainer

    manifest = trained_models["manifest"]
    copies = manifest.copy()
    copies["augmentation"] = "noise"
    names = trained_models["trainer"].feature_names_in_
    copies[names] = copies[names].to_numpy() + 0.25
    both = pd.concat([manifest, copies], ignore_index=True)
    both.attrs = dict(manifest.attrs)
    return EmotionTrainer(models=["lda"], n_splits=3, random_state=0).fit(both)


@pytest.fixture(scope="module")
def sentiment_trainer(trained_models):
    from vibe_check.training import EmotionTrainer

    return EmotionTrainer(task="sentiment", models=["lda", "random_forest"], n_splits=3, random_state=0,
                          model_params={"random_forest": {"model__n_estimators": 30}}).fit(trained_models["manifest"])


@pytest.fixture(scope="module")
def speaker_trainer(trained_models):
    from vibe_check.training import EmotionTrainer

    return EmotionTrainer(models=["lda"], n_splits=3, random_state=0, speaker_normalization=True).fit(trained_models["manifest"])


@pytest.fixture(scope="module")
def held_out(trainer, fold_models):
    """Held-out SHAP values of the random forest (cheap) shared by the aggregate and plot tests."""
    return explain_model(trainer, "random_forest", sample_size=20, fold_models=fold_models)


def explain(trainer, name, rows, output):
    return shap_values(trainer.estimators_[name], rows, feature_names=trainer.feature_names_in_,
                       classes=trainer.classes_, background=trainer.bundle_extra()["background"], output=output, model=name)


# -- SHAP values ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["logreg", "random_forest", "hist_gb", "lda", "ensemble"])
def test_native_space_shapes_and_additivity(trainer, rows, name):
    res = explain(trainer, name, rows, "native")
    est = trainer.estimators_[name]
    assert res.values.shape == (len(rows), len(trainer.feature_names_in_), len(trainer.classes_))
    assert res.base_values.shape == (len(rows), len(trainer.classes_))
    assert res.space == NATIVE_SPACE[name]
    expected = est.predict_proba(rows) if res.space == "probability" else est.decision_function(rows)
    # base value + sum of SHAP values = the model output, for every class of every clip
    np.testing.assert_allclose(res.output, expected, atol=1e-6)
    assert res.seconds > 0 and res.method


@pytest.mark.parametrize("name", ["logreg", "random_forest", "hist_gb", "lda", "ensemble"])
def test_probability_space_adds_up_to_predict_proba(trainer, rows, name):
    res = explain(trainer, name, rows, "probability")
    assert res.space == "probability"
    np.testing.assert_allclose(res.output, trainer.estimators_[name].predict_proba(rows), atol=1e-6)
    # probabilities sum to one, so each feature's contributions over the classes sum to zero
    np.testing.assert_allclose(res.values.sum(axis=2), 0, atol=1e-9)


def test_ensemble_is_the_mean_of_its_members_in_probability_space(trainer, rows):
    ens = explain(trainer, "ensemble", rows, "native")
    members = [explain(trainer, m, rows, "probability") for m in trainer.ensemble_members_]
    np.testing.assert_allclose(ens.values, np.mean([m.values for m in members], axis=0), atol=1e-12)
    np.testing.assert_allclose(ens.base_values, np.mean([m.base_values for m in members], axis=0), atol=1e-12)
    assert "soft-voting" in ens.method and "softmax path" in ens.method


def test_probability_conversion_keeps_direction_and_is_exact():
    rng = np.random.default_rng(0)
    phi = rng.normal(scale=2.0, size=(5, 7, 4))
    base = rng.normal(size=4)
    vp, bp = logits_to_probability_shap(phi, base)
    np.testing.assert_allclose(bp + vp.sum(axis=1), _softmax(base + phi.sum(axis=1)), atol=1e-9)
    # a feature that only raises class 0's logit raises class 0's probability and lowers the others
    one = np.zeros((1, 2, 4))
    one[0, 0, 0] = 1.5
    v1, _ = logits_to_probability_shap(one, np.zeros(4))
    assert v1[0, 0, 0] > 0 and (v1[0, 0, 1:] < 0).all() and np.allclose(v1[0, 1], 0)


def test_multiclass_output_is_always_three_dimensional():
    per_class = [np.ones((3, 5)) * k for k in range(4)]  # shap < 0.45: one array per class
    assert _as_3d(per_class, 3, 5).shape == (3, 5, 4)
    assert _as_3d(np.zeros((3, 5, 4)), 3, 5).shape == (3, 5, 4)
    assert _as_3d(np.zeros((3, 5)), 3, 5).shape == (3, 5, 1)
    with pytest.raises(ExplanationError):
        _as_3d(np.zeros((3, 6, 4)), 3, 5)


@pytest.mark.parametrize("clf", [LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=10, random_state=0)],
                         ids=["logreg", "forest"])
def test_binary_models_get_one_column_per_class(trainer, clf):
    X, y = trainer._X_train, (trainer._y_train == 0).astype(int)
    pipe = Pipeline([("scaler", StandardScaler()), ("model", clf)]).fit(X, y)
    for output in ("native", "probability"):
        res = shap_values(pipe, X[:8], feature_names=trainer.feature_names_in_, classes=["other", "angry"], output=output)
        assert res.values.shape == (8, X.shape[1], 2)
        if res.space == "probability":
            np.testing.assert_allclose(res.output, pipe.predict_proba(X[:8]), atol=1e-6)
        else:  # symmetric logits: their difference is the binary log-odds
            np.testing.assert_allclose(res.output[:, 1] - res.output[:, 0], pipe.decision_function(X[:8]), atol=1e-6)


def test_other_linear_models_take_the_linear_route(trainer, rows):
    lda = Pipeline([("scaler", StandardScaler()), ("model", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))])
    lda.fit(trainer._X_train, trainer._y_train)
    res = shap_values(lda, rows, feature_names=trainer.feature_names_in_, classes=trainer.classes_,
                      background=trainer._X_train, output="probability")
    assert "LinearExplainer" in res.method
    np.testing.assert_allclose(res.output, lda.predict_proba(rows), atol=1e-6)


@pytest.mark.parametrize("kind", ["sgd_ovr", "ridge", "linear_svc", "gb_exponential"])
def test_linear_models_without_a_softmax_link_are_refused(trainer, kind):
    """Finding A6: their "probability" SHAP values would be built from softmax(decision_function),
    which is not their predict_proba (one-vs-rest) or which they do not have at all."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import RidgeClassifier, SGDClassifier
    from sklearn.svm import LinearSVC

    X, y = trainer._X_train, trainer._y_train
    # alpha=1: not so sure of itself that one-vs-rest and softmax probabilities both round to one-hot
    clf = {"sgd_ovr": SGDClassifier(loss="log_loss", alpha=1.0, random_state=0), "ridge": RidgeClassifier(),
           "linear_svc": LinearSVC(),
           "gb_exponential": GradientBoostingClassifier(loss="exponential", n_estimators=5, max_depth=2)}[kind]
    if kind == "gb_exponential":  # binary only: its probability is sigmoid(2 x score)
        y = (y == 0).astype(int)
    pipe = Pipeline([("scaler", StandardScaler()), ("model", clf)]).fit(X, y)
    n = len(np.unique(y))
    with pytest.raises(ExplanationError, match="no SHAP route"):
        PipelineShap(pipe, n_classes=n, background=X[:50], output="probability")
    reason = unsupported_reason(pipe, n, background=X[:50])
    assert reason and ("softmax" in reason or "no predict_proba" in reason or "probabilities" in reason), reason
    assert unsupported_reason(pipe, n) is not None  # on the training mean alone too
    # The models vibe-check trains keep working, also when checked on real rows.
    for name in ("lda", "logreg", "hist_gb", "ensemble"):
        assert unsupported_reason(trainer.estimators_[name], len(trainer.classes_), background=X[:50]) is None


def test_unsupported_models_and_bad_input_are_refused(trainer, rows):
    from sklearn.neighbors import KNeighborsClassifier

    knn = Pipeline([("scaler", StandardScaler()), ("model", KNeighborsClassifier())]).fit(trainer._X_train, trainer._y_train)
    with pytest.raises(ExplanationError, match="no SHAP route"):
        PipelineShap(knn, n_classes=len(trainer.classes_))
    with pytest.raises(ExplanationError, match="columns"):
        shap_values(trainer.estimators_["logreg"], rows[:, :10], feature_names=trainer.feature_names_in_, classes=trainer.classes_)
    with pytest.raises(ValueError, match="output"):
        PipelineShap(trainer.estimators_["logreg"], n_classes=8, output="odds")


def test_models_shap_cannot_explain_are_named_in_the_report(trainer, tmp_path):
    import copy

    from sklearn.ensemble import GradientBoostingClassifier

    gb = Pipeline([("scaler", StandardScaler()), ("model", GradientBoostingClassifier(n_estimators=2, max_depth=1))])
    gb.fit(trainer._X_train, trainer._y_train)
    assert "hist_gb" in unsupported_reason(gb, len(trainer.classes_))
    assert unsupported_reason(trainer.estimators_["logreg"], len(trainer.classes_)) is None
    with_gb = copy.copy(trainer)
    with_gb.estimators_ = {**trainer.estimators_, "gradient_boosting": gb}
    html = write_report(with_gb, tmp_path, models=["gradient_boosting"], permutation=False).read_text()
    assert "Not explained" in html and "GradientBoostingClassifier" in html and 'id="calibration"' in html


# -- aggregates ------------------------------------------------------------------------------------
def test_mean_abs_per_class_and_overall(held_out):
    table = held_out.mean_abs()
    assert list(table.columns) == ["overall", *held_out.classes]
    j = held_out.feature_names.index(table.index[0])
    for k, cls in enumerate(held_out.classes):
        assert table.iloc[0][cls] == pytest.approx(np.abs(held_out.values[:, j, k]).mean())
    np.testing.assert_allclose(table["overall"], table[held_out.classes].sum(axis=1))
    assert table["overall"].is_monotonic_decreasing


def test_group_aggregation_adds_up(held_out, trainer):
    from vibe_check.features import describe_features

    groups = dict(zip(*describe_features()[["name", "group"]].to_numpy().T))
    table = held_out.by_group(groups)
    assert table["n_features"].sum() == len(trainer.feature_names_in_)
    assert table["sum"].sum() == pytest.approx(held_out.mean_abs()["overall"].sum())
    assert table["share"].sum() == pytest.approx(1.0)
    prosody = [i for i, f in enumerate(held_out.feature_names) if groups[f] == "prosody"]
    assert table.loc["prosody", "sum"] == pytest.approx(np.abs(held_out.values[:, prosody]).mean(axis=0).sum())
    # opposite pushes cancel in the net figure, never in the sum
    assert (table["net"] <= table["sum"] + 1e-12).all()


def test_global_shap_uses_only_held_out_clips(trainer, held_out, fold_models):
    train, test = trainer.folds_[0]
    assert len(held_out.rows) == 20 and set(held_out.rows) <= set(test) and not set(held_out.rows) & set(train)
    np.testing.assert_array_equal(held_out.data, trainer._X_train[held_out.rows])
    assert list(held_out.y_true) == list(trainer.classes_[trainer._y_train[held_out.rows]])
    model = fold_models.model("random_forest", 0)
    np.testing.assert_allclose(held_out.output, model.predict_proba(held_out.data), atol=1e-6)
    assert fold_models.refit_seconds["random_forest"] > 0


def test_global_shap_background_is_original_training_clips(augmented_trainer, monkeypatch):
    """A8: the report's SHAP background, like a bundle's, is real clips of the training side only:
    no augmented copies, no held-out speaker."""
    from vibe_check.explain import _importance

    backgrounds = []
    real = _importance.PipelineShap

    def spy(model, **kw):
        backgrounds.append(kw["background"])
        return real(model, **kw)

    monkeypatch.setattr(_importance, "PipelineShap", spy)
    t = augmented_trainer
    res = explain_model(t, "lda", sample_size=10, max_folds=1)
    train = t.folds_[0][0]
    assert (~t._originals_train[train]).any()  # the fold's training side does hold copies
    allowed = {r.tobytes() for r in t._X_train[train[t._originals_train[train]]]}
    assert len(backgrounds) == 1 and len(backgrounds[0]) > 10
    assert all(r.tobytes() in allowed for r in backgrounds[0])
    np.testing.assert_allclose(res.output, FoldModels(t, max_folds=1).model("lda", 0).decision_function(res.data), atol=1e-6)


def test_sample_sizes_below_one_are_refused(trainer, tmp_path):
    """A9: not a bare numpy error from deep inside, and before any refit."""
    for bad in (0, -3):
        with pytest.raises(ValueError, match="at least 1"):
            explain_model(trainer, "logreg", sample_size=bad)
        with pytest.raises(ValueError, match="at least 1"):
            permutation_importance(trainer, "logreg", sample_size=bad)
    with pytest.raises(ValueError, match="shap_sample must be .* at least 1"):
        write_report(trainer, tmp_path / "out", shap_sample=0)
    assert not (tmp_path / "out").exists()


def test_empty_choices_mean_none_not_all(trainer, tmp_path):
    """B14: an empty model list explains no model and permutation_features=0 permutes no single
    feature (both used to mean "all")."""
    from vibe_check.explain import explain_global

    ge = explain_global(trainer, ["logreg"], sample_size=8, max_folds=1, permutation_features=0, n_repeats=1,
                        permutation_sample=8)["logreg"]
    assert ge.permutation is None and ge.permutation_groups is not None
    html = write_report(trainer, tmp_path, models=[], shap_sample=8, max_folds=1, permutation=False).read_text()
    assert "No model was explained" in html and 'id="shap-' not in html


def test_impurity_importance(trainer):
    imp = impurity_importance(trainer.estimators_["random_forest"], trainer.feature_names_in_)
    assert imp.sum() == pytest.approx(1.0) and imp.is_monotonic_decreasing and len(imp) == len(trainer.feature_names_in_)
    assert impurity_importance(trainer.estimators_["logreg"], trainer.feature_names_in_) is None


def test_permutation_importance_is_bounded_and_held_out(trainer, fold_models, monkeypatch):
    from vibe_check.explain import _importance

    scored = []  # (model, rows) of every probability call: the fold model on its held-out rows
    real_proba = _importance._proba
    monkeypatch.setattr(_importance, "_proba", lambda model, X, K: scored.append((model, X)) or real_proba(model, X, K))
    groups = permutation_importance(trainer, "logreg", by="group", n_repeats=2, sample_size=20, fold_models=fold_models)
    assert set(groups.table.index) == set(trainer.feature_config_["groups"])
    assert groups.n_rows == 20 and groups.folds == [0] and groups.seconds < 20
    train, test = trainer.folds_[0]
    assert len(groups.rows) == 20 and set(groups.rows) <= set(test) and not set(groups.rows) & set(train)
    fold_model = fold_models.model("logreg", 0)
    assert scored and all(m is fold_model for m, _ in scored) and fold_model is not trainer.estimators_["logreg"]
    np.testing.assert_array_equal(scored[0][1], trainer._X_train[groups.rows])  # the unpermuted baseline
    assert groups.table["importance"].max() > 0  # shuffling every feature of some group hurts
    feats = permutation_importance(trainer, "logreg", features=["f0_std", "hnr_mean", "rms_db_mean"], n_repeats=2,
                                   sample_size=20, scoring="macro_f1", fold_models=fold_models)
    assert set(feats.table.index) == {"f0_std", "hnr_mean", "rms_db_mean"} and feats.scoring == "macro_f1"
    with pytest.raises(ValueError, match="scoring"):
        permutation_importance(trainer, "logreg", scoring="auc", fold_models=fold_models)


# -- local explanations -------------------------------------------------------------------------
def test_words():
    assert plain_label("f0_std") == "pitch variability"
    assert plain_label("mfcc_03_mean") == "average MFCC 3"
    assert plain_label("chroma_Cs_std") == "pitch class C# energy variability"
    assert feature_unit("rms_db_slope", "frame RMS level in dB relative to the clip's level; slope (per second)") == "dB/s"
    assert feature_unit("rms_db_skew", "frame RMS level in dB relative to the clip's level; skewness") == ""
    assert feature_unit("spectral_centroid_slope", "spectral centroid (Hz): brightness; slope") == "Hz/s"
    # The contour group's slopes are over the utterance's normalised time: no "per second".
    from vibe_check.features import describe_features

    table = describe_features().set_index("name").description
    assert feature_unit("f0_rel_slope", table["f0_rel_slope"]) == "st"
    assert feature_unit("level_rel_slope", table["level_rel_slope"]) == "dB"
    assert feature_unit("level_rel_upper_fraction", table["level_rel_upper_fraction"]) == ""
    assert plain_label("f0_rel_p95") == "relative pitch, 95th percentile"
    # Every covariation feature reads as a unitless correlation of two named descriptors.
    table = describe_features()
    for name, desc in zip(table.name, table.description):
        if name.startswith("corr_"):
            assert plain_label(name).startswith("correlation of ") and "_" not in plain_label(name), name
            assert feature_unit(name, desc) == "", name
    assert plain_label("corr_mfcc_04_delta_vs_f0") == "correlation of MFCC 4 change with pitch"
    assert plain_label("corr_voicing_vs_level") == "correlation of voicing with loudness"
    assert (sentence("f0_std", value=48.1, median=21.0, q25=15, q75=30, unit="Hz", target="angry", towards=True)
            == "pitch variability high (f0_std = 48.1 Hz, typical 21.0) -> towards angry")
    assert sentence("hnr_mean", value=3.0, median=9.0, q25=8, q75=12, unit="dB", target="sad", towards=False).startswith(
        "average voice clarity low (hnr_mean = 3.0 dB")
    # Units as the descriptions state them: F0 velocity per 10 ms frame step, rates per second.
    table = describe_features().set_index("name").description
    assert feature_unit("f0_velocity_mean", table["f0_velocity_mean"]) == "st/10 ms"
    for rate in ("pause_rate", "voiced_segment_rate", "energy_peak_rate"):
        assert feature_unit(rate, table[rate]) == "/s", rate
    assert feature_unit("f0_final_slope", table["f0_final_slope"]) == "st/s"


@pytest.mark.parametrize("name", ["logreg", "random_forest", "hist_gb", "lda", "ensemble"])
def test_local_explanation_fields_and_signs(trained_models, trainer, name):
    bundle = load_bundle(trained_models["paths"][name])
    explainer = Explainer.from_bundle(bundle)
    x = trainer._X_train[7]
    out = explainer.explain(x, top_k=4)
    proba = bundle["pipeline"].predict_proba(x[None])[0]
    assert out["predicted"] == trainer.classes_[proba.argmax()] and out["probability"] == pytest.approx(proba.max())
    assert out["space"] == "probability" and out["model"] == name
    # the explained output of the predicted class is its probability
    assert out["output"] == pytest.approx(out["probability"], abs=1e-6)
    total = sum(i["contribution"] for i in out["towards"] + out["away"]) + out["rest"]
    assert out["base_value"] + total == pytest.approx(out["probability"], abs=1e-6)
    towards, away = [i["contribution"] for i in out["towards"]], [i["contribution"] for i in out["away"]]
    assert 0 < len(towards) <= 4 and len(away) <= 4
    assert all(c > 0 for c in towards) and towards == sorted(towards, reverse=True)
    assert all(c < 0 for c in away) and away == sorted(away)
    extra = bundle["extra"]
    names = bundle["metadata"]["feature_names"]
    for item in out["towards"] + out["away"]:
        j = names.index(item["name"])
        assert item["value"] == pytest.approx(x[j]) and item["typical"] == pytest.approx(extra["feature_median"][j])
        assert item["q25"] <= item["typical"] <= item["q75"]
        assert item["group"] in trainer.feature_config_["groups"] and item["description"] and item["label"]
        m = SENTENCE.match(item["sentence"])
        assert m and m["name"] == item["name"] and m["cls"] == out["predicted"], item["sentence"]
        assert ("-> towards" in item["sentence"]) == (item["contribution"] > 0)
    assert out["predicted"] in out["summary"]
    json.dumps(out)  # JSON-ready for the service


def test_explainer_is_built_once_and_fast(trained_models, trainer):
    explainer = Explainer.from_bundle(load_bundle(trained_models["paths"]["logreg"]))
    explainer.explain(trainer._X_train[0])
    secs = [explainer.explain(trainer._X_train[i], proba=None)["seconds"] for i in range(5)]
    assert np.median(secs) < 0.5


def test_explain_instance_matches_explainer(trained_models, trainer):
    bundle = load_bundle(trained_models["paths"]["random_forest"])
    meta, extra = bundle["metadata"], bundle["extra"]
    x = trainer._X_train[3]
    one = explain_instance(bundle["pipeline"], x, feature_names=meta["feature_names"], classes=meta["classes"],
                           background=extra["background"], feature_median=extra["feature_median"],
                           feature_q25=extra["feature_q25"], feature_q75=extra["feature_q75"], top_k=3)
    again = Explainer.from_bundle(bundle).explain(x, top_k=3)
    assert [i["name"] for i in one["towards"]] == [i["name"] for i in again["towards"]]
    assert one["probability"] == pytest.approx(again["probability"])


def _geometric(P: np.ndarray) -> np.ndarray:
    q = np.exp(np.log(np.clip(P, 1e-300, None)).mean(axis=0))  # as the model clips a forest's zeros
    return q / q.sum()


@pytest.mark.parametrize("name", ["lda", "logreg", "hist_gb", "random_forest", "ensemble"])
def test_several_rows_are_explained_as_one_answer(trained_models, trainer, name):
    """Finding A1: a clip's row and rows of copies of it make one answer (the normalised geometric
    mean of their probabilities, as test-time augmentation combines them); the explanation is of
    that answer, exactly for softmax models, and says so."""
    bundle = load_bundle(trained_models["paths"][name])
    explainer = Explainer.from_bundle(bundle)
    X = trainer._X_train[[5, 11, 17, 23]]  # different clips stand in for copies: the identities are algebraic
    P = bundle["pipeline"].predict_proba(X)
    out = explainer.explain(X, top_k=3, copies="stand-ins")
    answer = _geometric(P)
    k = int(answer.argmax())
    assert out["predicted"] == trainer.classes_[k] and out["probability"] == pytest.approx(answer[k], abs=1e-12)
    assert out["rows"] == 4 and out["explains"].startswith("the clip and its 3 stand-ins")
    for item in out["towards"] + out["away"]:  # the values quoted are the clip's own (first row)
        assert item["value"] == pytest.approx(X[0, list(trainer.feature_names_in_).index(item["name"])])
    if name in ("lda", "logreg", "hist_gb"):
        assert not out["approximate"] and out["output"] == pytest.approx(out["probability"], abs=1e-9)
        native = Explainer.from_bundle(bundle, output="native").explain(X)
        logits = bundle["pipeline"].decision_function(X).mean(axis=0)  # their mean logits: softmax is the answer
        assert native["output"] == pytest.approx(logits[k], abs=1e-9) and not native["approximate"]
    else:
        assert out["approximate"] and out["output"] == pytest.approx(P[:, k].mean(), abs=1e-9)
    assert explainer.explain(X[:1])["output"] == pytest.approx(explainer.explain(X[0])["output"])  # 1 row = 1-D
    json.dumps(out)


@pytest.mark.parametrize("clf", [LinearDiscriminantAnalysis(), LogisticRegression(max_iter=500),
                                 "hist_gb"], ids=["lda", "logreg", "hist_gb"])
def test_several_rows_of_a_binary_model_are_explained_exactly(trainer, clf):
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=10) if clf == "hist_gb" else clf
    X, y = trainer._X_train, (trainer._y_train == 0).astype(int)
    pipe = Pipeline([("scaler", StandardScaler()), ("model", clf)]).fit(X, y)
    explainer = Explainer(pipe, feature_names=trainer.feature_names_in_, classes=["other", "angry"], background=X[::5])
    rows = X[[0, 1, 8, 30]]
    out = explainer.explain(rows)
    answer = _geometric(pipe.predict_proba(rows))
    assert out["probability"] == pytest.approx(answer.max(), abs=1e-12)
    assert out["output"] == pytest.approx(out["probability"], abs=1e-9) and not out["approximate"]


def test_probabilities_follow_the_encoded_classes(trainer):
    """B15: a pipeline fitted without some class gets zero for it, at the right place."""
    keep = trainer._y_train != 2
    pipe = Pipeline([("scaler", StandardScaler()), ("model", LogisticRegression(max_iter=300))])
    pipe.fit(trainer._X_train[keep], trainer._y_train[keep])
    explainer = Explainer(pipe, feature_names=trainer.feature_names_in_, classes=trainer.classes_,
                          background=trainer._X_train[::5])
    x = trainer._X_train[np.flatnonzero(trainer._y_train == 5)[0]]
    out = explainer.explain(x)
    raw = pipe.predict_proba(x[None])[0]
    assert len(out["probabilities"]) == len(trainer.classes_) and out["probabilities"][trainer.classes_[2]] == 0
    for code, p in zip(pipe.classes_, raw):
        assert out["probabilities"][trainer.classes_[code]] == pytest.approx(p)
    assert out["predicted"] == trainer.classes_[pipe.classes_[raw.argmax()]]
    assert out["output"] == pytest.approx(out["probability"], abs=1e-6)


def test_partial_feature_statistics_without_background(trained_models):
    bundle = load_bundle(trained_models["paths"]["logreg"])
    meta, extra = bundle["metadata"], bundle["extra"]
    with pytest.raises(ExplanationError, match="need background rows or feature statistics"):
        Explainer(bundle["pipeline"], feature_names=meta["feature_names"], classes=meta["classes"],
                  feature_median=extra["feature_median"])  # no quartiles, no background


def test_one_explainer_per_model_whichever_thread_asks_first(trained_models, monkeypatch):
    import threading

    from vibe_check.explain import model_explainer
    from vibe_check.models import CustomEmotionModel

    model = CustomEmotionModel(trained_models["paths"]["logreg"])
    built = []
    real = Explainer.from_bundle.__func__

    def slow_build(cls, bundle, **kw):
        built.append(1)
        time.sleep(0.2)  # long enough for the other thread to arrive while this one builds
        return real(cls, bundle, **kw)

    monkeypatch.setattr(Explainer, "from_bundle", classmethod(slow_build))
    got = []
    threads = [threading.Thread(target=lambda: got.append(model_explainer(model))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(built) == 1 and got[0] is got[1]


def test_model_explain_and_cli(trained_models, capsys):
    from vibe_check.cli import main
    from vibe_check.models import CustomEmotionModel

    model = CustomEmotionModel(trained_models["best"])
    wav = sorted(trained_models["corpus"].rglob("*.wav"))[0]
    out = model.explain(wav, top_k=3)
    assert out["predicted"] == model.predict_emotion_from_file(wav)["emotion"]
    assert out["signal"]["duration_s"] > 0 and len(out["towards"]) <= 3
    assert model.explain(wav.read_bytes(), top_k=3)["predicted"] == out["predicted"]
    rows, info = model.clip_rows(model.decode(wav))  # a clip already extracted, as the service has it
    again = model.explain_rows(rows, info, top_k=3)
    assert [f["name"] for f in again["towards"]] == [f["name"] for f in out["towards"]]
    assert again["probability"] == pytest.approx(out["probability"]) and again["signal"] == out["signal"]
    assert main(["explain", "--model", str(trained_models["best"]), str(wav), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert f"-- towards {out['predicted']} --" in text and out["towards"][0]["name"] in text
    assert main(["explain", "--model", str(trained_models["best"]), str(wav), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predicted"] == out["predicted"]
    assert main(["explain", "--model", str(trained_models["best"]), str(wav.parent), "--json"]) == 0
    # a folder: every audio file in it, one JSON line per file (as predict --json prints them)
    by_file = {r["file"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(by_file) == len(list(wav.parent.glob("*.wav"))) and by_file[str(wav)]["predicted"] == out["predicted"]


# -- plots and report -----------------------------------------------------------------------------
def assert_png(path, min_size=(500, 300)):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 5_000 < path.stat().st_size < 3_000_000
    with Image.open(path) as im:
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1] and max(im.size) < 4000


def test_plots_are_png_files(held_out, trainer, fold_models, tmp_path):
    assert_png(plot_shap_beeswarm(held_out, tmp_path / "bee.png", top_k=6), (1000, 800))
    assert_png(plot_shap_bar(held_out, tmp_path / "bar.png", top_k=10, feature_groups={"f0_std": "prosody"}))
    from vibe_check.features import describe_features

    groups = dict(zip(*describe_features()[["name", "group"]].to_numpy().T))
    assert_png(plot_group_importance(held_out.by_group(groups), tmp_path / "groups.png"))
    perm = permutation_importance(trainer, "random_forest", by="group", n_repeats=1, sample_size=10, fold_models=fold_models)
    assert_png(plot_permutation(perm, tmp_path / "perm.png"))
    oof = trainer.cv_results_["logreg"].oof
    curve = reliability_curve(trainer.label_encoder_.transform(oof["y_true"]), oof[[f"proba_{c}" for c in trainer.classes_]].to_numpy())
    assert_png(plot_reliability({"logreg": curve}, tmp_path / "rel.png", ece={"logreg": 0.1}))


def test_beeswarm_colours_equal_values_alike():
    """A7: colour by average rank, so tied values share a colour; a constant feature is neutral."""
    from vibe_check.explain._plots import _rank01

    v = np.array([0.0, 2.0, 0.0, 1.0, 0.0, 3.0])
    r = _rank01(v)
    assert r[0] == r[2] == r[4] and r[3] > r[0] and r[5] == 1.0 and r[1] < r[5]
    np.testing.assert_allclose(_rank01(np.zeros(5)), 0.5)
    np.testing.assert_allclose(_rank01(np.array([4.0, 1.0, 2.0])), [1.0, 0.0, 0.5])


def test_html_report_is_self_contained_and_complete(trainer, tmp_path):
    command = "pytest tests/test_explain.py --report"
    path = write_report(trainer, tmp_path, command=command, models=["logreg"], shap_sample=24, max_folds=1,
                        permutation_features=8, n_repeats=1, permutation_sample=24)
    html = path.read_text()
    assert path.name == "report_emotion.html" and html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)  # nothing fetched from the network
    assert "<script" not in html.lower()
    for anchor, title in REPORT_SECTIONS.items():
        assert f'id="{anchor}"' in html and f"<h2>{title}" in html.replace("&amp;", "&")
    assert 'id="shap-logreg"' in html and 'id="shap-hist_gb"' not in html
    assert html.count("data:image/png;base64,") >= 3 + 2 + 1  # bar, beeswarm, groups, 2 permutation, calibration
    assert command in html and trainer.feature_hash_ in html and "shap" in html and "±" in html
    assert all(f"<th>{c}</th>" in html for c in trainer.classes_)  # confusion matrix columns
    assert "gender gap" in html and "actor 1 (" in html
    for png in ("logreg_shap_beeswarm.png", "logreg_shap_bar.png", "reliability.png"):
        assert_png(tmp_path / "report_emotion_files" / png)


def test_reports_of_different_runs_do_not_overwrite_each_other(trainer, sentiment_trainer, speaker_trainer, tmp_path):
    """A3: named by task and mode like the bundles, each with its own figures folder, written fresh."""
    kw = dict(shap_sample=12, max_folds=1, permutation=False)
    emotion = write_report(trainer, tmp_path, models=["logreg", "random_forest"], **kw)
    sentiment = write_report(sentiment_trainer, tmp_path, models=["lda"], **kw)
    speaker = write_report(speaker_trainer, tmp_path, models=["lda"], **kw)
    assert [p.name for p in (emotion, sentiment, speaker)] == [
        "report_emotion.html", "report_sentiment.html", "report_emotion_speaker.html"]
    assert "report: emotion, 8 classes" in emotion.read_text() and "report: sentiment, 3 classes" in sentiment.read_text()
    assert (tmp_path / "report_emotion_files" / "random_forest_shap_bar.png").exists()
    assert (tmp_path / "report_sentiment_files" / "lda_shap_bar.png").exists()
    assert not (tmp_path / "report_sentiment_files" / "random_forest_shap_bar.png").exists()
    # The next emotion run, without the forest: its figures do not remain beside the new report.
    write_report(trainer, tmp_path, models=["logreg"], **kw)
    files = {p.name for p in (tmp_path / "report_emotion_files").iterdir()}
    assert "logreg_shap_bar.png" in files and not any(f.startswith("random_forest") for f in files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    assert write_report(trainer, tmp_path, models=[], filename="custom.html", **kw).name == "custom.html"
    assert (tmp_path / "custom_files" / "reliability.png").exists()


def test_report_states_the_speaker_mode_and_each_models_output_space(trainer, sentiment_trainer, speaker_trainer,
                                                                     tmp_path):
    """A4, A5: a speaker-normalised run says so and how it was measured; the output-space
    paragraph describes the models explained, not a fixed list."""
    kw = dict(shap_sample=12, max_folds=1, permutation=False)
    spk = write_report(speaker_trainer, tmp_path, models=["lda"], **kw).read_text()
    assert "Speaker-normalised mode" in spk and "speaker-normalised</h1>" in spk
    assert "all</i> of their own clips" in spk and "not the headline figure" in spk
    assert "difference from its speaker's mean" in spk
    plain = write_report(trainer, tmp_path, models=["lda", "random_forest"], **kw).read_text()
    assert "Speaker-normalised mode" not in plain
    space = plain[plain.index("Output space of each model"):]
    assert "Linear discriminant analysis" in space and "<code>lda</code>): <b>logits</b>" in space
    assert "<code>random_forest</code>): <b>probability</b> (exact)" in space
    assert "log-odds</b>" not in plain
    sent = write_report(sentiment_trainer, tmp_path, models=["lda", "random_forest"], **kw).read_text()
    space = sent[sent.index("Output space of each model"):sent.index("<h3>Top 10")]
    assert "<b>logits</b>" not in space and space.count("<b>probability</b>") == 2
    assert "sum of its emotions' values" in space
