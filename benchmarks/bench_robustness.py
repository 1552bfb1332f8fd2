#!/usr/bin/env python
"""Robustness of a model to recording conditions, on speakers it has never heard.

For each speaker-independent fold, the model is trained on the clean training clips and tested on
the held-out clips, clean and corrupted: white and babble-like noise at 20 and 10 dB SNR, gain
-20 dB and +10 dB (clipped), telephone band (300-3400 Hz at 8 kHz), 2 s of leading silence.
Prints macro-F1 (mean +- std over folds) per condition and the drop from clean.

    python benchmarks/bench_robustness.py [--data-dir ../shared/data/ravdess16k] [--model ensemble]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import soxr
from joblib import Parallel, delayed
from scipy.signal import butter, sosfiltfilt

from _corpus import add_corpus_arguments, corpus_manifest
from vibe_check.audio import load_audio
from vibe_check.features import FeatureExtractor
from vibe_check.training import classification_metrics, make_model, speaker_folds

SR = 16000


def _active_power(y: np.ndarray) -> float:
    frames = y[: y.size // 160 * 160].reshape(-1, 160)
    power = (frames**2).mean(axis=1)
    loud = power[power >= np.percentile(power, 50)]  # speech frames, not the silence around them
    return float(loud.mean()) + 1e-12


def add_noise(y, noise, snr_db):
    noise = np.resize(noise, y.size)
    scale = np.sqrt(_active_power(y) / (_active_power(noise) * 10 ** (snr_db / 10)))
    return np.clip(y + scale * noise, -1, 1).astype(np.float32)


def telephone(y):
    sos = butter(6, [300, 3400], btype="bandpass", fs=SR, output="sos")
    band = sosfiltfilt(sos, y).astype(np.float32)
    return band, 8000


def corrupt(name: str, y: np.ndarray, rng: np.random.Generator, babble: np.ndarray) -> tuple[np.ndarray, int]:
    if name == "clean":
        return y, SR
    if name.startswith("white"):
        return add_noise(y, rng.standard_normal(y.size).astype(np.float32), float(name.split()[1])), SR
    if name.startswith("babble"):
        start = rng.integers(0, babble.size - y.size)
        return add_noise(y, babble[start : start + y.size], float(name.split()[1])), SR
    if name == "gain -20 dB":
        return (y * 0.1).astype(np.float32), SR
    if name == "gain +10 dB (clipped)":
        return np.clip(y * 10 ** 0.5, -1, 1).astype(np.float32), SR
    if name == "telephone 300-3400 Hz, 8 kHz":
        band, _ = telephone(y)
        return soxr.resample(band, SR, 8000), 8000
    if name == "2 s leading silence":
        return np.concatenate([np.zeros(2 * SR, np.float32), y]), SR
    raise ValueError(name)


CONDITIONS = ["clean", "white 20", "white 10", "babble 20", "babble 10", "gain -20 dB", "gain +10 dB (clipped)",
              "telephone 300-3400 Hz, 8 kHz", "2 s leading silence"]


def _features(fx, path, seed, babble):
    rng = np.random.default_rng(seed)
    y = load_audio(path)
    return [fx.extract(*corrupt(c, y, rng, babble)) for c in CONDITIONS]


def make_babble(paths, n_talkers=6, seconds=30):
    """Babble-like noise: several other talkers summed (from the training side only)."""
    rng = np.random.default_rng(0)
    out = np.zeros(seconds * SR, np.float32)
    for p in rng.choice(paths, size=n_talkers * 8, replace=False):
        y = load_audio(p)
        start = rng.integers(0, out.size - y.size)
        out[start : start + y.size] += y / (np.abs(y).max() + 1e-9)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(ap)
    ap.add_argument("--model", default="ensemble", help="model name as in vibe-check train --models")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    names = manifest.attrs["feature_names"]
    classes = np.array(sorted(set(manifest["emotion"])), dtype=object)
    y = np.searchsorted(classes, manifest["emotion"].to_numpy(dtype=object))
    X = manifest[names].to_numpy()
    folds = speaker_folds(y, manifest["actor"].to_numpy(), n_splits=args.folds, random_state=0)
    fx = FeatureExtractor()
    paths = manifest["path"].tolist()
    scores = {c: [] for c in CONDITIONS}
    for fold, (train, test) in enumerate(folds):
        babble = make_babble([paths[i] for i in train])
        feats = Parallel(n_jobs=args.n_jobs)(delayed(_features)(fx, paths[i], int(i), babble) for i in test)
        model = make_model(args.model).fit(X[train], y[train])  # clean training clips only
        for j, cond in enumerate(CONDITIONS):
            Xc = np.vstack([f[j] for f in feats])
            scores[cond].append(classification_metrics(y[test], model.predict_proba(Xc), classes)["macro_f1"])
        print(f"fold {fold + 1}/{len(folds)} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    clean = np.mean(scores["clean"])
    print(f"\nmodel {args.model}, {len(manifest)} clips, {len(folds)} speaker-independent folds")
    print(f"{'condition':<30} {'macro-F1':>15} {'drop':>7}")
    for cond in CONDITIONS:
        s = np.array(scores[cond])
        print(f"{cond:<30} {s.mean():>8.3f} ± {s.std():.3f} {clean - s.mean():>7.3f}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
