"""Training: speaker-independent cross-validation of every model, selection, refit and bundles."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import joblib
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_memory
from tqdm.auto import tqdm

from ..data import EMOTIONS, ORIGINAL, SENTIMENT_OF_EMOTION
from ..exceptions import DatasetError
from ..features import feature_columns
from ..models._bundle import library_versions, save_bundle
from ._cv import FoldResult, check_speaker_independent, fit_clone, fit_predict_fold, speaker_folds
from ._metrics import classification_metrics, summarize_folds
from ._models import (BASE_MODELS, ENSEMBLE_CANDIDATES, MODEL_NAMES, GroupedClassifier, final_classifier,
                      make_ensemble, make_model, model_label, soft_vote)
from ._speaker import MIN_REFERENCE_CLIPS, center_by_group

__all__ = ["EmotionTrainer", "COST_ORDER", "DEFAULT_AUGMENTATIONS", "TASKS", "labels_for_task", "SELECTION_RULE", "drift_reference"]

log = logging.getLogger(__name__)

TASKS = ("emotion", "sentiment")
#: Models from the cheapest to the dearest to run: "simpler" in the selection rule. The linear
#: models are one matrix product; the forest walks 100 trees and the boosted model 100 rounds x
#: classes trees (per clip through scikit-learn: about 1, 10 and 9 ms; through the flattened trees
#: CustomEmotionModel uses for a few rows: under 1 ms each); the ensemble runs them all.
COST_ORDER = ("lda", "logreg", "random_forest", "hist_gb", "gradient_boosting", "ensemble")
SELECTION_RULE = (
    "the cheapest model to run whose mean macro-F1 over the speaker-independent folds is within one "
    "standard error (fold std / sqrt(folds)) of the best mean (the one-standard-error rule); cheapest first: "
    + ", ".join(COST_ORDER)
)
DEFAULT_MODELS = (*BASE_MODELS, "lda", "ensemble")
#: Augmented training copies ``vibe-check train`` adds by default (see ``build_manifest(augment=...)``).
#: Measured on RAVDESS (LDA, 5 speaker-grouped folds): no copies 0.586; noise, babble and
#: telephone copies about 0.565 (but a 20 dB white-noise drop of about 0.02 instead of 0.55);
#: adding speed copies at 0.9x/1.1x about 0.595, and at 0.85x/0.9x/1.1x/1.15x 0.601.
DEFAULT_AUGMENTATIONS = ("noise", "babble", "telephone", "speed_0.85", "speed_0.9", "speed_1.1", "speed_1.15")
BACKGROUND_ROWS = 100  # training rows kept in a bundle as SHAP background data
DRIFT_BINS = 10


def labels_for_task(emotions: Sequence[str], task: str) -> np.ndarray:
    """Labels for ``task``: the emotion itself, or its sentiment (see ``SENTIMENT_OF_EMOTION``)."""
    emotions = np.asarray(emotions, dtype=object)
    if task == "emotion":
        return emotions
    if task == "sentiment":
        unknown = set(emotions) - set(SENTIMENT_OF_EMOTION)
        if unknown:
            raise ValueError(f"no sentiment mapping for {sorted(unknown)}")
        return np.array([SENTIMENT_OF_EMOTION[e] for e in emotions], dtype=object)
    raise ValueError(f"unknown task {task!r}; choose from {TASKS}")


def label_mapping(task: str) -> dict[str, str]:
    """Emotion -> label of ``task`` (identity for ``emotion``)."""
    return {e: (e if task == "emotion" else SENTIMENT_OF_EMOTION[e]) for e in EMOTIONS.values()}


def drift_reference(X: np.ndarray, *, n_bins: int = DRIFT_BINS) -> dict[str, np.ndarray]:
    """Per-feature quantile bin edges (inner edges) and the training share in each bin.

    Edges are the 1/n .. (n-1)/n quantiles; proportions are the fraction of training rows falling
    in each of the ``n_bins`` bins (ties can make them unequal). Used for drift (PSI) at serving time.
    """
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    edges = np.quantile(X, qs, axis=0).T  # (n_features, n_bins - 1)
    props = np.empty((X.shape[1], n_bins))
    for j in range(X.shape[1]):
        idx = np.searchsorted(edges[j], X[:, j], side="right")
        props[j] = np.bincount(idx, minlength=n_bins) / X.shape[0]
    return {"edges": edges.astype(np.float32), "proportions": props.astype(np.float32)}


@dataclass
class ModelCV:
    """Cross-validation record of one model."""

    name: str
    fold_metrics: list[dict]
    summary: dict
    oof: pd.DataFrame
    fit_seconds: list[float]
    predict_seconds: list[float]

    def scalar(self, metric: str) -> tuple[float, float]:
        s = self.summary[metric]
        return s["mean"], s["std"]


#: Models by how long they take to fit, fastest first (the order training dispatches them in reverse).
_FIT_COST_RANK = {name: rank for rank, name in enumerate(("lda", "logreg", "random_forest", "hist_gb", "gradient_boosting"))}


# ``data_key`` stands for the arguments a fit cache does not hash (X, y, per_row: hashing the
# whole matrix for every one of 30 fits would cost seconds); see EmotionTrainer(memory=...).
_UNHASHED = ["X", "y", "per_row"]


def _fit_job(name, estimator, X, y, train, test, n_classes, fold, per_row, data_key=None):
    result, _ = fit_predict_fold(estimator, X, y, train, test, n_classes=n_classes, fold=fold, **per_row)
    return name, result


def _refit_job(name, estimator, X, y, per_row, data_key=None):
    t0 = time.perf_counter()
    model = fit_clone(estimator, X, y, **per_row)
    return name, (model, time.perf_counter() - t0)


def _training_code_digest() -> str:
    """SHA-256 of this package's source files: a fit cached by other training code is not reused
    (the estimators' parameters alone do not show a change in how a model fits)."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _recordings(manifest: pd.DataFrame) -> np.ndarray | None:
    """The recording every manifest row was made from (augmented copies share their original's
    checksum and path), or None when the manifest cannot tell."""
    for column in ("sha256", "path"):
        if column in manifest:
            return pd.factorize(manifest[column].astype(str))[0]
    return None


def _or_na(value) -> str:
    """A table cell: the value to 3 decimals, or n/a where it was not measured."""
    return "n/a" if value is None or pd.isna(value) else f"{value:.3f}"


def _calibration_note(classifier) -> dict | None:
    """How a classifier's probabilities were calibrated (a temperature-scaled LDA), for the bundle metadata."""
    temperature = getattr(classifier, "temperature_", None)
    if temperature is None:
        return None
    return {"method": f"temperature scaling, fitted on held-out speakers ({classifier.calibration_cv} grouped inner "
                      "folds of each training side, original clips)" if classifier.calibration_cv else "none",
            "temperature": float(temperature)}


def _nuisance_note(classifier) -> dict | None:
    """The LDA's nuisance covariance weight and how it was chosen, for the bundle metadata."""
    weight = getattr(classifier, "nuisance_weight_", None)
    if weight is None:
        return None
    scores = getattr(classifier, "nuisance_scores_", {})
    return {"method": "scatter of augmented copies around their recording's mean, added to the within-class "
                      "covariance" + (", weight chosen by held-out log-loss on the inner folds" if scores else ""),
            "weight": float(weight),
            "held_out_log_loss": {str(w): round(float(v), 4) for w, v in scores.items()}}


class EmotionTrainer(BaseEstimator):
    """Cross-validate models speaker-independently, pick the best, refit on all data, save bundles.

    Parameters
    ----------
    task : {"emotion", "sentiment"}
        Eight RAVDESS emotions, or three sentiment classes (positive = happy, surprised;
        neutral = neutral, calm; negative = sad, angry, fearful, disgust).
    models : sequence of str
        Names from :data:`~vibe_check.training.MODEL_NAMES`; ``"ensemble"`` soft-votes the
        listed models it can combine (``logreg``, ``lda``, ``random_forest``, ``hist_gb``), or,
        when fewer than two of them are listed, all four, as the default ensemble does.
    n_splits : int
        Speaker-grouped folds.
    random_state : int
        Seed for the folds and every model.
    n_jobs : int
        Parallel fits (joblib).
    cv : iterable of (train, test) index pairs, optional
        Custom folds over the original (non-augmented) rows; refused with
        :class:`~vibe_check.exceptions.LeakageError` if a speaker is on both sides of any fold.
    progress : bool
        Show a progress bar.
    model_params : dict of str -> dict, optional
        Parameter overrides per model, in ``Pipeline.set_params`` form, for example
        ``{"hist_gb": {"model__max_iter": 50}}``.
    sentiment_from_emotions : bool
        For ``task="sentiment"``: fit every model on the eight emotions and read a sentiment's
        probability as the sum of its emotions' (:class:`GroupedClassifier`); measured better
        than fitting the three classes directly. False fits the three classes.
    speaker_normalization : bool
        The speaker-normalised mode (see :mod:`vibe_check.training._speaker`): centre every
        speaker's features on that speaker's mean before fitting, so the models learn how a
        clip differs from its speaker's usual voice. Its bundles
        (``<model>_<task>_speaker_model.pkl``) need reference clips of each speaker at prediction
        time (:meth:`CustomEmotionModel.for_speaker`). In cross-validation each held-out speaker
        is centred on all of their own clips; :func:`evaluate_speaker_references` measures
        smaller reference sets. Not the headline figure, which predicts every clip on its own.
    memory : str, path or joblib.Memory, optional
        Where every fold fit and refit is cached, as in scikit-learn's ``Pipeline(memory=...)``.
        A run that is interrupted, or repeated on the same manifest with the same settings,
        fits only what it has not fitted before and gives the same results. A fit is reused only
        for the same rows, labels, folds, model parameters, library versions and training code.
        ``vibe-check train`` caches beside the feature cache (``--cache-dir``). None (default):
        no cache.

    Augmented copies (manifest rows whose ``augmentation`` is not ``"none"``, see
    ``build_manifest(augment=...)``) are training data only: in each fold the copies of the
    training speakers' clips join the training side, and every score is measured on original
    clips of the held-out speakers.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    label_encoder_ : LabelEncoder
    cv_results_ : dict of str -> ModelCV
        Per-fold metrics, summary (mean/std), out-of-fold predictions and timings.
    best_model_ : str
        Chosen by :data:`SELECTION_RULE`.
    estimators_ : dict of str -> fitted pipeline
        Every model refit on all the data.
    folds_ : list of (train, test)
    feature_names_in_ : list of str

    Examples
    --------
    >>> from vibe_check.features import load_manifest
    >>> trainer = EmotionTrainer(n_jobs=2).fit(load_manifest("data/manifest.parquet"))  # doctest: +SKIP
    >>> trainer.metrics_table()  # doctest: +SKIP
    >>> trainer.save_bundles("models/custom")  # doctest: +SKIP
    """

    def __init__(self, *, task: str = "emotion", models: Sequence[str] = DEFAULT_MODELS, n_splits: int = 5,
                 random_state: int = 0, n_jobs: int = 1, cv=None, progress: bool = False,
                 model_params: dict | None = None, sentiment_from_emotions: bool = True,
                 speaker_normalization: bool = False, memory=None):
        self.task = task
        self.models = models
        self.n_splits = n_splits
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.cv = cv
        self.progress = progress
        self.model_params = model_params
        self.sentiment_from_emotions = sentiment_from_emotions
        self.speaker_normalization = speaker_normalization
        self.memory = memory

    # -- fitting ------------------------------------------------------------------------------
    def _model_plan(self) -> tuple[list[str], bool]:
        names = list(dict.fromkeys(self.models))
        unknown = [m for m in names if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODEL_NAMES)}")
        want_ensemble = "ensemble" in names
        base = [m for m in names if m != "ensemble"]
        if want_ensemble and len([m for m in base if m in ENSEMBLE_CANDIDATES]) < 2:
            # Too few listed to vote: the ensemble is the default one (the LDA included), so that
            # ``--models ensemble`` scores the same ensemble as a default run.
            base = list(dict.fromkeys([*base, *(m for m in DEFAULT_MODELS if m in ENSEMBLE_CANDIDATES)]))
        return base, want_ensemble

    def fit(self, manifest: pd.DataFrame, y=None) -> "EmotionTrainer":
        """Cross-validate and refit on a feature manifest (see :func:`~vibe_check.features.build_manifest`)."""
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {TASKS}")
        started = time.perf_counter()
        missing = [k for k in ("feature_names", "feature_config", "feature_hash") if not manifest.attrs.get(k)]
        if missing:
            # Guessing the definition would save a bundle that computes other features than it was fit on.
            raise DatasetError(
                f"the manifest has lost its feature definition (DataFrame.attrs {', '.join(missing)}); pandas drops "
                "it in some operations, such as concatenating manifests: load it with load_manifest, or copy "
                "the attrs back (combined.attrs = dict(original.attrs))")
        self.feature_names_in_ = feature_columns(manifest)
        self.feature_config_ = manifest.attrs["feature_config"]
        self.feature_hash_ = manifest.attrs["feature_hash"]
        X = manifest[self.feature_names_in_].to_numpy(dtype=np.float64)
        if not np.isfinite(X).all():
            raise ValueError("the manifest holds NaN or infinite features; rebuild it")
        labels = labels_for_task(manifest["emotion"].to_numpy(dtype=object), self.task)
        groups = manifest["actor"].to_numpy()
        gender = manifest["gender"].to_numpy(dtype=object) if "gender" in manifest else None
        self.label_encoder_ = LabelEncoder().fit(labels)
        self.classes_ = self.label_encoder_.classes_
        y_enc = self.label_encoder_.transform(labels)
        n_classes = len(self.classes_)
        # What the models are fitted on: the task's labels, or the finer emotions they group.
        group_of = None
        y_fit = y_enc
        if self.task == "sentiment" and self.sentiment_from_emotions:
            emotions = manifest["emotion"].to_numpy(dtype=object)
            fine = LabelEncoder().fit(emotions)
            y_fit = fine.transform(emotions)
            group_of = tuple(int(g) for g in self.label_encoder_.transform(labels_for_task(fine.classes_, self.task)))
            self.fine_classes_ = fine.classes_

        augmentation = (manifest["augmentation"].to_numpy(dtype=object) if "augmentation" in manifest
                        else np.full(len(manifest), ORIGINAL, dtype=object))
        if self.speaker_normalization:
            # Copies are centred on the same speaker's copies of the same kind: a noisy copy is
            # compared with noisy copies, as a noisy recording would be with its noisy references.
            X = center_by_group(X, [f"{a}|{k}" for a, k in zip(groups, augmentation)])
        is_original = augmentation == ORIGINAL  # calibration, like scoring, uses original clips only
        original = np.flatnonzero(is_original)
        if original.size == 0:
            raise ValueError("the manifest holds augmented copies only; it needs the original clips too")
        Xo, yo, go = X[original], y_enc[original], groups[original]
        if self.cv is not None:
            folds = [(np.asarray(tr), np.asarray(te)) for tr, te in (self.cv.split(Xo, yo, go) if hasattr(self.cv, "split") else self.cv)]
            check_speaker_independent(folds, go)
        else:
            folds = speaker_folds(yo, go, n_splits=self.n_splits, random_state=self.random_state)
        copies = np.flatnonzero(augmentation != ORIGINAL)
        # Fold indices into the whole manifest: held-out speakers' original clips on the test side,
        # training speakers' originals and their augmented copies on the training side.
        folds = [(np.concatenate([original[tr], copies[np.isin(groups[copies], go[tr])]]), original[te]) for tr, te in folds]
        check_speaker_independent(folds, groups)
        self.folds_ = folds
        self.augmentations_ = sorted(set(augmentation[copies].tolist()))
        base, want_ensemble = self._model_plan()
        estimators = {m: make_model(m, random_state=self.random_state, n_jobs=1) for m in base}
        for name, params in (self.model_params or {}).items():
            if name not in estimators:
                raise ValueError(f"model_params for {name!r}, which is not trained (models: {base})")
            estimators[name].set_params(**params)
        if group_of is not None:
            estimators = {m: GroupedClassifier(e, group_of) for m, e in estimators.items()}

        # Every fold fit and every refit on all rows (each base model is refit, whichever is chosen)
        # in one pool, the longest first: the workers then finish together instead of one idling
        # while the other ends a boosting fit.
        jobs = [(name, None) for name in estimators] + [(name, fold) for fold in range(len(folds)) for name in estimators]
        jobs.sort(key=lambda job: (-_FIT_COST_RANK.get(job[0], len(_FIT_COST_RANK)), job[1] is not None))
        # Per-row fit parameters: speakers (grouped inner folds), the original clips (calibration)
        # and the recording each row was made from (the LDA's nuisance covariance).
        per_row = {"groups": groups, "calibrate_on": is_original, "recordings": _recordings(manifest)}
        memory = check_memory(os.fspath(self.memory) if isinstance(self.memory, os.PathLike) else self.memory)
        fit_job, refit_job = _fit_job, _refit_job
        data_key = None
        if memory.location is not None:
            fit_job, refit_job = (memory.cache(f, ignore=_UNHASHED) for f in (_fit_job, _refit_job))
            data_key = joblib.hash((X, y_fit, per_row, library_versions(), _training_code_digest()))
        calls = [delayed(refit_job)(name, estimators[name], X, y_fit, per_row, data_key=data_key) if fold is None else
                 delayed(fit_job)(name, estimators[name], X, y_fit, *folds[fold], n_classes, fold, per_row, data_key=data_key)
                 for name, fold in jobs]
        bar = tqdm(total=len(jobs), desc="training", unit="fit", disable=not self.progress)
        results: dict[str, list[FoldResult]] = {m: [None] * len(folds) for m in base}
        refits: dict[str, tuple] = {}
        for name, out in Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(calls):
            if isinstance(out, FoldResult):
                results[name][out.fold] = out
            else:
                refits[name] = out
            bar.update(1)
        bar.close()

        self.cv_results_ = {}
        meta_cols = [c for c in ("path", "file", "actor", "gender", "emotion", "intensity", "statement") if c in manifest]
        for name in base:
            self.cv_results_[name] = self._score(name, results[name], y_enc, groups, gender, manifest[meta_cols])
        if want_ensemble:
            members = [m for m in base if m in ENSEMBLE_CANDIDATES]
            ens = [FoldResult(f, results[members[0]][f].test_index, soft_vote([results[m][f].proba for m in members]),
                              sum(results[m][f].fit_seconds for m in members),
                              sum(results[m][f].predict_seconds for m in members),
                              results[members[0]][f].test_actors) for f in range(len(folds))]
            self.cv_results_["ensemble"] = self._score("ensemble", ens, y_enc, groups, gender, manifest[meta_cols])
            self.ensemble_members_ = members

        self.best_model_ = self._select()
        # Every base model refit on all data; the ensemble reuses the refit members unchanged.
        self.estimators_ = {name: refits[name][0] for name in base}
        self.refit_seconds_ = {name: refits[name][1] for name in base}
        if want_ensemble:
            members = [self.estimators_[m] for m in self.ensemble_members_]
            self.estimators_["ensemble"] = make_ensemble(members, self.ensemble_members_, prefit=True).fit(X, y_enc)
            self.refit_seconds_["ensemble"] = sum(self.refit_seconds_[m] for m in self.ensemble_members_)
        self.estimators_ = {m: self.estimators_[m] for m in self.cv_results_}  # report order

        lo = labels[original]
        go_gender = gender[original] if gender is not None else None
        self.data_summary_ = {
            "n_files": int(original.size),
            "n_augmented_rows": int(copies.size),
            "augmentations": self.augmentations_,
            "actors": sorted(int(a) for a in np.unique(go)),
            "class_counts": {str(c): int((lo == c).sum()) for c in self.classes_},
            "gender_counts": {str(g): int((go_gender == g).sum()) for g in np.unique(go_gender)} if go_gender is not None else {},
        }
        self._X_train = X  # every row, augmented copies included: the folds index it
        self._y_train = y_enc
        self._originals_train = is_original  # mask over _X_train's rows: the clips that are not augmented copies
        self._per_row_train = per_row  # per-row fit parameters, for refits on the folds (explanations, robustness)
        self._y_fit = y_fit  # what models are fitted on (emotion codes for sentiment-from-emotions)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _score(self, name, fold_results, y, groups, gender, meta) -> ModelCV:
        fold_metrics, oof_parts = [], []
        for r in fold_results:
            te = r.test_index
            m = classification_metrics(y[te], r.proba, self.classes_,
                                       gender=None if gender is None else gender[te], actor=groups[te])
            m.update(fold=r.fold, test_actors=r.test_actors, fit_seconds=r.fit_seconds, predict_seconds=r.predict_seconds)
            fold_metrics.append(m)
            part = meta.iloc[te].reset_index(drop=True).copy()
            part["fold"] = r.fold
            part["y_true"] = self.classes_[y[te]]
            part["y_pred"] = self.classes_[r.proba.argmax(axis=1)]
            part["confidence"] = r.proba.max(axis=1)
            for j, c in enumerate(self.classes_):
                part[f"proba_{c}"] = r.proba[:, j]
            oof_parts.append(part)
        return ModelCV(name, fold_metrics, summarize_folds(fold_metrics, self.classes_), pd.concat(oof_parts, ignore_index=True),
                       [r.fit_seconds for r in fold_results], [r.predict_seconds for r in fold_results])

    def _select(self) -> str:
        # Fold means differ by chance too: a model only a fraction of a standard error ahead of a
        # cheaper one has not shown it will do better on new speakers, so the cheaper one is kept.
        results = list(self.cv_results_.values())
        best = max(results, key=lambda r: r.scalar("macro_f1")[0])
        mean, std = best.scalar("macro_f1")
        bar = mean - std / np.sqrt(len(self.folds_)) - 1e-9
        eligible = [r.name for r in results if r.scalar("macro_f1")[0] >= bar]
        rank = {m: i for i, m in enumerate(COST_ORDER)}
        return min(eligible, key=lambda m: rank.get(m, len(rank)))

    # -- reporting ----------------------------------------------------------------------------
    def metrics_table(self) -> pd.DataFrame:
        """One row per model: mean and std over folds of the headline metrics, and timings."""
        rows = []
        for name, r in self.cv_results_.items():
            row = {"model": name}
            for metric in ("macro_f1", "uar", "accuracy", "log_loss", "ece", "gender_gap"):
                if metric in r.summary:
                    row[f"{metric}_mean"], row[f"{metric}_std"] = r.scalar(metric)
            row["fit_seconds_per_fold"] = float(np.mean(r.fit_seconds))
            row["predict_ms_per_clip"] = 1000 * float(np.sum(r.predict_seconds)) / max(1, len(r.oof))
            row["best"] = name == self.best_model_
            rows.append(row)
        return pd.DataFrame(rows)

    def format_table(self) -> str:
        """The metrics table as aligned text (mean +- std over folds)."""
        lines = [f"{'model':<15} {'macro-F1':>15} {'UAR':>15} {'accuracy':>15} {'ECE':>7} {'gender gap':>10} {'fit s/fold':>10}"]
        for _, row in self.metrics_table().iterrows():
            pm = lambda m: f"{row[m + '_mean']:.3f} ± {row[m + '_std']:.3f}"
            mark = " *" if row["best"] else ""
            lines.append(f"{row['model']:<15} {pm('macro_f1'):>15} {pm('uar'):>15} {pm('accuracy'):>15} "
                         f"{row['ece_mean']:>7.3f} {_or_na(row.get('gender_gap_mean')):>10} {row['fit_seconds_per_fold']:>10.1f}{mark}")
        lines.append(f"* chosen: {self.best_model_} (the cheapest to run within one standard error of the best mean macro-F1)")
        return "\n".join(lines)

    # -- bundles ------------------------------------------------------------------------------
    def bundle_metadata(self, name: str, *, command: str | None = None, data_source: str | None = None) -> dict:
        """What a bundle of model ``name`` records: its CV figures, feature definition, data and provenance."""
        r = self.cv_results_[name]
        final = final_classifier(self.estimators_[name])
        return {
            "model_name": name,
            "model_label": model_label(name),
            "model_type": type(final).__name__,
            "task": self.task,
            "classes": [str(c) for c in self.classes_],
            "label_mapping": label_mapping(self.task),
            "feature_names": list(self.feature_names_in_),
            "feature_config": self.feature_config_,
            "feature_hash": self.feature_hash_,
            "cv": {
                "protocol": f"{len(self.folds_)}-fold speaker-independent (StratifiedGroupKFold on actor)"
                            + (f"; training sides add augmented copies ({', '.join(self.augmentations_)}) of their own clips"
                               if self.augmentations_ else "")
                            + ("; each sentiment's probability is the sum of its emotions' from a model fitted on the 8 emotions"
                               if self.task == "sentiment" and self.sentiment_from_emotions else "")
                            + ("; speaker-normalised mode: features centred on each speaker's mean (held-out speakers on all "
                               "of their own clips)" if self.speaker_normalization else ""),
                "random_state": self.random_state,
                "fold_actors": [sorted(set(int(a) for a in m["test_actors"])) for m in r.fold_metrics],
                "summary": r.summary,
                "folds": [{k: v for k, v in m.items() if k not in ("per_actor",)} for m in r.fold_metrics],
                "fit_seconds": r.fit_seconds,
            },
            "calibration": _calibration_note(final),
            "nuisance_covariance": _nuisance_note(final),
            "speaker_normalization": ({"method": "subtract the mean feature vector of the speaker's reference clips",
                                       "min_reference_clips": MIN_REFERENCE_CLIPS}
                                      if self.speaker_normalization else None),
            "selection_rule": SELECTION_RULE,
            "is_best": name == self.best_model_,
            "ensemble_members": list(getattr(self, "ensemble_members_", [])) if name == "ensemble" else [],
            "data_summary": self.data_summary_,
            "data_source": data_source,
            "random_seed": self.random_state,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "versions": library_versions(),
        }

    def bundle_extra(self) -> dict:
        """Arrays that go into every bundle: SHAP background rows, feature statistics, drift reference."""
        rng = np.random.default_rng(self.random_state)
        # SHAP background, "typical" values and the drift reference describe real (original) clips.
        X, y = self._X_train[self._originals_train], self._y_train[self._originals_train]
        # Stratified background sample: the same share of each class as in training.
        take = []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k = max(1, int(round(BACKGROUND_ROWS * idx.size / y.size)))
            take.extend(rng.choice(idx, size=min(k, idx.size), replace=False).tolist())
        q25, median, q75 = np.percentile(X, [25, 50, 75], axis=0)
        return {
            "background": X[np.sort(take)].astype(np.float32),
            "background_labels": y[np.sort(take)],
            "feature_median": median, "feature_q25": q25, "feature_q75": q75,
            "feature_mean": X.mean(axis=0), "feature_std": X.std(axis=0),
            "drift_reference": drift_reference(X),
        }

    def save_bundles(self, output_dir: str | os.PathLike = "models/custom", *, formats: Sequence[str] = ("pkl",),
                     command: str | None = None, data_source: str | None = None) -> dict[str, Path]:
        """Write ``<model>_<task>_model.<ext>`` for every model and ``best_<task>_model.<ext>``
        (``..._speaker_model.<ext>`` in the speaker-normalised mode, so neither overwrites the other).

        ``data_source`` says where the training audio came from when it is not recorded speech
        (:data:`~vibe_check.data.GENERATED_SOURCE` for the demo's); it is kept in the metadata.

        Returns the paths written, keyed by model name (and ``"best"``).
        """
        out = Path(output_dir)
        extra = self.bundle_extra()
        written: dict[str, Path] = {}
        for fmt in formats:
            if fmt not in ("pkl", "skops"):
                raise ValueError(f"unknown bundle format {fmt!r}; choose pkl or skops")
            for name, est in self.estimators_.items():
                meta = self.bundle_metadata(name, command=command, data_source=data_source)
                stem = f"{self.task}_speaker_model" if self.speaker_normalization else f"{self.task}_model"
                targets = [out / f"{name}_{stem}.{fmt}"]
                if name == self.best_model_:
                    targets.append(out / f"best_{stem}.{fmt}")
                for target in targets:
                    save_bundle(target, pipeline=est, label_encoder=self.label_encoder_, metadata=meta, extra=extra)
                    key = "best" if target.name.startswith("best_") else name
                    written[key if fmt == "pkl" else f"{key}.{fmt}"] = target
        self.bundles_ = written
        return written
