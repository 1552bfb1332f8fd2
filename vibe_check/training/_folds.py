"""Models refit on the training side of a trainer's speaker-independent folds.

Used by everything measured on held-out speakers after training: explanations, the robustness
table, the speaker-reference and test-time augmentation evaluations.

Global explanations (SHAP values, permutation importance) are computed on *held-out* clips:
the final models in ``trainer.estimators_`` were fitted on every clip, so explaining any clip
with them would describe what the model memorised. The trainer keeps its folds but not its fold
models, so they are refit here once (only for the folds asked for) and shared by every
explanation of the run.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from ._cv import fit_clone
from ._models import make_ensemble

__all__ = ["FoldModels"]


class FoldModels:
    """Lazily refit, cache and hand out per-fold models of a fitted :class:`EmotionTrainer`.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
    max_folds : int or None
        Use the first ``max_folds`` folds only (all when None). Bounds the cost: each fold
        refits every model once.
    n_threads : int or None
        OpenMP/BLAS threads for refits and batched predictions (None: the libraries' default).
        One by default: on a shared 2-core machine a HistGradientBoosting refit took 1.4 s with
        one thread and 3-29 s with two, whose threads spin while waiting for each other.

    Attributes
    ----------
    folds : list of int
        Fold numbers used.
    refit_seconds : dict of str -> float
        Wall time spent refitting each model, over all used folds.

    Examples
    --------
    >>> fm = FoldModels(trainer, max_folds=2)  # doctest: +SKIP
    >>> model = fm.model("logreg", 0)  # doctest: +SKIP
    >>> X_test, y_test = fm.test_rows(0)  # doctest: +SKIP
    """

    def __init__(self, trainer, *, max_folds: int | None = 2, n_threads: int | None = 1):
        if not hasattr(trainer, "_X_train"):
            raise ValueError("the trainer holds no training matrix: explain a trainer fitted in this process")
        self.trainer = trainer
        self.X = trainer._X_train
        self.y = trainer._y_train
        # Base models are fitted on these (the emotions, for a sentiment read off emotion models).
        self.y_fit = trainer._y_fit
        # Per-row fit parameters (speakers, original clips, recordings), as the trainer fitted with.
        self.per_row = trainer._per_row_train
        n = len(trainer.folds_)
        self.folds = list(range(n if max_folds is None else max(1, min(max_folds, n))))
        self.n_threads = n_threads
        self.refit_seconds: dict[str, float] = {}
        self._cache: dict[tuple[str, int], object] = {}

    def threads(self):
        """Context manager applying :attr:`n_threads` to OpenMP and BLAS pools."""
        return threadpool_limits(limits=self.n_threads)

    def train_index(self, fold: int) -> np.ndarray:
        """Rows of the trainer's training matrix on ``fold``'s training side (augmented copies included)."""
        return np.asarray(self.trainer.folds_[fold][0])

    def test_index(self, fold: int) -> np.ndarray:
        """Rows of ``fold``'s held-out speakers (original clips only)."""
        return np.asarray(self.trainer.folds_[fold][1])

    def model(self, name: str, fold: int):
        """The model ``name`` fitted on the training side of ``fold`` (cached)."""
        key = (name, fold)
        if key not in self._cache:
            tr = self.train_index(fold)
            if name == "ensemble":
                members = list(self.trainer.ensemble_members_)
                fitted = [self.model(m, fold) for m in members]
                t0 = time.perf_counter()  # member refits are booked to the members
                est = make_ensemble(fitted, members, prefit=True).fit(self.X[tr], self.y[tr])
            else:
                t0 = time.perf_counter()
                with self.threads():
                    est = fit_clone(self.trainer.estimators_[name], self.X, self.y_fit, tr, **self.per_row)
            self.refit_seconds[name] = self.refit_seconds.get(name, 0.0) + time.perf_counter() - t0
            self._cache[key] = est
        return self._cache[key]

    def sample_test_rows(self, fold: int, size: int | None, *, random_state: int = 0) -> np.ndarray:
        """Up to ``size`` row numbers from the held-out side of ``fold`` (all when None), sorted."""
        te = self.test_index(fold)
        if size is None or size >= te.size:
            return te
        rng = np.random.default_rng([random_state, fold])
        return np.sort(rng.choice(te, size=size, replace=False))

    def split_sample(self, sample_size: int | None, *, random_state: int = 0) -> dict[int, np.ndarray]:
        """Held-out rows per used fold, ``sample_size`` in total, shared about equally among folds."""
        if sample_size is None:
            return {f: self.test_index(f) for f in self.folds}
        per = np.diff(np.linspace(0, sample_size, len(self.folds) + 1).round().astype(int))
        return {f: self.sample_test_rows(f, int(k), random_state=random_state) for f, k in zip(self.folds, per) if k > 0}
