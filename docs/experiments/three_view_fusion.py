"""Research script behind docs/experiments.md, "Three views fused (stop 20)": not part of the package.

Adds the calibrated log-probabilities of temperature-scaled LDAs on the same held-out clips of the
trainer's 5 speaker folds, with equal weights (nothing is tuned): the default model on the 821
features, one on 64-component Fisher vectors of the frames, and each ComParE 2016 view that
compare_fusion.py saved (the whole set, and each descriptor family). Run the two scripts that save
them first:

    python docs/experiments/fisher_fusion_cv.py MANIFEST FRAMES /tmp/fisher_logprobs.pkl
    python docs/experiments/compare_fusion.py ../shared/data/ravdess16k fused families
    python docs/experiments/three_view_fusion.py /tmp/fisher_logprobs.pkl data/.feature_cache/compare_logprobs.pkl

Prints emotion and sentiment macro-F1 per fold for each combination.
"""

import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from vibe_check.data import SENTIMENT_OF_EMOTION, parse_filename

EMOTIONS = sorted(SENTIMENT_OF_EMOTION)
SENTIMENTS = sorted(set(SENTIMENT_OF_EMOTION.values()))
sentiment_of = np.array([SENTIMENTS.index(SENTIMENT_OF_EMOTION[e]) for e in EMOTIONS])

fisher = pickle.load(open(sys.argv[1], "rb"))    # per fold: (paths, default log-probs, Fisher log-probs)
compare = pickle.load(open(sys.argv[2], "rb"))   # view -> per fold: (paths, log-probs)
scores: dict[str, list[tuple[float, float]]] = {}
for fold, (paths, default, fv) in enumerate(fisher):
    truth = np.array([EMOTIONS.index(parse_filename(Path(p)).emotion) for p in paths])
    combos = {"default": default, "default + Fisher": default + fv}
    for view, folds in compare.items():
        position = {p: i for i, p in enumerate(folds[fold][0])}
        lp = folds[fold][1][[position[p] for p in paths]]  # the same clips, in the Fisher script's order
        combos[f"default + {view}"] = default + lp
        combos[f"default + Fisher + {view}"] = default + fv + lp
    for name, log_proba in combos.items():
        p = np.exp(log_proba - log_proba.max(axis=1, keepdims=True))
        grouped = np.stack([p[:, sentiment_of == k].sum(axis=1) for k in range(len(SENTIMENTS))], axis=1)
        scores.setdefault(name, []).append((f1_score(truth, p.argmax(axis=1), average="macro"),
                                            f1_score(sentiment_of[truth], grouped.argmax(axis=1), average="macro")))
for name, rows in scores.items():
    e, s = np.array(rows).T
    print(f"{name:50s} emotion {e.mean():.3f} ± {e.std():.3f} {np.round(e, 3)} | sentiment {s.mean():.3f} ± {s.std():.3f}")
