"""Research script behind docs/experiments.md, "ComParE 2016 next to the default features (stop 20)".

Not part of the package. Does the field's largest classical feature set hold information that the
821 default features lack? openSMILE's ComParE 2016 functionals (6,373) are extracted for every
row of the default augmented manifest (originals and copies, each trimmed as the front end trims),
then scored on the trainer's 5 speaker folds with the default temperature-scaled LDA:

* alone;
* fused: the sum of the default LDA's and the ComParE LDA's calibrated log-probabilities;
* by low-level descriptor family (RASTA auditory bands, MFCC, spectral and energy, voice), alone
  and fused, and the voice family appended to the 821 features in one LDA.

    python docs/experiments/compare_fusion.py ../shared/data/ravdess16k            # everything
    python docs/experiments/compare_fusion.py ../shared/data/ravdess16k families   # one screen

The "fused" and "families" screens also save each fold's held-out paths and the calibrated
log-probabilities of their LDAs (data/.feature_cache/compare_logprobs.pkl, a dict by view) for
three_view_fusion.py.

Extraction takes about 9 minutes on 2 cores (cached in data/.feature_cache/compare_rows.npy);
the full fusion about 10 more (the 6,373-feature LDA: about 115 s per fold), the families 3.
Needs ``pip install opensmile``.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import numpy as np
import opensmile
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import f1_score

from vibe_check.audio import load_audio, trim_silence
from vibe_check.data import SENTIMENT_OF_EMOTION
from vibe_check.data._augment import AugmentedClip
from vibe_check.features import FeatureConfig, build_manifest, feature_columns
from vibe_check.training import DEFAULT_AUGMENTATIONS
from vibe_check.training._cv import speaker_folds
from vibe_check.training._models import make_model, row_fit_params

CACHE = Path("data/.feature_cache/compare_rows.npy")
LOGPROBS = Path("data/.feature_cache/compare_logprobs.pkl")
m = build_manifest(sys.argv[1], None, config=FeatureConfig(), n_jobs=2, cache_dir="data/.feature_cache",
                   progress=False, augment=DEFAULT_AUGMENTATIONS)
SCREENS = sys.argv[2:] or ["fused", "families", "appended"]
X = m[feature_columns(m)].to_numpy(float)
y, CLASSES = pd.factorize(m.emotion, sort=True)
actor, aug = m.actor.to_numpy(), m.augmentation.to_numpy()
orig, copies = np.flatnonzero(aug == "none"), np.flatnonzero(aug != "none")
FOLDS = [(np.concatenate([orig[tr], copies[np.isin(actor[copies], actor[orig][tr])]]), orig[te])
         for tr, te in speaker_folds(y[orig], actor[orig], n_splits=5, random_state=0)]
SENTIMENTS = sorted(set(SENTIMENT_OF_EMOTION.values()))
sentiment_of = np.array([SENTIMENTS.index(SENTIMENT_OF_EMOTION[c]) for c in CLASSES])


def _compare_rows(chunk, by_actor):
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016, feature_level=opensmile.FeatureLevel.Functionals)
    out = []
    for path, kind, sha, speaker in chunk:
        if kind == "none":
            signal = load_audio(path, target_sr=16000, max_duration=None)
        else:  # the manifest's own copy: same seed, same babble sources
            others = tuple(o for o in by_actor[speaker] if o != path)
            signal, _ = AugmentedClip(path, kind, AugmentedClip.cache_key(sha, kind), others).load(16000)
        signal = trim_silence(np.asarray(signal, np.float32), 16000, top_db=35.0, hop_length=160)
        out.append(smile.process_signal(signal, 16000).to_numpy()[0])
    return np.array(out)


def compare_features() -> tuple[np.ndarray, pd.Series]:
    names = pd.Series(opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016).feature_names)
    if not CACHE.exists():
        by_actor = m.loc[m.augmentation == "none"].groupby("actor")["path"].apply(list).to_dict()
        items = list(m[["path", "augmentation", "sha256", "actor"]].itertuples(index=False, name=None))
        parts = Parallel(n_jobs=2, verbose=5)(delayed(_compare_rows)(items[i:i + 100], by_actor) for i in range(0, len(items), 100))
        np.save(CACHE, np.vstack(parts).astype(np.float32))
    return np.nan_to_num(np.load(CACHE).astype(float)), names


def calibrated_lda(Xa, train, test):
    """Log-probabilities of the default model (equal priors, temperature-scaled) fitted on ``train``."""
    model = make_model("lda")
    model.fit(Xa[train], y[train], **row_fit_params(model, groups=actor[train], calibrate_on=aug[train] == "none"))
    return np.log(np.clip(model.predict_proba(Xa[test]), 1e-12, None))


def report(name, log_probas):
    """Emotion macro-F1 per fold, and sentiment read off the same probabilities."""
    emotion, sentiment = [], []
    for (_, test), lp in zip(FOLDS, log_probas):
        p = np.exp(lp - lp.max(axis=1, keepdims=True))
        emotion.append(f1_score(y[test], p.argmax(axis=1), average="macro"))
        grouped = np.stack([p[:, sentiment_of == k].sum(axis=1) for k in range(len(SENTIMENTS))], axis=1)
        sentiment.append(f1_score(sentiment_of[y[test]], grouped.argmax(axis=1), average="macro"))
    print(f"{name}: {np.mean(emotion):.3f} ± {np.std(emotion):.3f} {np.round(emotion, 3)} | "
          f"sentiment {np.mean(sentiment):.3f} ± {np.std(sentiment):.3f}", flush=True)


def scored(Xa):
    t0 = time.time()
    out = [calibrated_lda(Xa, train, test) for train, test in FOLDS]
    print(f"  ({time.time() - t0:.0f} s)", flush=True)
    return out


def save_view(name, log_probas):
    """Add one view's held-out log-probabilities to LOGPROBS (per fold: the test paths and their rows)."""
    views = pickle.loads(LOGPROBS.read_bytes()) if LOGPROBS.exists() else {}
    views[name] = [(m.path.to_numpy()[test], lp) for (_, test), lp in zip(FOLDS, log_probas)]
    LOGPROBS.write_bytes(pickle.dumps(views))


