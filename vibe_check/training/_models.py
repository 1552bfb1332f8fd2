"""The model zoo: every model is a scikit-learn Pipeline (scaler + classifier).

Defaults were chosen by speaker-independent 5-fold cross-validation on the RAVDESS copy in
``../shared`` (see the training issue's closing note and ``benchmarks/bench_training.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["MODEL_NAMES", "BASE_MODELS", "make_model", "make_ensemble", "model_label", "GroupedClassifier",
           "BalancedLinearDiscriminantAnalysis", "final_classifier"]

#: Models trained by default, and the ensemble built from them.
BASE_MODELS = ("logreg", "random_forest", "hist_gb")
MODEL_NAMES = (*BASE_MODELS, "lda", "gradient_boosting", "ensemble")
#: Models the ensemble may soft-vote over (the classic gradient boosting is too slow to add).
ENSEMBLE_CANDIDATES = ("logreg", "lda", "random_forest", "hist_gb")

_LABELS = {
    "logreg": "Logistic regression",
    "random_forest": "Random forest",
    "hist_gb": "Histogram gradient boosting",
    "lda": "Linear discriminant analysis (shrinkage, equal priors)",
    "gradient_boosting": "Gradient boosting (classic)",
    "ensemble": "Soft-voting ensemble",
}


def model_label(name: str) -> str:
    return _LABELS.get(name, name)


def make_model(name: str, *, random_state: int = 0, n_jobs: int = 1) -> Pipeline:
    """An unfitted pipeline ``StandardScaler -> classifier`` for ``name``.

    Every classifier weights classes by inverse frequency (``class_weight="balanced"``). The
    scaler is in every pipeline, trees included, so that every bundle has the same shape and the
    linear model and SHAP's LinearExplainer see standardised features.

    Examples
    --------
    >>> make_model("logreg").steps[-1][0]
    'model'
    """
    if name == "logreg":
        clf = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced", random_state=random_state)
    elif name == "random_forest":
        # 100 trees: on RAVDESS 300 trees scored the same (macro-F1 0.470 vs 0.469; ensemble 0.593
        # either way) while costing 3x the bundle size and ~40 ms more per single-clip prediction.
        # Each tree sees half the rows: with the augmented copies a full-size bootstrap made a
        # training run exceed 3 minutes.
        clf = RandomForestClassifier(
            n_estimators=100, min_samples_leaf=2, class_weight="balanced_subsample", max_samples=0.5,
            n_jobs=n_jobs, random_state=random_state,
        )
    elif name == "hist_gb":
        # Small trees, feature subsampling and coarse bins keep 8-class boosting on ~570 features
        # within seconds; shap's TreeExplainer supports this model for multiclass. No class
        # weights: with weights, scikit-learn >= 1.7 bins every feature by weighted percentiles,
        # which measured 5x slower (25 s against 5 s per fit on 960 clips) for a macro-F1 within
        # the fold spread (0.526 against 0.519 on RAVDESS, whose classes are balanced but for
        # neutral, which has half the clips of the others).
        # 100 rounds at a 0.15 learning rate (150 at 0.1 before the augmented copies made the
        # training sets 8x larger).
        clf = HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.15, max_leaf_nodes=8, max_features=0.2, max_bins=64,
            l2_regularization=1.0, early_stopping=False, random_state=random_state,
        )
    elif name == "lda":
        # Ledoit-Wolf shrinkage keeps the class covariance estimable with ~570 features and a
        # few hundred clips per fold; measured 0.595 macro-F1 against 0.560 for logreg on RAVDESS.
        clf = BalancedLinearDiscriminantAnalysis()
    elif name == "gradient_boosting":
        # Offered for comparison only: slow, no class weights, and shap cannot explain it for >2 classes.
        clf = GradientBoostingClassifier(n_estimators=100, max_depth=3, subsample=0.8, max_features=0.2, random_state=random_state)
    elif name == "ensemble":
        return make_ensemble([make_model(m, random_state=random_state, n_jobs=n_jobs) for m in BASE_MODELS], BASE_MODELS)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return Pipeline([("scaler", StandardScaler()), ("model", clf)])


class BalancedLinearDiscriminantAnalysis(LinearDiscriminantAnalysis):
    """Shrinkage LDA with equal class priors: LDA's counterpart of ``class_weight="balanced"``.

    Plain LDA takes its priors from the class frequencies, so a class with half the clips of the
    others (RAVDESS's neutral) starts with half their odds and is under-predicted, which costs
    macro-F1. Equal priors match the other models' balanced class weights. On RAVDESS (5 speaker
    folds, default augmentation) they took LDA from 0.601 to 0.609 macro-F1 and neutral's F1
    from 0.41 to 0.50.

    Parameters
    ----------
    solver : {"lsqr", "eigen"}
        As in :class:`~sklearn.discriminant_analysis.LinearDiscriminantAnalysis` (shrinkage needs one of these).
    shrinkage : "auto", float or None
        Ledoit-Wolf (``"auto"``) or a fixed shrinkage of the covariance.
    tol : float

    Examples
    --------
    >>> X = np.r_[np.zeros((90, 2)), np.ones((10, 2))] + np.random.default_rng(0).normal(size=(100, 2))
    >>> y = np.r_[np.zeros(90, int), np.ones(10, int)]
    >>> BalancedLinearDiscriminantAnalysis().fit(X, y).priors_.tolist()
    [0.5, 0.5]
    """

    def __init__(self, solver: str = "lsqr", shrinkage="auto", tol: float = 1e-4):
        super().__init__(solver=solver, shrinkage=shrinkage, tol=tol)

    def fit(self, X, y):
        # ``priors`` is not a parameter of this class (see get_params): it is derived here, from
        # the classes present, and read by the parent's fit.
        n = np.unique(y).size
        self.priors = np.full(n, 1.0 / n)
        return super().fit(X, y)


def final_classifier(estimator):
    """The classifier at the end of a fitted model: inside a :class:`GroupedClassifier`, then at
    the end of a pipeline (a soft-voting ensemble is returned as it is).

    Examples
    --------
    >>> type(final_classifier(make_model("lda"))).__name__
    'BalancedLinearDiscriminantAnalysis'
    """
    est = estimator.estimator_ if isinstance(estimator, GroupedClassifier) else estimator
    return est.steps[-1][1] if hasattr(est, "steps") else est


def make_ensemble(members: Sequence[Pipeline], names: Sequence[str], *, prefit: bool = False) -> VotingClassifier:
    """Soft voting (mean of class probabilities) over member pipelines.

    With ``prefit=True`` the members are already fitted and are wrapped in
    :class:`~sklearn.frozen.FrozenEstimator`, so fitting the ensemble only records the classes
    and never refits (or leaks into) its members.
    """
    estimators = [(n, FrozenEstimator(m) if prefit else clone(m)) for n, m in zip(names, members)]
    return VotingClassifier(estimators, voting="soft")


def soft_vote(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Equal-weight mean of probability matrices: the ensemble's output from its members' outputs."""
    return np.mean(np.stack(probas), axis=0)


