"""Speaker-independent cross-validation.

Folds group clips by speaker: no actor is ever on both sides of a fold. Everything fitted (the
scaler, the model, anything else in the pipeline) is cloned and fitted on the training side only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedGroupKFold

from ..exceptions import LeakageError
from ._models import row_fit_params

__all__ = ["speaker_folds", "check_speaker_independent", "FoldResult", "fit_clone", "fit_predict_fold"]


def speaker_folds(
    y: np.ndarray, groups: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, speaker-grouped folds (``StratifiedGroupKFold``, shuffled with ``random_state``).

    Examples
    --------
    >>> y = np.array([0, 1] * 10); g = np.repeat(np.arange(10), 2)
    >>> folds = speaker_folds(y, g, n_splits=5)
    >>> all(set(g[tr]).isdisjoint(g[te]) for tr, te in folds)
    True
    """
    n_groups = np.unique(groups).size
    if n_groups < n_splits:
        raise ValueError(f"{n_splits} speaker-grouped folds need at least {n_splits} speakers, got {n_groups}")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    folds = list(cv.split(np.zeros(len(y)), y, groups))
    check_speaker_independent(folds, groups)
    return folds


def check_speaker_independent(folds: Iterable[tuple[np.ndarray, np.ndarray]], groups: np.ndarray) -> None:
    """Raise :class:`LeakageError` if any speaker is in both the training and test side of a fold."""
    groups = np.asarray(groups)
    for i, (train, test) in enumerate(folds):
        shared = set(groups[train].tolist()) & set(groups[test].tolist())
        if shared:
            raise LeakageError(
                f"fold {i} is not speaker-independent: speaker(s) {sorted(shared)} are in both the "
                "training and the test side; group the split by speaker (e.g. GroupKFold on 'actor')"
            )


@dataclass
class FoldResult:
    """Out-of-fold probabilities and timings of one model on one fold."""

    fold: int
    test_index: np.ndarray
    proba: np.ndarray
    fit_seconds: float
    predict_seconds: float
    test_actors: list[int] = field(default_factory=list)


def fit_clone(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None,
              **per_row) -> BaseEstimator:
    """A clone of ``estimator`` fitted on ``X[rows]``, ``y[rows]`` (every row when ``rows`` is None).

    ``per_row`` arrays (``groups``: speakers, ``calibrate_on``: rows to calibrate on,
    ``recordings``: the recording each row was made from), one value per row of ``X``, are cut to
    the same rows and reach the models whose ``fit`` takes them (see
    :func:`~vibe_check.training._models.row_fit_params`).
    """
    rows = slice(None) if rows is None else rows
    model = clone(estimator)
    return model.fit(X[rows], y[rows], **row_fit_params(model, **{k: None if v is None else np.asarray(v)[rows]
                                                                  for k, v in per_row.items()}))


def fit_predict_fold(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, *, n_classes: int,
                     fold: int, **per_row) -> tuple[FoldResult, BaseEstimator]:
    """Fit a clone on ``train`` (see :func:`fit_clone`, which takes ``per_row``), predict
    probabilities on ``test``; columns follow ``range(n_classes)``."""
    t0 = time.perf_counter()
    model = fit_clone(estimator, X, y, train, **per_row)
    t1 = time.perf_counter()
    raw = model.predict_proba(X[test])
    t2 = time.perf_counter()
    # A training side missing a class yields fewer columns: put them back in label order.
    proba = np.zeros((len(test), n_classes))
    proba[:, np.asarray(model.classes_, dtype=int)] = raw
    groups = per_row.get("groups")
    actors = sorted(set(np.asarray(groups)[test].tolist())) if groups is not None else []
    return FoldResult(fold, test, proba, t1 - t0, t2 - t1, actors), model
