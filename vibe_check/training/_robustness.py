"""Robustness to recording conditions: the same held-out speakers, their clips corrupted.

For every speaker-independent fold of a fitted trainer, each model is refit on the fold's
training side (exactly as in cross-validation, augmented copies included when the trainer had
them) and scored on the held-out speakers' clips, clean and corrupted: white and babble noise at
20 and 10 dB SNR, gain -20 dB and +10 dB (clipped), a telephone channel and 2 s of leading
silence. The babble is made of training-side speakers, so no held-out voice is ever in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from .._atomic import atomic_path
from ..audio import load_audio
from ..data import apply_gain, babble_noise, leading_silence, mix_at_snr, telephone_band, white_noise
from ..exceptions import VibeCheckError
from ..features import FeatureConfig, FeatureExtractor
from ..features._parallel import warm_up
from ._folds import FoldModels
from ._metrics import classification_metrics
from ._speaker import center_by_group
from ._train import EmotionTrainer


__all__ = ["CONDITIONS", "TARGET_DROP", "corrupt", "evaluate_robustness", "format_robustness"]

#: Condition name -> description, in table order.
CONDITIONS: dict[str, str] = {
    "clean": "the held-out clips as recorded",
    "white 20 dB": "white noise at 20 dB SNR (active speech level)",
    "white 10 dB": "white noise at 10 dB SNR",
    "babble 20 dB": "six training-side talkers at 20 dB SNR",
    "babble 10 dB": "six training-side talkers at 10 dB SNR",
    "gain -20 dB": "20 dB quieter",
    "gain +10 dB (clipped)": "10 dB louder, clipped to full scale",
    "telephone": "telephone band 300-3400 Hz, resampled to 8 kHz",
    "2 s leading silence": "2 s of digital silence before the speech",
    # Last, so that the conditions above keep their random draws (seeded by position).
    "white 40 dB": "white noise at 40 dB SNR: a quiet room's noise floor in place of the studio's silence",
}
#: The largest acceptable macro-F1 drop from clean, where there is a target.
TARGET_DROP: dict[str, float] = {
    "white 20 dB": 0.06, "babble 20 dB": 0.06,
    "gain -20 dB": 0.03, "gain +10 dB (clipped)": 0.03, "2 s leading silence": 0.03,
}
log = logging.getLogger(__name__)

_BABBLE_POOL = 48  # training-side clips a fold's babble is drawn from
_CACHE_VERSION = 1


def corrupt(condition: str, y: np.ndarray, sr: int, *, rng: np.random.Generator,
            babble_pool: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, int]:
    """``(y, sr)`` under one of :data:`CONDITIONS`.

    Examples
    --------
    >>> y = np.sin(np.arange(32000) / 5).astype(np.float32) * 0.3
    >>> phone, sr = corrupt("telephone", y, 16000, rng=np.random.default_rng(0))
    >>> sr, phone.size
    (8000, 16000)
    """
    if condition == "clean":
        return y, sr
    kind, _, level = condition.partition(" ")
    if kind == "white":
        return mix_at_snr(y, white_noise(y.size, rng), float(level.split()[0])), sr
    if kind == "babble":
        return mix_at_snr(y, babble_noise(babble_pool, y.size, rng, n_talkers=6), float(level.split()[0])), sr
    if condition == "gain -20 dB":
        return apply_gain(y, -20.0), sr
    if condition == "gain +10 dB (clipped)":
        return apply_gain(y, 10.0, clip=True), sr
    if condition == "telephone":
        return telephone_band(y, sr)
    if condition == "2 s leading silence":
        return leading_silence(y, sr, 2.0), sr
    raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")


def _clip_features(extractor: FeatureExtractor, path: str, seed: int, babble_pool, conditions) -> np.ndarray:
    """One row per condition; NaN where the corrupted clip could not be analysed."""
    sr = extractor.config.sample_rate
    y = load_audio(path, target_sr=sr, max_duration=None)
    out = np.full((len(conditions), len(extractor.feature_names)), np.nan)
    for i, condition in enumerate(conditions):
        rng = np.random.default_rng([seed, i])
        try:
            out[i] = extractor.extract(*corrupt(condition, y, sr, rng=rng, babble_pool=babble_pool))
        except VibeCheckError as exc:  # the condition left nothing to analyse: scored as wrong
            log.info("%s under %s: %s", path, condition, exc)
        except Exception as exc:  # noqa: BLE001 -- a bug, not the condition: said loudly, the run goes on
            log.warning("%s under %s failed unexpectedly: %s: %s", path, condition, type(exc).__name__, exc)
    return out


def _fold_features(extractor, paths, train, test, conditions, *, n_jobs, cache_dir) -> np.ndarray:
    """Features of the held-out clips of one fold under every condition, shape (conditions, clips, features)."""
    key = hashlib.sha256(json.dumps([_CACHE_VERSION, extractor.hash, list(conditions), [paths[i] for i in test],
                                     sorted(paths[i] for i in train)]).encode()).hexdigest()[:20]
    cache = Path(cache_dir) / extractor.hash / f"robustness-{key}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        return np.load(cache)
    rng = np.random.default_rng(0)
    pool_paths = rng.choice([paths[i] for i in train], size=min(_BABBLE_POOL, len(train)), replace=False)
    pool = [load_audio(p, target_sr=extractor.config.sample_rate, max_duration=None) for p in pool_paths]
    if n_jobs != 1:
        warm_up(extractor)
    rows = Parallel(n_jobs=n_jobs)(delayed(_clip_features)(extractor, paths[i], int(i), pool, conditions) for i in test)
    feats = np.stack(rows, axis=1)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            np.save(tmp, feats)
    return feats


def evaluate_robustness(trainer: EmotionTrainer, manifest: pd.DataFrame, models: Sequence[str] | None = None, *,
                        conditions: Sequence[str] = tuple(CONDITIONS), n_jobs: int = 1,
                        cache_dir: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """Macro-F1 of each model on held-out speakers, per recording condition.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
        Its folds and models are used; ``manifest`` must be the one it was fitted on. With
        ``speaker_normalization``, each held-out speaker's clips are centred on their own mean
        under each condition, as in its cross-validation.
    manifest : DataFrame
        Gives the audio path of every row.
    models : sequence of str, optional
        Default: the trainer's chosen model.
    conditions : sequence of str
        Keys of :data:`CONDITIONS`.
    n_jobs : int
        Parallel feature extraction.
    cache_dir : path, optional
        Keep the corrupted clips' features here (they depend on the folds, not on the models).

    Returns
    -------
    DataFrame
        One row per (model, condition): ``macro_f1_mean``, ``macro_f1_std`` (over folds),
        ``drop`` (from clean), ``target_drop`` (NaN where none), ``met`` (whether the drop is
        within the target; None where there is none) and ``failed`` (clips the condition left
        unusable; scored as wrong).

    Examples
    --------
    >>> table = evaluate_robustness(trainer, manifest, n_jobs=2)  # doctest: +SKIP
    >>> print(format_robustness(table))  # doctest: +SKIP
    """

    models = list(models or [trainer.best_model_])
    extractor = FeatureExtractor(FeatureConfig.from_dict(trainer.feature_config_))
    paths = manifest["path"].astype(str).tolist()
    speakers = manifest["actor"].to_numpy()
    y = trainer._y_train
    folds = FoldModels(trainer, max_folds=None)
    scores = {(m, c): [] for m in models for c in conditions}
    failed = dict.fromkeys(conditions, 0)
    for fold in tqdm(folds.folds, desc="robustness", unit="fold", disable=not progress):
        train, test = trainer.folds_[fold]
        originals = train[trainer._originals_train[train]]
        feats = _fold_features(extractor, paths, originals, test, conditions, n_jobs=n_jobs, cache_dir=cache_dir)
        usable = np.isfinite(feats).all(axis=2)  # (conditions, clips)
        if getattr(trainer, "speaker_normalization", False):
            # As in cross-validation: each held-out speaker centred on their own clips, here the
            # ones recorded under the same condition (as their references would be).
            for j, ok in enumerate(usable):
                feats[j][ok] = center_by_group(feats[j][ok], speakers[test][ok])
        for condition, ok in zip(conditions, usable):
            failed[condition] += int((~ok).sum())
        for m in models:
            model = folds.model(m, fold)
            for j, condition in enumerate(conditions):
                ok = usable[j]
                proba = np.zeros((test.size, len(trainer.classes_)))
                if ok.any():
                    proba[np.flatnonzero(ok)[:, None], np.asarray(model.classes_, int)[None, :]] = model.predict_proba(feats[j][ok])
                proba[~ok, (y[test][~ok] + 1) % len(trainer.classes_)] = 1.0  # unusable clip: counted wrong
                scores[(m, condition)].append(classification_metrics(y[test], proba, trainer.classes_)["macro_f1"])
    rows = []
    for m in models:
        clean = float(np.mean(scores[(m, "clean")])) if "clean" in conditions else np.nan
        for c in conditions:
            s = np.asarray(scores[(m, c)])
            drop, target = clean - float(s.mean()), TARGET_DROP.get(c)
            rows.append({"model": m, "condition": c, "macro_f1_mean": float(s.mean()), "macro_f1_std": float(s.std()),
                         "drop": drop, "target_drop": np.nan if target is None else target,
                         "met": None if target is None else bool(drop <= target), "failed": failed[c]})
    return pd.DataFrame(rows)


def format_robustness(table: pd.DataFrame) -> str:
    """The robustness table as aligned text, one block per model, with target verdicts."""
    lines = []
    for model, part in table.groupby("model", sort=False):
        lines.append(f"model {model}")
        lines.append(f"  {'condition':<24} {'macro-F1':>15} {'drop':>7} {'target':>8}")
        for _, r in part.iterrows():
            target = "" if r["met"] is None else f"<= {r['target_drop']:.2f} {'ok' if r['met'] else 'MISSED'}"
            note = f"  ({r['failed']} clips unusable)" if r["failed"] else ""
            lines.append(f"  {r['condition']:<24} {r['macro_f1_mean']:>8.3f} ± {r['macro_f1_std']:.3f} {r['drop']:>7.3f} {target}{note}")
    return "\n".join(lines)
