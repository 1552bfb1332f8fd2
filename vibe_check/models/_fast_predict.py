"""Low-latency ``predict_proba`` for the fitted pipelines vibe-check writes.

scikit-learn's tree ensembles predict one tree at a time: for a single feature row a 100-tree
forest or a 100-round, 8-class boosted model (800 small trees) spends about 10 ms each in
per-tree Python overhead, longer than the trees themselves take. Here every tree of an ensemble
is flattened into shared node arrays and all trees are walked together, one numpy step per tree
level, which takes well under a millisecond for one row.

The result is the same function as scikit-learn's (same comparisons, same float32 cast for
forests, same link functions); :func:`compile_predict_proba` refuses what it cannot reproduce
exactly, and :class:`~vibe_check.models.CustomEmotionModel` checks the compiled function against
scikit-learn on the bundle's own background rows before it uses it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit, softmax
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

__all__ = ["compile_predict_proba"]

ProbaFunction = Callable[[np.ndarray], np.ndarray]


class _FlatTrees:
    """Many binary trees in shared arrays; leaves point to themselves so every walk has one length.

    ``go_left`` is ``x[feature] <= threshold``; a NaN goes where ``nan_left`` says (as in
    scikit-learn's predictors).
    """

    def __init__(self, trees: list[dict]):
        offsets = np.cumsum([0] + [len(t["feature"]) for t in trees[:-1]])
        self.roots = offsets.astype(np.intp)
        self.feature = np.concatenate([t["feature"] for t in trees]).astype(np.intp)
        self.threshold = np.concatenate([t["threshold"] for t in trees]).astype(np.float64)
        self.nan_left = np.concatenate([t["nan_left"] for t in trees]).astype(bool)
        self.value = np.concatenate([t["value"] for t in trees])
        left, right = [], []
        for off, t in zip(offsets, trees):
            idx = np.arange(len(t["feature"]))
            leaf = t["is_leaf"]
            left.append(np.where(leaf, idx, t["left"]) + off)
            right.append(np.where(leaf, idx, t["right"]) + off)
        self.left = np.concatenate(left).astype(np.intp)
        self.right = np.concatenate(right).astype(np.intp)
        self.feature[np.concatenate([t["is_leaf"] for t in trees])] = 0  # any valid column
        self.depth = max(int(t["depth"]) for t in trees)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """Leaf index (into the shared arrays) of every row in every tree: shape (n, n_trees)."""
        node = np.broadcast_to(self.roots, (X.shape[0], self.roots.size)).copy()
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(self.depth):
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.nan_left[node], x <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return node


def _forest(clf: RandomForestClassifier) -> ProbaFunction | None:
    if clf.n_outputs_ != 1:
        return None
    trees = []
    for est in clf.estimators_:
        t = est.tree_
        value = t.value[:, 0, :]
        total = value.sum(axis=1, keepdims=True)
        trees.append({
            "feature": t.feature, "threshold": t.threshold, "left": t.children_left,
            "right": t.children_right, "is_leaf": t.children_left == -1, "depth": t.max_depth,
            "nan_left": np.asarray(t.missing_go_to_left, dtype=bool),
            # DecisionTreeClassifier.predict_proba normalises each leaf's class weights
            "value": value / np.where(total == 0.0, 1.0, total),
        })
    flat = _FlatTrees(trees)

    def predict_proba(X: np.ndarray) -> np.ndarray:
        # forests compare float32 features with float64 thresholds
        leaves = flat.leaves(X.astype(np.float32).astype(np.float64))
        return flat.value[leaves].mean(axis=1)

    return predict_proba


def _hist_gradient_boosting(clf: HistGradientBoostingClassifier) -> ProbaFunction | None:
    if getattr(clf, "_preprocessor", None) is not None or not hasattr(clf, "_baseline_prediction"):
        return None
    k = clf.n_trees_per_iteration_
    trees, klass = [], []
    for iteration in clf._predictors:
        for j, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            trees.append({
                "feature": nodes["feature_idx"], "threshold": nodes["num_threshold"], "left": nodes["left"],
                "right": nodes["right"], "is_leaf": nodes["is_leaf"].astype(bool), "depth": nodes["depth"].max(),
                "nan_left": nodes["missing_go_to_left"], "value": nodes["value"],
            })
            klass.append(j)
    flat = _FlatTrees(trees)
    # one-hot (n_trees, k): summing leaf values per class is one matrix product
    to_class = np.eye(k)[np.asarray(klass)]
    baseline = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(1, k)

    def predict_proba(X: np.ndarray) -> np.ndarray:
        raw = baseline + flat.value[flat.leaves(X)] @ to_class
        if k == 1:  # binary: HalfBinomialLoss
            p1 = expit(raw[:, 0])
            return np.column_stack([1.0 - p1, p1])
        return softmax(raw, axis=1)  # HalfMultinomialLoss

    return predict_proba


def compile_predict_proba(estimator: object) -> ProbaFunction | None:
    """A faster function equal to ``estimator.predict_proba``, or None if there is nothing to gain.

    Pipelines, frozen estimators, soft-voting ensembles and grouped classifiers are unwrapped; random forests and
    histogram gradient boosting are flattened (see the module docstring); any other classifier
    keeps its own ``predict_proba``. Inputs must be finite float64 rows.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(random_state=0)
    >>> forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> fast = compile_predict_proba(forest)
    >>> bool(np.allclose(fast(X), forest.predict_proba(X)))
    True
    """
    fast = _compile(estimator)
    return None if fast is None or fast is _UNCHANGED else fast


_UNCHANGED = object()  # sentinel: "use the estimator's own predict_proba"


def _compile(estimator: object):
    if isinstance(estimator, FrozenEstimator):
        return _compile(estimator.estimator)
    if isinstance(estimator, RandomForestClassifier):
        return _forest(estimator)
    if isinstance(estimator, HistGradientBoostingClassifier):
        return _hist_gradient_boosting(estimator)
    if type(estimator).__name__ == "GroupedClassifier":  # by name: vibe_check.training imports this package
        inner = _compile(estimator.estimator_)
        if inner is None:
            return None
        inner = estimator.estimator_.predict_proba if inner is _UNCHANGED else inner
        membership = estimator.membership_
        return lambda X: inner(X) @ membership
    if isinstance(estimator, Pipeline):
        final = _compile(estimator.steps[-1][1])
        if final is None or final is _UNCHANGED:
            return final
        transforms = [step for _, step in estimator.steps[:-1] if step not in (None, "passthrough")]

        def pipeline_proba(X: np.ndarray) -> np.ndarray:
            for step in transforms:
                X = step.transform(X)
            return final(X)

        return pipeline_proba
    if isinstance(estimator, VotingClassifier):
        if estimator.voting != "soft":
            return None
        members = []
        for member in estimator.estimators_:
            fast = _compile(member)
            if fast is None:
                return None
            members.append(member.predict_proba if fast is _UNCHANGED else fast)
        weights = estimator._weights_not_none

        def vote_proba(X: np.ndarray) -> np.ndarray:
            return np.average(np.stack([f(X) for f in members]), axis=0, weights=weights)

        return vote_proba
    return _UNCHANGED if hasattr(estimator, "predict_proba") else None
