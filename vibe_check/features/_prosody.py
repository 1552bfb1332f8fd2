"""Prosody, voice quality and timing features.

Pitch comes from :func:`librosa.yin` (7 ms per clip here, against 290 ms for ``pyin``). Voicing
strength and the harmonics-to-noise ratio come from the normalised autocorrelation at the YIN
period (Boersma's method, as in Praat), computed for all frames with one batched FFT, so no
per-frame Python loop is needed. Jitter and shimmer are frame-level approximations of Praat's
cycle-level measures (consecutive 10 ms frames instead of consecutive glottal cycles); they track
the same irregularity at a small fraction of the cost of a point-process analysis.
"""

from __future__ import annotations

import librosa
import numpy as np
import scipy.fft
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from ._functionals import FUNCTIONALS, runs, summarize

__all__ = [
    "pitch_track",
    "prosody_features",
    "voice_quality_features",
    "timing_features",
]

EPS = 1e-10
VOICING_THRESHOLD = 0.45  # Praat's default voicing threshold on the normalised autocorrelation
SEMITONE_REF_HZ = 27.5  # eGeMAPS reference: semitones above A0
HNR_FUNCTIONALS = ("mean", "std", "p10", "p50", "p90")


def _frame_length(sr: int, fmin: float) -> int:
    # YIN compares two half-frames, so a frame must hold a bit over two periods of the lowest pitch.
    return int(np.ceil(2.4 * sr / fmin / 32.0)) * 32


