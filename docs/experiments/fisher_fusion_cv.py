"""Research script behind docs/experiments.md, "Frame-level views": not part of the package.

Step 2 of 2: 5 speaker folds as the trainer makes them; per fold a 64-component GMM on the training
speakers' original frames, Fisher vectors for every row, the default (temperature-scaled) LDA on
the manifest's features (the package's current default set: 821 at stops 15-20, 942 since stop 21)
and one on the Fisher vectors, and their fusion. About 45 minutes on 2 cores at
stop 15, 15 minutes with the faster LDA solve (stop 19), 8 minutes with the batched Fisher encoding
(stop 21).

    python docs/experiments/fisher_fusion_cv.py models/custom/manifest.parquet /tmp/frames.pkl [/tmp/fisher_logprobs.pkl]

With a third argument, each fold's held-out paths and the two LDAs' calibrated log-probabilities
are saved there for docs/experiments/three_view_fusion.py.
"""
import sys
import pickle, time, numpy as np, pandas as pd
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import f1_score
from vibe_check.training._cv import speaker_folds
from vibe_check.training._models import make_model, row_fit_params
from vibe_check.features import describe_features
m = pd.read_parquet(sys.argv[1])
X0 = m[describe_features().name.tolist()].to_numpy(float); y = pd.factorize(m.emotion, sort=True)[0]; g = m.actor.to_numpy()
aug = m.augmentation.to_numpy(); orig = np.flatnonzero(aug == "none"); copies = np.flatnonzero(aug != "none")
folds = speaker_folds(y[orig], g[orig], n_splits=5, random_state=0)
folds = [(np.concatenate([orig[tr], copies[np.isin(g[copies], g[orig][tr])]]), orig[te]) for tr, te in folds]
FR = pickle.load(open(sys.argv[2], "rb"))
def fisher_all(gmm, sc, FR):
    """Improved Fisher vectors (power- and L2-normalised) of every clip at once.

    Stops 15-20 encoded clip by clip from ``GaussianMixture.predict_proba`` in float64 (65 s for
    9,600 clips). Since stop 21 the posteriors of all frames come from float32 matmuls and each
    clip's statistics from one small matmul (9 s); the formulas are the same, and fold 0's fused
    score moved from 0.694 to 0.696.
    """
    Z = ((np.vstack(FR) - sc.mean_) / sc.scale_).astype(np.float32)
    mu, var, w = gmm.means_.astype(np.float32), gmm.covariances_.astype(np.float32), gmm.weights_
    prec = 1 / var
    ll = -0.5 * ((Z**2) @ prec.T - 2 * Z @ (mu * prec).T + (mu**2 * prec).sum(1)) - 0.5 * np.log(var).sum(1) + np.log(w)
    ll -= ll.max(1, keepdims=True); q = np.exp(ll); q /= q.sum(1, keepdims=True)
    out = np.empty((len(FR), 2 * mu.size), np.float32); sd = np.sqrt(var); s = 0
    for i, T in enumerate(len(f) for f in FR):
        qi, zi = q[s:s + T], Z[s:s + T]; s += T
        n0 = qi.sum(0)[:, None]; s1 = qi.T @ zi; s2 = qi.T @ (zi * zi)
        a = (s1 - n0 * mu) / sd / (T * np.sqrt(w)[:, None])
        b = ((s2 - 2 * mu * s1 + n0 * mu**2) / var - n0) / (T * np.sqrt(2 * w)[:, None])
        v = np.concatenate([a.ravel(), b.ravel()]); v = np.sign(v) * np.sqrt(np.abs(v))
        out[i] = v / (np.linalg.norm(v) + 1e-12)
    return out
res = {}; saved = []
for fi, (tr, te) in enumerate(folds):
    t0 = time.time()
    rng = np.random.default_rng(0)
    tro = tr[aug[tr] == "none"]
    Ftr = np.vstack([FR[i] for i in tro]).astype(np.float64); sc = StandardScaler().fit(Ftr)
    sub = Ftr[rng.choice(len(Ftr), min(60000, len(Ftr)), replace=False)]
    gmm = GaussianMixture(64, covariance_type="diag", random_state=0, max_iter=50, reg_covar=1e-4).fit(sc.transform(sub))
    V = fisher_all(gmm, sc, FR)
    t1 = time.time()
    mb = make_model("lda"); mb.fit(X0[tr], y[tr], **row_fit_params(mb, groups=g[tr], calibrate_on=aug[tr] == "none"))
    mf = make_model("lda"); mf.fit(V[tr], y[tr], **row_fit_params(mf, groups=g[tr], calibrate_on=aug[tr] == "none"))
    lb, lf = np.log(mb.predict_proba(X0[te]) + 1e-12), np.log(mf.predict_proba(V[te]) + 1e-12)
    print(fi, "T", round(mb[-1].temperature_, 2), round(mf[-1].temperature_, 2), f"fv {t1-t0:.0f}s lda {time.time()-t1:.0f}s", flush=True)
    cands = {"base": lb, "fv": lf, "calibrated sum (equal)": lb + lf, "w1/3 raw-temp": (2/3) * lb * mb[-1].temperature_ + (1/3) * lf * mf[-1].temperature_,
             "calibrated arithmetic": np.exp(lb) + np.exp(lf)}
    saved.append((m.path.to_numpy()[te], lb, lf))
    for k, s in cands.items(): res.setdefault(k, []).append(f1_score(y[te], s.argmax(1), average="macro"))
for k, v in res.items(): print(f"{k:25s} {np.mean(v):.3f} ± {np.std(v):.3f} {np.round(v, 3)}")
if len(sys.argv) > 3:
    pickle.dump(saved, open(sys.argv[3], "wb"))
