"""Feature names in plain words: "f0_std" -> "pitch variability" (Hz), for sentences people read."""

from __future__ import annotations

import math
import re

__all__ = ["plain_label", "feature_unit", "format_value", "level_word", "sentence", "SPACE_UNITS"]

#: The unit of SHAP contributions in each output space, in words. Probability contributions are on
#: the 0-1 scale: "+0.032 probability points" was easily read as 0.032 percentage points.
SPACE_UNITS = {"probability": "probability (0-1 scale: 0.01 = 1 percentage point)",
               "log-odds": "logits (softmax scores)"}

# Longest prefix first wins; the rest of the name is a statistic (see _STAT_TEMPLATES).
_BASES: list[tuple[str, str]] = [
    ("f0_semitone", "pitch"), ("f0_velocity", "speed of pitch change"), ("f0_rise_fraction", "share of rising pitch"),
    ("f0_final_slope", "final pitch rise or fall"),
    ("f0_rel_delta", "pitch movement"), ("f0_rel", "relative pitch"), ("f0", "pitch"), ("voiced_fraction", "share of voiced speech"),
    ("hnr", "voice clarity"), ("voicing_strength", "voicing strength"),
    ("jitter_local", "pitch roughness"), ("jitter_ddp", "pitch roughness (DDP)"),
    ("shimmer_db", "loudness roughness"), ("shimmer_local", "relative loudness roughness"),
    ("h1_h2", "breathiness"), ("rms_db_delta", "loudness change"), ("rms_db", "loudness"),
    ("duration_s", "speech duration"), ("pause_ratio", "share of pauses"), ("pause_rate", "pause rate"),
    ("pause_mean_duration", "pause length"), ("voiced_segment_rate", "syllable rate"),
    ("voiced_segment_mean_duration", "syllable length"), ("energy_peak_rate", "speech rate"),
    ("spectral_centroid", "brightness"), ("spectral_bandwidth", "spectral spread"),
    ("spectral_rolloff50", "50% spectral roll-off"), ("spectral_rolloff85", "85% spectral roll-off"),
    ("spectral_flatness", "noisiness"), ("spectral_entropy", "spectral entropy"),
    ("spectral_flux", "spectral change"), ("spectral_slope_0_500", "spectral slope 0-500 Hz"),
    ("spectral_slope_500_1500", "spectral slope 0.5-1.5 kHz"), ("alpha_ratio", "low-to-high energy ratio"),
    ("hammarberg_index", "spectral tilt"), ("zcr", "zero-crossing rate"),
    ("level_rel_delta", "loudness movement"), ("level_rel_voiced", "loudness of voiced frames"),
    ("level_rel_unvoiced", "loudness of unvoiced frames"), ("level_rel", "relative loudness"),
    ("voicing_run_rate", "voicing switch rate"), ("voicing_run_mean_s", "voiced/unvoiced run length"),
    ("voicing_run_std_s", "voiced/unvoiced run length variability"),
    ("level", "loudness"),  # the frame level, a descriptor of the covariation group
]
_STAT_TEMPLATES = {
    "mean": "average {}", "std": "{} variability", "p10": "{}, 10th percentile", "p50": "median {}",
    "p90": "{}, 90th percentile", "range": "{} range", "skew": "{} skewness", "kurt": "{} peakedness",
    "slope": "{} trend",
    # the contour group's functionals
    "p01": "{}, 1st percentile", "p05": "{}, 5th percentile", "p25": "{}, 25th percentile",
    "p75": "{}, 75th percentile", "p95": "{}, 95th percentile", "p99": "{}, 99th percentile",
    "curvature": "{} arch", "residual_std": "{} wobble around its trend", "iqr": "{} interquartile range",
    "upper_fraction": "time {} spends near its top", "step_mean": "speed of {} change",
    "step_std": "variability of {} change",
}
_UNITLESS_STATS = ("skew", "kurt", "upper_fraction")
_DYNAMIC = [  # numbered families: (pattern, label template)
    (re.compile(r"^mfcc_(\d+)_delta"), "MFCC {} change"),
    (re.compile(r"^mfcc_(\d+)_unvoiced"), "MFCC {} (unvoiced frames)"),
    (re.compile(r"^mfcc_(\d+)_voiced"), "MFCC {} (voiced frames)"),
    (re.compile(r"^mfcc_(\d+)"), "MFCC {}"),
    (re.compile(r"^mel_(\d+)"), "mel band {} energy"),
    (re.compile(r"^contrast_(\d+)"), "spectral contrast band {}"),
    (re.compile(r"^chroma_([A-G]s?)"), "pitch class {} energy"),
]


_CORRELATION = re.compile(r"^corr_(.+)_vs_(.+)$")  # the covariation group: corr_<a>_vs_<b>


