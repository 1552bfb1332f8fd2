#!/usr/bin/env python
"""The field's classical baselines and vibe-check's default model, on the same speaker folds.

Published speaker-independent figures on RAVDESS come from different splits and protocols. This
measures the common recipes under vibe-check's own: the 5 speaker-grouped folds that
``vibe-check train`` uses (``speaker_folds``, seed 0), the same held-out clips, macro-F1 as the
mean +- standard deviation over folds.

* openSMILE eGeMAPS v02 (88 functionals) + logistic regression, + RBF SVM;
* openSMILE ComParE 2016 (6,373 functionals) + linear SVM, + logistic regression;
* the mean/std librosa recipe most open-source projects use (MFCC 40, chroma, mel 128,
  spectral contrast, tonnetz: 386 features) + random forest, + gradient boosting, + logistic
  regression;
* vibe-check's default model (shrinkage LDA on its named features), with and without its training
  augmentation.

Baselines see the original clips only, as published; each one's regularisation is chosen inside
the training side by a grid search over 4 speaker-grouped inner folds, so no choice sees a test
speaker. Baseline features are cached per file (``<cache-dir>/baselines/``), so a second run only
refits. openSMILE rows need ``pip install 'vibe-check[bench]'`` and are skipped without it.

    python benchmarks/bench_baselines.py [--data-dir ../shared/data/ravdess16k] [--baselines egemaps,compare,librosa]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from tqdm.auto import tqdm

from _corpus import corpus_manifest, corpus_parser
from vibe_check.audio import load_audio
from vibe_check.data import ORIGINAL
from vibe_check.features import feature_columns
from vibe_check.training import EmotionTrainer, speaker_folds

SAMPLE_RATE = 16000


def opensmile_features(feature_set: str) -> Callable[[list[str]], np.ndarray] | None:
    """A function from files to openSMILE functionals (``feature_set``: a ``FeatureSet`` name), or
    None when opensmile is not installed."""
    try:
        import opensmile
    except ImportError:
        return None

    def extract(paths: list[str]) -> np.ndarray:
        smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                                feature_level=opensmile.FeatureLevel.Functionals)
        return np.vstack([smile.process_signal(load_audio(p, target_sr=SAMPLE_RATE, max_duration=None), SAMPLE_RATE)
                          .to_numpy(dtype=np.float64)[0] for p in paths])

    return extract


def librosa_recipe(paths: list[str]) -> np.ndarray:
    """Mean and standard deviation over frames of MFCC (40), chroma (12), mel power (128), spectral
    contrast (7) and tonnetz (6) with librosa's defaults: the recipe of most open-source
    speech-emotion projects (386 features)."""
    import librosa

    rows = []
    for p in paths:
        y = load_audio(p, target_sr=SAMPLE_RATE, max_duration=None)
        S = np.abs(librosa.stft(y))
        blocks = [librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=40),
                  librosa.feature.chroma_stft(S=S, sr=SAMPLE_RATE),
                  librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE),
                  librosa.feature.spectral_contrast(S=S, sr=SAMPLE_RATE),
                  librosa.feature.tonnetz(y=librosa.effects.harmonic(y), sr=SAMPLE_RATE)]
        rows.append(np.concatenate([f(b, axis=1) for b in blocks for f in (np.mean, np.std)]))
    return np.vstack(rows)


def cached_features(name: str, extract: Callable[[list[str]], np.ndarray], files: pd.DataFrame, cache_dir: Path,
                    *, n_jobs: int, chunk: int = 50) -> np.ndarray:
    """``extract`` on every file of ``files`` (columns ``path``, ``sha256``), cached by content hash.

    The cache is rewritten atomically after every chunk, so an interrupted run resumes where it
    stopped.
    """
    path = cache_dir / "baselines" / f"{name}.parquet"
    cached = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    todo = files.loc[~files["sha256"].isin(cached.index)].drop_duplicates("sha256")
    if len(todo):
        path.parent.mkdir(parents=True, exist_ok=True)
        step = chunk * max(1, n_jobs)
        with tqdm(total=len(todo), desc=name, unit="file") as bar:
            for start in range(0, len(todo), step):
                part = todo.iloc[start : start + step]
                pieces = [part.iloc[i : i + chunk] for i in range(0, len(part), chunk)]
                values = Parallel(n_jobs=n_jobs)(delayed(extract)(p["path"].tolist()) for p in pieces)
                new = pd.DataFrame(np.vstack(values), index=part["sha256"].to_numpy())
                new.columns = new.columns.astype(str)
                cached = pd.concat([cached, new])
                tmp = path.with_suffix(".tmp")
                cached.to_parquet(tmp)
                os.replace(tmp, path)
                bar.update(len(part))
    X = cached.loc[files["sha256"].to_numpy()].to_numpy(dtype=np.float64)
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)


def tuned(estimator, grid: dict) -> GridSearchCV:
    """``estimator`` after standard scaling, its grid searched on 4 speaker-grouped inner folds."""
    pipe = make_pipeline(StandardScaler(), estimator)
    step = pipe.steps[-1][0]
    return GridSearchCV(pipe, {f"{step}__{k}": v for k, v in grid.items()}, scoring="f1_macro", cv=GroupKFold(4), n_jobs=1)


BASELINES: dict[str, tuple[str, Callable | None, dict[str, Callable[[], object]]]] = {
    "egemaps": ("eGeMAPS v02 (openSMILE)", opensmile_features("eGeMAPSv02"), {
        "logistic regression": lambda: tuned(LogisticRegression(max_iter=2000, class_weight="balanced"), {"C": [0.01, 0.1, 1.0]}),
        "RBF SVM": lambda: tuned(SVC(class_weight="balanced"), {"C": [1.0, 10.0, 100.0]}),
    }),
    "compare": ("ComParE 2016 (openSMILE)", opensmile_features("ComParE_2016"), {
        "linear SVM": lambda: tuned(LinearSVC(class_weight="balanced", max_iter=5000), {"C": [1e-4, 1e-3, 1e-2]}),
        "logistic regression": lambda: tuned(LogisticRegression(max_iter=1000, class_weight="balanced"), {"C": [1e-3, 1e-2]}),
    }),
    "librosa": ("mean/std librosa recipe", librosa_recipe, {
        "random forest": lambda: RandomForestClassifier(n_estimators=300, class_weight="balanced", random_state=0, n_jobs=1),
        "gradient boosting": lambda: HistGradientBoostingClassifier(class_weight="balanced", random_state=0),
        "logistic regression": lambda: tuned(LogisticRegression(max_iter=2000, class_weight="balanced"), {"C": [0.01, 0.1, 1.0]}),
    }),
}


def _fold_score(make, X, y, groups, train, test) -> float:
    model = make()
    fit_params = {"groups": groups[train]} if isinstance(model, GridSearchCV) else {}
    model.fit(X[train], y[train], **fit_params)
    return f1_score(y[test], model.predict(X[test]), average="macro")


def _row(label: str, scores, seconds: float) -> str:
    scores = np.asarray(scores)
    return f"{label:<58} {scores.mean():.3f} ± {scores.std():.3f}  [{' '.join(f'{s:.3f}' for s in scores)}]  {seconds:5.0f} s"


def main(argv=None) -> int:
    ap = corpus_parser(__doc__)
    ap.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated feature sets (default: %(default)s)")
    args = ap.parse_args(argv)
    unknown = [b for b in args.baselines.split(",") if b and b not in BASELINES]
    if unknown:
        ap.error(f"unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}")
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    originals = manifest.loc[manifest["augmentation"] == ORIGINAL].reset_index(drop=True)
    y = pd.Categorical(originals["emotion"]).codes
    groups = originals["actor"].to_numpy()
    folds = speaker_folds(y, groups, n_splits=args.folds, random_state=0)
    lines = []
    for key in [b for b in args.baselines.split(",") if b]:
        title, extract, models = BASELINES[key]
        if extract is None:
            lines.append(f"{title}: skipped, opensmile is not installed (pip install 'vibe-check[bench]')")
            continue
        X = cached_features(key, extract, originals, Path(args.cache_dir), n_jobs=args.n_jobs)
        for name, make in models.items():
            t1 = time.perf_counter()
            scores = Parallel(n_jobs=args.n_jobs)(delayed(_fold_score)(make, X, y, groups, tr, te) for tr, te in folds)
            lines.append(_row(f"{title} ({X.shape[1]}) + {name}", scores, time.perf_counter() - t1))
            print(lines[-1], flush=True)
    # vibe-check's default model, trained as `vibe-check train` trains it, on the same folds.
    runs = [(f"vibe-check features ({len(feature_columns(manifest))}), no augmentation + LDA", originals)]
    if args.augment:
        runs.append((f"vibe-check default: the same + {len(args.augment)} augmented copies per clip", manifest))
    for label, rows in runs:
        t1 = time.perf_counter()
        trainer = EmotionTrainer(models=["lda"], cv=folds, n_jobs=args.n_jobs).fit(rows)
        lines.append(_row(label, [m["macro_f1"] for m in trainer.cv_results_["lda"].fold_metrics], time.perf_counter() - t1))
        print(lines[-1], flush=True)
    print(f"\ntraining augmentation: {', '.join(args.augment) or 'none'}")
    print(f"{len(originals)} clips, {len(set(groups))} speakers, {len(folds)} speaker-grouped folds; emotion macro-F1, "
          "mean ± std over folds [per fold], wall time")
    print("\n".join(lines))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
