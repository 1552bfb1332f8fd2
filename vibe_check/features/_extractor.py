"""The feature extractor: audio in, one named feature vector out (opensmile's ``Smile`` shape)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .._threads import one_thread
from ..audio import DEFAULT_MAX_DURATION, load_audio, prepare_signal, require_sound, trim_silence
from ..exceptions import VibeCheckError
from . import _contour, _covariation, _prosody, _spectral
from ._config import FeatureConfig

__all__ = ["FeatureExtractor", "SignalInfo", "describe_features", "estimate_snr"]

log = logging.getLogger(__name__)

#: Signals are scaled so that their loud frames sit at this level before analysis, which makes
#: every feature independent of the recording gain (the input level is kept in SignalInfo).
REFERENCE_LEVEL_DB = -20.0


@dataclass(frozen=True)
class SignalInfo:
    """Facts about an input that are not model features but matter to operators."""

    duration_s: float  # before trimming
    speech_duration_s: float  # after trimming
    level_dbfs: float  # 95th percentile of frame RMS levels, before normalisation
    snr_db: float  # loud frames (95th pct) over quiet frames (10th pct): a rough SNR estimate


def describe_features(config: FeatureConfig | None = None) -> pd.DataFrame:
    """Every feature's name, group and one-line description, in vector order.

    Examples
    --------
    >>> table = describe_features()
    >>> table.loc[table.name == "f0_std", "group"].item()
    'prosody'
    """
    cfg = config or FeatureConfig()
    per_group = {
        "prosody": _prosody.PROSODY_DESCRIPTIONS,
        "voice_quality": _prosody.VOICE_QUALITY_DESCRIPTIONS,
        "energy": _spectral.describe_energy(),
        "timing": _prosody.TIMING_DESCRIPTIONS,
        "contour": _contour.describe_contour(),
        "spectral": _spectral.describe_spectral(),
        "contrast": _spectral.describe_contrast(),
        "cepstral": _spectral.describe_cepstral(cfg.n_mfcc),
        "mel": _spectral.describe_mel(cfg.sample_rate, cfg.n_mels),
        "chroma": _spectral.describe_chroma(),
        "covariation": _covariation.describe_covariation(cfg.covariation_mfcc),
    }
    rows = [
        {"name": name, "group": group, "description": desc}
        for group in cfg.groups
        for name, desc in per_group[group].items()
    ]
    return pd.DataFrame(rows, columns=["name", "group", "description"])


def _background_levels(y: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrogram and frame levels (dB) of the whole input, silence included, at a coarse hop."""
    full_S = _spectral.power_spectrogram(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length * 4, win_length=cfg.win_length)
    return full_S, _spectral.rms_db(full_S, n_fft=cfg.n_fft)


def _snr_from_levels(level_db: np.ndarray) -> float:
    # Loud frames over quiet frames: in a recording with pauses the quiet frames are background.
    return float(np.percentile(level_db, 95) - np.percentile(level_db, 10))


def estimate_snr(y: np.ndarray, sr: int, *, config: FeatureConfig | None = None) -> float:
    """Rough SNR of a recording in dB, without extracting features.

    The 95th percentile of the frame levels over their 10th percentile, over the whole input
    (pauses included): the figure :class:`SignalInfo` reports as ``snr_db``. A studio clip reads
    40-120 dB, the same clip under white noise at 20 dB SNR about 24 dB, and under six other
    talkers at 20 dB SNR 25-40 dB for nine clips in ten: babble pauses when its talkers do
    (RAVDESS; ``docs/experiments.md``, "Two models routed by the clip's own SNR").

    Parameters
    ----------
    y : np.ndarray
        Samples (any layout :func:`~vibe_check.audio.prepare_signal` accepts).
    sr : int
        Sample rate of ``y``.
    config : FeatureConfig, optional
        Gives the analysis rate and frames; ``FeatureConfig()`` by default.

    Returns
    -------
    float

    Raises
    ------
    NoSpeechError
        For digital silence, or an input shorter than one analysis frame (``config.n_fft`` samples).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tone = np.sin(np.arange(32000) / 5).astype(np.float32) * 0.3
    >>> clip = np.concatenate([np.zeros(8000, np.float32), tone, np.zeros(8000, np.float32)])
    >>> noisy = clip + 0.003 * rng.standard_normal(clip.size).astype(np.float32)
    >>> round(estimate_snr(noisy, 16000))
    37
    """
    cfg = config or FeatureConfig()
    y = prepare_signal(y, sr, target_sr=cfg.sample_rate, max_duration=None)
    require_sound(y, cfg.sample_rate, frame_length=cfg.n_fft)  # the extractor's own first check
    return _snr_from_levels(_background_levels(y, cfg)[1])


