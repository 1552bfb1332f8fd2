"""Speaker-normalised mode: features measured relative to each speaker's own average.

Much of what separates one clip's features from another's is the voice, not the emotion: a deep
voice has a low ``f0_mean`` whatever it feels. Subtracting each speaker's mean feature vector
removes that part. The catch is that the mean must come from the speaker's *own* recordings, so
this is a separate mode with its own figures, not the headline model (which predicts each clip on
its own):

- **Training**: every speaker's rows are centred on that speaker's mean (augmented copies on the
  mean of the same speaker's copies of the same kind, so a noisy copy is compared with noisy
  copies).
- **Prediction**: :meth:`CustomEmotionModel.for_speaker` takes a few *unlabelled* reference
  clips of the speaker and subtracts their mean feature vector from every clip it classifies.

The references should be a typical mix of the speaker's speech. Centring on, say, only calm
clips makes everything else look more aroused than it is (measured below).

Measured on RAVDESS actors 01-20 (5 speaker folds, default augmentation, LDA;
``python benchmarks/bench_speaker_adaptation.py``): each held-out speaker centred on all of
their other clips (about 59) 0.749 macro-F1; on 32 random ones 0.743; on 16, 0.735; on 8,
0.729; on 4, 0.690; the headline model without a reference 0.701. Centring on 8 calm or neutral
clips only fell to 0.507.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ..data import ORIGINAL, speed_copies
from ._folds import FoldModels
from ._tta import copy_rows

if TYPE_CHECKING:  # annotations only: the trainer module imports this one
    from ._train import EmotionTrainer

__all__ = ["MIN_REFERENCE_CLIPS", "center_by_group", "evaluate_speaker_references"]

#: Fewest reference clips :meth:`CustomEmotionModel.for_speaker` accepts. With 4 random clips of a
#: speaker the mean is noisy and the result about that of the model without references (0.690
#: against 0.701 on RAVDESS; 8 give 0.729); with 2 it hurts (0.577 against 0.660, measured before
#: the loud-core speech bound), with 1 more so (0.512).
MIN_REFERENCE_CLIPS = 4


def center_by_group(X: np.ndarray, groups: Sequence) -> np.ndarray:
    """Subtract from each row the mean of the rows of its group.

    Parameters
    ----------
    X : array of shape (n, n_features)
    groups : sequence of hashable, length n
        For training: one key per (speaker, augmentation) pair.

    Returns
    -------
    ndarray of shape (n, n_features)
        A new array; every group's rows have mean zero.

    Examples
    --------
    >>> center_by_group(np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 5.0]]), ["a", "a", "b"])
    array([[-1., -5.],
           [ 1.,  5.],
           [ 0.,  0.]])
    """
    X = np.asarray(X, dtype=np.float64)
    keys, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.zeros((keys.size, X.shape[1]))
    np.add.at(sums, index, X)
    return X - (sums / np.bincount(index, minlength=keys.size)[:, None])[index]


def evaluate_speaker_references(trainer: EmotionTrainer, manifest: pd.DataFrame, n_references: Sequence[int | None] = (4, 8, 16, 32, None),
                                *, model: str | None = None, reference_emotions: Sequence[str] | None = None,
                                test_time_augmentation: bool = False, random_state: int = 0) -> pd.DataFrame:
    """Macro-F1 of a speaker-normalised model when each held-out speaker gives ``k`` reference clips.

    In each of the trainer's folds, the model fitted on the training speakers classifies every
    original clip of the held-out speakers, centred on the mean raw features of ``k`` *other*
    original clips of the same speaker drawn at random (never the clip itself). That is what
    :meth:`CustomEmotionModel.for_speaker` does with ``k`` references.

    Parameters
    ----------
    trainer : EmotionTrainer
        Fitted with ``speaker_normalization=True`` on ``manifest``.
    manifest : DataFrame
        The manifest it was fitted on (its raw features give the references).
    n_references : sequence of int or None
        Reference set sizes; None uses all of the speaker's other clips.
    model : str, optional
        Default: the trainer's chosen model.
    reference_emotions : sequence of str, optional
        Draw references only from clips of these emotions (to measure a skewed reference set).
    test_time_augmentation : bool
        Also classify each clip's speed copies (the manifest's), each centred on the references'
        copies of the same speed, and average the log-probabilities, as
        ``CustomEmotionModel(..., test_time_augmentation=True).for_speaker(...)`` does.
    random_state : int

    Returns
    -------
    DataFrame
        One row per reference size: ``n_references`` (``"all"`` for None), ``macro_f1_mean``,
        ``macro_f1_std`` (over folds).

    Examples
    --------
    >>> trainer = EmotionTrainer(models=["lda"], speaker_normalization=True).fit(manifest)  # doctest: +SKIP
    >>> evaluate_speaker_references(trainer, manifest, [8, None])  # doctest: +SKIP
    """

    if not getattr(trainer, "speaker_normalization", False):
        raise ValueError("the trainer was not fitted with speaker_normalization=True")
    model = model or trainer.best_model_
    raw = manifest[trainer.feature_names_in_].to_numpy(dtype=np.float64)
    actors = manifest["actor"].to_numpy()
    emotions = manifest["emotion"].to_numpy(dtype=object)
    augmentation = manifest["augmentation"].to_numpy(dtype=object) if "augmentation" in manifest else np.full(len(manifest), ORIGINAL)
    eligible = augmentation == ORIGINAL
    kinds = [ORIGINAL, *(speed_copies(trainer.augmentations_) if test_time_augmentation else [])]
    if test_time_augmentation and len(kinds) == 1:
        raise ValueError("test-time augmentation needs speed copies in the manifest")
    rows_of = copy_rows(manifest)
    if reference_emotions is not None:
        eligible &= np.isin(emotions, list(reference_emotions))
    folds = FoldModels(trainer, max_folds=None)
    y = trainer._y_train
    rows = []
    for k in n_references:
        rng = np.random.default_rng(random_state)
        scores = []
        for fold in folds.folds:
            test = folds.test_index(fold)
            fitted = folds.model(model, fold)
            X = np.empty((len(kinds), test.size, raw.shape[1]))  # per kind: the clip's row minus the references' mean
            for j, i in enumerate(test):
                pool = np.flatnonzero(eligible & (actors == actors[i]))
                pool = pool[pool != i]
                if k is not None and pool.size < k:
                    raise ValueError(f"actor {actors[i]} has {pool.size} eligible reference clips, fewer than {k}")
                refs = pool if k is None else rng.choice(pool, size=k, replace=False)
                index = rows_of([i, *refs], kinds)  # (kinds, clip then references)
                X[:, j] = raw[index[:, 0]] - raw[index[:, 1:]].mean(axis=1)
            log_p = np.mean([np.log(np.clip(fitted.predict_proba(Xk), 1e-300, None)) for Xk in X], axis=0)
            pred = np.asarray(fitted.classes_)[log_p.argmax(axis=1)]
            scores.append(f1_score(y[test], pred, average="macro"))
        rows.append({"n_references": "all" if k is None else int(k), "macro_f1_mean": float(np.mean(scores)),
                     "macro_f1_std": float(np.std(scores))})
    return pd.DataFrame(rows)
