"""Generated emotional speech: a seeded source-filter synthesizer and a RAVDESS-shaped corpus.

The demo runs the whole pipeline on these files without downloading anything, and the test suite
uses them as its audio. An utterance is built the way a classical formant synthesizer builds it:

* a glottal source -- a Rosenberg pulse train whose period follows an intonation contour, with
  per-period jitter and shimmer, aspiration noise for breathiness and a one-pole spectral tilt;
* a vocal tract -- a cascade of 2nd-order resonators (formants) per vowel, cross-faded from
  syllable to syllable, scaled by the speaker's vocal-tract length;
* consonants -- band-passed noise (fricatives, stop bursts after a closure) between vowels;
* prosody -- 6-10 syllables with a declining F0 line, per-syllable pitch accents, a final rise or
  fall, syllable-level loudness and tempo, pauses, and 0.3-0.5 s of near-silence at both ends.

Each emotion moves these parameters the way acted emotional speech does in the literature
(Banse & Scherer 1996; Juslin & Laukka 2003): angry/happy/fearful/surprised speak higher and with
a wider range, sad/calm lower, narrower and slower; angry is loud and bright (pressed voice), sad
soft, dark and breathy; fearful fast, jittery and tremulous; disgust low, slow, falling and creaky;
surprised ends on a big rise. Speakers differ in pitch, timbre, tempo, level and how strongly they
express emotion, and every take varies at random, so a speaker-independent classifier on simple
features does clearly better than chance without being perfect.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.ndimage import uniform_filter1d

from .._atomic import atomic_path
from ._ravdess import EMOTIONS, scan_dataset

__all__ = [
    "GENERATED_SOURCE",
    "SyntheticSpeaker",
    "make_speakers",
    "synthesize_utterance",
    "generate_corpus",
    "make_tone",
    "make_noise",
    "write_audio",
]

log = logging.getLogger(__name__)

#: The ``data_source`` a bundle trained on this module's speech records (the demo's bundles): their
#: predictions on real recordings mean little, and the CLIs say so.
GENERATED_SOURCE = "generated speech (vibe_check.data.generate_corpus)"

_EMOTION_CODE = {name: code for code, name in EMOTIONS.items()}
_INTENSITY_CODE = {"normal": "01", "strong": "02"}
#: How far "strong" pushes an emotion's parameters away from neutral, relative to "normal".
_STRONG_GAIN = 1.6
#: Loudness of a neutral utterance's vowels, dBFS RMS; leaves ~15 dB headroom for angry/strong.
_REF_LEVEL_DB = -27.0
#: Room-noise floor under the whole clip, dBFS RMS (well below librosa's 35 dB trim threshold).
_NOISE_FLOOR_DB = -70.0
#: Rate of the control grid on which the F0 contour is built before interpolation, Hz.
_CTRL_RATE = 200.0

#: Male vowel formants (Hz), after Peterson & Barney / Hillenbrand averages; F4 is common.
_VOWELS: dict[str, tuple[float, float, float, float]] = {
    "i": (280.0, 2250.0, 2900.0, 3500.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0),
    "a": (730.0, 1100.0, 2440.0, 3400.0),
    "o": (570.0, 850.0, 2400.0, 3300.0),
    "u": (310.0, 880.0, 2250.0, 3300.0),
    "@": (500.0, 1500.0, 2500.0, 3500.0),
}
_BANDWIDTHS = (80.0, 100.0, 140.0, 200.0)
#: The two RAVDESS sentences as (onset consonant class, vowel) syllables.
_STATEMENTS: dict[int, tuple[tuple[str, str], ...]] = {
    # "Kids are talking by the door"
    1: (("stop", "i"), ("none", "a"), ("stop", "o"), ("stop", "i"), ("stop", "a"), ("weak", "@"), ("stop", "o")),
    # "Dogs are sitting by the door"
    2: (("stop", "o"), ("none", "a"), ("fric", "i"), ("stop", "i"), ("stop", "a"), ("weak", "@"), ("stop", "o")),
}
_CONSONANT_KINDS = ("stop", "fric", "weak", "none")
_CONSONANT_PROBS = (0.45, 0.2, 0.1, 0.25)


@dataclass(frozen=True)
class _Profile:
    """Prosodic and voice-quality settings of one emotion (or one rendered take).

    Pitch values are in semitones relative to the speaker's base F0; ``rate`` in syllables per
    second; ``loud_db`` relative to the reference level; ``bright`` from -1 (dark, soft voice) to
    +1 (bright, pressed); ``jitter``/``shimmer`` relative per-period perturbations; ``breath`` the
    aspiration-to-voice RMS ratio; ``formant_shift`` a relative shift of all formants (smiling
    raises them, a lax sad voice lowers them).
    """

    f0_st: float
    range_st: float
    decl_st: float
    final_st: float
    accent_prob: float
    rate: float
    pause_prob: float
    pause_s: float
    loud_db: float
    dyn_db: float
    bright: float
    jitter: float
    shimmer: float
    breath: float
    tremor_st: float
    creak: float
    formant_shift: float


# fmt: off
_PROFILES: dict[str, _Profile] = {
    #                  f0    range  decl  final  acc   rate  pause  p_s   loud  dyn   bright jit    shim  breath trem  creak fshift
    "neutral":   _Profile(0.0, 2.5, -2.0, -2.0, 0.45, 4.4, 0.10, 0.15, 0.0, 3.0, 0.0, 0.006, 0.04, 0.06, 0.0, 0.0, 0.00),
    "calm":      _Profile(-1.5, 1.4, -1.5, -1.5, 0.35, 3.7, 0.18, 0.22, -4.0, 1.5, -0.4, 0.005, 0.03, 0.14, 0.0, 0.0, -0.01),
    "happy":     _Profile(4.0, 6.0, -1.0, -1.0, 0.85, 4.9, 0.08, 0.12, 4.0, 5.0, 0.35, 0.007, 0.04, 0.05, 0.0, 0.0, 0.06),
    "sad":       _Profile(-2.0, 1.0, -2.5, -2.5, 0.25, 3.0, 0.35, 0.30, -7.0, 1.5, -0.75, 0.016, 0.08, 0.24, 0.15, 0.1, -0.03),
    "angry":     _Profile(5.0, 5.0, -3.0, -5.0, 0.70, 5.0, 0.06, 0.12, 8.0, 5.5, 0.90, 0.008, 0.06, 0.02, 0.0, 0.0, 0.04),
    "fearful":   _Profile(7.0, 3.5, -1.0, 1.5, 0.50, 5.8, 0.15, 0.12, 1.0, 3.0, 0.10, 0.020, 0.08, 0.20, 0.6, 0.0, 0.02),
    "disgust":   _Profile(-2.5, 3.5, -4.0, -5.0, 0.45, 3.4, 0.22, 0.25, 0.0, 4.0, -0.10, 0.015, 0.08, 0.08, 0.0, 0.6, -0.02),
    "surprised": _Profile(5.0, 7.0, 0.0, 9.0, 0.60, 4.5, 0.10, 0.15, 3.0, 5.0, 0.30, 0.007, 0.04, 0.08, 0.0, 0.0, 0.03),
}
# fmt: on
#: Parameters that scale multiplicatively, so emotion deviations are taken in the log domain.
_LOG_PARAMS = frozenset({"rate", "jitter", "shimmer", "breath", "pause_s"})


@dataclass(frozen=True)
class SyntheticSpeaker:
    """Voice of one synthetic actor.

    Parameters
    ----------
    id : int
        Actor number (1-99); odd is male, even female, as in RAVDESS.
    gender : str
        ``"male"`` or ``"female"``.
    base_f0 : float
        Typical (neutral) speaking F0 in Hz.
    formant_scale : float
        Formant frequency multiplier (shorter vocal tract = higher formants; ~1.15 for women).
    tilt : float
        Added to the emotion's brightness (-1 dark ... +1 bright).
    breathiness : float
        Added to the aspiration-to-voice ratio.
    jitter_scale, shimmer_scale : float
        Multipliers of the emotion's jitter and shimmer.
    rate_scale : float
        Multiplier of the speaking rate.
    loudness_db : float
        Recording/speaking level offset in dB.
    range_scale : float
        Multiplier of the pitch-accent range.
    expressiveness : float
        How far this actor moves away from neutral when acting an emotion (1 = as profiled).
    """

    id: int
    gender: str
    base_f0: float
    formant_scale: float
    tilt: float = 0.0
    breathiness: float = 0.0
    jitter_scale: float = 1.0
    shimmer_scale: float = 1.0
    rate_scale: float = 1.0
    loudness_db: float = 0.0
    range_scale: float = 1.0
    expressiveness: float = 1.0


def _speaker(actor: int, seed: int) -> SyntheticSpeaker:
    """Actor ``actor`` of the population drawn with ``seed`` (independent of how many are drawn)."""
    if not 1 <= actor <= 99:
        raise ValueError(f"speaker id must be 1-99 (RAVDESS actor numbers), got {actor}")
    rng = np.random.default_rng([_seed_entropy(seed), actor, 0x5BEA])
    male = actor % 2 == 1
    return SyntheticSpeaker(
        id=actor,
        gender="male" if male else "female",
        base_f0=float(rng.uniform(100.0, 130.0) if male else rng.uniform(190.0, 230.0)),
        formant_scale=float((1.0 if male else 1.15) * rng.uniform(0.95, 1.05)),
        tilt=float(rng.normal(0.0, 0.2)),
        breathiness=float(rng.uniform(0.0, 0.05) + (0.0 if male else 0.03)),
        jitter_scale=float(np.exp(rng.normal(0.0, 0.2))),
        shimmer_scale=float(np.exp(rng.normal(0.0, 0.2))),
        rate_scale=float(rng.uniform(0.88, 1.12)),
        loudness_db=float(rng.normal(0.0, 2.0)),
        range_scale=float(rng.uniform(0.8, 1.25)),
        expressiveness=float(rng.uniform(0.7, 1.3)),
    )


def make_speakers(n: int, *, seed: int = 0) -> list[SyntheticSpeaker]:
    """Draw ``n`` synthetic actors numbered 1..n, alternating male (odd) and female (even).

    Actor ``k`` depends only on ``k`` and ``seed``, so ``make_speakers(4)[:2] == make_speakers(2)``.

    Parameters
    ----------
    n : int
        Number of actors (1-99).
    seed : int, optional
        Seed of the speaker population.

    Returns
    -------
    list of SyntheticSpeaker

    Examples
    --------
    >>> spk = make_speakers(2)
    >>> [s.gender for s in spk]
    ['male', 'female']
    >>> 100 <= spk[0].base_f0 <= 130 and 190 <= spk[1].base_f0 <= 230
    True
    """
    if not 1 <= n <= 99:
        raise ValueError(f"n must be 1-99 (RAVDESS actor numbers are two digits), got {n}")
    return [_speaker(k, seed) for k in range(1, n + 1)]


# -- argument checks ------------------------------------------------------------------------------
def _seed_entropy(seed: int) -> int:
    # SeedSequence refuses negative entropy; fold any int into 64 bits instead.
    return int(seed) % (1 << 64)


def _emotion_name(emotion: str) -> str:
    key = str(emotion).strip().lower()
    key = EMOTIONS.get(key, key)  # accept RAVDESS codes such as "05"
    if key not in _PROFILES:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {list(_PROFILES)} or a code 01-08")
    return key


def _check_sr(sr: int) -> int:
    if int(sr) != sr or sr < 8000:
        raise ValueError(f"sr must be an integer sample rate of at least 8000 Hz, got {sr}")
    return int(sr)


def _check_duration(duration: float, minimum: float = 0.0) -> float:
    if not np.isfinite(duration) or duration <= minimum:
        raise ValueError(f"duration must be a finite number of seconds above {minimum}, got {duration}")
    return float(duration)


# -- per-take parameters ------------------------------------------------------------------------
def _take_profile(emotion: str, speaker: SyntheticSpeaker, intensity: str, rng: np.random.Generator) -> _Profile:
    """The emotion's profile, scaled by intensity and the actor's expressiveness, with take noise."""
    neutral, target = _PROFILES["neutral"], _PROFILES[emotion]
    gain = (_STRONG_GAIN if intensity == "strong" else 1.0) * speaker.expressiveness
    v = {}
    for f in fields(_Profile):
        a, b = getattr(neutral, f.name), getattr(target, f.name)
        if f.name in _LOG_PARAMS:
            v[f.name] = float(np.exp(np.log(a) + gain * (np.log(b) - np.log(a))))
        else:
            v[f.name] = a + gain * (b - a)
    # Take-to-take variation: an actor never says a sentence the same way twice.
    v["f0_st"] += rng.normal(0.0, 0.8)
    v["range_st"] = max(0.3, v["range_st"] * speaker.range_scale * np.exp(rng.normal(0.0, 0.15)))
    v["final_st"] += rng.normal(0.0, 0.8)
    v["rate"] *= speaker.rate_scale * np.exp(rng.normal(0.0, 0.06))
    v["loud_db"] += speaker.loudness_db + rng.normal(0.0, 1.2)
    v["bright"] = float(np.clip(v["bright"] + speaker.tilt + rng.normal(0.0, 0.1), -1.2, 1.2))
    v["jitter"] *= speaker.jitter_scale * np.exp(rng.normal(0.0, 0.15))
    v["shimmer"] *= speaker.shimmer_scale * np.exp(rng.normal(0.0, 0.15))
    v["breath"] = v["breath"] * np.exp(rng.normal(0.0, 0.2)) + speaker.breathiness
    v["accent_prob"] = float(np.clip(v["accent_prob"], 0.1, 0.95))
    v["pause_prob"] = float(np.clip(v["pause_prob"], 0.0, 0.8))
    v["creak"] = float(np.clip(v["creak"], 0.0, 1.0))
    v["tremor_st"] = max(0.0, v["tremor_st"])
    v["dyn_db"] = max(0.5, v["dyn_db"])
    return _Profile(**{k: float(x) for k, x in v.items()})


# -- timeline -------------------------------------------------------------------------------------
@dataclass
class _Syllable:
    consonant: str
    vowel: str
    accented: bool
    c_start: float = 0.0
    v_start: float = 0.0
    v_end: float = 0.0
    amp_db: float = 0.0


def _plan_syllables(p: _Profile, statement: int | None, rng: np.random.Generator) -> tuple[list[_Syllable], float]:
    """Syllables with their consonant/vowel timing (seconds from speech onset) and total length."""
    if statement is None:
        n = int(rng.integers(6, 11))
        cons = rng.choice(_CONSONANT_KINDS, size=n, p=_CONSONANT_PROBS)
        vowels = rng.choice(list(_VOWELS), size=n)
        text = list(zip(cons.tolist(), vowels.tolist()))
    else:
        text = list(_STATEMENTS[statement])
    n = len(text)
    accented = rng.random(n) < p.accent_prob
    if not accented.any():
        accented[rng.integers(n)] = True
    # Consonants shorten less than vowels when speaking fast.
    c_scale = np.sqrt(4.4 / p.rate)
    syl_len = (1.0 / p.rate) * np.exp(rng.normal(0.0, 0.15, n)) * np.where(accented, 1.2, 0.92)
    syl_len[-1] *= 1.35  # phrase-final lengthening
    sylls, t = [], 0.0
    for i, (c, v) in enumerate(text):
        c_len = {"stop": 0.055, "fric": 0.085, "weak": 0.045, "none": 0.0}[c] * c_scale * rng.uniform(0.8, 1.2)
        v_len = max(syl_len[i] - c_len, 0.07)
        s = _Syllable(c, v, bool(accented[i]), c_start=t, v_start=t + c_len, v_end=t + c_len + v_len)
        level = p.dyn_db * (rng.uniform(0.5, 1.0) if s.accented else -rng.uniform(0.0, 0.5))
        s.amp_db = level - 2.5 * i / max(n - 1, 1)  # energy declines over the phrase
        if i == n - 1 and p.final_st > 0:
            s.amp_db += p.final_st / 3  # a final rise (question, surprise) is said with effort
        sylls.append(s)
        t = s.v_end
        if i < n - 1 and rng.random() < p.pause_prob:
            t += p.pause_s * float(np.exp(rng.normal(0.0, 0.3)))
    return sylls, t + 0.03


def _scale_timeline(sylls: list[_Syllable], factor: float) -> None:
    for s in sylls:
        s.c_start *= factor
        s.v_start *= factor
        s.v_end *= factor


def _f0_contour(
    p: _Profile, speaker: SyntheticSpeaker, sylls: list[_Syllable], t_total: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz and a creak mask (0..1), both on the control grid."""
    t = np.arange(int(np.ceil(t_total * _CTRL_RATE)) + 1) / _CTRL_RATE
    st = p.f0_st + p.decl_st * (t / t_total - 0.5)
    centers = np.array([(s.v_start + s.v_end) / 2 for s in sylls])
    widths = np.array([0.45 * (s.v_end - s.v_start) for s in sylls])
    heights = np.array([p.range_st * (rng.uniform(0.6, 1.2) if s.accented else rng.uniform(-0.3, 0.2)) for s in sylls])
    st = st + (heights[:, None] * np.exp(-0.5 * ((t[None, :] - centers[:, None]) / widths[:, None]) ** 2)).sum(0)
    last = sylls[-1]
    # Smoothstep into the final rise or fall, reached before the vowel fades out.
    ramp = np.clip((t - last.v_start) / (0.75 * (last.v_end - last.v_start)), 0.0, 1.0)
    st += p.final_st * ramp * ramp * (3 - 2 * ramp)
    st += p.tremor_st * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t + rng.uniform(0, 2 * np.pi))
    drift = uniform_filter1d(rng.standard_normal(t.size), size=max(3, int(0.15 * _CTRL_RATE)), mode="nearest")
    st += 0.4 * drift / (drift.std() + 1e-9)
    # Creaky (vocal-fry) stretches: second half of the last vowel, and of others at random.
    creak = np.zeros_like(t)
    for i, s in enumerate(sylls):
        if rng.random() < p.creak * (1.0 if i == len(sylls) - 1 else 0.3):
            mid = s.v_start + 0.4 * (s.v_end - s.v_start)
            creak = np.maximum(creak, np.clip((t - mid) / 0.04, 0.0, 1.0) * (t <= s.v_end + 0.03))
    f0 = speaker.base_f0 * 2.0 ** (st / 12.0) * (1.0 - 0.4 * creak)
    return np.clip(f0, 45.0, 600.0), creak


