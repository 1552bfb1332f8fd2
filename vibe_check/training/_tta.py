"""Test-time augmentation: classify a clip together with speed copies of itself.

The default training adds speed-perturbed copies (0.85x-1.15x) of every training clip, so the
models know those voices. At prediction time the same copies of the clip being classified give
a few more looks at it; their log-probabilities are averaged (each clip is still predicted on its
own, with nothing from other clips). :class:`~vibe_check.models.CustomEmotionModel` does it with
``test_time_augmentation=True``; this module measures it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from ..data import ORIGINAL, speed_copies
from ._folds import FoldModels

if TYPE_CHECKING:  # annotations only: the trainer module imports this one
    from ._train import EmotionTrainer

__all__ = ["evaluate_test_time_augmentation", "copy_rows"]


def copy_rows(manifest: pd.DataFrame) -> Callable[[Sequence[int], Sequence[str]], np.ndarray]:
    """A lookup of the manifest's copies of its clips: ``rows(clips, kinds)`` gives the row of each
    clip's copy of each kind (``"none"``: the clip itself), shape ``(len(kinds), len(clips))``, and
    a ValueError naming the first copy the manifest lacks."""
    paths = manifest["path"].astype(str).to_numpy()
    kinds = manifest["augmentation"].to_numpy(dtype=object) if "augmentation" in manifest else np.full(len(paths), ORIGINAL)
    row_of = {(p, a): i for i, (p, a) in enumerate(zip(paths, kinds))}

    def rows(clips: Sequence[int], kinds: Sequence[str]) -> np.ndarray:
        try:
            return np.array([[row_of[(paths[i], k)] for i in clips] for k in kinds])
        except KeyError as exc:
            raise ValueError(f"the manifest lacks the copy {exc} of a held-out clip") from None

    return rows


def evaluate_test_time_augmentation(trainer: EmotionTrainer, manifest: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Macro-F1 on held-out speakers with and without test-time speed copies.

    The manifest already holds the speed copies of every clip (as training copies); in each of
    the trainer's folds only the held-out speakers' copies are used, and only to classify the
    clip they were made from.

    Parameters
    ----------
    trainer : EmotionTrainer
        Fitted on ``manifest`` with speed copies among its augmentations.
    manifest : DataFrame
    models : sequence of str, optional
        Default: the trainer's chosen model.

    Returns
    -------
    DataFrame
        One row per model: ``macro_f1_mean`` / ``macro_f1_std`` (the clip alone, as in the trainer's
        table), ``tta_macro_f1_mean`` / ``tta_macro_f1_std`` (with its speed copies), ``speeds``
        and ``folds_better`` (folds where the copies helped).

    Examples
    --------
    >>> evaluate_test_time_augmentation(trainer, manifest, ["lda"])  # doctest: +SKIP
    """

    speeds = speed_copies(trainer.augmentations_)
    if not speeds:
        raise ValueError("the trainer's manifest has no speed copies (augment with speed_...)")
    models = list(models or [trainer.best_model_])
    kinds = [ORIGINAL, *speeds]
    rows_of = copy_rows(manifest)
    X, y = trainer._X_train, trainer._y_train
    folds = FoldModels(trainer, max_folds=None)
    rows = []
    for name in models:
        plain, tta = [], []
        for fold in folds.folds:
            test = folds.test_index(fold)
            model = folds.model(name, fold)
            index = rows_of(test, kinds)
            columns = np.asarray(model.classes_, dtype=int)
            log_p = np.stack([np.log(np.clip(model.predict_proba(X[ix]), 1e-300, None)) for ix in index])
            plain.append(f1_score(y[test], columns[log_p[0].argmax(axis=1)], average="macro"))
            tta.append(f1_score(y[test], columns[log_p.mean(axis=0).argmax(axis=1)], average="macro"))
        rows.append({"model": name, "macro_f1_mean": float(np.mean(plain)), "macro_f1_std": float(np.std(plain)),
                     "tta_macro_f1_mean": float(np.mean(tta)), "tta_macro_f1_std": float(np.std(tta)),
                     "speeds": ", ".join(f"{f:g}x" for f in speeds.values()),
                     "folds_better": int(np.sum(np.array(tta) > np.array(plain)))})
    return pd.DataFrame(rows)
