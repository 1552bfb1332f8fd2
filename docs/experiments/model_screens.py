"""Research script behind docs/experiments.md, "Other models on the same features (stop 19)".

Not part of the package. Every screen reads the default feature manifest (821 features, default
augmentation; built or read from the feature cache), uses the trainer's 5 speaker folds (training
sides: the training speakers' clips and their copies; test sides: held-out speakers' original
clips) and prints the emotion macro-F1 per fold. Nothing is chosen on the test folds inside a
screen; the choice between screens is reported as such in the document.

    python docs/experiments/model_screens.py ../shared/data/ravdess16k          # every screen
    python docs/experiments/model_screens.py ../shared/data/ravdess16k random_subspace_seeds

About 5 minutes for all of them on 2 cores, once the manifest is cached.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from vibe_check.features import FeatureConfig, build_manifest, feature_columns
from vibe_check.features._covariation import _descriptor_names
from vibe_check.training import DEFAULT_AUGMENTATIONS
from vibe_check.training._cv import speaker_folds
from vibe_check.training._models import BalancedLinearDiscriminantAnalysis, make_model, row_fit_params

m = build_manifest(sys.argv[1], None, config=FeatureConfig(), n_jobs=2, cache_dir="data/.feature_cache",
                   progress=False, augment=DEFAULT_AUGMENTATIONS)
cols = feature_columns(m)
X = m[cols].to_numpy(float)
y, CLASSES = pd.factorize(m.emotion, sort=True)
K = len(CLASSES)
actor = m.actor.to_numpy()
aug = m.augmentation.to_numpy()
female = (m.gender.astype(str).to_numpy() == "female").astype(int)
orig, copies = np.flatnonzero(aug == "none"), np.flatnonzero(aug != "none")
FOLDS = [(np.concatenate([orig[tr], copies[np.isin(actor[copies], actor[orig][tr])]]), orig[te])
         for tr, te in speaker_folds(y[orig], actor[orig], n_splits=5, random_state=0)]
SEED = int(os.environ.get("SEED", 0))


def report(name, fit_predict):
    """Fit on each training side, score the held-out clips; ``fit_predict(train, test) -> scores``."""
    t0, scores = time.time(), []
    for train, test in FOLDS:
        scores.append(f1_score(y[test], fit_predict(train, test).argmax(axis=1), average="macro"))
    print(f"{name}: {np.mean(scores):.3f} ± {np.std(scores):.3f} {np.round(scores, 3)} ({time.time() - t0:.0f} s)", flush=True)


def calibrated_lda(train, test, Xa=X, labels=None, per_class=1):
    """The default model (temperature-scaled, equal priors), on fine labels summed back to emotions."""
    labels = y if labels is None else labels
    model = make_model("lda")
    model.fit(Xa[train], labels[train], **row_fit_params(model, groups=actor[train], calibrate_on=aug[train] == "none"))
    p = model.predict_proba(Xa[test])
    if per_class > 1:
        emotion_of = model.classes_ // per_class
        p = np.stack([p[:, emotion_of == k].sum(axis=1) for k in range(K)], axis=1)
    return p


def lda(Xa=X, shrinkage="auto"):
    """Uncalibrated LDA (same arg-max as the default) for screens that only compare decisions."""
    def fit_predict(train, test):
        model = Pipeline([("scale", StandardScaler()),
                          ("lda", BalancedLinearDiscriminantAnalysis(shrinkage=shrinkage, calibration_cv=None))])
        return model.fit(Xa[train], y[train]).predict_log_proba(Xa[test])
    return fit_predict


def subclass_kmeans(train, test, n=2):
    scaler = StandardScaler().fit(X[train])
    labels = np.zeros(len(y), int)
    for k in range(K):
        rows = train[y[train] == k]
        labels[rows] = k * n + KMeans(n, n_init=3, random_state=0).fit(scaler.transform(X[rows])).labels_
    return calibrated_lda(train, test, labels=labels, per_class=n)


def nap(n_directions):
    """Nuisance attribute projection: remove the training speakers' main directions of mean offset."""
    def fit_predict(train, test):
        scaler = StandardScaler().fit(X[train])
        originals = train[aug[train] == "none"]
        Z = scaler.transform(X[originals])
        means = np.stack([Z[actor[originals] == a].mean(axis=0) for a in np.unique(actor[originals])])
        U = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)[2][:n_directions].T
        Xp = scaler.transform(X)
        return calibrated_lda(train, test, Xa=Xp - (Xp @ U) @ U.T)
    return fit_predict