def pitch_track(
    y: np.ndarray,
    sr: int = 16000,
    *,
    fmin: float = 60.0,
    fmax: float = 600.0,
    hop_length: int = 160,
    active: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0, voicing strength and voiced decision for every frame.

    Returns
    -------
    f0 : ndarray
        YIN estimate in Hz per frame (defined everywhere; use ``voiced`` to select).
    strength : ndarray
        Normalised autocorrelation at the YIN period, in [0, 1] (1 = perfectly periodic).
    voiced : ndarray of bool
        ``strength`` above Praat's voicing threshold, and the frame active when ``active`` is given.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> f0, strength, voiced = pitch_track(np.sin(2 * np.pi * 200 * t).astype(np.float32))
    >>> round(float(np.median(f0[voiced])))
    200
    """
    frame_length = _frame_length(sr, fmin)
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length, hop_length=hop_length, center=True)
    frames = librosa.util.frame(
        np.pad(y, frame_length // 2), frame_length=frame_length, hop_length=hop_length
    )[:, : f0.size]
    # float32 FFTs: half the cost of float64 (this is on the single-clip latency path), and the
    # autocorrelation only feeds a 0-1 strength, where 1e-7 relative error is immaterial.
    window = np.hanning(frame_length).astype(np.float32)
    max_lag = int(np.ceil(sr / fmin)) + 4
    n = scipy.fft.next_fast_len(frame_length + max_lag)  # no circular wrap-around up to max_lag
    spectrum = scipy.fft.rfft(frames.T.astype(np.float32) * window, n=n, axis=1, workers=1)
    ac = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n, axis=1)[:, :max_lag]
    ac_window = scipy.fft.irfft(np.abs(scipy.fft.rfft(window.astype(np.float64), n=n)) ** 2, n=n)[:max_lag]
    # Boersma (1993): dividing by the window's own autocorrelation removes the taper's bias.
    rho = (ac / (ac[:, :1] + EPS)) / (ac_window / ac_window[0])
    lag = sr / f0
    lo = np.clip(np.floor(lag).astype(int) - 1, 1, max_lag - 4)
    idx = lo[:, None] + np.arange(4)[None, :]
    strength = np.clip(np.take_along_axis(rho, idx, axis=1).max(axis=1), 0.0, 1.0)
    strength[ac[:, 0] <= EPS] = 0.0
    voiced = strength > VOICING_THRESHOLD
    if active is not None:
        voiced &= active[: voiced.size]
    if voiced.sum() >= 5:
        # A 5-frame median over the voiced frames removes isolated octave jumps of the tracker.
        f0 = f0.copy()
        f0[voiced] = np.exp(median_filter(np.log(f0[voiced]), size=5, mode="nearest"))
    return f0, strength, voiced


def _consecutive_voiced_pairs(voiced: np.ndarray) -> np.ndarray:
    return voiced[1:] & voiced[:-1]


PROSODY_DESCRIPTIONS: dict[str, str] = {
    "f0_mean": "mean F0 (Hz) over voiced frames",
    "f0_std": "standard deviation of F0 (Hz) over voiced frames: pitch variability",
    **{
        f"f0_semitone_{fn}": f"F0 in semitones above 27.5 Hz; {desc} (voiced frames)"
        for fn, desc in FUNCTIONALS.items()
    },
    "f0_velocity_mean": "mean absolute F0 change between consecutive voiced frames (semitones per 10 ms)",
    "f0_rise_fraction": "fraction of consecutive voiced frames where F0 rises",
    "f0_final_slope": "F0 slope (semitones per second) over the last 30% of voiced frames: final rise or fall",
    "voiced_fraction": "fraction of frames that are voiced",
}


def prosody_features(
    f0: np.ndarray, voiced: np.ndarray, *, sr: int = 16000, hop_length: int = 160
) -> dict[str, float]:
    """Pitch level, range and contour from a pitch track (see :func:`pitch_track`)."""
    rate = sr / hop_length
    semis = np.where(voiced, 12.0 * np.log2(np.maximum(f0, EPS) / SEMITONE_REF_HZ), np.nan)
    hz = f0[voiced]
    out = {
        "f0_mean": float(hz.mean()) if hz.size else 0.0,
        "f0_std": float(hz.std()) if hz.size else 0.0,
    }
    out.update({f"f0_semitone_{fn}": float(v) for fn, v in zip(FUNCTIONALS, summarize(semis, frame_rate=rate)[0])})
    pairs = _consecutive_voiced_pairs(voiced)
    step = np.diff(semis)[pairs]
    out["f0_velocity_mean"] = float(np.abs(step).mean()) if step.size else 0.0
    out["f0_rise_fraction"] = float((step > 0).mean()) if step.size else 0.0
    vidx = np.flatnonzero(voiced)
    tail = vidx[int(0.7 * vidx.size):]
    if tail.size >= 3:
        t = tail / rate
        out["f0_final_slope"] = float(np.polyfit(t, semis[tail], 1)[0])
    else:
        out["f0_final_slope"] = 0.0
    out["voiced_fraction"] = float(voiced.mean()) if voiced.size else 0.0
    return out


VOICE_QUALITY_DESCRIPTIONS: dict[str, str] = {
    **{
        f"hnr_{fn}": f"harmonics-to-noise ratio (dB) from the autocorrelation at the pitch period; {FUNCTIONALS[fn]} (voiced frames)"
        for fn in HNR_FUNCTIONALS
    },
    "voicing_strength_mean": "mean normalised autocorrelation at the pitch period over active frames (periodicity)",
    "jitter_local": "frame-level jitter: mean absolute difference of consecutive pitch periods over the mean period",
    "jitter_ddp": "frame-level jitter (difference of differences of consecutive periods) over the mean period",
    "shimmer_db": "frame-level shimmer: mean absolute level change between consecutive voiced frames (dB)",
    "shimmer_local": "frame-level shimmer: mean absolute amplitude difference of consecutive voiced frames over the mean amplitude",
    "h1_h2_mean": "first minus second harmonic level (dB), voiced frames: breathy (high) vs pressed (low) voice",
    "h1_h2_std": "standard deviation of H1-H2 (dB) over voiced frames",
}


def voice_quality_features(
    f0: np.ndarray,
    strength: np.ndarray,
    voiced: np.ndarray,
    S: np.ndarray,
    *,
    sr: int = 16000,
    n_fft: int = 512,
    hop_length: int = 160,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """Jitter, shimmer, HNR, voicing strength and H1-H2 from a pitch track and power spectrogram."""
    n = min(f0.size, S.shape[1])
    f0, strength, voiced, S = f0[:n], strength[:n], voiced[:n], S[:, :n]
    rho = np.clip(strength[voiced], 1e-4, 1 - 1e-4)
    hnr = 10.0 * np.log10(rho / (1.0 - rho))
    out = {f"hnr_{fn}": float(v) for fn, v in zip(HNR_FUNCTIONALS, summarize(hnr[None, :], frame_rate=sr / hop_length, functionals=HNR_FUNCTIONALS)[0])}
    act = active[:n] if active is not None else np.ones(n, bool)
    out["voicing_strength_mean"] = float(strength[act].mean()) if act.any() else 0.0

    period = 1.0 / np.maximum(f0, EPS)
    amp = np.sqrt(S.sum(axis=0) + EPS)
    pairs = _consecutive_voiced_pairs(voiced)
    triples = pairs[1:] & pairs[:-1]
    mean_period = period[voiced].mean() if voiced.any() else 1.0
    mean_amp = amp[voiced].mean() if voiced.any() else 1.0
    d_period = np.diff(period)
    out["jitter_local"] = float(np.abs(d_period[pairs]).mean() / mean_period) if pairs.any() else 0.0
    out["jitter_ddp"] = float(np.abs(np.diff(d_period)[triples]).mean() / mean_period) if triples.any() else 0.0
    out["shimmer_db"] = float(np.abs(np.diff(20 * np.log10(amp))[pairs]).mean()) if pairs.any() else 0.0
    out["shimmer_local"] = float(np.abs(np.diff(amp)[pairs]).mean() / mean_amp) if pairs.any() else 0.0

    vidx = np.flatnonzero(voiced)
    if vidx.size:
        bin_hz = sr / n_fft
        db = 10.0 * np.log10(S[:, vidx] + EPS)
        h1_bin = np.clip(np.rint(f0[vidx] / bin_hz).astype(int), 1, S.shape[0] - 2)
        h2_bin = np.clip(np.rint(2 * f0[vidx] / bin_hz).astype(int), 1, S.shape[0] - 2)
        cols = np.arange(vidx.size)
        # Strongest of the three bins around each harmonic: the FFT grid is coarse for low voices.
        h1 = np.max([db[h1_bin + k, cols] for k in (-1, 0, 1)], axis=0)
        h2 = np.max([db[h2_bin + k, cols] for k in (-1, 0, 1)], axis=0)
        out["h1_h2_mean"], out["h1_h2_std"] = float((h1 - h2).mean()), float((h1 - h2).std())
    else:
        out["h1_h2_mean"] = out["h1_h2_std"] = 0.0
    return out


TIMING_DESCRIPTIONS: dict[str, str] = {
    "duration_s": "duration of the clip after trimming leading and trailing silence (s)",
    "pause_ratio": "fraction of frames in pauses (more than 30 dB below the clip's active level)",
    "pause_rate": "pauses of at least 100 ms per second",
    "pause_mean_duration": "mean duration of those pauses (s)",
    "voiced_segment_rate": "voiced segments per second (a syllable-rate proxy)",
    "voiced_segment_mean_duration": "mean duration of voiced segments (s)",
    "energy_peak_rate": "peaks of the smoothed loudness contour per second (a speech-rate proxy)",
}


def timing_features(
    level_db: np.ndarray,
    voiced: np.ndarray,
    *,
    sr: int = 16000,
    hop_length: int = 160,
    duration: float | None = None,
) -> dict[str, float]:
    """Pauses, voiced segments and rate from a frame level contour (dB) and voicing decisions."""
    rate = sr / hop_length
    n = level_db.size
    duration = n / rate if duration is None else duration
    pause = level_db < np.percentile(level_db, 95) - 30.0
    pauses = [(a, b) for a, b in runs(pause) if (b - a) / rate >= 0.1]
    segs = runs(voiced)
    smooth = np.convolve(level_db, np.hanning(7) / np.hanning(7).sum(), mode="same")
    peaks, _ = find_peaks(smooth, prominence=3.0, distance=max(1, int(0.1 * rate)))
    return {
        "duration_s": float(duration),
        "pause_ratio": float(pause.mean()),
        "pause_rate": len(pauses) / duration,
        "pause_mean_duration": float(np.mean([(b - a) / rate for a, b in pauses])) if pauses else 0.0,
        "voiced_segment_rate": len(segs) / duration,
        "voiced_segment_mean_duration": float(np.mean([(b - a) / rate for a, b in segs])) if segs else 0.0,
        "energy_peak_rate": peaks.size / duration,
    }