def fused(a, b):
    return [p + q for p, q in zip(a, b)]


C, names = compare_features()
varies = C[orig].std(axis=0) > 0
family = names.str.replace(r"_sma(_de)?(\[\d+\])?_.*", "", regex=True).to_numpy()
voice = np.isin(family, ["F0final", "voicingFinalUnclipped", "jitterLocal", "jitterDDP", "shimmerLocal", "logHNR"])
FAMILIES = {"RASTA auditory bands": family == "audSpec_Rfilt", "MFCC": family == "mfcc", "voice": voice,
            "spectral and energy": ~voice & ~np.isin(family, ["audSpec_Rfilt", "mfcc"])}

base = scored(X)
report("default LDA", base)
if "fused" in SCREENS:
    whole = scored(C[:, varies])
    save_view("ComParE", whole)
    report("ComParE LDA alone", whole)
    report("fused with the default LDA", fused(base, whole))
if "families" in SCREENS:
    for label, mask in FAMILIES.items():
        part = scored(C[:, mask & varies])
        save_view(f"ComParE {label}", part)
        report(f"{label} ({int((mask & varies).sum())}) alone", part)
        report(f"{label} fused", fused(base, part))
if "appended" in SCREENS:
    is_delta = names.str.contains("_sma_de").to_numpy()
    for label, mask in {"voice": voice, "voice without deltas": voice & ~is_delta}.items():
        report(f"821 + {label} ({int((mask & varies).sum())}), one LDA", scored(np.hstack([X, C[:, mask & varies]])))
