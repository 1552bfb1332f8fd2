"""Pitch and loudness contours relative to the utterance (the ``contour`` group).

The prosody and energy groups summarise F0 and level with a few statistics (mean, spread,
p10/p50/p90, a slope per second). Emotion lives as much in the *shape* of the melody and the
loudness: how far the highest and lowest 1-5 % of the pitch go from the speaker's median, how
peaked the contour is, whether it arches over the sentence, how fast it moves. This group applies
ComParE-style functionals (many percentiles, shape and dynamics) to six contours, each expressed
relative to the utterance itself (F0 in semitones from the clip's median voiced pitch, level in dB
from its mean active level), so they describe the speaker's melody, not their voice's register or
the recording's gain. Loudness is summarised over voiced and unvoiced frames separately, as in
ComParE.

They reuse the front end's pitch track and level (about 3 ms per clip); what they bring on
RAVDESS is in docs/experiments.md, "Contours relative to the utterance".
"""

from __future__ import annotations

import numpy as np

from ._functionals import _percentiles, runs, summarize

__all__ = ["CONTOUR_DESCRIPTORS", "CONTOUR_FUNCTIONALS", "contour_features", "describe_contour"]

#: Contour name -> what it is (all over active frames: within 30 dB of the loud level).
CONTOUR_DESCRIPTORS: dict[str, str] = {
    "f0_rel": "F0 in semitones relative to the clip's median voiced F0 (voiced frames)",
    "f0_rel_delta": "change of F0 between successive voiced frames (semitones)",
    "level_rel": "frame level in dB relative to the clip's mean active level",
    "level_rel_delta": "change of level between successive frames (dB)",
    "level_rel_voiced": "frame level in dB relative to the clip's mean active level, voiced frames",
    "level_rel_unvoiced": "frame level in dB relative to the clip's mean active level, unvoiced frames",
}

_PERCENTILES = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0)

#: Functional -> description, in output order.
CONTOUR_FUNCTIONALS: dict[str, str] = {
    **{f"p{int(q):02d}": f"{int(q)}th percentile" for q in _PERCENTILES},
    "mean": "mean",
    "std": "standard deviation",
    "skew": "skewness",
    "kurt": "excess kurtosis",
    "slope": "slope of a straight line over the utterance (change from its middle to its end)",
    "curvature": "arch over the utterance (second Legendre coefficient: negative when it rises then falls)",
    "residual_std": "standard deviation around the straight-line fit",
    "iqr": "interquartile range",
    "upper_fraction": "fraction of frames in the top quarter of the 1st-99th percentile range",
    "step_mean": "mean absolute change between successive frames",
    "step_std": "standard deviation of the change between successive frames",
}

#: Functionals left out because the contour's definition fixes them (the median F0 is the
#: reference, and so is the mean level).
_CONSTANT = {("f0_rel", "p50"), ("level_rel", "mean")}

_VOICING_DESCRIPTIONS: dict[str, str] = {
    "voicing_run_rate": "voiced and unvoiced runs per active frame (how often voicing switches)",
    "voicing_run_mean_s": "mean length of the voiced and unvoiced runs (s)",
    "voicing_run_std_s": "standard deviation of the lengths of the voiced and unvoiced runs (s)",
}


def _names() -> list[tuple[str, str, str]]:
    return [
        (f"{c}_{fn}", c, fn)
        for c in CONTOUR_DESCRIPTORS
        for fn in CONTOUR_FUNCTIONALS
        if (c, fn) not in _CONSTANT
    ]


def describe_contour() -> dict[str, str]:
    """Feature name -> one-line description for the contour group, in vector order."""
    out = {name: f"{CONTOUR_DESCRIPTORS[c]}; {CONTOUR_FUNCTIONALS[fn]}" for name, c, fn in _names()}
    out.update(_VOICING_DESCRIPTIONS)
    return out