def _split(name: str) -> tuple[str, str]:
    """(base label, statistic) of a feature name."""
    m = _CORRELATION.match(name)
    if m:
        a, b = (_split(part)[0] for part in m.groups())
        return f"correlation of {a} with {b}", ""
    for pattern, template in _DYNAMIC:
        m = pattern.match(name)
        if m:
            tag = m.group(1)
            tag = tag.replace("s", "#") if template.startswith("pitch class") else str(int(tag))
            return template.format(tag), name[m.end():].lstrip("_")
    for prefix, label in _BASES:
        if name == prefix or name.startswith(prefix + "_"):
            return label, name[len(prefix):].lstrip("_")
    return name.replace("_", " "), ""


def plain_label(name: str) -> str:
    """Plain-words label of a feature.

    Examples
    --------
    >>> plain_label("f0_std"), plain_label("rms_db_p90"), plain_label("mfcc_03_delta_std")
    ('pitch variability', 'loudness, 90th percentile', 'MFCC 3 change variability')
    >>> plain_label("corr_mfcc_04_delta_vs_f0")
    'correlation of MFCC 4 change with pitch'
    """
    base, stat = _split(name)
    template = _STAT_TEMPLATES.get(stat)
    return template.format(base) if template else (f"{base} {stat}" if stat else base)


def feature_unit(name: str, description: str) -> str:
    """Unit of a feature's value, read from its description ("" when unitless).

    Examples
    --------
    >>> feature_unit("f0_std", "standard deviation of F0 (Hz) over voiced frames")
    'Hz'
    >>> feature_unit("f0_semitone_skew", "F0 in semitones above 27.5 Hz; skewness over frames")
    ''
    >>> feature_unit("corr_mfcc_03_delta_vs_f0", "correlation over speech frames between ... and F0 (semitones ...)")
    ''
    >>> feature_unit("f0_velocity_mean", "mean absolute F0 change between consecutive voiced frames (semitones per 10 ms)")
    'st/10 ms'
    >>> feature_unit("pause_rate", "pauses of at least 100 ms per second")
    '/s'
    """
    if _CORRELATION.match(name):  # a correlation has no unit, whatever its descriptors are measured in
        return ""
    stat = _split(name)[1]
    if stat in _UNITLESS_STATS:
        return ""
    if "semitones per second" in description:
        return "st/s"
    if "semitones per 10 ms" in description:  # the F0 velocity: frame to frame, 10 ms apart
        return "st/10 ms"
    if stat == "" and re.search(r"\bper second\b", description) and "slope" not in description:
        return "/s"  # a count per second: pause, syllable and speech rates
    if "semitones" in description:
        unit = "st"
    else:
        m = re.search(r"\((Hz|dB|s|dB/kHz)\)|\bin (dB|Hz)\b", description)
        unit = (m.group(1) or m.group(2)) if m else ""
    # Slopes per second (the shared functionals); the contour group's slope and arch are over the
    # utterance's normalised time, so they keep the contour's own unit.
    per_second = stat == "slope" and "over the utterance" not in description
    return f"{unit}/s" if unit and per_second else unit


def format_value(value: float) -> str:
    """Three significant figures, without scientific notation for everyday magnitudes.

    Examples
    --------
    >>> format_value(48.123), format_value(0.01234), format_value(1534.2)
    ('48.1', '0.0123', '1534')
    """
    if value is None or not math.isfinite(value):
        return str(value)
    a = abs(value)
    if a >= 100:
        return f"{value:.0f}"
    if a >= 1:
        return f"{value:.1f}"
    if a == 0:
        return "0"
    return f"{value:.3g}"


def level_word(value: float, q25: float, q75: float) -> str:
    """"high" above the training 75th percentile, "low" below the 25th, else "typical"."""
    if value > q75:
        return "high"
    if value < q25:
        return "low"
    return "typical"


def sentence(name: str, *, value: float, median: float, q25: float, q75: float, unit: str, target: str,
             towards: bool, relative: bool = False) -> str:
    """One line a person can read about one feature's push.

    ``relative`` is for a speaker-normalised model, whose features are differences from the
    speaker's average.

    Examples
    --------
    >>> sentence("f0_std", value=48.1, median=21.0, q25=15.0, q75=30.0, unit="Hz", target="angry", towards=True)
    'pitch variability high (f0_std = 48.1 Hz, typical 21.0) -> towards angry'
    >>> sentence("f0_std", value=12.5, median=0.2, q25=-5.0, q75=5.0, unit="Hz", target="angry", towards=True, relative=True)
    "pitch variability high for this speaker (f0_std = +12.5 Hz from the speaker's average, typical 0.2) -> towards angry"
    """
    u = f" {unit}" if unit else ""
    direction = "towards" if towards else "away from"
    shown = f"{'+' if relative and value > 0 else ''}{format_value(value)}{u}" + (" from the speaker's average" if relative else "")
    return (f"{plain_label(name)} {level_word(value, q25, q75)}{' for this speaker' if relative else ''} ({name} = {shown}, "
            f"typical {format_value(median)}) -> {direction} {target}")
