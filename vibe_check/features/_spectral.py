"""Spectral, cepstral, energy, mel, chroma and contrast features.

Plain functions on ``(y, sr)`` in librosa's style: keyword-only options, and every function
accepts a precomputed power spectrogram ``S`` so that one STFT feeds all of them. Each returns an
ordered ``dict`` of feature name -> value; the matching ``describe_*`` function returns the same
names with one-line descriptions (a test keeps the two in step).
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

from ._functionals import FUNCTIONALS, SHORT_FUNCTIONALS, runs, summarize

__all__ = [
    "power_spectrogram",
    "spectral_features",
    "floor_spectrum",
    "noise_floor",
    "subtract_noise",
    "speech_level_db",
    "energy_features",
    "cepstral_features",
    "mel_features",
    "chroma_features",
    "contrast_features",
]

EPS = 1e-10
DELTA_FUNCTIONALS = ("std", "range", "kurt")
CONTRAST_FUNCTIONALS = ("mean", "std", "p10", "p90")
CONTRAST_BANDS = 5  # fmin 200 Hz doubling 5 times reaches 6.4 kHz, below Nyquist at 16 kHz
CONTRAST_TOP = 0.9  # the top contrast band ends at this fraction of Nyquist

SPECTRAL_LLD: dict[str, str] = {
    "spectral_centroid": "spectral centroid (Hz): the spectrum's centre of mass, brightness",
    "spectral_bandwidth": "spectral bandwidth (Hz): spread of the spectrum around its centroid",
    "spectral_rolloff50": "frequency (Hz) below which half of the energy lies",
    "spectral_rolloff85": "frequency (Hz) below which 85% of the energy lies",
    "spectral_flatness": "spectral flatness (0 tonal .. 1 noise-like)",
    "spectral_entropy": "normalised spectral entropy (0 peaky .. 1 flat)",
    "spectral_flux": "spectral flux: frame-to-frame change of the normalised magnitude spectrum",
    "spectral_slope_0_500": "slope of the dB spectrum from 0 to 500 Hz (dB/kHz)",
    "spectral_slope_500_1500": "slope of the dB spectrum from 500 to 1500 Hz (dB/kHz)",
    "alpha_ratio": "energy 50-1000 Hz over energy 1-5 kHz (dB): spectral tilt, vocal effort",
    "hammarberg_index": "strongest peak 0-2 kHz minus strongest peak 2-5 kHz (dB)",
    "zcr": "zero-crossing rate (fraction of samples), noisiness",
}
ENERGY_LLD: dict[str, str] = {
    "rms_db": "frame RMS level in dB relative to the clip's active level",
    "rms_db_delta": "frame-to-frame change of the RMS level (dB)",
}


def power_spectrogram(
    y: np.ndarray, *, n_fft: int = 512, hop_length: int = 160, win_length: int | None = 400
) -> np.ndarray:
    """Power spectrogram ``|STFT|**2`` with a Hann window, frames centred (librosa's convention).

    Examples
    --------
    >>> S = power_spectrogram(np.zeros(16000, dtype=np.float32))
    >>> S.shape
    (257, 101)
    """
    X = librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=True)
    return (X.real**2 + X.imag**2).astype(np.float32)


def _ensure_S(y, S, n_fft, hop_length, win_length):
    if S is None:
        if y is None:
            raise ValueError("give either y or S")
        S = power_spectrogram(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    return S


def _active_frames(matrix: np.ndarray, active: np.ndarray | None) -> np.ndarray:
    """The columns (frames) of ``matrix`` that hold speech, when at least two do."""
    if active is None:
        return matrix
    active = active[: matrix.shape[1]]
    return matrix[:, active] if active.sum() >= 2 else matrix


def noise_floor(S: np.ndarray, *, quantile: float = 0.2) -> np.ndarray:
    """Per-bin noise power: the mean spectrum of the quietest ``quantile`` of frames.

    In a clip with pauses or silence around the speech these frames hold only the background;
    the mean (not a low percentile) of their periodogram is an unbiased estimate of its power.

    Examples
    --------
    >>> S = np.full((257, 100), 1e-4); S[:, 50:] = 1.0
    >>> round(float(noise_floor(S)[0]), 8)
    0.0001
    """
    k = max(1, int(round(quantile * S.shape[1])))
    quiet = np.argpartition(S.sum(axis=0), k - 1)[:k]
    return S[:, quiet].mean(axis=1)


def speech_bounds(level: np.ndarray, *, top_db: float = 35.0, core_db: float | None = None,
                  margin: int = 20, min_run: int = 5) -> tuple[int, int]:
    """First and last+1 frame of the speech in a clip's frame levels (dB, noise removed).

    The speech spans the frames within ``top_db`` of the loudest one. With ``core_db`` it is also
    kept within ``margin`` frames of its loud core: the first and last runs of at least
    ``min_run`` frames within ``core_db`` of the loud level (95th percentile). Talkers or sounds
    far below the speaker then no longer count as speech where the speaker is silent.

    Examples
    --------
    >>> level = np.full(300, -45.0); level[100:200] = -20.0  # speech over a background 25 dB down
    >>> speech_bounds(level)
    (0, 300)
    >>> speech_bounds(level, core_db=15.0, margin=10)
    (90, 210)
    """
    loud = np.flatnonzero(level > level.max() - top_db)
    first, last = int(loud[0]), int(loud[-1]) + 1
    if core_db is not None:
        core = [(a, b) for a, b in runs(level > np.percentile(level, 95) - core_db) if b - a >= min_run]
        if core:
            first, last = max(first, core[0][0] - margin), min(last, core[-1][1] + margin)
    return first, last


def subtract_noise(S: np.ndarray, noise: np.ndarray, *, over: float = 1.5, floor: float = 0.02) -> np.ndarray:
    """Power spectral subtraction with over-subtraction and a spectral floor (Berouti et al., 1979).

    Stationary background noise (hum, hiss, a fan) is removed from every frame; a bin never falls
    below ``floor`` times its original power, which avoids "musical noise" holes. Frames that held
    only noise drop by about ``10 * log10(floor)`` dB, so they no longer count as speech.
    """
    return np.maximum(S - over * noise[:, None].astype(S.dtype), np.asarray(floor, S.dtype) * S)


def floor_spectrum(S: np.ndarray, floor_db: float, *, quantile: float = 95.0) -> np.ndarray:
    """``S`` with every bin raised to at least ``floor_db`` below its own loud level over time.

    The loud level is the ``quantile`` percentile of the bin over the frames.

    Examples
    --------
    >>> S = np.array([[1.0, 1e-2, 1e-4, 1e-6]])
    >>> floor_spectrum(S, 30.0, quantile=100).round(6).tolist()
    [[1.0, 0.01, 0.001, 0.001]]
    """
    loud = np.percentile(S, quantile, axis=1, keepdims=True).astype(S.dtype)
    return np.maximum(S, loud * np.asarray(10.0 ** (-floor_db / 10.0), S.dtype))


def speech_level_db(S: np.ndarray, noise: np.ndarray, *, n_fft: int = 512, over: float = 1.5,
                    floor_db: float = -30.0) -> np.ndarray:
    """Frame levels (dB, as :func:`rms_db`) with the background noise's power taken away.

    Subtracting at the frame level, not per bin, is what makes this a good speech detector: a
    frame's total noise power fluctuates by a few percent, a single bin's by 100%. Frames holding
    only noise end ``floor_db`` below their raw level.
    """
    raw = rms_db(S, n_fft=n_fft)
    noise_db = float(rms_db(noise[:, None], n_fft=n_fft)[0])
    power = 10.0 ** (raw / 10.0)
    clean = np.maximum(power - over * 10.0 ** (noise_db / 10.0), power * 10.0 ** (floor_db / 10.0))
    return 10.0 * np.log10(clean)


def _named(prefix_names, values: np.ndarray, functionals) -> dict[str, float]:
    """Flatten an ``(n_lld, n_functionals)`` array into ``{lld_functional: value}``."""
    return {
        f"{lld}_{fn}": float(values[i, j])
        for i, lld in enumerate(prefix_names)
        for j, fn in enumerate(functionals)
    }


def _describe(lld_descriptions: dict[str, str], functionals) -> dict[str, str]:
    return {
        f"{lld}_{fn}": f"{desc}; {FUNCTIONALS[fn]}"
        for lld, desc in lld_descriptions.items()
        for fn in functionals
    }


def _band(freqs, lo, hi):
    return (freqs >= lo) & (freqs < hi)


def _slope_db_per_khz(db: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = _band(freqs, lo, hi)
    f = freqs[sel] / 1000.0
    f = f - f.mean()
    return (f @ (db[sel] - db[sel].mean(axis=0))) / float((f**2).sum())


def spectral_lld(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
) -> dict[str, np.ndarray]:
    """Frame-level spectral descriptors (see :data:`SPECTRAL_LLD`), each of shape ``(n_frames,)``."""
    S = _ensure_S(y, S, n_fft, hop_length, win_length).astype(np.float64)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    total = S.sum(axis=0) + EPS
    p = S / total
    centroid = freqs @ p
    bandwidth = np.sqrt(((freqs[:, None] - centroid[None, :]) ** 2 * p).sum(axis=0))
    cum = np.cumsum(p, axis=0)
    rolloff50 = freqs[np.argmax(cum >= 0.5, axis=0)]
    rolloff85 = freqs[np.argmax(cum >= 0.85, axis=0)]
    flatness = np.exp(np.mean(np.log(S + EPS), axis=0)) / (S.mean(axis=0) + EPS)
    entropy = -(p * np.log2(p + EPS)).sum(axis=0) / np.log2(S.shape[0])
    mag = np.sqrt(S)
    mag_n = mag / (mag.sum(axis=0, keepdims=True) + EPS)
    flux = np.concatenate([[0.0], np.sqrt((np.diff(mag_n, axis=1) ** 2).sum(axis=0))])
    db = 10.0 * np.log10(S + EPS)
    alpha = 10.0 * np.log10(
        (S[_band(freqs, 50, 1000)].sum(axis=0) + EPS) / (S[_band(freqs, 1000, 5000)].sum(axis=0) + EPS)
    )
    hammarberg = db[_band(freqs, 0, 2000)].max(axis=0) - db[_band(freqs, 2000, 5000)].max(axis=0)
    # ZCR needs the waveform; from a spectrogram alone the high-frequency share stands in for it.
    if y is not None:
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length, center=True)[0]
        zcr = zcr[: S.shape[1]]
    else:
        zcr = S[freqs >= sr / 4].sum(axis=0) / total
    return {
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "spectral_rolloff50": rolloff50,
        "spectral_rolloff85": rolloff85,
        "spectral_flatness": flatness,
        "spectral_entropy": entropy,
        "spectral_flux": flux,
        "spectral_slope_0_500": _slope_db_per_khz(db, freqs, 0, 500),
        "spectral_slope_500_1500": _slope_db_per_khz(db, freqs, 500, 1500),
        "alpha_ratio": alpha,
        "hammarberg_index": hammarberg,
        "zcr": zcr,
    }


def spectral_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """Functionals of the spectral descriptors, over active (non-pause) frames when given.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    >>> feats = spectral_features(y, 16000)
    >>> round(feats["spectral_flatness_mean"], 1) > 0.3
    True
    """
    lld = spectral_lld(y, sr, S=S, n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    matrix = _active_frames(np.stack(list(lld.values())), active)
    return _named(list(lld), summarize(matrix, frame_rate=sr / hop_length), tuple(FUNCTIONALS))


def describe_spectral() -> dict[str, str]:
    return _describe(SPECTRAL_LLD, tuple(FUNCTIONALS))


def rms_db(S: np.ndarray, *, n_fft: int = 512) -> np.ndarray:
    """Frame RMS level in dBFS from a power spectrogram (Parseval, Hann window)."""
    # librosa.feature.rms takes a magnitude spectrogram and handles the window normalisation.
    rms = librosa.feature.rms(S=np.sqrt(S), frame_length=n_fft)[0]
    return 20.0 * np.log10(rms + 1e-7)


def energy_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
) -> dict[str, float]:
    """Loudness dynamics: functionals of the RMS level (relative to the clip's active level) and its change.

    Levels are relative (the 95th percentile of frame levels is 0 dB), so a recording's gain does
    not change them; the input level is reported separately by the extractor.
    """
    S = _ensure_S(y, S, n_fft, hop_length, win_length)
    level = rms_db(S, n_fft=n_fft)
    level = np.maximum(level - np.percentile(level, 95), -60.0)
    delta = np.concatenate([[0.0], np.diff(level)])
    values = summarize(np.stack([level, delta]), frame_rate=sr / hop_length)
    return _named(list(ENERGY_LLD), values, tuple(FUNCTIONALS))


def describe_energy() -> dict[str, str]:
    return _describe(ENERGY_LLD, tuple(FUNCTIONALS))


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=20.0, fmax=sr / 2)


def log_mel(S: np.ndarray, *, sr: int = 16000, n_fft: int = 512, n_mels: int = 40) -> np.ndarray:
    """Log mel energies (dB) from a power spectrogram."""
    return 10.0 * np.log10(_mel_basis(sr, n_fft, n_mels) @ S + EPS)


def cepstral_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    n_mels: int = 40,
    n_mfcc: int = 20,
    voiced: np.ndarray | None = None,
    mel_db: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """MFCC statistics, delta-MFCC statistics, and MFCC means over voiced and unvoiced frames.

    Coefficient 0 (overall level) is left out: it follows the recording gain, not the speaker.
    """
    if mel_db is None:
        S = _ensure_S(y, S, n_fft, hop_length, win_length)
        mel_db = log_mel(S, sr=sr, n_fft=n_fft, n_mels=n_mels)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc + 1)[1:]
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    delta = librosa.feature.delta(mfcc, width=max(width, 3), mode="nearest") if mfcc.shape[1] >= 3 else np.zeros_like(mfcc)
    rate = sr / hop_length
    names = _mfcc_names(n_mfcc)
    out = _named(names, summarize(_active_frames(mfcc, active), frame_rate=rate), tuple(FUNCTIONALS))
    out.update(_named([f"{n}_delta" for n in names], summarize(_active_frames(delta, active), frame_rate=rate, functionals=DELTA_FUNCTIONALS), DELTA_FUNCTIONALS))
    unvoiced = None
    if voiced is not None:
        unvoiced = ~voiced if active is None else ~voiced & active[: voiced.size]
    for label, mask in (("voiced", voiced), ("unvoiced", unvoiced)):
        means = mfcc[:, mask].mean(axis=1) if mask is not None and mask.sum() >= 2 else mfcc.mean(axis=1)
        out.update({f"{n}_{label}_mean": float(v) for n, v in zip(names, means)})
    return out


def _mfcc_names(n_mfcc: int) -> list[str]:
    return [f"mfcc_{i:02d}" for i in range(1, n_mfcc + 1)]


def describe_cepstral(n_mfcc: int = 20) -> dict[str, str]:
    names = _mfcc_names(n_mfcc)
    out = _describe({n: f"mel-frequency cepstral coefficient {i}" for i, n in enumerate(names, 1)}, tuple(FUNCTIONALS))
    out.update(_describe({f"{n}_delta": f"frame-to-frame change (delta) of MFCC {i}" for i, n in enumerate(names, 1)}, DELTA_FUNCTIONALS))
    for label in ("voiced", "unvoiced"):
        out.update({f"{n}_{label}_mean": f"MFCC {i}; mean over {label} frames" for i, n in enumerate(names, 1)})
    return out


def mel_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    n_mels: int = 40,
    mel_db: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean and standard deviation of each log mel band, relative to the clip's mean level, over
    active frames when ``active`` is given."""
    if mel_db is None:
        S = _ensure_S(y, S, n_fft, hop_length, win_length)
        mel_db = log_mel(S, sr=sr, n_fft=n_fft, n_mels=n_mels)
    mel_db = _active_frames(mel_db, active)
    rel = mel_db - mel_db.mean()  # gain-independent: the shape of the spectrum, not its level
    names = [f"mel_{i:02d}" for i in range(1, mel_db.shape[0] + 1)]
    return _named(names, summarize(rel, frame_rate=sr / hop_length, functionals=SHORT_FUNCTIONALS), SHORT_FUNCTIONALS)


def describe_mel(sr: int = 16000, n_mels: int = 40) -> dict[str, str]:
    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=20.0, fmax=sr / 2)[1:-1]
    return _describe(
        {f"mel_{i:02d}": f"log energy of mel band {i} (centre {c:.0f} Hz), relative to the clip's mean" for i, c in enumerate(centres, 1)},
        SHORT_FUNCTIONALS,
    )


PITCH_CLASSES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")


def chroma_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean and standard deviation of the 12 chroma (pitch-class) energies (active frames when given)."""
    S = _ensure_S(y, S, n_fft, hop_length, win_length)
    # tuning=0 skips librosa's tuning estimation, which costs more than the chroma itself.
    chroma = _active_frames(librosa.feature.chroma_stft(S=S, sr=sr, n_fft=n_fft, tuning=0.0), active)
    names = [f"chroma_{p}" for p in PITCH_CLASSES]
    return _named(names, summarize(chroma, frame_rate=sr / hop_length, functionals=SHORT_FUNCTIONALS), SHORT_FUNCTIONALS)


def describe_chroma() -> dict[str, str]:
    return _describe({f"chroma_{p}": f"energy of pitch class {p.replace('s', '#')} (chroma)" for p in PITCH_CLASSES}, SHORT_FUNCTIONALS)


def contrast_features(
    y: np.ndarray | None = None,
    sr: int = 16000,
    *,
    S: np.ndarray | None = None,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    active: np.ndarray | None = None,
) -> dict[str, float]:
    """Spectral contrast (peak minus valley, dB) in octave bands from 200 Hz, the top band up to
    90% of Nyquist."""
    S = _ensure_S(y, S, n_fft, hop_length, win_length)
    # The top band stops short of Nyquist: there a resampler's stop band leaves a deep valley that
    # depends on the recording chain (44.1 kHz and 48 kHz sources differed by 60 emotion spreads).
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    keep = freqs <= CONTRAST_TOP * sr / 2
    contrast = librosa.feature.spectral_contrast(S=np.sqrt(S[keep]), sr=sr, n_fft=n_fft, freq=freqs[keep],
                                                 fmin=200.0, n_bands=CONTRAST_BANDS)
    contrast = _active_frames(contrast, active)
    names = [f"contrast_{i}" for i in range(contrast.shape[0])]
    return _named(names, summarize(contrast, frame_rate=sr / hop_length, functionals=CONTRAST_FUNCTIONALS), CONTRAST_FUNCTIONALS)


def describe_contrast() -> dict[str, str]:
    edges = [0.0] + [200.0 * 2**i for i in range(CONTRAST_BANDS + 1)]
    desc = {}
    for i in range(CONTRAST_BANDS + 1):
        hi = f"{edges[i + 1]:.0f} Hz" if i < CONTRAST_BANDS else f"{CONTRAST_TOP:.0%} of Nyquist"
        desc[f"contrast_{i}"] = f"spectral contrast (dB) in band {edges[i]:.0f} Hz - {hi}"
    return _describe(desc, CONTRAST_FUNCTIONALS)