# -- source and filter ----------------------------------------------------------------------------
def _glottal_source(
    f0: np.ndarray, creak: np.ndarray, p: _Profile, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Radiated glottal flow (derivative of a Rosenberg pulse train) and the flow itself."""
    phase0 = np.cumsum(f0 / sr)
    n_periods = int(phase0[-1]) + 2
    at_pulse = np.minimum(np.searchsorted(phase0, np.arange(n_periods)), f0.size - 1)
    creak_k = creak[at_pulse]
    # Jitter as random pulse-timing offsets (in periods), interpolated so phase stays monotonic.
    sigma = p.jitter * (1.0 + 5.0 * creak_k) / 1.5
    offsets = np.clip(rng.standard_normal(n_periods) * sigma, -0.2, 0.2)
    phase = phase0 + np.interp(phase0, np.arange(n_periods), offsets)
    k = np.floor(phase).astype(np.int64)
    frac = phase - k
    k = np.clip(k, 0, n_periods - 1)
    # Shimmer (log-normal per period) and diplophonic alternation in creak.
    amp = np.exp(rng.standard_normal(n_periods) * p.shimmer * (1.0 + 2.0 * creak_k))
    amp *= 1.0 + 0.45 * creak_k * (1 - 2 * (np.arange(n_periods) % 2))
    # Pressed voice closes faster (short Tn): more high-frequency energy.
    tp = 0.40 - 0.04 * p.bright
    tn = float(np.clip(0.16 - 0.07 * p.bright, 0.05, 0.3))
    flow = np.where(
        frac < tp,
        0.5 * (1.0 - np.cos(np.pi * frac / tp)),
        np.where(frac < tp + tn, np.cos(0.5 * np.pi * (frac - tp) / tn), 0.0),
    )
    flow *= amp[k]
    return np.diff(flow, prepend=0.0), flow


def _resonator_sos(formants: Sequence[float], bandwidths: Sequence[float], sr: int) -> np.ndarray:
    """Cascade of unity-DC-gain 2-pole resonators (Klatt-style), one SOS row per formant."""
    rows = []
    for f, bw in zip(formants, bandwidths):
        if f >= 0.45 * sr:  # a formant above Nyquist cannot be rendered
            continue
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2.0 * r * np.cos(2 * np.pi * f / sr), r * r
        rows.append([1.0 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.array(rows)


@lru_cache(maxsize=64)
def _noise_band_sos(kind: str, sr: int) -> np.ndarray:
    lo, hi = {"fric": (3800.0, 7500.0), "stop": (1500.0, 6000.0), "weak": (1000.0, 5000.0)}[kind]
    hi = min(hi, 0.45 * sr)
    lo = min(lo, 0.6 * hi)
    from scipy.signal import butter  # scipy.signal is imported where used: it costs every CLI command 1 s

    return butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")


def _raised_cosine_envelope(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    if release:
        env[n - release :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, release + 1) / release)
    return env


def _consonants(sylls: list[_Syllable], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unvoiced noise for every onset consonant: a closure then a burst for stops, frication else."""
    from scipy.signal import sosfilt

    out = np.zeros(n)
    for s in sylls:
        if s.consonant == "none":
            continue
        a, b = int(s.c_start * sr), min(int(s.v_start * sr), n)
        if s.consonant == "stop":
            a = a + int(0.6 * (b - a))  # silent closure first, then a short burst
        if b - a < 8:
            continue
        noise = sosfilt(_noise_band_sos(s.consonant, sr), rng.standard_normal(b - a))
        noise /= noise.std() + 1e-12
        rel_db = {"stop": -8.0, "fric": -12.0, "weak": -22.0}[s.consonant]
        env = _raised_cosine_envelope(b - a, int(0.01 * sr), int(0.008 * sr))
        if s.consonant == "stop":
            env *= np.exp(-np.arange(b - a) / (0.006 * sr))
        out[a:b] = noise * env * 10 ** ((rel_db + s.amp_db) / 20)
    return out


def _vocal_tract(
    source: np.ndarray, sylls: list[_Syllable], speaker: SyntheticSpeaker, p: _Profile, sr: int
) -> np.ndarray:
    """Filter the voiced signal through each vowel used and cross-fade between them."""
    from scipy.signal import sosfilt

    n = source.size
    half = max(2, int(0.025 * sr))  # cross-fade half-width
    size = 2 * half + 1
    scale = speaker.formant_scale * (1.0 + p.formant_shift)
    bws = [bw * (1.0 + 1.5 * max(p.breath - 0.06, 0.0)) for bw in _BANDWIDTHS]  # breathy = damped
    # Each vowel owns the span from its onset consonant to the next syllable's onset; the spans
    # tile the utterance, so their smoothed indicator functions still sum to one.
    starts = [0] + [int(s.c_start * sr) for s in sylls[1:]]
    ends = starts[1:] + [n]
    out = np.zeros(n)
    for s, a, b in zip(sylls, starts, ends):
        lo, hi = max(a - half - 1, 0), min(b + half + 1, n)
        box = np.zeros(hi - lo)
        box[a - lo : b - lo] = 1.0
        weight = uniform_filter1d(box, size=size, mode="nearest")
        sos = _resonator_sos([f * scale for f in _VOWELS[s.vowel]], bws, sr)
        out[lo:hi] += weight * sosfilt(sos, source[lo:hi])
    return out


# -- public API -----------------------------------------------------------------------------------
def synthesize_utterance(
    emotion: str,
    *,
    speaker: SyntheticSpeaker | int = 1,
    sr: int = 16000,
    seed: int = 0,
    duration: float | None = None,
    intensity: str = "normal",
    statement: int | None = None,
) -> np.ndarray:
    """Synthesize one speech-like utterance acted with ``emotion``.

    Parameters
    ----------
    emotion : str
        One of the 8 RAVDESS emotions (``"neutral"``, ``"calm"``, ``"happy"``, ``"sad"``,
        ``"angry"``, ``"fearful"``, ``"disgust"``, ``"surprised"``) or its code ``"01"``-``"08"``.
    speaker : SyntheticSpeaker or int, optional
        The voice, or an actor number drawn as by ``make_speakers(..., seed=0)``.
    sr : int, optional
        Sample rate in Hz (at least 8000).
    seed : int, optional
        Seed of the take; the same arguments always give bit-identical samples.
    duration : float, optional
        Total length in seconds; the speech is time-scaled to fit. Default: natural length
        (typically 2.5-4 s, depending on the emotion's tempo and pauses).
    intensity : {"normal", "strong"}, optional
        ``"strong"`` exaggerates the emotion's deviation from neutral.
    statement : {1, 2}, optional
        Follow the syllable structure of RAVDESS sentence 1 or 2 (7 syllables); default: a
        random sequence of 6-10 syllables.

    Returns
    -------
    np.ndarray
        Mono float32 samples in [-1, 1], with 0.3-0.5 s of near-silence at both ends.

    Examples
    --------
    >>> y = synthesize_utterance("angry", speaker=2, seed=1)
    >>> y.dtype, y.ndim, bool(abs(y).max() <= 1.0)
    (dtype('float32'), 1, True)
    >>> bool((y == synthesize_utterance("angry", speaker=2, seed=1)).all())
    True
    """
    from scipy.signal import lfilter  # imported where used, as in the filters above

    emo = _emotion_name(emotion)
    sr = _check_sr(sr)
    intensity = {"01": "normal", "02": "strong"}.get(str(intensity), str(intensity).lower())
    if intensity not in _INTENSITY_CODE:
        raise ValueError(f"intensity must be 'normal' or 'strong', got {intensity!r}")
    if statement is not None and statement not in _STATEMENTS:
        raise ValueError(f"statement must be 1, 2 or None, got {statement!r}")
    spk = speaker if isinstance(speaker, SyntheticSpeaker) else _speaker(int(speaker), 0)
    rng = np.random.default_rng(
        [_seed_entropy(seed), spk.id, int(_EMOTION_CODE[emo]), int(_INTENSITY_CODE[intensity]), statement or 0]
    )

    p = _take_profile(emo, spk, intensity, rng)
    sylls, t_speech = _plan_syllables(p, statement, rng)
    lead, trail = rng.uniform(0.3, 0.5, size=2)
    if duration is not None:
        duration = _check_duration(duration, minimum=0.2)
        # Short clips keep proportionally shorter silences (each at most a quarter of the clip).
        lead, trail = min(lead, 0.25 * duration), min(trail, 0.25 * duration)
        target = duration - lead - trail
        _scale_timeline(sylls, target / t_speech)
        t_speech = target
    n_speech = int(round(t_speech * sr))

    f0_ctrl, creak_ctrl = _f0_contour(p, spk, sylls, t_speech, rng)
    t_ctrl = np.arange(f0_ctrl.size) / _CTRL_RATE
    t = np.arange(n_speech) / sr
    f0, creak = np.interp(t, t_ctrl, f0_ctrl), np.interp(t, t_ctrl, creak_ctrl)

    voice, flow = _glottal_source(f0, creak, p, sr, rng)
    # Spectral tilt: a one-pole low-pass, strong for a soft dark voice, light for a pressed one.
    a = float(np.clip(0.5 - 0.4 * p.bright, 0.02, 0.9))
    voice = lfilter([1.0 - a], [1.0, -a], voice)
    aspiration = np.diff(rng.standard_normal(n_speech + 1)) * (0.3 + flow)  # pitch-synchronous
    voice_rms = np.sqrt(np.mean(voice**2)) + 1e-12
    aspiration *= p.breath * voice_rms / (np.sqrt(np.mean(aspiration**2)) + 1e-12)

    envelope = np.zeros(n_speech)
    for s in sylls:
        i0, i1 = int(s.v_start * sr), min(int(s.v_end * sr), n_speech)
        if i1 - i0 > 4:
            env = _raised_cosine_envelope(i1 - i0, int(0.025 * sr), int(0.045 * sr))
            envelope[i0:i1] = np.maximum(envelope[i0:i1], env * 10 ** (s.amp_db / 20))
    speech = _vocal_tract((voice + aspiration) * envelope, sylls, spk, p, sr)
    active = envelope > 0.3 * envelope.max()
    speech /= np.sqrt(np.mean(speech[active] ** 2)) + 1e-12
    speech += _consonants(sylls, n_speech, sr, rng)
    speech *= 10 ** ((_REF_LEVEL_DB + p.loud_db) / 20)

    n_lead = int(round(lead * sr))
    n_total = int(round(duration * sr)) if duration is not None else n_lead + n_speech + int(round(trail * sr))
    y = rng.standard_normal(n_total) * 10 ** (_NOISE_FLOOR_DB / 20)
    y[n_lead : n_lead + n_speech] += speech[: n_total - n_lead]
    peak = np.abs(y).max()
    if peak > 0.9:  # soft limiter instead of hard clipping for the loudest takes
        y = 0.99 * np.tanh(y / 0.99)
    return y.astype(np.float32)


def make_tone(freq: float = 220.0, *, duration: float = 1.0, sr: int = 16000, amplitude: float = 0.5) -> np.ndarray:
    """A pure sine tone, float32 mono.

    Examples
    --------
    >>> y = make_tone(440.0, duration=0.5, sr=8000)
    >>> y.shape, y.dtype, round(float(y.max()), 2)
    ((4000,), dtype('float32'), 0.5)
    """
    sr = _check_sr(sr)
    duration = _check_duration(duration)
    if not 0 < freq < sr / 2:
        raise ValueError(f"freq must be between 0 and the Nyquist frequency {sr / 2} Hz, got {freq}")
    t = np.arange(int(round(duration * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_noise(*, duration: float = 1.0, sr: int = 16000, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """Seeded Gaussian white noise with RMS ``amplitude``, float32 mono clipped to [-1, 1].

    Examples
    --------
    >>> y = make_noise(duration=2.0, amplitude=0.1)
    >>> y.shape, round(float(y.std()), 2)
    ((32000,), 0.1)
    """
    sr = _check_sr(sr)
    duration = _check_duration(duration)
    rng = np.random.default_rng(_seed_entropy(seed))
    y = amplitude * rng.standard_normal(int(round(duration * sr)))
    return np.clip(y, -1.0, 1.0).astype(np.float32)


_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """Write audio atomically: to a hidden temporary file in the same folder, then rename.

    A reader (or a crashed writer) never sees a half-written file under the final name, and the
    temporary name has no audio extension, so a concurrent folder scan ignores it.

    Parameters
    ----------
    path : path-like
        Destination; the format follows the extension (``.wav``, ``.flac``, ``.ogg``). Missing
        parent folders are created.
    y : np.ndarray
        Samples, 1-D or ``(frames, channels)``; float samples are clipped to [-1, 1].
    sr : int
        Sample rate in Hz.
    subtype : str, optional
        libsndfile subtype, e.g. ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"`` (``"VORBIS"`` for OGG).

    Returns
    -------
    Path
        The written path.

    Examples
    --------
    >>> write_audio("tone.wav", make_tone(), 16000)  # doctest: +SKIP
    PosixPath('tone.wav')
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: unsupported extension; use one of {sorted(_FORMATS)}")
    if not sf.check_format(fmt, subtype):
        raise ValueError(f"{path.name}: subtype {subtype!r} is not valid for {fmt} files")
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("audio samples must be finite (no NaN or inf)")
        y = np.clip(y, -1.0, 1.0)  # libsndfile would wrap out-of-range floats in integer PCM
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sf.write(tmp, y, int(sr), subtype=subtype, format=fmt)
    return path


def _clip_seed(seed: int, actor: int, emotion: str, intensity: str, statement: int, repetition: int) -> int:
    """A seed unique to one corpus file, so any file can be rendered alone (and in any order)."""
    entropy = [_seed_entropy(seed), actor, int(_EMOTION_CODE[emotion]), int(_INTENSITY_CODE[intensity]), statement]
    return int(np.random.SeedSequence([*entropy, repetition]).generate_state(1)[0])


def _render_clip(
    path: Path, speaker: SyntheticSpeaker, emotion: str, intensity: str, statement: int, repetition: int, sr: int, seed: int
) -> None:
    y = synthesize_utterance(
        emotion,
        speaker=speaker,
        sr=sr,
        seed=_clip_seed(seed, speaker.id, emotion, intensity, statement, repetition),
        intensity=intensity,
        statement=statement,
    )
    write_audio(path, y, sr)


#: (statement, repetition) pairs in the order ``takes`` adds them.
_TAKE_ORDER = ((1, 1), (2, 1), (1, 2), (2, 2))


def generate_corpus(
    out_dir: str | os.PathLike,
    *,
    n_speakers: int = 8,
    emotions: Sequence[str] | None = None,
    takes: int = 2,
    sr: int = 16000,
    seed: int = 0,
    fmt: str = "wav",
    n_jobs: int = 1,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Write a RAVDESS-shaped synthetic corpus and return its file table.

    Files are ``out_dir/Actor_XX/03-01-EE-II-SS-RR-AA.<fmt>``. Each (statement, repetition) take
    is rendered at normal and strong intensity, except neutral, which RAVDESS records at normal
    intensity only. Every file depends only on its own name and ``seed``, so runs are
    reproducible, parallel runs give identical files, and an interrupted run can be resumed.

    Parameters
    ----------
    out_dir : path-like
        Corpus root (created if missing).
    n_speakers : int, optional
        Actors 1..n (odd male, even female).
    emotions : sequence of str, optional
        Emotion names or codes; default all 8.
    takes : int, optional
        Number of (statement, repetition) combinations per emotion, 1-4: ``takes=2`` gives
        4 clips per emotion (2 for neutral) and actor, ``takes=4`` the full RAVDESS design (8).
    sr : int, optional
        Sample rate in Hz.
    seed : int, optional
        Seed of the speakers and of every take.
    fmt : {"wav", "flac"}, optional
        File format (16-bit PCM).
    n_jobs : int, optional
        Parallel worker processes (joblib); -1 uses all cores.
    overwrite : bool, optional
        Re-render files that already exist (default: skip them).

    Returns
    -------
    pandas.DataFrame
        ``scan_dataset(out_dir)[0]``: one row per audio file with its parsed metadata.

    Examples
    --------
    >>> files = generate_corpus("synthetic", n_speakers=2, takes=1)  # doctest: +SKIP
    >>> files.groupby("emotion").size()["angry"]  # doctest: +SKIP
    4
    """
    if not 1 <= takes <= len(_TAKE_ORDER):
        raise ValueError(f"takes must be 1-{len(_TAKE_ORDER)} (statement x repetition combinations), got {takes}")
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("wav", "flac"):
        raise ValueError(f"fmt must be 'wav' or 'flac', got {fmt!r}")
    sr = _check_sr(sr)
    names = [_emotion_name(e) for e in (emotions if emotions is not None else EMOTIONS.values())]
    out_dir = Path(out_dir)
    jobs = []
    for spk in make_speakers(n_speakers, seed=seed):
        for emo in dict.fromkeys(names):
            for intensity in ("normal",) if emo == "neutral" else ("normal", "strong"):
                for statement, rep in _TAKE_ORDER[:takes]:
                    name = (
                        f"03-01-{_EMOTION_CODE[emo]}-{_INTENSITY_CODE[intensity]}-"
                        f"{statement:02d}-{rep:02d}-{spk.id:02d}.{fmt}"
                    )
                    path = out_dir / f"Actor_{spk.id:02d}" / name
                    if overwrite or not path.exists():
                        jobs.append((path, spk, emo, intensity, statement, rep, sr, seed))
    log.info("synthesizing %d file(s) into %s", len(jobs), out_dir)
    if n_jobs != 1 and len(jobs) > 1:
        from joblib import Parallel, delayed

        Parallel(n_jobs=n_jobs)(delayed(_render_clip)(*job) for job in jobs)
    else:
        for job in jobs:
            _render_clip(*job)
    out_dir.mkdir(parents=True, exist_ok=True)
    return scan_dataset(out_dir)[0]