def random_subspace(members, fraction, seed=None):
    """Mean log-probability of LDAs on random feature subsets (Ho 1998). Averaging the members'
    logits gives the same arg-max, so the ensemble is one linear model."""
    def fit_predict(train, test):
        rng = np.random.default_rng(SEED if seed is None else seed)
        total = 0.0
        for _ in range(members):
            subset = np.sort(rng.choice(X.shape[1], int(fraction * X.shape[1]), replace=False))
            logp = lda(X[:, subset])(train, test)
            total = total + (logp - logp.max(axis=1, keepdims=True))
        return total
    return fit_predict


def log_euclidean_correlations():
    """The 253 correlations replaced by the upper triangle of the matrix logarithm of the 23 x 23
    correlation matrix (the tangent space at the identity, as in Riemannian BCI classifiers)."""
    names = _descriptor_names(10)
    d = len(names)
    upper = np.triu_indices(d, 1)
    corr_cols = [f"corr_{names[i]}_vs_{names[j]}" for i, j in zip(*upper)]
    C = np.repeat(np.eye(d)[None], len(m), axis=0)
    values = m[corr_cols].to_numpy(float)
    C[:, upper[0], upper[1]] = values
    C[:, upper[1], upper[0]] = values
    eigenvalues, V = np.linalg.eigh(C + 1e-3 * np.eye(d))
    L = np.einsum("nij,nj,nkj->nik", V, np.log(np.maximum(eigenvalues, 1e-3)), V)
    logm = L[:, np.triu_indices(d)[0], np.triu_indices(d)[1]]
    others = m[[c for c in cols if c not in set(corr_cols)]].to_numpy(float)
    return others, logm


def projected(classifier):
    """A classifier on the 7 discriminant directions of a shrinkage LDA fitted on the training side."""
    def fit_predict(train, test):
        scaler = StandardScaler().fit(X[train])
        projection = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", priors=np.full(K, 1 / K))
        projection.fit(scaler.transform(X[train]), y[train])
        Z_train, Z_test = (projection.transform(scaler.transform(X[rows])) for rows in (train, test))
        return clone(classifier).fit(Z_train, y[train]).predict_proba(Z_test)
    return fit_predict


SCREENS = {
    "lda": lambda: report("default LDA", calibrated_lda),
    "subclass_gender": lambda: report("LDA on emotion x gender subclasses", lambda tr, te: calibrated_lda(
        tr, te, labels=2 * y + female, per_class=2)),
    "subclass_kmeans": lambda: report("LDA on 2 k-means subclasses per emotion", subclass_kmeans),
    "nap": lambda: [report(f"NAP, {n} speaker directions removed, + LDA", nap(n)) for n in (2, 5, 10)],
    "shrinkage": lambda: [report(f"LDA, shrinkage {s}", lda(shrinkage=s)) for s in ("auto", 0.01, 0.03, 0.1, 0.3)],
    "random_subspace": lambda: [report(f"random-subspace LDA, {n} x {f:.0%} of the features", random_subspace(n, f))
                                for n, f in ((10, 0.5), (20, 0.5), (40, 0.5), (20, 0.3), (20, 0.7), (30, 0.2))],
    "random_subspace_seeds": lambda: [report(f"random-subspace LDA, 20 x 50%, seed {seed}", random_subspace(20, 0.5, seed))
                                      for seed in (0, 1, 2)],
    "log_euclidean": lambda: (lambda others, logm: [
        report("LDA without the correlations", lda(others)),
        report("LDA, correlations as a log-Euclidean matrix", lda(np.hstack([others, logm]))),
        report("LDA, correlations and their log-Euclidean matrix", lda(np.hstack([X, logm])))])(*log_euclidean_correlations()),
    "projected": lambda: [report(name, projected(clf)) for name, clf in (
        ("LDA directions + LDA", LinearDiscriminantAnalysis(priors=np.full(K, 1 / K))),
        ("LDA directions + QDA (reg 0.1)", QuadraticDiscriminantAnalysis(reg_param=0.1, priors=np.full(K, 1 / K))),
        ("LDA directions + QDA (reg 0.5)", QuadraticDiscriminantAnalysis(reg_param=0.5, priors=np.full(K, 1 / K))),
        ("LDA directions + 50 nearest neighbours", KNeighborsClassifier(50)))],
}

if __name__ == "__main__":
    for screen in sys.argv[2:] or SCREENS:
        SCREENS[screen]()
