"""Classification metrics for speech emotion recognition, per fold and across folds."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

__all__ = ["classification_metrics", "expected_calibration_error", "summarize_folds", "SCALAR_METRICS"]

#: Metrics that are one number per fold, summarised as mean and standard deviation.
SCALAR_METRICS = ("accuracy", "macro_f1", "uar", "log_loss", "ece", "gender_gap")


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, *, n_bins: int = 10) -> float:
    """ECE of the top-label confidence: the mean |accuracy - confidence| over equal-width bins,
    weighted by the share of samples in each bin.

    Examples
    --------
    >>> expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.0
    """
    y_true = np.asarray(y_true)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def reliability_curve(y_true: np.ndarray, proba: np.ndarray, *, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin: mean confidence, accuracy and count (for reliability diagrams)."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        rows.append({
            "bin_low": edges[b], "bin_high": edges[b + 1], "count": int(sel.sum()),
            "confidence": float(conf[sel].mean()) if sel.any() else np.nan,
            "accuracy": float(correct[sel].mean()) if sel.any() else np.nan,
        })
    return pd.DataFrame(rows)


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    *,
    gender: Sequence[str] | None = None,
    actor: Sequence[int] | None = None,
) -> dict:
    """All metrics of one evaluation: encoded labels ``y_true`` and class probabilities ``proba``.

    Returns a JSON-serialisable dict: ``n``, ``accuracy``, ``macro_f1``, ``uar`` (unweighted
    average recall), ``log_loss``, ``ece``, ``per_class`` (precision/recall/F1/support by class
    name), ``confusion`` (counts, rows = true class), ``confusion_normalized`` (rows sum to 1),
    and when given ``per_gender`` / ``gender_gap`` (largest accuracy difference between genders;
    absent when the clips hold one gender)
    and ``per_actor`` accuracy.

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    >>> m["accuracy"], m["macro_f1"]
    (1.0, 1.0)
    """
    y_true = np.asarray(y_true)
    labels = np.arange(len(classes))
    y_pred = proba.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    present = np.unique(y_true)
    out = {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Macro scores over the classes present in y_true: a class absent from an evaluation set
        # has no recall to average.
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "uar": float(balanced_accuracy_score(y_true, y_pred)) if present.size > 1 else float(accuracy_score(y_true, y_pred)),
        "log_loss": float(log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=labels)),
        "ece": expected_calibration_error(y_true, proba),
        "per_class": {
            str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)
        },
        "confusion": cm.tolist(),
        "confusion_normalized": np.round(cm_norm, 4).tolist(),
    }
    if gender is not None:
        gender = np.asarray(gender, dtype=object)
        per_gender = {
            str(g): {"n": int((gender == g).sum()), "accuracy": float((y_pred[gender == g] == y_true[gender == g]).mean())}
            for g in sorted(set(gender) - {None}) if (gender == g).any()
        }
        out["per_gender"] = per_gender
        accs = [v["accuracy"] for v in per_gender.values()]
        if len(accs) > 1:  # with one gender there is no gap to measure (not a gap of 0)
            out["gender_gap"] = float(max(accs) - min(accs))
    if actor is not None:
        actor = np.asarray(actor)
        out["per_actor"] = {str(int(a)): float((y_pred[actor == a] == y_true[actor == a]).mean()) for a in np.unique(actor)}
    return out


def summarize_folds(fold_metrics: list[dict], classes: Sequence[str]) -> dict:
    """Mean and standard deviation across folds of every scalar metric and per-class F1."""
    out: dict = {"n_folds": len(fold_metrics)}
    for key in SCALAR_METRICS:
        vals = [m[key] for m in fold_metrics if key in m]
        if vals:
            out[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "folds": [float(v) for v in vals]}
    out["per_class_f1"] = {
        str(c): {"mean": float(np.mean([m["per_class"][str(c)]["f1"] for m in fold_metrics])),
                 "std": float(np.std([m["per_class"][str(c)]["f1"] for m in fold_metrics]))}
        for c in classes
    }
    return out
