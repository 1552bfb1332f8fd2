"""Recording conditions, as signal transforms: noise at an SNR, babble, telephone band, gain, speed.

The same transforms serve two purposes. Training adds corrupted copies of the *training* clips
(multi-condition training, see :data:`AUGMENTATIONS`), so that a model meets noisy and
band-limited speech before its users send it some. The robustness benchmark corrupts the
*held-out* clips with them to measure what a model loses.

Every transform is a plain function on ``(y, sr)`` that returns a new float32 signal; the random
ones take a :class:`numpy.random.Generator`, so a seed reproduces a copy exactly.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import soxr

log = logging.getLogger(__name__)

__all__ = [
    "AUGMENTATIONS",
    "SPEED_FACTORS",
    "AUGMENTATION_VERSION",
    "AugmentedClip",
    "ORIGINAL",
    "augment",
    "active_power",
    "mix_at_snr",
    "white_noise",
    "pink_noise",
    "babble_noise",
    "telephone_band",
    "apply_gain",
    "speed_perturb",
    "speed_copies",
    "leading_silence",
]

#: Bumped whenever a transform or its parameter ranges change, so cached features are redone.
AUGMENTATION_VERSION = 1
_FRAME = 160  # 10 ms at 16 kHz: the frame used to find the speech frames of a clip


def active_power(y: np.ndarray, *, frame: int = _FRAME, range_db: float = 30.0) -> float:
    """Mean power of a clip's speech frames: those within ``range_db`` of its loud frames (the
    95th percentile), not the silence around them.

    SNRs are defined on this power (like ITU-T P.56's active speech level), so "20 dB" means the
    same thing for a clip with one second of silence around it as for one without.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size < frame:
        return float((y**2).mean()) + 1e-12 if y.size else 1e-12
    power = (y[: y.size // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
    loud = np.percentile(power, 95)
    return float(power[power >= loud * 10.0 ** (-range_db / 10.0)].mean()) + 1e-12


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y`` plus ``noise`` (tiled or cut to length) scaled to ``snr_db`` below ``y``'s active power.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3
    >>> noisy = mix_at_snr(y, white_noise(y.size, rng), 20)
    >>> round(10 * np.log10(active_power(y) / active_power(noisy - y)))
    20
    """
    noise = np.resize(np.asarray(noise, dtype=np.float64), y.size)
    scale = np.sqrt(active_power(y) / (active_power(noise) * 10.0 ** (snr_db / 10.0)))
    return np.clip(y + scale * noise, -1.0, 1.0).astype(np.float32)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise, unit variance."""
    return rng.standard_normal(n).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (white noise shaped in the frequency domain), unit variance."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spectrum / np.sqrt(f), n=n)
    return (y / (y.std() + 1e-12)).astype(np.float32)


def babble_noise(sources: Sequence[np.ndarray], n: int, rng: np.random.Generator, *, n_talkers: int = 6) -> np.ndarray:
    """Babble-like noise: ``n_talkers`` clips from ``sources``, each at a random offset, summed.

    Each talker is peak-normalised first so that no one voice dominates; short clips are tiled.
    """
    if not len(sources):
        raise ValueError("babble needs at least one source clip")
    out = np.zeros(n, np.float64)
    for i in rng.choice(len(sources), size=n_talkers, replace=len(sources) < n_talkers):
        src = np.asarray(sources[i], dtype=np.float64)
        src = np.roll(np.resize(src, max(n, src.size)), -int(rng.integers(0, max(1, src.size))))[:n]
        out += src / (np.abs(src).max() + 1e-9)
    return out.astype(np.float32)


def telephone_band(y: np.ndarray, sr: int, *, low: float = 300.0, high: float = 3400.0, out_sr: int = 8000) -> tuple[np.ndarray, int]:
    """A telephone channel: band-pass ``low``-``high`` Hz (6th-order Butterworth), resampled to ``out_sr``."""
    from scipy.signal import butter, sosfiltfilt  # here, not at the top: 1 s of import for every CLI command

    sos = butter(6, [low, min(high, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    band = sosfiltfilt(sos, np.asarray(y, dtype=np.float64))
    return soxr.resample(band, sr, out_sr).astype(np.float32), out_sr


def apply_gain(y: np.ndarray, db: float, *, clip: bool = True) -> np.ndarray:
    """Scale by ``db`` decibels; with ``clip`` the result is clipped to [-1, 1] as a real ADC would."""
    out = np.asarray(y, dtype=np.float32) * np.float32(10.0 ** (db / 20.0))
    return np.clip(out, -1.0, 1.0) if clip else out


def speed_perturb(y: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and formants shift with it), as Kaldi's speed perturbation."""
    return soxr.resample(np.asarray(y, dtype=np.float32), sr, sr / factor).astype(np.float32)


def leading_silence(y: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    """``seconds`` of digital silence before the clip."""
    return np.concatenate([np.zeros(int(round(seconds * sr)), np.float32), np.asarray(y, dtype=np.float32)])


# -- training augmentations --------------------------------------------------------------------
def _noise(y, sr, rng, sources):
    colour = white_noise if rng.random() < 0.5 else pink_noise
    return mix_at_snr(y, colour(y.size, rng), rng.uniform(5.0, 30.0)), sr


def _babble(y, sr, rng, sources):
    noise = babble_noise(sources, y.size, rng, n_talkers=int(rng.integers(3, 8))) if len(sources) else pink_noise(y.size, rng)
    return mix_at_snr(y, noise, rng.uniform(5.0, 25.0)), sr


def _telephone(y, sr, rng, sources):
    band, out_sr = telephone_band(y, sr, low=rng.uniform(200.0, 400.0), high=rng.uniform(3200.0, 3600.0))
    return mix_at_snr(band, white_noise(band.size, rng), rng.uniform(20.0, 40.0)), out_sr


def _speed(factor: float) -> Callable:
    def transform(y, sr, rng, sources):
        return speed_perturb(y, sr, factor), sr
    return transform


#: Speed factors of the speed-perturbed copies: each is a new voice (pitch and formants shift
#: with the speed) at a new tempo. On RAVDESS (LDA, 5 speaker-grouped folds, with the noise,
#: babble and telephone copies) 0.9x and 1.1x took macro-F1 from about 0.565 to 0.595, adding
#: 0.85x and 1.15x to about 0.60.
SPEED_FACTORS = (0.85, 0.9, 1.1, 1.15)


#: name -> (transform, description). A transform takes ``(y, sr, rng, sources)`` where
#: ``sources`` are other clips of the same speaker (for babble), and returns ``(y, sr)``.
AUGMENTATIONS: dict[str, tuple[Callable, str]] = {
    "noise": (_noise, "white or pink noise at 5-30 dB SNR"),
    "babble": (_babble, "3-7 other clips of the same speaker summed, at 5-25 dB SNR"),
    "telephone": (_telephone, "telephone band (200-400 to 3200-3600 Hz, 8 kHz) with noise at 20-40 dB SNR"),
    **{f"speed_{f:g}": (_speed(f), f"{f:g}x speed ({'slower, lower' if f < 1 else 'faster, higher'} voice)")
       for f in SPEED_FACTORS},
}


def speed_copies(kinds: Iterable[str]) -> dict[str, float]:
    """The speed-perturbed copies among augmentation names (``speed_<factor>``), with their factors.

    Examples
    --------
    >>> speed_copies(["noise", "speed_0.9", "speed_1.1"])
    {'speed_0.9': 0.9, 'speed_1.1': 1.1}
    """
    return {k: float(k[len("speed_"):]) for k in kinds if k.startswith("speed_")}


#: The augmentations that mix other clips of the speaker in.
USES_SOURCES = frozenset({"babble"})
#: The ``augmentation`` value of a clip used as recorded (a manifest's original rows).
ORIGINAL = "none"


def augment(y: np.ndarray, sr: int, kind: str, *, rng: np.random.Generator,
            sources: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, int]:
    """Apply the training augmentation ``kind`` (a key of :data:`AUGMENTATIONS`).

    Examples
    --------
    >>> y = np.sin(np.arange(16000) / 5).astype(np.float32) * 0.3
    >>> noisy, sr = augment(y, 16000, "noise", rng=np.random.default_rng(0))
    >>> noisy.shape, sr
    ((16000,), 16000)
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; choose from {', '.join(AUGMENTATIONS)}")
    return AUGMENTATIONS[kind][0](np.asarray(y, dtype=np.float32), sr, rng, sources)


def _load_source(path: str, sr: int) -> np.ndarray | None:
    """Another clip of the speaker, to mix in; None (and a log line) when it cannot be used."""
    from ..audio import load_audio
    from ..exceptions import AudioError

    try:
        return load_audio(path, target_sr=sr, max_duration=None)
    except AudioError as exc:
        log.warning("babble source %s skipped: %s", path, exc)
        return None


@dataclass(frozen=True)
class AugmentedClip:
    """An augmented copy of an audio file, loaded on demand (what the feature manifest extracts).

    ``key`` (:meth:`cache_key`: the file's content hash, the augmentation and
    :data:`AUGMENTATION_VERSION`) seeds the random draw, which also depends on the number of
    ``sources``: with the same file and the same other clips of its speaker the copy is the same
    in every run and on every machine. (The feature manifest's cache key adds the sources'
    content hashes.) A source that cannot be decoded is skipped, so one bad clip does not spoil
    the copies of every other clip of its speaker.
    """

    path: str
    kind: str
    key: str
    sources: tuple[str, ...] = field(default=())  # other clips of the same speaker, for babble

    def __str__(self) -> str:
        return f"{self.path}#{self.kind}"

    def load(self, sr: int) -> tuple[np.ndarray, int]:
        from ..audio import load_audio

        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "little"))
        y = load_audio(self.path, target_sr=sr, max_duration=None)
        # Drawn for every kind, so that each kind's random stream (and its cached copy) stays the
        # same; only the kinds that mix other clips in pay for decoding them.
        chosen = rng.choice(len(self.sources), size=min(8, len(self.sources)), replace=False) if self.sources else []
        sources = [s for s in (_load_source(self.sources[i], sr) for i in chosen) if s is not None] if self.kind in USES_SOURCES else []
        return augment(y, sr, self.kind, rng=rng, sources=sources)

    @staticmethod
    def cache_key(sha256: str, kind: str) -> str:
        return f"{sha256}+{kind}@v{AUGMENTATION_VERSION}"
