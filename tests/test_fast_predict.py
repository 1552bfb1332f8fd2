"""The flattened tree ensembles give scikit-learn's probabilities, and the model falls back when not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from vibe_check.models import CustomEmotionModel
from vibe_check.models import _custom
from vibe_check.models._fast_predict import compile_predict_proba
from vibe_check.training import make_model


@pytest.fixture(scope="module", params=[2, 5], ids=["binary", "5-class"])
def data(request):
    X, y = make_classification(n_samples=400, n_features=30, n_informative=12, n_classes=request.param,
                               random_state=request.param)
    rng = np.random.default_rng(0)
    # ties with thresholds and values far outside the training range both take the right branch
    X_test = np.vstack([X[:50], X[:20] * 100, rng.normal(size=(30, 30))])
    return X, y, X_test


def _assert_same(fast, estimator, X):
    assert fast is not None
    np.testing.assert_allclose(fast(X), estimator.predict_proba(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=25, min_samples_leaf=2, class_weight="balanced_subsample", random_state=0),
    lambda: RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0),
    lambda: HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8, max_features=0.5, random_state=0),
], ids=["forest", "shallow-forest", "hist-gb"])
def test_tree_ensembles_match_scikit_learn(data, make):
    X, y, X_test = data
    clf = make().fit(X, y)
    fast = compile_predict_proba(clf)
    _assert_same(fast, clf, X_test)
    _assert_same(fast, clf, X_test[:1])  # one row, the latency case


def test_hist_gb_trained_with_missing_values_routes_nan_like_scikit_learn(data):
    X, y, X_test = data
    X = X.copy()
    X[::7, 3] = np.nan
    clf = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    X_test = X_test.copy()
    X_test[::3, 3] = np.nan
    _assert_same(compile_predict_proba(clf), clf, X_test)


def test_pipelines_and_soft_voting_over_frozen_members(data):
    X, y, X_test = data
    members = [make_model(name, random_state=0).fit(X, y) for name in ("logreg", "random_forest", "hist_gb", "lda")]
    vote = VotingClassifier([(str(i), FrozenEstimator(m)) for i, m in enumerate(members)], voting="soft").fit(X, y)
    _assert_same(compile_predict_proba(vote), vote, X_test)
    weighted = VotingClassifier([("a", members[0]), ("b", members[1])], voting="soft", weights=[3, 1]).fit(X, y)
    _assert_same(compile_predict_proba(weighted), weighted, X_test)


def test_nothing_to_compile_gives_none(data):
    X, y, _ = data
    assert compile_predict_proba(Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(X, y)) is None
    hard = VotingClassifier([("a", LogisticRegression()), ("b", RandomForestClassifier(n_estimators=3))], voting="hard")
    assert compile_predict_proba(hard.fit(X, y)) is None


def test_model_uses_the_fast_path_and_agrees_with_scikit_learn(trained_models):
    model = CustomEmotionModel(trained_models["paths"]["ensemble"])
    assert model._fast_proba is not None
    X = np.asarray(model.extra["background"], dtype=np.float64)[:10]
    expected = np.zeros((len(X), len(model.classes_)))
    expected[:, model._columns] = model.pipeline.predict_proba(X)
    np.testing.assert_allclose(model.predict_proba_features(X), expected, rtol=0, atol=1e-9)


def test_model_falls_back_when_the_compiled_function_disagrees(trained_models, monkeypatch):
    monkeypatch.setattr(_custom, "compile_predict_proba", lambda pipeline: lambda X: np.full((len(X), 8), 1 / 8))
    model = CustomEmotionModel(trained_models["paths"]["ensemble"])
    assert model._fast_proba is None
    X = np.asarray(model.extra["background"], dtype=np.float64)[:3]
    assert not np.allclose(model.predict_proba_features(X), 1 / 8)


def test_large_batches_and_non_finite_rows_go_to_scikit_learn(trained_models, monkeypatch):
    model = CustomEmotionModel(trained_models["paths"]["random_forest"])
    calls = []
    real = model._fast_proba
    model._fast_proba = lambda X: calls.append(len(X)) or real(X)
    X = np.asarray(model.extra["background"], dtype=np.float64)
    big = np.repeat(X[:1], _custom._FAST_MAX_ROWS + 1, axis=0)
    model.predict_proba_features(big)
    model.predict_proba_features(X[:2])
    with_nan = X[:2].copy()
    with_nan[0, 0] = np.nan
    try:  # scikit-learn decides what NaN means (here: an error); the fast path never sees it
        model.predict_proba_features(with_nan)
    except ValueError:
        pass
    assert calls == [2]
