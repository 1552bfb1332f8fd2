"""Research script behind docs/experiments.md, "A spectral floor against other voices": not part of the package.

For each feature definition, builds (or reuses from the cache) the default augmented manifest,
cross-validates the default LDA on the trainer's 5 speaker folds and scores each fold's model on
its held-out clips clean, under 20 dB white noise and under 20 dB babble (the robustness
benchmark's corruptions, drawn for this list of conditions). With ``--groups`` it also swaps one
feature group at a time from the floored definition into the default one (training copies and
held-out clips alike), to see which groups carry the gain and the cost.

    python docs/experiments/spectral_floor.py 40 35 30 25 20      # floors in dB; 'none' for the default
    python docs/experiments/spectral_floor.py 25 --groups         # per-group swap at a 25 dB floor

Run from the project root with ../shared beside it. About 4 minutes per floor the first time
(the manifest, then the corrupted clips), 40 s per group swap.
"""
import argparse

import numpy as np
from sklearn.metrics import f1_score

from vibe_check.training._folds import FoldModels
from vibe_check.features import FeatureConfig, FeatureExtractor, build_manifest
from vibe_check.features._manifest import feature_columns
from vibe_check.training import DEFAULT_AUGMENTATIONS, EmotionTrainer
from vibe_check.training._robustness import _fold_features

DATA, CACHE = "../shared/data/ravdess16k", "data/.feature_cache"
CONDITIONS = ["clean", "white 20 dB", "babble 20 dB"]
_FEATURES = {}  # (config, fold) -> held-out clips' features under CONDITIONS


def manifest(cfg):
    return build_manifest(DATA, None, config=cfg, n_jobs=2, cache_dir=CACHE, progress=False, augment=DEFAULT_AUGMENTATIONS)


def score(m, take, base_cfg, cfg):
    """Macro-F1 per condition and fold, with the columns ``take`` from ``cfg`` and the rest from ``base_cfg``."""
    trainer = EmotionTrainer(models=["lda"], n_jobs=2, progress=False).fit(m)
    folds = FoldModels(trainer, max_folds=None)
    cols = feature_columns(m)
    idx = np.array([cols.index(c) for c in take], int)
    paths = m["path"].astype(str).tolist()
    scores = {c: [] for c in CONDITIONS}
    for fold in folds.folds:
        train, test = trainer.folds_[fold]
        originals = train[trainer._originals_train[train]]
        for c in {base_cfg, cfg}:
            if (c, fold) not in _FEATURES:
                _FEATURES[c, fold] = _fold_features(FeatureExtractor(c), paths, originals, test, CONDITIONS, n_jobs=2, cache_dir=CACHE)
        feats = _FEATURES[base_cfg, fold].copy()
        feats[:, :, idx] = _FEATURES[cfg, fold][:, :, idx]
        model = folds.model("lda", fold)
        for j, c in enumerate(CONDITIONS):
            pred = np.asarray(model.classes_)[model.predict_proba(feats[j]).argmax(1)]
            scores[c].append(f1_score(trainer._y_train[test], pred, average="macro"))
    return scores


def line(label, scores):
    clean = np.mean(scores["clean"])
    return (f"{label:>24}  " + "  ".join(f"{c} {np.mean(s):.3f} ± {np.std(s):.3f}" for c, s in scores.items())
            + f"  babble drop {clean - np.mean(scores['babble 20 dB']):.3f}  folds " + " ".join(f"{v:.3f}" for v in scores["clean"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("floors", nargs="+", help="floor depths in dB, or 'none'")
    ap.add_argument("--groups", action="store_true", help="swap one feature group at a time into the default")
    args = ap.parse_args()
    base_cfg = FeatureConfig()
    base = manifest(base_cfg)
    cols = feature_columns(base)
    for floor in args.floors:
        cfg = FeatureConfig(spectral_floor_db=None if floor == "none" else float(floor))
        floored = manifest(cfg)
        assert (floored["path"].values == base["path"].values).all() and (floored["augmentation"].values == base["augmentation"].values).all()
        print(line(f"floor {floor}", score(floored, cols, base_cfg, cfg)), flush=True)
        if args.groups and cfg != base_cfg:
            groups = FeatureExtractor(base_cfg).feature_groups
            for group in base_cfg.groups:
                take = [c for c in cols if groups[c] == group]
                mixed = base.copy()
                mixed[take] = floored[take].to_numpy()
                print(line(f"only {group} floored", score(mixed, take, base_cfg, cfg)), flush=True)


if __name__ == "__main__":
    main()
