"""Research script behind docs/experiments.md, "Contours relative to the utterance": not part of the package.

Screens the ``contour`` group before it joined the default feature set, on the frames that
``fisher_fusion_frames.py`` captures from the front end (F0 in semitones from the clip median,
voicing and level over active frames; the same track and level the extractor feeds to
:func:`vibe_check.features.contour_features`, which is invariant to the F0 and level offsets).
Over the trainer's 5 speaker folds, with the default temperature-scaled LDA:

* the contour group as a view of its own, fused with the default LDA (sum of calibrated
  log-probabilities), and appended to the default features in one LDA;
* appended, by contour family (pitch only, pitch and level, everything).

    python docs/experiments/contour_screen.py MANIFEST FRAMES

MANIFEST is the default augmented manifest of the 821 features (feature set v3 without the
contour group) and FRAMES the output of ``fisher_fusion_frames.py`` for it. About 3 minutes.
"""
import pickle
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from vibe_check.features import FeatureConfig, contour_features, describe_features
from vibe_check.training._cv import speaker_folds
from vibe_check.training._models import make_model, row_fit_params

SENTIMENT = {"neutral": 1, "calm": 1, "happy": 2, "surprised": 2, "angry": 0, "fearful": 0, "sad": 0, "disgust": 0}

m = pd.read_parquet(sys.argv[1])
frames = pickle.load(open(sys.argv[2], "rb"))
base_names = describe_features(FeatureConfig(groups=tuple(g for g in FeatureConfig().groups if g != "contour"))).name.tolist()
X0 = m[base_names].to_numpy(float)
contour = [contour_features(55.0 * 2 ** (F[:, 40] / 12.0), F[:, 41] > 0.5, F[:, 42]) for F in frames]
names = np.array(list(contour[0]))
XC = np.array([list(c.values()) for c in contour])
y = pd.factorize(m.emotion, sort=True)[0]
classes = sorted(m.emotion.unique())
to_sentiment = np.array([SENTIMENT[c] for c in classes])
g, aug = m.actor.to_numpy(), m.augmentation.to_numpy()
orig, copies = np.flatnonzero(aug == "none"), np.flatnonzero(aug != "none")
folds = [(np.concatenate([orig[tr], copies[np.isin(g[copies], g[orig][tr])]]), orig[te])
         for tr, te in speaker_folds(y[orig], g[orig], n_splits=5, random_state=0)]


def log_probs(X, tr, te):
    model = make_model("lda")
    model.fit(X[tr], y[tr], **row_fit_params(model, groups=g[tr], calibrate_on=aug[tr] == "none"))
    return np.log(model.predict_proba(X[te]) + 1e-12)


def report(label, scores):
    emo, sent = [], []
    for (tr, te), s in zip(folds, scores):
        p = np.exp(s - s.max(1, keepdims=True))
        emo.append(f1_score(y[te], s.argmax(1), average="macro"))
        sent.append(f1_score(to_sentiment[y[te]], np.stack([p[:, to_sentiment == k].sum(1) for k in range(3)], 1).argmax(1),
                             average="macro"))
    print(f"{label:45s} {np.mean(emo):.3f} ± {np.std(emo):.3f} {np.round(emo, 3)}  sentiment {np.mean(sent):.3f} ± {np.std(sent):.3f}",
          flush=True)


base = [log_probs(X0, tr, te) for tr, te in folds]
view = [log_probs(XC, tr, te) for tr, te in folds]
report(f"default ({X0.shape[1]})", base)
report(f"contour group alone ({XC.shape[1]})", view)
report("default + contour, fused", [b + v for b, v in zip(base, view)])
families = {
    "pitch (f0_rel*)": np.char.startswith(names, "f0_rel"),
    "pitch and level (no voicing runs)": ~np.char.startswith(names, "voicing_run"),
    "all": np.ones(names.size, bool),
}
for label, cols in families.items():
    X = np.hstack([X0, XC[:, cols]])
    report(f"appended, one LDA: {label} (+{cols.sum()})", [log_probs(X, tr, te) for tr, te in folds])
