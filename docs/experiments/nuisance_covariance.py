"""Research script behind docs/experiments.md, "Nuisance covariance": not part of the package.

The default LDA with the scatter of each recording's augmented copies around the recording's
mean added to its within-class covariance, ``cov + w * N``, on the trainer's 5 speaker folds:
every weight of the grid on its own, and the weight chosen inside each training side by 5
speaker-grouped inner folds (held-out macro-F1, or held-out log-loss after temperature scaling:
what `BalancedLinearDiscriminantAnalysis` does). Scored on the held-out clips clean and under the
robustness benchmark's conditions, read from its feature cache (run
``benchmarks/bench_robustness.py`` once first). Sentiment is read off the uncalibrated scores.

    python docs/experiments/nuisance_covariance.py MANIFEST [0,0.5,1,2,4,8]

MANIFEST is the default augmented manifest (942 features). About 1 minute.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from vibe_check.features import FeatureExtractor
from vibe_check.training._cv import speaker_folds
from vibe_check.training._models import _ledoit_wolf_covariance, _linear_discriminant, _log_loss, _nuisance_scatter, fit_temperature
from vibe_check.training._robustness import CONDITIONS

m = pd.read_parquet(sys.argv[1])
GRID = [float(v) for v in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0, 0.5, 1, 2, 4, 8]
fx = FeatureExtractor()
X = m[fx.feature_names].to_numpy(float)
y = pd.factorize(m.emotion, sort=True)[0]
g, aug = m.actor.to_numpy(), m.augmentation.to_numpy()
rec = pd.factorize(m.sha256)[0]
paths = m.path.astype(str).tolist()
orig, copies = np.flatnonzero(aug == "none"), np.flatnonzero(aug != "none")
conds = list(CONDITIONS)
SENTIMENT = np.array([0, 1, 0, 0, 2, 1, 0, 2])  # angry calm disgust fearful happy neutral sad surprised
PRIORS = np.full(8, 1 / 8)


def stats(Xs, yt, rt):
    means = np.vstack([Xs[yt == k].mean(0) for k in range(8)])
    cov = sum(_ledoit_wolf_covariance(Xs[yt == k]) for k in range(8)) / 8
    return means, cov, _nuisance_scatter(Xs, rt)


def solve(means, cov, N, w):
    return _linear_discriminant(means, cov + w * N, PRIORS)


keys = [*GRID, "nested, macro-F1", "nested, log-loss"]
out = {k: {c: [] for c in conds} for k in keys}
sent = {k: [] for k in keys}
chosen = {k: [] for k in keys[len(GRID):]}
for tr, te in speaker_folds(y[orig], g[orig], n_splits=5, random_state=0):
    train = np.concatenate([orig[tr], copies[np.isin(g[copies], g[orig][tr])]])
    test = orig[te]
    key = hashlib.sha256(json.dumps([1, fx.hash, conds, [paths[i] for i in test],
                                     sorted(paths[i] for i in orig[tr])]).encode()).hexdigest()[:20]
    corrupted = np.load(Path("data/.feature_cache") / fx.hash / f"robustness-{key}.npy")
    scaler = StandardScaler().fit(X[train])
    Xs, yt = scaler.transform(X[train]), y[train]
    logits, truth = {w: [] for w in GRID}, []
    for itr, ite in GroupKFold(n_splits=5).split(Xs, yt, g[train]):
        ite = ite[aug[train][ite] == "none"]
        inner = stats(Xs[itr], yt[itr], rec[train][itr])
        for w in GRID:
            coef, intercept = solve(*inner, w)
            logits[w].append(Xs[ite] @ coef.T + intercept)
        truth.append(yt[ite])
    truth = np.concatenate(truth)
    f1s = {w: f1_score(truth, np.vstack(logits[w]).argmax(1), average="macro") for w in GRID}
    losses = {}
    for w in GRID:
        z = np.vstack(logits[w])
        losses[w] = _log_loss(z / fit_temperature(z, truth), truth)
    pick = {"nested, macro-F1": max(GRID, key=f1s.get), "nested, log-loss": min(GRID, key=losses.get)}
    outer = stats(Xs, yt, rec[train])
    fits = {w: solve(*outer, w) for w in GRID}
    for k in keys:
        w = pick.get(k, k)
        if k in pick:
            chosen[k].append(w)
        coef, intercept = fits[w]
        for j, condition in enumerate(conds):
            ok = np.isfinite(corrupted[j]).all(1)
            z = scaler.transform(np.nan_to_num(corrupted[j])) @ coef.T + intercept
            out[k][condition].append(f1_score(y[test], np.where(ok, z.argmax(1), (y[test] + 1) % 8), average="macro"))
            if condition == "clean":
                p = np.exp(z - z.max(1, keepdims=True))
                sent[k].append(f1_score(SENTIMENT[y[test]], np.stack([p[:, SENTIMENT == s].sum(1) for s in range(3)], 1).argmax(1),
                                        average="macro"))
    print("inner folds chose", {k: v for k, v in pick.items()}, flush=True)

show = ["clean", "white 20 dB", "white 10 dB", "babble 20 dB", "babble 10 dB", "telephone"]
print(f"{'weight':18s} " + " ".join(f"{c:>13s}" for c in show) + "  sentiment    clean per fold")
for k in keys:
    print(f"{str(k):18s} " + " ".join(f"{np.mean(out[k][c]):13.3f}" for c in show),
          f" {np.mean(sent[k]):.3f}", f"  ± {np.std(out[k]['clean']):.3f}", np.round(out[k]["clean"], 3), chosen.get(k, ""))
