"""The LDA's temperature: fitted on held-out speakers, honest on unseen ones, and routed by the trainer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin

from vibe_check.training import BalancedLinearDiscriminantAnalysis, expected_calibration_error, fit_temperature, make_model
from vibe_check.training._cv import fit_predict_fold
from vibe_check.training._models import GroupedClassifier, row_fit_params


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(20000, 5))
    for true_t in (0.5, 1.0, 3.0):
        p = softmax(logits / true_t, axis=1)
        y = (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)
        assert fit_temperature(logits, y) == pytest.approx(true_t, rel=0.05)


def test_fit_temperature_ignores_classes_a_model_could_not_predict():
    z = np.array([[4.0, 0.0, -np.inf], [4.0, 0.0, -np.inf], [0.0, 4.0, -np.inf], [4.0, 0.0, -np.inf]])
    assert fit_temperature(z, np.array([0, 1, 1, 0])) == pytest.approx(4 / np.log(3), rel=1e-3)


def _speakers(n_speakers=12, per_class=6, n_classes=6, n_features=300, separation=0.15, seed=0):
    """Rows = class mean + a speaker offset + noise, in many dimensions: a plain LDA is over-sure
    on unseen speakers, as on the real corpus."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, separation, (n_classes, n_features))
    X, y, g = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(0, 0.6, n_features)
        for c in range(n_classes):
            X.append(means[c] + offset + rng.normal(0, 1, (per_class, n_features)))
            y += [c] * per_class
            g += [s] * per_class
    return np.vstack(X), np.array(y), np.array(g)


def test_calibrated_lda_predicts_the_same_and_is_honest_on_unseen_speakers():
    X, y, g = _speakers()
    train, test = g < 8, g >= 8
    plain = make_model("lda").set_params(model__calibration_cv=None).fit(X[train], y[train])
    calibrated = make_model("lda")
    calibrated.fit(X[train], y[train], **row_fit_params(calibrated, groups=g[train]))
    lda = calibrated[-1]
    assert plain[-1].temperature_ == 1.0 and lda.temperature_ > 1.5  # the plain LDA was over-sure
    np.testing.assert_array_equal(calibrated.predict(X[test]), plain.predict(X[test]))
    # the calibrated probabilities are the plain logits over the temperature
    z = plain.decision_function(X[test])
    np.testing.assert_allclose(calibrated.predict_proba(X[test]), softmax(z / lda.temperature_, axis=1), atol=1e-10)
    ece_plain = expected_calibration_error(y[test], plain.predict_proba(X[test]))
    ece_cal = expected_calibration_error(y[test], calibrated.predict_proba(X[test]))
    assert ece_cal < ece_plain / 2, (ece_plain, ece_cal)


def test_the_temperature_is_fitted_on_held_out_speakers():
    X, y, g = _speakers()
    grouped = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g).temperature_
    # Without groups, rows of a speaker sit on both sides of the inner folds: the held-out logits
    # look better than they will on a new speaker, so the temperature comes out lower.
    mixed = BalancedLinearDiscriminantAnalysis().fit(X, y).temperature_
    assert grouped > mixed * 1.1, (grouped, mixed)


def test_calibrate_on_chooses_the_rows_that_fit_the_temperature():
    X, y, g = _speakers()
    noisy = np.random.default_rng(1).normal(0, 3, X.shape)
    X2, y2, g2 = np.r_[X, X + noisy], np.r_[y, y], np.r_[g, g]
    original = np.r_[np.ones(len(X), bool), np.zeros(len(X), bool)]
    on_all = BalancedLinearDiscriminantAnalysis().fit(X2, y2, groups=g2).temperature_
    on_originals = BalancedLinearDiscriminantAnalysis().fit(X2, y2, groups=g2, calibrate_on=original).temperature_
    assert on_all > on_originals  # the noisy copies are less accurate, so they ask for a softer model
    assert BalancedLinearDiscriminantAnalysis().fit(X2, y2, groups=g2, calibrate_on=~original | original).temperature_ == on_all
    assert BalancedLinearDiscriminantAnalysis().fit(X2, y2, groups=g2, calibrate_on=np.zeros(len(y2), bool)).temperature_ == 1.0


def test_too_few_rows_or_speakers_leave_the_lda_uncalibrated():
    X, y, g = _speakers(n_speakers=1, per_class=2)
    assert BalancedLinearDiscriminantAnalysis().fit(X, y).temperature_ == 1.0  # inner fits would have 1 row per class
    assert BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g).temperature_ == 1.0  # one speaker


def test_a_binary_lda_is_calibrated_too():
    X, y, g = _speakers(n_classes=2, per_class=15)
    lda = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g)
    plain = BalancedLinearDiscriminantAnalysis(calibration_cv=None).fit(X, y)
    d = plain.decision_function(X)
    np.testing.assert_allclose(lda.predict_proba(X)[:, 1], 1 / (1 + np.exp(-d / lda.temperature_)), atol=1e-10)


