"""Research script behind docs/experiments.md, "Two models routed by the clip's own SNR": not part of the package.

The default LDA (A) and an LDA on spectrally floored features (B), each the product's own LDA
pipeline fit on the trainer's 5 speaker folds as the trainer fits it (nuisance weight chosen on
inner folds). Every
held-out clip, clean or corrupted as in the robustness benchmark, goes to B when its own SNR
estimate (:func:`vibe_check.features.estimate_snr`, computed on the clip as it arrives) is below
a threshold, and to A otherwise. Corrupted clips' features come from the benchmark's cache
(computed here with its seeds and babble pools when missing: about 4 minutes per definition).

    python docs/experiments/noise_routing.py DEFAULT_MANIFEST FLOORED_MANIFEST --floor-db 30 \\
        [--thresholds 20,25,30,35,40,45] [--weights-on originals|copies] [--train-kinds none,noise,...]

The manifests are the default augmented manifest and the same clips with ``--spectral-floor-db``
(``vibe-check features ... --spectral-floor-db 30``), row for row. ``--weights-on copies``
chooses B's nuisance weight on the inner folds' copies as well as their originals (B only sees
noisy clips); ``--train-kinds`` keeps only those augmentation kinds in B's training rows.
"""
import argparse

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from vibe_check.features import FeatureConfig, FeatureExtractor, estimate_snr
from vibe_check.training._cv import fit_clone, speaker_folds
from vibe_check.training._models import make_model
from vibe_check.training._robustness import CONDITIONS, _fold_features

parser = argparse.ArgumentParser()
parser.add_argument("default_manifest")
parser.add_argument("floored_manifest")
parser.add_argument("--floor-db", type=float, required=True)
parser.add_argument("--thresholds", default="20,25,30,35,40,45")
parser.add_argument("--weights-on", choices=["originals", "copies"], default="originals")
parser.add_argument("--train-kinds", default=None, help="augmentation kinds in B's training rows (default: all)")
parser.add_argument("--cache-dir", default="data/.feature_cache")
args = parser.parse_args()

CONDS = list(CONDITIONS)
fx_a, fx_b = FeatureExtractor(), FeatureExtractor(FeatureConfig(spectral_floor_db=args.floor_db))
m_a, m_b = pd.read_parquet(args.default_manifest), pd.read_parquet(args.floored_manifest)
if not ((m_a.sha256.values == m_b.sha256.values).all() and (m_a.augmentation.values == m_b.augmentation.values).all()):
    raise SystemExit("the two manifests must hold the same rows in the same order")
X_a, X_b = m_a[fx_a.feature_names].to_numpy(float), m_b[fx_b.feature_names].to_numpy(float)
y = pd.factorize(m_a.emotion, sort=True)[0]
actor, kind = m_a.actor.to_numpy(), m_a.augmentation.to_numpy()
recording = pd.factorize(m_a.sha256)[0]
paths = m_a.path.astype(str).tolist()
orig, copies = np.flatnonzero(kind == "none"), np.flatnonzero(kind != "none")


class _SNROnly:
    """Stands in for an extractor in the benchmark's fold loop: one column, the clip's SNR estimate."""

    def __init__(self, config):
        self.config, self.feature_names, self.hash = config, ["snr_db"], f"snr-{config.hash}"

    def extract(self, y, sr):
        return np.array([estimate_snr(y, sr, config=self.config)])


def fit_lda(X, train, weights_on):
    """The product's LDA pipeline, fit as the trainer fits it (nuisance weight and temperature on
    inner speaker folds; held-out originals only unless ``weights_on == "copies"``)."""
    model = fit_clone(make_model("lda"), X, y, train, groups=actor, recordings=recording,
                      calibrate_on=None if weights_on == "copies" else kind == "none")
    return (lambda F: model.predict_log_proba(np.nan_to_num(F))), model[-1].nuisance_weight_


thresholds = [float(t) for t in args.thresholds.split(",")]
scores = {key: {c: [] for c in CONDS} for key in ["A", "B", *thresholds]}
snr_by_condition = {c: [] for c in CONDS}
for tr, te in speaker_folds(y[orig], actor[orig], n_splits=5, random_state=0):
    train = np.concatenate([orig[tr], copies[np.isin(actor[copies], actor[orig][tr])]])
    train_b = train if args.train_kinds is None else train[np.isin(kind[train], args.train_kinds.split(","))]
    test = orig[te]
    kw = dict(n_jobs=2, cache_dir=args.cache_dir)
    F_a = _fold_features(fx_a, paths, orig[tr], test, CONDS, **kw)
    F_b = _fold_features(fx_b, paths, orig[tr], test, CONDS, **kw)
    snr = _fold_features(_SNROnly(fx_a.config), paths, orig[tr], test, CONDS, **kw)[..., 0]
    model_a, w_a = fit_lda(X_a, train, "originals")
    model_b, w_b = fit_lda(X_b, train_b, args.weights_on)
    for j, c in enumerate(CONDS):
        z_a, z_b = model_a(F_a[j]), model_b(F_b[j])
        usable = np.isfinite(F_a[j]).all(1) & np.isfinite(F_b[j]).all(1)
        f1 = lambda z: f1_score(y[test], np.where(usable, z.argmax(1), (y[test] + 1) % 8), average="macro")
        scores["A"][c].append(f1(z_a))
        scores["B"][c].append(f1(z_b))
        snr_by_condition[c].append(snr[j])
        for t in thresholds:
            scores[t][c].append(f1(np.where((snr[j] < t)[:, None], z_b, z_a)))
    print(f"fold {len(scores['A']['clean'])}: nuisance weight A {w_a}, B {w_b}", flush=True)

print("\nSNR estimate of the held-out clips (dB): 1st, 10th, 50th, 90th, 99th percentile")
for c in CONDS:
    print(f"  {c:22s}", np.round(np.percentile(np.concatenate(snr_by_condition[c]), [1, 10, 50, 90, 99]), 1))
print(f"\n{'model':>8s} " + " ".join(f"{c[:13]:>13s}" for c in CONDS))
for key, by_condition in scores.items():
    name = key if isinstance(key, str) else f"<{key:g} dB"
    clean = np.mean(by_condition["clean"])
    print(f"{name:>8s} " + " ".join(f"{np.mean(by_condition[c]):13.3f}" for c in CONDS),
          f"  babble 20 dB drop {clean - np.mean(by_condition['babble 20 dB']):.3f}, clean ± {np.std(by_condition['clean']):.3f}")