class FeatureExtractor:
    """Turn a file or a ``(y, sr)`` array into a vector with a name for every value.

    Audio is decoded with soundfile, downmixed to mono, resampled with soxr, trimmed of leading
    and trailing silence and level-normalised; then one STFT and one pitch track feed every
    feature group of the config.

    Parameters
    ----------
    config : FeatureConfig, optional
        What to compute; ``FeatureConfig()`` by default.
    max_duration : float or None
        Longest input accepted (seconds).

    Attributes
    ----------
    feature_names : list of str
        Column names, in vector order.
    feature_groups : dict
        Feature name -> group name.

    Examples
    --------
    >>> fx = FeatureExtractor()
    >>> df = fx.process_file("clip.wav")  # doctest: +SKIP
    >>> df["f0_std"]  # doctest: +SKIP
    >>> vec = fx.extract(y, sr)  # doctest: +SKIP
    """

    def __init__(self, config: FeatureConfig | None = None, *, max_duration: float | None = DEFAULT_MAX_DURATION):
        self.config = config or FeatureConfig()
        self.max_duration = max_duration
        table = describe_features(self.config)
        self.feature_names: list[str] = table["name"].tolist()
        self.feature_groups: dict[str, str] = dict(zip(table["name"], table["group"]))

    def __repr__(self) -> str:
        return f"FeatureExtractor(groups={list(self.config.groups)}, n_features={len(self.feature_names)}, hash={self.config.hash!r})"

    @property
    def hash(self) -> str:
        return self.config.hash

    def describe(self) -> pd.DataFrame:
        """Name, group and description of every feature (see :func:`describe_features`)."""
        return describe_features(self.config)

    # -- core -------------------------------------------------------------------------------
    def extract(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Feature vector (float64, ``len(feature_names)``) of an in-memory signal."""
        return self.extract_with_info(y, sr)[0]

    def extract_file(self, path: str | os.PathLike) -> np.ndarray:
        """Feature vector of an audio file."""
        return self.extract_file_with_info(path)[0]

    def extract_file_with_info(self, source) -> tuple[np.ndarray, SignalInfo]:
        y = load_audio(source, target_sr=self.config.sample_rate, max_duration=self.max_duration)
        return self.extract_prepared(y)

    def extract_with_info(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, SignalInfo]:
        y = prepare_signal(y, sr, target_sr=self.config.sample_rate, max_duration=self.max_duration)
        return self.extract_prepared(y)

    def extract_prepared(self, y: np.ndarray) -> tuple[np.ndarray, SignalInfo]:
        """Features and signal facts of audio already decoded by :func:`~vibe_check.audio.load_audio`
        or :func:`~vibe_check.audio.prepare_signal` (mono float32 at ``config.sample_rate``).

        Services call the decoding and feature stages separately to time each one.
        """
        with one_thread():
            return self._extract_prepared(y)

    def _extract_prepared(self, y: np.ndarray) -> tuple[np.ndarray, SignalInfo]:
        cfg = self.config
        sr, hop, n_fft = cfg.sample_rate, cfg.hop_length, cfg.n_fft
        duration = y.size / sr
        speech = trim_silence(y, sr, top_db=cfg.trim_top_db, hop_length=hop)
        # The whole input (silence included) at a coarse hop: its quietest frames give the
        # background noise spectrum, and its level spread a rough SNR for operators.
        full_S, full_level = _background_levels(y, cfg)
        S = _spectral.power_spectrogram(speech, n_fft=n_fft, hop_length=hop, win_length=cfg.win_length)
        if cfg.noise_reduction:
            noise = _spectral.noise_floor(full_S)
            level = _spectral.speech_level_db(S, noise, n_fft=n_fft)
            S = _spectral.subtract_noise(S, noise)
            # Noise-only lead-in and tail (louder than the trim threshold in a noisy recording)
            # have dropped after the subtraction: trim them now. Other talkers are not stationary
            # and do not drop, so the speech is also kept near its loud core.
            first, last = _spectral.speech_bounds(level, top_db=cfg.trim_top_db, core_db=cfg.speech_anchor_db,
                                                  margin=int(round(cfg.speech_margin_s * sr / hop)),
                                                  min_run=max(1, int(round(0.05 * sr / hop))))
            if last - first >= 10 and (first > 0 or last < level.size):
                S, level = S[:, first:last], level[first:last]
                speech = speech[first * hop : (last - 1) * hop + 1]
        else:
            level = _spectral.rms_db(S, n_fft=n_fft)
        if cfg.spectral_floor_db is not None:
            # Other voices fill what lies far below each bin's loud level; floored, that part reads
            # the same with or without them (opt-in: it also hides some of what clean speech says).
            S = _spectral.floor_spectrum(S, cfg.spectral_floor_db)
        loud = float(np.percentile(level, 95))
        info = SignalInfo(
            duration_s=duration,
            speech_duration_s=speech.size / sr,
            level_dbfs=loud,
            snr_db=_snr_from_levels(full_level),
        )
        gain = 10.0 ** ((REFERENCE_LEVEL_DB - loud) / 20.0)
        speech = (speech * gain).astype(np.float32)
        S = S * np.float32(gain**2)
        level = level + (REFERENCE_LEVEL_DB - loud)
        active = level > REFERENCE_LEVEL_DB - 30.0
        features: dict[str, float] = {}
        groups = set(cfg.groups)
        f0 = strength = voiced = None
        if groups & {"prosody", "voice_quality", "timing", "contour", "cepstral", "covariation"}:
            f0, strength, voiced = _prosody.pitch_track(
                speech, sr, fmin=cfg.fmin_f0, fmax=cfg.fmax_f0, hop_length=hop, active=active
            )
        mel_db = None
        if groups & {"cepstral", "mel", "covariation"}:
            mel_db = _spectral.log_mel(S, sr=sr, n_fft=n_fft, n_mels=cfg.n_mels)
        common = dict(sr=sr, S=S, n_fft=n_fft, hop_length=hop, win_length=cfg.win_length)
        for group in cfg.groups:
            if group == "prosody":
                features.update(_prosody.prosody_features(f0, voiced, sr=sr, hop_length=hop))
            elif group == "voice_quality":
                features.update(_prosody.voice_quality_features(f0, strength, voiced, S, sr=sr, n_fft=n_fft, hop_length=hop, active=active))
            elif group == "energy":
                features.update(_spectral.energy_features(**common))
            elif group == "timing":
                features.update(_prosody.timing_features(level, voiced, sr=sr, hop_length=hop, duration=speech.size / sr))
            elif group == "contour":
                features.update(_contour.contour_features(f0, voiced, level, active=active, sr=sr, hop_length=hop))
            elif group == "spectral":
                features.update(_spectral.spectral_features(speech, active=active, **common))
            elif group == "contrast":
                features.update(_spectral.contrast_features(**common, active=active))
            elif group == "cepstral":
                features.update(_spectral.cepstral_features(**common, n_mels=cfg.n_mels, n_mfcc=cfg.n_mfcc, voiced=voiced[: S.shape[1]], mel_db=mel_db, active=active))
            elif group == "mel":
                features.update(_spectral.mel_features(**common, n_mels=cfg.n_mels, mel_db=mel_db, active=active))
            elif group == "chroma":
                features.update(_spectral.chroma_features(**common, active=active))
            elif group == "covariation":
                features.update(_covariation.covariation_features(mel_db, f0, voiced, level, n_mfcc=cfg.covariation_mfcc, active=active))
        vector = np.array([features[name] for name in self.feature_names], dtype=np.float64)
        # Degenerate inputs (a pure tone, clipped noise) can give inf/NaN statistics; never ship them.
        np.nan_to_num(vector, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return vector, info

    # -- DataFrame API (opensmile's Smile) --------------------------------------------------------
    def process_signal(self, y: np.ndarray, sr: int) -> pd.DataFrame:
        """One-row DataFrame of named features for an in-memory signal."""
        return pd.DataFrame([self.extract(y, sr)], columns=self.feature_names)

    def process_file(self, path: str | os.PathLike) -> pd.DataFrame:
        """One-row DataFrame of named features, indexed by the file path."""
        return pd.DataFrame([self.extract_file(path)], columns=self.feature_names, index=pd.Index([str(path)], name="file"))

    def process_files(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        n_jobs: int = 1,
        backend: str | None = None,
        errors: str = "raise",
        progress: bool = False,
    ) -> pd.DataFrame:
        """Features of many files, in parallel with joblib, one row per file (indexed by path).

        With ``errors="skip"`` a file that fails is logged and left out; the failures are in the
        ``failures_`` attribute (path -> message) afterwards.
        """
        from ._parallel import extract_many

        rows, failures = extract_many(self, paths, n_jobs=n_jobs, backend=backend, progress=progress)
        self.failures_ = failures
        if failures and errors == "raise":
            path, msg = next(iter(failures.items()))
            raise VibeCheckError(f"{len(failures)} file(s) failed, first {path}: {msg}")
        ok = [str(p) for p in paths if str(p) in rows]
        return pd.DataFrame([rows[p] for p in ok], columns=self.feature_names, index=pd.Index(ok, name="file"))