class _Recorder(ClassifierMixin, BaseEstimator):
    """Remembers the per-row fit parameters it was given."""

    def fit(self, X, y, groups=None, calibrate_on=None, recordings=None):
        self.groups_, self.calibrate_on_, self.recordings_ = groups, calibrate_on, recordings
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), self.classes_.size), 1 / self.classes_.size)


def test_row_fit_params_reach_the_final_step_through_pipelines_and_groupings():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    g = np.arange(6)
    assert row_fit_params(_Recorder(), groups=g, calibrate_on=None) == {"groups": g}
    pipe = Pipeline([("scaler", StandardScaler()), ("model", _Recorder())])
    assert set(row_fit_params(pipe, groups=g, calibrate_on=g > 2)) == {"model__groups", "model__calibrate_on"}
    assert set(row_fit_params(GroupedClassifier(pipe, group_of=(0, 0, 1)), groups=g)) == {"model__groups"}
    assert row_fit_params(make_model("random_forest"), groups=g) == {}  # its fit takes no groups


def test_cross_validation_hands_each_fold_its_own_speakers_and_original_rows():
    from sklearn.pipeline import Pipeline

    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.tile([0, 1], 10)
    groups = np.repeat(np.arange(5), 4)
    originals = np.arange(20) % 4 != 3
    train, test = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    recordings = np.arange(20) // 2
    _, model = fit_predict_fold(Pipeline([("model", _Recorder())]), X, y, train, test, n_classes=2, fold=0,
                                groups=groups, calibrate_on=originals, recordings=recordings)
    np.testing.assert_array_equal(model[-1].groups_, groups[train])
    np.testing.assert_array_equal(model[-1].calibrate_on_, originals[train])
    np.testing.assert_array_equal(model[-1].recordings_, recordings[train])


def test_trained_lda_bundles_carry_a_held_out_temperature(trained_models):
    trainer = trained_models["trainer"]
    lda = trainer.estimators_["lda"][-1]
    assert lda.temperature_ != 1.0 and lda.calibration_cv == 5
    meta = trainer.bundle_metadata("lda")
    assert meta["calibration"]["temperature"] == lda.temperature_ and "held-out speakers" in meta["calibration"]["method"]
    assert trainer.bundle_metadata("logreg")["calibration"] is None


