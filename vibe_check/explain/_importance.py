"""Global explanations of a trained run: held-out SHAP values, impurity and permutation importance.

Every figure here is computed on clips the explained model did not see: the models are refit on
the training side of the trainer's speaker-independent folds (:class:`FoldModels`) and explain
or are scored on the test side. Costs are bounded by ``sample_size`` (held-out rows),
``max_folds`` and ``n_repeats``, and the time spent is recorded in every result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ..training._folds import FoldModels
from ..training._models import final_classifier
from ..training._train import EmotionTrainer
from ._shap import PipelineShap, ShapResult

__all__ = [
    "GlobalExplanation",
    "PermutationResult",
    "SCORINGS",
    "explain_global",
    "explain_model",
    "impurity_importance",
    "permutation_importance",
]

#: Scores for permutation importance. ``log_loss`` (default) is a proper scoring rule that moves
#: with every change of probability, so it separates features that macro-F1, which only changes
#: when a prediction flips, leaves at zero among over a thousand correlated features.
SCORINGS = ("log_loss", "macro_f1", "accuracy")
_MAX_STACKED_ROWS = 20_000  # rows per batched predict_proba call (about 150 MB at 942 features)


def _check_sample_size(sample_size: int | None, what: str = "sample_size") -> None:
    if sample_size is not None and (isinstance(sample_size, bool) or int(sample_size) != sample_size or sample_size < 1):
        raise ValueError(f"{what} must be a whole number of held-out clips of at least 1 (or None for all of "
                         f"them), got {sample_size!r}")


def _feature_groups(trainer) -> dict[str, str]:
    from ..features import FeatureConfig, describe_features

    table = describe_features(FeatureConfig.from_dict(trainer.feature_config_))
    return dict(zip(table["name"], table["group"]))


def explain_model(trainer: EmotionTrainer, name: str, *, sample_size: int | None = 200, max_folds: int | None = 2,
                  output: str = "native", fold_models: FoldModels | None = None, random_state: int = 0) -> ShapResult:
    """SHAP values of model ``name`` on a sample of held-out clips.

    Each used fold's model (refit on that fold's training side) explains up to
    ``sample_size / n_folds`` of that fold's test clips; the explainer's background is a sample of
    the fold's original (not augmented) training clips, as in the bundles. Base values therefore
    differ slightly between folds.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
    name : str
        A key of ``trainer.estimators_``.
    sample_size : int or None
        Held-out rows explained in total, at least 1 (all test rows of the used folds when None).
    max_folds : int or None
        Folds used (the first ones).
    output : {"native", "probability"}
        Output space (see :mod:`vibe_check.explain._shap`); the ensemble is always in probability.
    fold_models : FoldModels, optional
        Share refit fold models between calls.

    Returns
    -------
    ShapResult
        With ``rows`` (row numbers in the training matrix), ``y_true`` and ``extra["fold"]``;
        ``seconds`` covers the SHAP computation, ``extra["refit_seconds"]`` the fold refits.

    Examples
    --------
    >>> res = explain_model(trainer, "random_forest", sample_size=100)  # doctest: +SKIP
    >>> res.mean_abs().head(10)  # doctest: +SKIP
    """
    _check_sample_size(sample_size)
    fm = fold_models or FoldModels(trainer, max_folds=max_folds)
    refit_before = sum(fm.refit_seconds.values())
    K = len(trainer.classes_)
    originals = getattr(fm.trainer, "_originals_train", None)
    rng = np.random.default_rng(random_state)
    values, base, rows, folds = [], [], [], []
    seconds, method, space = 0.0, "", ""
    for fold, idx in fm.split_sample(sample_size, random_state=random_state).items():
        model = fm.model(name, fold)
        tr = fm.train_index(fold)
        if originals is not None:
            # Real clips only, like a bundle's background: with the default augmentation 7 of 8
            # training rows are noisy, telephone or speed copies, and a linear model's SHAP values
            # are measured from the background's mean.
            tr = tr[originals[tr]]
        background = fm.X[np.sort(rng.choice(tr, size=min(100, tr.size), replace=False))]
        t0 = time.perf_counter()
        ps = PipelineShap(model, n_classes=K, background=background, output=output)
        v, b = ps(fm.X[idx])
        seconds += time.perf_counter() - t0
        values.append(v), base.append(b), rows.append(idx), folds.append(np.full(idx.size, fold))
        method, space = ps.method, ps.space
    rows_all = np.concatenate(rows)
    return ShapResult(
        values=np.concatenate(values), base_values=np.concatenate(base), data=fm.X[rows_all],
        feature_names=list(trainer.feature_names_in_), classes=[str(c) for c in trainer.classes_],
        space=space, method=method, seconds=seconds, model=name,
        y_true=np.asarray(trainer.classes_)[fm.y[rows_all]], rows=rows_all,
        extra={"fold": np.concatenate(folds), "refit_seconds": sum(fm.refit_seconds.values()) - refit_before},
    )


def impurity_importance(estimator, feature_names: Sequence[str]) -> pd.Series | None:
    """Mean decrease in impurity of a fitted forest (``feature_importances_``), or None for models
    without one. Computed on training data, so it favours features with many split points; read
    it next to the held-out SHAP and permutation figures.

    Examples
    --------
    >>> impurity_importance(trainer.estimators_["random_forest"], trainer.feature_names_in_).head()  # doctest: +SKIP
    """
    imp = getattr(final_classifier(estimator), "feature_importances_", None)
    if imp is None:
        return None
    return pd.Series(np.asarray(imp, dtype=np.float64), index=pd.Index(list(feature_names), name="feature"),
                     name="impurity_importance").sort_values(ascending=False)


@dataclass
class PermutationResult:
    """Held-out permutation importance: how much worse the score gets when a feature (or a whole
    feature group, permuted jointly) is shuffled across clips.

    ``table`` has one row per feature or group with ``importance`` (mean loss of score over folds
    and repeats; positive = the model relies on it) and ``std``, sorted descending. ``rows`` are
    the scored clips' row numbers in the trainer's training matrix (held-out clips of ``folds``).
    """

    model: str
    by: str
    scoring: str
    table: pd.DataFrame
    baseline: float
    n_repeats: int
    n_rows: int
    folds: list[int]
    seconds: float
    refit_seconds: float = 0.0
    rows: np.ndarray | None = None


def _proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    raw = model.predict_proba(X)
    if raw.shape[1] == n_classes:
        return raw
    out = np.zeros((X.shape[0], n_classes))
    out[:, np.asarray(model.classes_, dtype=int)] = raw
    return out


def _goodness(y: np.ndarray, proba: np.ndarray, scoring: str) -> float:
    """Higher is better, so that importance = baseline - permuted for every scoring."""
    if scoring == "log_loss":
        return float(np.mean(np.log(np.clip(proba[np.arange(y.size), y], 1e-15, 1.0))))
    if scoring == "accuracy":
        return float(np.mean(proba.argmax(axis=1) == y))
    return float(f1_score(y, proba.argmax(axis=1), labels=np.unique(y), average="macro", zero_division=0))


def _permutation_drops(fm: FoldModels, name: str, samples: dict, col_sets: list, n_repeats: int, scoring: str,
                       random_state: int) -> tuple[np.ndarray, list[float]]:
    """Score losses, shape (column sets, folds x repeats), and the unpermuted score per fold."""
    K = len(fm.trainer.classes_)
    drops = np.zeros((len(col_sets), len(samples) * n_repeats))
    baselines = []
    for fi, (fold, idx) in enumerate(samples.items()):
        model, X, y = fm.model(name, fold), fm.X[idx], fm.y[idx]
        base = _goodness(y, _proba(model, X, K), scoring)
        baselines.append(base)
        rng = np.random.default_rng([random_state, fold])
        # Many shuffled copies go through one predict_proba call: per-call overhead (tree
        # ensembles dispatch work per call) dominates when a few hundred rows are scored at a time.
        per_chunk = max(1, _MAX_STACKED_ROWS // (X.shape[0] * n_repeats))
        for start in range(0, len(col_sets), per_chunk):
            chunk = col_sets[start:start + per_chunk]
            stacked = np.repeat(X[None], len(chunk) * n_repeats, axis=0)  # (blocks, rows, features)
            for c, cols in enumerate(chunk):
                for r in range(n_repeats):
                    # One shuffle of the clips for every column of the set: a group moves together.
                    perm = rng.permutation(X.shape[0])
                    stacked[c * n_repeats + r][:, cols] = X[perm][:, cols]
            proba = _proba(model, stacked.reshape(-1, X.shape[1]), K).reshape(len(chunk) * n_repeats, X.shape[0], K)
            for c in range(len(chunk)):
                for r in range(n_repeats):
                    drops[start + c, fi * n_repeats + r] = base - _goodness(y, proba[c * n_repeats + r], scoring)
    return drops, baselines


def permutation_importance(trainer: EmotionTrainer, name: str, *, by: str = "feature", features: Sequence[str] | None = None,
                           n_repeats: int = 3, sample_size: int | None = 200, max_folds: int | None = 2,
                           scoring: str = "log_loss", fold_models: FoldModels | None = None,
                           random_state: int = 0) -> PermutationResult:
    """Permutation importance of model ``name`` on held-out clips of the trainer's folds.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
    name : str
    by : {"feature", "group"}
        Permute single features, or all features of a group together (one shuffle of the clips
        for the whole group, which keeps the group's internal correlations: with hundreds of
        correlated features, single-feature importances understate what a group carries).
    features : sequence of str, optional
        Restrict ``by="feature"`` to these features (for example the top SHAP features) to bound cost.
    n_repeats : int
        Shuffles per feature and fold.
    sample_size : int or None
        Held-out rows in total, shared among the folds (at least 1; all when None).
    max_folds : int or None
    scoring : {"log_loss", "macro_f1", "accuracy"}
        ``log_loss``: the importance is the rise in mean log loss (nats).

    Returns
    -------
    PermutationResult

    Examples
    --------
    >>> res = permutation_importance(trainer, "logreg", by="group", n_repeats=5)  # doctest: +SKIP
    >>> res.table.head()  # doctest: +SKIP
    """
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; choose from {SCORINGS}")
    if by not in ("feature", "group"):
        raise ValueError("by must be 'feature' or 'group'")
    _check_sample_size(sample_size)
    fm = fold_models or FoldModels(trainer, max_folds=max_folds)
    refit_before = sum(fm.refit_seconds.values())
    names = list(trainer.feature_names_in_)
    if by == "group":
        groups = _feature_groups(trainer)
        labels = list(dict.fromkeys(groups.get(f, "other") for f in names))
        col_sets = [np.flatnonzero([groups.get(f, "other") == g for f in names]) for g in labels]
    else:
        labels = list(features) if features is not None else names
        pos = {f: i for i, f in enumerate(names)}
        col_sets = [np.array([pos[f]]) for f in labels]
    samples = fm.split_sample(sample_size, random_state=random_state)
    for fold in samples:  # refit outside the timed loop (refits are reported separately)
        fm.model(name, fold)
    t0 = time.perf_counter()
    with fm.threads():
        drops, baselines = _permutation_drops(fm, name, samples, col_sets, n_repeats, scoring, random_state)
    table = pd.DataFrame({"importance": drops.mean(axis=1), "std": drops.std(axis=1)},
                         index=pd.Index(labels, name=by)).sort_values("importance", ascending=False)
    return PermutationResult(model=name, by=by, scoring=scoring, table=table, baseline=float(np.mean(baselines)),
                             n_repeats=n_repeats, n_rows=int(sum(len(i) for i in samples.values())),
                             folds=list(samples), seconds=time.perf_counter() - t0,
                             refit_seconds=sum(fm.refit_seconds.values()) - refit_before,
                             rows=np.concatenate(list(samples.values())))


@dataclass
class GlobalExplanation:
    """Everything the report shows about one model's reliance on features.

    Attributes
    ----------
    shap : ShapResult
        Held-out SHAP values.
    mean_abs : DataFrame
        ``shap.mean_abs()``: mean |SHAP| per feature, per class and overall.
    groups : DataFrame
        ``shap.by_group(...)``.
    impurity : Series or None
        Forest impurity importance (training data).
    permutation, permutation_groups : PermutationResult or None
    seconds : dict
        ``shap``, ``permutation``, ``permutation_groups`` and ``refit`` wall times.
    """

    model: str
    shap: ShapResult
    mean_abs: pd.DataFrame
    groups: pd.DataFrame
    impurity: pd.Series | None = None
    permutation: PermutationResult | None = None
    permutation_groups: PermutationResult | None = None
    seconds: dict = field(default_factory=dict)


def explain_global(trainer: EmotionTrainer, models: Sequence[str] | None = None, *, sample_size: int | None = 200,
                   max_folds: int | None = 2, output: str = "native", permutation: bool = True,
                   permutation_features: int | None = None, n_repeats: int = 3, permutation_sample: int | None = 200,
                   scoring: str = "log_loss", random_state: int = 0) -> dict[str, GlobalExplanation]:
    """Held-out SHAP values, group aggregates, impurity and permutation importance for each model.

    Fold models are refit once and shared by every figure.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
    models : sequence of str, optional
        Default: every model of the trainer.
    sample_size : int or None
        Held-out rows explained by SHAP.
    max_folds : int or None
    output : {"native", "probability"}
    permutation : bool
        Compute permutation importance (per feature group and per feature).
    permutation_features : int or None
        Permute only this many features, the top ones by mean |SHAP| (all when None; 0 permutes
        feature groups only).
    n_repeats, permutation_sample, scoring
        See :func:`permutation_importance`.

    Examples
    --------
    >>> result = explain_global(trainer, ["logreg"], sample_size=100)  # doctest: +SKIP
    >>> result["logreg"].groups  # doctest: +SKIP
    """
    _check_sample_size(sample_size)
    if permutation:
        _check_sample_size(permutation_sample, "permutation_sample")
    if permutation_features is not None and permutation_features < 0:
        raise ValueError(f"permutation_features must be >= 0 (or None for all), got {permutation_features}")
    fm = FoldModels(trainer, max_folds=max_folds)
    groups = _feature_groups(trainer)
    out = {}
    for name in list(trainer.estimators_) if models is None else models:
        res = explain_model(trainer, name, sample_size=sample_size, output=output, fold_models=fm, random_state=random_state)
        mean_abs = res.mean_abs()
        ge = GlobalExplanation(model=name, shap=res, mean_abs=mean_abs, groups=res.by_group(groups),
                               impurity=impurity_importance(trainer.estimators_[name], trainer.feature_names_in_),
                               seconds={"shap": res.seconds, "refit": res.extra["refit_seconds"]})
        if permutation:
            kw = dict(n_repeats=n_repeats, sample_size=permutation_sample, scoring=scoring, fold_models=fm,
                      random_state=random_state)
            ge.permutation_groups = permutation_importance(trainer, name, by="group", **kw)
            ge.seconds.update(permutation_groups=ge.permutation_groups.seconds)
            ge.seconds["refit"] += ge.permutation_groups.refit_seconds
            if permutation_features != 0:  # None: every feature; 0: groups only
                feats = None if permutation_features is None else list(mean_abs.index[:permutation_features])
                ge.permutation = permutation_importance(trainer, name, by="feature", features=feats, **kw)
                ge.seconds.update(permutation=ge.permutation.seconds)
                ge.seconds["refit"] += ge.permutation.refit_seconds
        out[name] = ge
    return out