class GroupedClassifier(ClassifierMixin, BaseEstimator):
    """Predict groups of classes (e.g. sentiments) from a classifier of the finer classes (emotions).

    The inner classifier is fitted on the fine labels; the probability of a group is the sum of
    the probabilities of its fine classes. On RAVDESS the 3-class sentiment read off an 8-class
    emotion model scored higher than a model trained on the 3 classes directly (LDA 0.758 against
    0.705 macro-F1, the soft-voting ensemble 0.758 against 0.738, logistic regression 0.727
    against 0.720; 5 speaker-grouped folds): the emotion labels tell the model more than their
    grouping does.

    Parameters
    ----------
    estimator : classifier
        Fitted on the fine labels, integer codes ``0 .. len(group_of) - 1``.
    group_of : sequence of int
        ``group_of[k]`` is the group (integer code) of fine class ``k``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted inner classifier.
    classes_ : ndarray of int
        Group codes (every group in ``group_of``, even one without training rows).
    membership_ : ndarray of shape (n_fine_classes_seen, n_groups)
        1 where a fine class of ``estimator_.classes_`` belongs to a group.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_classes=4, n_informative=6, random_state=0)
    >>> clf = GroupedClassifier(LogisticRegression(), group_of=(0, 0, 1, 1)).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, estimator, group_of: Sequence[int]):
        self.estimator = estimator
        self.group_of = group_of

    def fit(self, X, y):
        """Fit the inner classifier on the fine labels ``y`` (codes into ``group_of``)."""
        group_of = np.asarray(self.group_of, dtype=int)
        y = np.asarray(y)
        if y.min() < 0 or y.max() >= group_of.size:
            raise ValueError(f"fine labels must be codes 0..{group_of.size - 1}, got {y.min()}..{y.max()}")
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = np.unique(group_of)
        fine = np.asarray(self.estimator_.classes_, dtype=int)
        self.membership_ = (group_of[fine][:, None] == self.classes_[None, :]).astype(np.float64)
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(X) @ self.membership_

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