@pytest.mark.parametrize("n, d", [(300, 40), (90, 250), (2000, 12)], ids=["n>d", "n<d", "few-features"])
def test_fast_ledoit_wolf_solve_matches_scikit_learn(n, d):
    """The LDA's own Ledoit-Wolf + Cholesky path gives scikit-learn's numbers, constant columns too."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, d)
    X[:, 2] = 3.0  # constant: scikit-learn's scaler keeps its scale at 1
    y = rng.integers(0, 4, n)
    X[y == 1, :5] += 1.0
    X[y == 3, 5:9] -= 0.5
    ours = BalancedLinearDiscriminantAnalysis(calibration_cv=None).fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(4, 0.25)).fit(X, y)
    np.testing.assert_allclose(ours.covariance_, ref.covariance_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-9 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-9)


def test_fixed_shrinkage_keeps_scikit_learns_solver():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X, y, _ = _speakers(n_speakers=3, n_features=30)
    ours = BalancedLinearDiscriminantAnalysis(shrinkage=0.3, calibration_cv=None).fit(X, y)
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.3, priors=np.full(6, 1 / 6)).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)


# -- the nuisance covariance --------------------------------------------------------------------
def _augmented(seed=0, n_speakers=10, per_class=8, nuisance=3.0):
    """Two classes that differ in features 0 and 1 alike; each clip has a copy whose feature 1
    carries strong noise (the "recording condition"), so only feature 0 is trustworthy."""
    rng = np.random.default_rng(seed)
    X, y, g = [], [], []
    for s in range(n_speakers):
        for c in (0, 1):
            X.append(rng.normal(0, 1, (per_class, 3)) + np.array([c, c, 0.0]))
            y += [c] * per_class
            g += [s] * per_class
    clean, y, g = np.vstack(X), np.array(y), np.array(g)
    copies = clean + np.outer(rng.normal(0, nuisance, len(clean)), [0.0, 1.0, 0.0])
    n = len(clean)
    return (np.r_[clean, copies], np.r_[y, y], np.r_[g, g], np.r_[np.arange(n), np.arange(n)],
            np.r_[np.ones(n, bool), np.zeros(n, bool)])


def test_nuisance_scatter_is_the_spread_of_copies_around_their_recording():
    from vibe_check.training._models import _nuisance_scatter

    X = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 1.0], [5.0, 3.0], [9.0, 9.0]])
    recordings = np.array(["a", "a", "b", "b", "c"])  # residuals (-1, 0) (1, 0) (0, -1) (0, 1) (0, 0)
    np.testing.assert_allclose(_nuisance_scatter(X, recordings), np.diag([2.0, 2.0]) / 5)
    assert _nuisance_scatter(X, np.arange(5)) is None  # no copies: nothing to measure


def test_the_nuisance_covariance_turns_the_lda_away_from_what_augmentation_moves():
    X, y, g, recordings, originals = _augmented()
    plain = BalancedLinearDiscriminantAnalysis(calibration_cv=None).fit(X, y, recordings=recordings)
    assert plain.nuisance_weight_ == 0.0  # the first candidate, without inner folds to choose
    heavy = BalancedLinearDiscriminantAnalysis(calibration_cv=None, nuisance_weights=(4.0,)).fit(X, y, recordings=recordings)
    assert heavy.nuisance_weight_ == 4.0
    ratio = lambda lda: abs(lda.coef_[0, 1] / lda.coef_[0, 0])  # weight on the noisy feature vs the clean one
    # within-class variance of feature 1: about 5.5 from the rows; + 4 x 2.25 from the pairs
    assert ratio(heavy) < ratio(plain) / 2, (ratio(plain), ratio(heavy))
    # on new recordings under the same condition, the heavier nuisance weight is the more accurate
    # (about 0.685 against 0.695: 16,000 noisy rows hold the difference to about +-0.002)
    Xt, yt, *_ = _augmented(seed=1, n_speakers=1000)
    noisy = slice(len(Xt) // 2, None)
    assert heavy.score(Xt[noisy], yt[noisy]) > plain.score(Xt[noisy], yt[noisy]) + 0.004


def test_inner_folds_choose_the_weight_with_the_lowest_held_out_log_loss():
    X, y, g, recordings, originals = _augmented()
    lda = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g, calibrate_on=originals, recordings=recordings)
    assert set(lda.nuisance_scores_) == set(lda.nuisance_weights)
    assert lda.nuisance_weight_ == min(lda.nuisance_scores_, key=lda.nuisance_scores_.get)
    # Held out clean, feature 1 is as informative as feature 0: no weight. Held out under the
    # condition (the copies), the weight that discounts feature 1 wins.
    assert lda.nuisance_weight_ == 0.0
    on_copies = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g, calibrate_on=~originals, recordings=recordings)
    assert on_copies.nuisance_weight_ > 0.0
    # the model is refit on every row with the chosen weight
    fixed = BalancedLinearDiscriminantAnalysis(calibration_cv=None, nuisance_weights=(lda.nuisance_weight_,))
    fixed.fit(X, y, recordings=recordings)
    np.testing.assert_allclose(lda.coef_ * lda.temperature_, fixed.coef_, rtol=1e-10)


def test_without_copies_the_lda_is_the_plain_one():
    X, y, g = _speakers(n_speakers=6, n_features=20)
    alone = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g, recordings=np.arange(len(y)))
    plain = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g)
    assert alone.nuisance_weight_ == plain.nuisance_weight_ == 0.0 and alone.nuisance_scores_ == {}
    np.testing.assert_allclose(alone.coef_, plain.coef_)
    assert alone.temperature_ == plain.temperature_


def test_the_temperature_is_fitted_on_inner_refits_of_the_model():
    """The inner folds' logits are those of LDAs refit on each inner training side."""
    from sklearn.model_selection import GroupKFold

    X, y, g = _speakers(n_speakers=10, n_features=40)
    lda = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g)
    logits, truth = [], []
    for train, test in GroupKFold(n_splits=5).split(X, y, g):
        inner = BalancedLinearDiscriminantAnalysis(calibration_cv=None).fit(X[train], y[train])
        logits.append(inner.decision_function(X[test]))
        truth.append(y[test])
    assert lda.temperature_ == pytest.approx(fit_temperature(np.vstack(logits), np.concatenate(truth)), rel=1e-6)


def test_bad_nuisance_settings_are_refused():
    X, y, g, recordings, _ = _augmented(n_speakers=4)
    with pytest.raises(ValueError, match=">= 0"):
        BalancedLinearDiscriminantAnalysis(nuisance_weights=(-1.0,)).fit(X, y, recordings=recordings)
    with pytest.raises(ValueError, match="solver='lsqr'"):
        BalancedLinearDiscriminantAnalysis(solver="eigen", nuisance_weights=(1.0,)).fit(X, y, recordings=recordings)


def test_an_lda_saved_before_the_nuisance_covariance_still_works():
    import pickle

    from sklearn.base import clone

    X, y, g = _speakers(n_speakers=4, n_features=10)
    lda = BalancedLinearDiscriminantAnalysis().fit(X, y, groups=g)
    old = dict(lda.__dict__)
    for key in ("nuisance_weights", "nuisance_weight_", "nuisance_scores_"):
        del old[key]  # what a bundle pickled at stop 21 holds
    restored = BalancedLinearDiscriminantAnalysis.__new__(BalancedLinearDiscriminantAnalysis)
    restored.__setstate__(old)
    restored = pickle.loads(pickle.dumps(restored))
    assert restored.get_params()["nuisance_weights"] == (0.0,) and restored.nuisance_weight_ == 0.0
    assert "BalancedLinearDiscriminantAnalysis" in repr(restored) and clone(restored).nuisance_weights == (0.0,)
    np.testing.assert_array_equal(restored.predict_proba(X), lda.predict_proba(X))