def _contour_functionals(x: np.ndarray) -> np.ndarray:
    """The :data:`CONTOUR_FUNCTIONALS` of one contour; zeros when it has fewer than 4 frames."""
    n = x.size
    if n < 4:
        return np.zeros(len(CONTOUR_FUNCTIONALS))
    pct = np.array(_percentiles(x[None, :], _PERCENTILES))[:, 0]
    mean, std, skew, kurt = summarize(x[None, :], frame_rate=1.0, functionals=("mean", "std", "skew", "kurt"))[0]
    centred = x - mean
    t = np.linspace(-1.0, 1.0, n)  # utterance time: slope and arch do not depend on its length
    slope = (t @ centred) / (t @ t)
    legendre2 = 1.5 * t * t - 0.5
    legendre2 -= legendre2.mean()
    curvature = (legendre2 @ centred) / (legendre2 @ legendre2)
    residual_std = (centred - slope * t).std()
    spread = pct[-1] - pct[0]
    upper = float(np.mean(x > pct[0] + 0.75 * spread)) if spread > 0 else 0.0
    step = np.diff(x)
    return np.r_[pct, mean, std, skew, kurt, slope, curvature, residual_std, pct[5] - pct[3], upper,
                 np.abs(step).mean(), step.std()]


def contour_features(
    f0: np.ndarray,
    voiced: np.ndarray,
    level_db: np.ndarray,
    *,
    active: np.ndarray | None = None,
    sr: int = 16000,
    hop_length: int = 160,
) -> dict[str, float]:
    """Functionals of pitch and level contours relative to the utterance.

    Parameters
    ----------
    f0, voiced : ndarray
        A pitch track and its voiced decisions (see :func:`~vibe_check.features.pitch_track`).
    level_db : ndarray
        Frame level in dB.
    active : ndarray of bool, optional
        Frames that hold speech (within 30 dB of the loud level in the extractor); all frames
        when omitted. Contours are taken over these frames only, so pauses do not count.
    sr, hop_length : int
        Frame rate of the contours (for the run lengths in seconds).

    Examples
    --------
    >>> f0 = 200.0 * 2 ** (np.linspace(-2, 2, 200) / 12)   # a 4-semitone rise
    >>> feats = contour_features(f0, np.ones(200, bool), np.full(200, -20.0))
    >>> round(feats["f0_rel_p99"] - feats["f0_rel_p01"], 1), feats["f0_rel_slope"] > 0
    (3.9, True)
    """
    n = min(f0.size, voiced.size, level_db.size)
    f0, voiced, level_db = f0[:n], voiced[:n].astype(bool), np.asarray(level_db[:n], dtype=np.float64)
    act = np.ones(n, bool) if active is None else np.asarray(active[:n], dtype=bool)
    if act.sum() > 5:  # too few active frames (a near-silent clip): use them all rather than none
        f0, voiced, level_db = f0[act], voiced[act], level_db[act]
    semitones = 12.0 * np.log2(np.maximum(f0[voiced], 1e-3))
    f0_rel = semitones - np.median(semitones) if semitones.size else semitones
    level_rel = level_db - level_db.mean() if level_db.size else level_db
    contours = {
        "f0_rel": f0_rel,
        "f0_rel_delta": np.diff(f0_rel),
        "level_rel": level_rel,
        "level_rel_delta": np.diff(level_rel),
        "level_rel_voiced": level_rel[voiced],
        "level_rel_unvoiced": level_rel[~voiced],
    }
    out = {
        f"{c}_{fn}": float(v)
        for c, x in contours.items()
        for fn, v in zip(CONTOUR_FUNCTIONALS, _contour_functionals(x))
        if (c, fn) not in _CONSTANT
    }
    lengths = np.array([b - a for a, b in runs(voiced)] + [b - a for a, b in runs(~voiced)], dtype=np.float64)
    frame_s = hop_length / sr
    out["voicing_run_rate"] = lengths.size / max(voiced.size, 1)
    out["voicing_run_mean_s"] = float(lengths.mean() * frame_s) if lengths.size else 0.0
    out["voicing_run_std_s"] = float(lengths.std() * frame_s) if lengths.size else 0.0
    return out
