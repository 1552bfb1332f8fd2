"""The feature layer: names, invariances, physical sanity on known signals, config hash, DataFrame API.

Audio is generated (tones, noise, the synthetic speaker), so every expectation below follows from
how the signal was made; the real corpus is used only for a plausibility check and is skipped
when absent.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soxr

from vibe_check.audio import load_audio
from vibe_check.data import babble_noise, make_noise, make_tone, mix_at_snr, synthesize_utterance, white_noise, write_audio
from vibe_check.exceptions import NoSpeechError, VibeCheckError
from vibe_check.features import (
    FEATURE_GROUPS,
    FUNCTIONALS,
    FeatureConfig,
    FeatureExtractor,
    _config,
    _contour,
    _covariation,
    _prosody,
    _spectral,
    cepstral_features,
    chroma_features,
    contour_features,
    contrast_features,
    covariation_features,
    describe_features,
    energy_features,
    estimate_snr,
    mel_features,
    pitch_track,
    power_spectrogram,
    prosody_features,
    spectral_features,
    summarize,
    timing_features,
    voice_quality_features,
)
from vibe_check.features._docs import render_feature_docs

SR = 16000
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "features.md"

#: Group -> (module, function) the extractor calls for it; patched below to see the raw outputs.
GROUP_FUNCTIONS = {
    "prosody": (_prosody, "prosody_features"),
    "voice_quality": (_prosody, "voice_quality_features"),
    "energy": (_spectral, "energy_features"),
    "timing": (_prosody, "timing_features"),
    "contour": (_contour, "contour_features"),
    "spectral": (_spectral, "spectral_features"),
    "contrast": (_spectral, "contrast_features"),
    "cepstral": (_spectral, "cepstral_features"),
    "mel": (_spectral, "mel_features"),
    "chroma": (_spectral, "chroma_features"),
    "covariation": (_covariation, "covariation_features"),
}


# -- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor()


@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    """One synthetic sentence (~2.5 s, peak ~0.2 so it can be amplified x3 without clipping)."""
    return synthesize_utterance("happy", speaker=2, seed=3, statement=1)


@pytest.fixture(scope="module")
def full_vector(extractor, utterance) -> pd.Series:
    return features_of(extractor, utterance)


@pytest.fixture(scope="module")
def emotion_spread(extractor) -> pd.Series:
    """Per-feature standard deviation across the 8 emotions of one speaker and sentence.

    This is the scale on which a feature carries emotion, so "close" for a nuisance change (a
    sample rate) means: small next to how much the emotions move the same feature.
    """
    rows = [features_of(extractor, synthesize_utterance(e, speaker=2, seed=3, statement=1)) for e in EMOTIONS]
    spread = pd.DataFrame(rows).std(ddof=0)
    assert (spread > 0).all(), "every feature should vary with emotion"
    return spread


@pytest.fixture
def group_outputs(monkeypatch) -> dict[str, dict[str, float]]:
    """Record the raw dict each group function returns while the extractor runs (group -> dict).

    The extractor picks values out of these dicts by name and replaces NaN/inf with 0, so only the
    raw dicts show an extra (silently dropped) key or a non-finite value being hidden.
    """
    seen: dict[str, dict[str, float]] = {}
    for group, (module, name) in GROUP_FUNCTIONS.items():
        original = getattr(module, name)

        def recording(*args, _original=original, _group=group, **kwargs):
            out = _original(*args, **kwargs)
            seen[_group] = dict(out)
            return out

        monkeypatch.setattr(module, name, recording)
    return seen


def features_of(extractor: FeatureExtractor, y: np.ndarray, sr: int = SR) -> pd.Series:
    return pd.Series(extractor.extract(y, sr), index=extractor.feature_names)


def names_of_group(table: pd.DataFrame, group: str) -> list[str]:
    return table.loc[table.group == group, "name"].tolist()


# -- names: described == computed ------------------------------------------------------------------
def test_every_group_has_a_function_under_test():
    assert set(GROUP_FUNCTIONS) == set(FEATURE_GROUPS)


def test_describe_features_table(extractor):
    table = describe_features()
    assert list(table.columns) == ["name", "group", "description"]
    assert table.name.is_unique
    assert (table.description.str.len() > 10).all()
    # Groups appear as contiguous blocks in FEATURE_GROUPS order (the vector's column order).
    assert list(dict.fromkeys(table.group)) == list(FEATURE_GROUPS)
    assert extractor.feature_names == table.name.tolist()
    assert extractor.feature_groups == dict(zip(table.name, table.group))
    pd.testing.assert_frame_equal(extractor.describe(), table)


SUBSETS = [
    *[(g,) for g in FEATURE_GROUPS],
    ("prosody", "mel"),
    ("chroma", "timing", "energy"),  # given out of order: the config must sort them
    tuple(FEATURE_GROUPS),
]


@pytest.mark.parametrize("groups", SUBSETS, ids=["+".join(s) if len(s) < len(FEATURE_GROUPS) else "all" for s in SUBSETS])
def test_extractor_computes_exactly_the_described_names(groups, utterance, full_vector, group_outputs):
    cfg = FeatureConfig(groups=groups)
    fx = FeatureExtractor(cfg)
    vec = fx.extract(utterance, SR)
    table = describe_features(cfg)

    assert fx.feature_names == table.name.tolist()
    assert vec.shape == (len(table),) and vec.dtype == np.float64
    assert list(dict.fromkeys(table.group)) == [g for g in FEATURE_GROUPS if g in groups]
    assert set(group_outputs) == set(groups), "only the configured groups should be computed"
    for group in groups:
        assert list(group_outputs[group]) == names_of_group(table, group), group
    # A group's values do not depend on which other groups are computed alongside it.
    np.testing.assert_allclose(vec, full_vector[fx.feature_names].to_numpy(), rtol=1e-12, atol=0)


def test_non_default_sizes_change_names_consistently(utterance, group_outputs):
    cfg = FeatureConfig(n_mfcc=13, n_mels=26, groups=("cepstral", "mel"))
    fx = FeatureExtractor(cfg)
    vec = fx.extract(utterance, SR)
    table = describe_features(cfg)
    assert len(vec) == len(table) == 13 * (9 + 3 + 2) + 26 * 2
    assert list(group_outputs["cepstral"]) == names_of_group(table, "cepstral")
    assert list(group_outputs["mel"]) == names_of_group(table, "mel")
    assert "mfcc_13_mean" in fx.feature_names and "mfcc_14_mean" not in fx.feature_names


def test_group_functions_standalone_match_descriptions(utterance):
    """Each plain group function, called on its own as documented, returns the described names."""
    table = describe_features()
    y = utterance
    S = power_spectrogram(y)
    f0, strength, voiced = pitch_track(y, SR)
    level = _spectral.rms_db(S)
    outputs = {
        "prosody": prosody_features(f0, voiced),
        "voice_quality": voice_quality_features(f0, strength, voiced, S),
        "energy": energy_features(y, SR),
        "timing": timing_features(level, voiced),
        "contour": contour_features(f0, voiced, level),
        "spectral": spectral_features(y, SR),
        "contrast": contrast_features(y, SR),
        "cepstral": cepstral_features(y, SR, voiced=voiced),
        "mel": mel_features(y, SR),
        "chroma": chroma_features(y, SR),
        "covariation": covariation_features(_spectral.log_mel(S), f0, voiced, level),
    }
    for group, out in outputs.items():
        assert list(out) == names_of_group(table, group), group
        assert np.isfinite(list(out.values())).all(), group
    # Computing from y or from a precomputed S gives the same numbers (one STFT can feed all).
    assert energy_features(S=S) == pytest.approx(outputs["energy"], rel=1e-9)
    assert list(cepstral_features(y, SR, n_mfcc=13)) == names_of_group(describe_features(FeatureConfig(n_mfcc=13)), "cepstral")


# -- no NaN/inf ------------------------------------------------------------------------------------
DEGENERATE = {
    "tone": lambda: make_tone(200.0, duration=1.0),
    "white_noise": lambda: make_noise(duration=1.0),
    "square_wave": lambda: 0.5 * np.sign(make_tone(150.0, duration=1.0)),
    "tone_with_dc": lambda: make_tone(200.0, duration=1.0) + 0.3,
    "short_tone_0.3s": lambda: make_tone(330.0, duration=0.3),
    "speech_in_silence": lambda: np.concatenate([np.zeros(SR), synthesize_utterance("sad", seed=5), np.zeros(SR)]),
}


@pytest.mark.parametrize("kind", list(DEGENERATE))
def test_no_nan_or_inf_even_before_the_safety_net(kind, extractor, group_outputs):
    y = np.asarray(DEGENERATE[kind](), dtype=np.float32)
    vec = extractor.extract(y, SR)
    assert np.isfinite(vec).all()
    # The extractor zeroes NaN/inf as a last resort; no group should rely on that (it would turn
    # a bug into a plausible-looking 0).
    for group, out in group_outputs.items():
        bad = [k for k, v in out.items() if not np.isfinite(v)]
        assert not bad, f"{group} produced non-finite {bad[:5]}"


def test_real_clips_are_finite_and_plausible(ravdess_dir, extractor):
    rows = {}
    for actor in (1, 2):  # RAVDESS: odd actors are male, even female
        for path in sorted((ravdess_dir / f"Actor_{actor:02d}").glob("03-01-0?-01-01-01-*.flac")):
            rows[path.name] = pd.Series(extractor.extract_file(path), index=extractor.feature_names)
    table = pd.DataFrame(rows).T
    assert len(table) == 16, "expected 8 emotions x 2 actors"
    assert np.isfinite(table.to_numpy()).all()
    assert table.f0_mean.between(70, 450).all()
    assert table.duration_s.between(1.0, 5.0).all()
    male = table[table.index.str.endswith("-01.flac")].f0_mean.median()
    female = table[table.index.str.endswith("-02.flac")].f0_mean.median()
    assert female > 1.3 * male
    # Voiced frames are the loud ones in real speech.
    assert (table.corr_voicing_vs_level > 0.2).all()


def test_real_speech_keeps_its_extent_under_babble_of_other_actors(ravdess_dir, extractor):
    """20 dB babble of six other RAVDESS actors: the speech found is the clean clip's, within the
    loud-core margin, not the whole clip (as with a threshold relative to the loudest frame)."""
    talkers = [load_audio(next((ravdess_dir / f"Actor_{a:02d}").glob("03-01-0[2-8]-0*.flac")), target_sr=16000)
               for a in (11, 12, 13, 14, 15, 16)]
    margin = extractor.config.speech_margin_s
    unbounded = FeatureExtractor(FeatureConfig(speech_anchor_db=None))
    for i, path in enumerate(sorted((ravdess_dir / "Actor_03").glob("03-01-0?-01-01-01-03.flac"))):
        y = load_audio(path, target_sr=16000)
        noisy = mix_at_snr(y, babble_noise(talkers, y.size, np.random.default_rng(i)), 20.0)
        clean_s = extractor.extract_with_info(y, 16000)[1].speech_duration_s
        noisy_s = extractor.extract_with_info(noisy, 16000)[1].speech_duration_s
        assert clean_s - 0.1 <= noisy_s <= clean_s + 2 * margin + 0.05, (path.name, clean_s, noisy_s)
        assert unbounded.extract_with_info(noisy, 16000)[1].speech_duration_s > noisy_s + 0.5, path.name


# -- covariation -----------------------------------------------------------------------------------
def _ramp_inputs(n=60, seed=0):
    """Frames where pitch and level rise together and the mel spectrum is noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)
    f0 = 150.0 * 2.0 ** (t * 6 / 12)  # rises half an octave
    return rng.normal(size=(40, n)), f0, np.ones(n, bool), -30.0 + 10.0 * t


def test_covariation_reads_known_correlations():
    mel_db, f0, voiced, level = _ramp_inputs()
    out = covariation_features(mel_db, f0, voiced, level)
    assert out["corr_f0_vs_level"] == pytest.approx(1.0, abs=1e-9)
    assert covariation_features(mel_db, f0, voiced, -level)["corr_f0_vs_level"] == pytest.approx(-1.0, abs=1e-9)
    # Voicing does not vary (every frame voiced): it correlates 0 with everything, not NaN.
    assert all(v == 0.0 for k, v in out.items() if "voicing" in k)
    values = np.array(list(out.values()))
    assert np.isfinite(values).all() and (np.abs(values) <= 1.0).all()
    # Correlations ignore scale and offset: a gain on the level changes nothing.
    assert covariation_features(mel_db, f0, voiced, level + 17.0) == pytest.approx(out, abs=1e-12)
    n = 2 * 10 + 3  # MFCC 1-10, their deltas, pitch, voicing, level
    assert len(out) == n * (n - 1) // 2


def test_covariation_uses_speech_frames_only_and_degrades_to_zero():
    mel_db, f0, voiced, level = _ramp_inputs()
    active = np.ones(level.size, bool)
    active[:10] = False
    wild = level.copy()
    wild[:10] = np.random.default_rng(1).normal(0, 100, 10)  # pauses: would ruin the correlation
    assert covariation_features(mel_db, f0, voiced, wild, active=active)["corr_f0_vs_level"] == pytest.approx(1.0, abs=1e-9)
    assert covariation_features(mel_db, f0, voiced, wild)["corr_f0_vs_level"] < 0.9
    short = covariation_features(mel_db[:, :4], f0[:4], voiced[:4], level[:4])
    assert set(short.values()) == {0.0}, "4 frames say nothing about how descriptors co-vary"
    assert list(covariation_features(mel_db, f0, voiced, level, n_mfcc=5)) == names_of_group(
        describe_features(FeatureConfig(covariation_mfcc=5)), "covariation")


# -- contours relative to the utterance ------------------------------------------------------------
def _glide(semitones: np.ndarray, base_hz: float = 180.0) -> np.ndarray:
    return base_hz * 2.0 ** (semitones / 12.0)


def test_contour_reads_the_shape_of_a_known_melody():
    n = 301
    voiced, level = np.ones(n, bool), np.full(n, -20.0)
    rise = contour_features(_glide(np.linspace(0.0, 6.0, n)), voiced, level)
    fall = contour_features(_glide(np.linspace(6.0, 0.0, n)), voiced, level)
    arch = contour_features(_glide(6.0 * (1.0 - np.linspace(-1.0, 1.0, n) ** 2)), voiced, level)
    # A 6-semitone straight glide: its percentiles sit on the line, it has no arch and no residual.
    assert rise["f0_rel_p99"] - rise["f0_rel_p01"] == pytest.approx(0.98 * 6.0, rel=1e-6)
    assert rise["f0_rel_p25"] == pytest.approx(-1.5, abs=1e-9) and rise["f0_rel_p75"] == pytest.approx(1.5, abs=1e-9)
    assert rise["f0_rel_slope"] == pytest.approx(3.0, rel=1e-6)  # semitones from the middle to the end
    assert fall["f0_rel_slope"] == pytest.approx(-3.0, rel=1e-6)
    assert abs(rise["f0_rel_curvature"]) < 1e-9 and rise["f0_rel_residual_std"] < 1e-9
    assert rise["f0_rel_delta_mean"] == pytest.approx(6.0 / (n - 1), rel=1e-6)
    # Rising then falling: a negative arch and no overall slope.
    assert arch["f0_rel_curvature"] < -3.0 and abs(arch["f0_rel_slope"]) < 1e-9
    # A flat level gives zeros for its shape, not NaN.
    assert rise["level_rel_std"] == 0.0 and rise["level_rel_skew"] == 0.0 and rise["level_rel_upper_fraction"] == 0.0


def test_contour_ignores_register_gain_and_pauses():
    rng = np.random.default_rng(0)
    n = 400
    semis = np.cumsum(rng.normal(0, 0.3, n))
    voiced = rng.random(n) > 0.3
    level = -20.0 + np.cumsum(rng.normal(0, 0.5, n))
    base = contour_features(_glide(semis), voiced, level)
    # Another voice an octave up, recorded 12 dB louder: the same melody and dynamics.
    assert contour_features(_glide(semis, base_hz=360.0), voiced, level + 12.0) == pytest.approx(base, rel=1e-9, abs=1e-9)
    # Pauses (inactive frames) with wild values are left out.
    pad = 50
    f0_p = np.r_[_glide(semis), rng.uniform(80, 500, pad)]
    level_p = np.r_[level, rng.normal(-60, 30, pad)]
    voiced_p = np.r_[voiced, np.ones(pad, bool)]
    active = np.r_[np.ones(n, bool), np.zeros(pad, bool)]
    assert contour_features(f0_p, voiced_p, level_p, active=active) == pytest.approx(base, rel=1e-9, abs=1e-9)


def test_contour_voicing_runs_and_degenerate_input():
    voiced = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 10)  # 20 runs of 10 frames
    out = contour_features(np.full(200, 150.0), voiced, np.full(200, -20.0), hop_length=160, sr=16000)
    assert out["voicing_run_rate"] == pytest.approx(0.1)
    assert out["voicing_run_mean_s"] == pytest.approx(0.1) and out["voicing_run_std_s"] == pytest.approx(0.0)
    # No voiced frame at all, or a clip of 3 frames: every value defined (zeros for pitch).
    silent = contour_features(np.full(200, 150.0), np.zeros(200, bool), np.full(200, -20.0))
    assert np.isfinite(list(silent.values())).all()
    assert all(v == 0.0 for k, v in silent.items() if k.startswith("f0_rel"))
    tiny = contour_features(np.full(3, 150.0), np.ones(3, bool), np.full(3, -20.0))
    assert list(tiny) == names_of_group(describe_features(), "contour") and np.isfinite(list(tiny.values())).all()


# -- invariances -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gain", [0.1, 3.0])
def test_gain_invariance(gain, extractor, utterance, full_vector):
    scaled = utterance * np.float32(gain)
    assert np.abs(scaled).max() < 1.0, "the test needs an unclipped signal"
    vec = features_of(extractor, scaled)
    # After level normalisation the analysis sees the same samples up to float32 rounding
    # (~1e-7 relative), which moves percentiles and higher moments by ~1e-5 at most (measured
    # 5e-5). 1e-3 leaves margin, while any leak of the input level would show up on the dB scale
    # as a shift of 20*log10(gain) = -20 or +9.5 dB, orders of magnitude above the tolerance.
    pd.testing.assert_series_equal(vec, full_vector, check_exact=False, rtol=1e-3, atol=1e-4)


def test_stereo_equals_its_downmix(extractor, utterance):
    other = synthesize_utterance("sad", speaker=2, seed=4, statement=1)
    n = min(utterance.size, other.size)
    left, right = utterance[:n], other[:n]
    mono = ((left.astype(np.float64) + right) / 2).astype(np.float32)
    expected = extractor.extract(mono, SR)
    for stereo in (np.stack([left, right], axis=1), np.stack([left, right], axis=0)):  # soundfile / librosa layout
        np.testing.assert_allclose(extractor.extract(stereo, SR), expected, rtol=1e-6, atol=1e-9)
    # Sanity: the downmix is really a mix, not one channel.
    assert not np.allclose(extractor.extract(left, SR), expected, rtol=1e-2)


@pytest.fixture(scope="module")
def utterance_48k() -> np.ndarray:
    return synthesize_utterance("happy", speaker=2, seed=3, statement=1, sr=48000)


@pytest.fixture(scope="module")
def vector_16k(extractor, utterance_48k) -> pd.Series:
    return features_of(extractor, soxr.resample(utterance_48k, 48000, SR, quality="HQ"), SR)


@pytest.mark.parametrize("sr", [44100, 48000])
def test_high_sample_rates_give_the_16k_features(sr, extractor, utterance_48k, vector_16k, emotion_spread):
    y = utterance_48k if sr == 48000 else soxr.resample(utterance_48k, 48000, sr, quality="HQ")
    dist = (features_of(extractor, y, sr) - vector_16k).abs() / emotion_spread
    # Contrast band 5 (6.4 kHz - Nyquist) lies in the resamplers' transition band: its valley level
    # is the stop-band of whichever filter ran last, so it is excluded here (measured up to 1.9
    # spreads for 44.1 kHz). Everything else moves by under 2% of the emotion spread (measured).
    dist = dist[~dist.index.str.startswith("contrast_5_")]
    assert dist.median() < 1e-3
    # Spectral flatness is a geometric mean over all bins, so the near-empty top bins left after
    # noise subtraction weigh on it: it moves by up to 0.08 spreads (measured), still far below
    # what separates two emotions.
    flatness = dist.index.str.startswith("spectral_flatness_")
    assert dist[flatness].max() < 0.12, dist[flatness].nlargest(3)
    assert dist[~flatness].max() < 0.05, dist[~flatness].nlargest(5)


def test_8k_input_keeps_pitch_and_timing(extractor, utterance_48k, vector_16k, emotion_spread):
    vec = features_of(extractor, soxr.resample(utterance_48k, 48000, 8000, quality="HQ"), 8000)
    # Above 4 kHz there is nothing left, so spectral, mel, MFCC and even energy dynamics (which
    # lose the consonants' high-frequency energy) legitimately change; F0 and timing must not.
    assert vec.f0_mean == pytest.approx(vector_16k.f0_mean, rel=0.01)
    assert vec.duration_s == pytest.approx(vector_16k.duration_s, abs=0.02)
    assert vec.hnr_mean == pytest.approx(vector_16k.hnr_mean, abs=1.0)
    prosody = [n for n in extractor.feature_names if extractor.feature_groups[n] == "prosody"]
    dist = (vec[prosody] - vector_16k[prosody]).abs() / emotion_spread[prosody]
    assert dist.max() < 0.15, dist.nlargest(5)


# -- known signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("freq", [120.0, 200.0, 330.0])
def test_pure_tone_pitch_and_periodicity(freq, extractor):
    f = features_of(extractor, make_tone(freq, duration=1.0, amplitude=0.3))
    assert f.f0_mean == pytest.approx(freq, rel=0.01)
    assert f.f0_std < 0.01 * freq
    assert f.voiced_fraction > 0.95
    assert f.voicing_strength_mean > 0.95
    assert f.hnr_p50 > 20.0  # r > 0.99 means HNR = 10*log10(r/(1-r)) > 20 dB
    assert f.spectral_flatness_mean < 0.01  # all energy in one spectral peak


def test_white_noise_is_flat_and_unvoiced(extractor):
    # The flatness descriptor itself, on the raw spectrum: noise reduction would (rightly) take
    # most of a noise-only input away first.
    raw = FeatureExtractor(FeatureConfig(noise_reduction=False))
    noise = features_of(raw, make_noise(duration=1.0, amplitude=0.1))
    tone = features_of(raw, make_tone(200.0, duration=1.0))
    # A periodogram bin of white Gaussian noise is exponentially distributed, so the expected
    # geometric-over-arithmetic mean is exp(-Euler's gamma) = 0.56, far above any voiced sound.
    assert 0.4 < noise.spectral_flatness_mean < 0.7
    assert noise.spectral_flatness_mean > 50 * tone.spectral_flatness_mean
    noise = features_of(extractor, make_noise(duration=1.0, amplitude=0.1))
    assert noise.voicing_strength_mean < 0.3
    assert noise.voiced_fraction < 0.05
    assert noise.f0_mean == 0.0  # no voiced frame: the documented neutral value


def test_angry_is_higher_and_more_dynamic_than_sad(extractor):
    """Same speaker and sentence, three takes each: the synthesizer raises F0 by ~7 semitones and
    loudness dynamics (3.7x the syllable level swing, 1.7x the rate) from sad to angry."""
    def mean_features(emotion):
        return pd.DataFrame(
            [features_of(extractor, synthesize_utterance(emotion, speaker=1, seed=s, statement=1)) for s in range(3)]
        ).mean()

    angry, sad = mean_features("angry"), mean_features("sad")
    assert angry.f0_mean > 1.3 * sad.f0_mean
    assert angry.f0_semitone_p50 - sad.f0_semitone_p50 > 4.0
    assert angry.rms_db_delta_std > 1.2 * sad.rms_db_delta_std
    assert angry.rms_db_delta_range > 1.5 * sad.rms_db_delta_range


# -- the configuration -----------------------------------------------------------------------------
def _changed(value):
    """A different valid value for a config field (used to prove every field enters the hash)."""
    if value is None:
        return 30.0
    if isinstance(value, tuple):
        return value[:-1]
    if isinstance(value, int):
        return value + 1 if value != 16000 else 22050
    return value + 1.0


def test_config_hash_changes_with_every_field(monkeypatch):
    base = FeatureConfig()
    hashes = {"base": base.hash}
    for f in dataclasses.fields(FeatureConfig):
        hashes[f.name] = base.replace(**{f.name: _changed(getattr(base, f.name))}).hash
    monkeypatch.setattr(_config, "FEATURE_SET_VERSION", _config.FEATURE_SET_VERSION + 1)
    hashes["feature_set_version"] = base.hash
    assert len(set(hashes.values())) == len(hashes), hashes
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes.values())


def test_config_hash_is_stable():
    cfg = FeatureConfig()
    assert cfg.hash == FeatureConfig().hash
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg and FeatureConfig.from_dict(cfg.to_dict()).hash == cfg.hash
    assert FeatureConfig(groups=("mel", "prosody")).hash == FeatureConfig(groups=("prosody", "mel")).hash
    # Across processes and hash seeds (the hash keys caches and manifests on disk).
    code = "from vibe_check.features._config import FeatureConfig as C; print(C().hash, C(groups=('mel','energy')).hash)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == [cfg.hash, FeatureConfig(groups=("energy", "mel")).hash]


def test_config_saved_before_the_loud_core_bound_loads_without_it():
    """Bundles and manifests written before ``speech_anchor_db`` existed keep their features."""
    legacy = FeatureConfig(speech_anchor_db=None).to_dict()
    assert "speech_anchor_db" not in legacy and "speech_margin_s" not in legacy
    cfg = FeatureConfig.from_dict(legacy)
    assert cfg.speech_anchor_db is None and cfg.hash == FeatureConfig(speech_anchor_db=None).hash != FeatureConfig().hash


def test_config_without_a_spectral_floor_keeps_its_hash():
    """The floor is off by default and then absent from the definition: manifests, caches and
    bundles written before the option existed keep their hash."""
    assert "spectral_floor_db" not in FeatureConfig().to_dict()
    assert FeatureConfig.from_dict(FeatureConfig(spectral_floor_db=30.0).to_dict()).spectral_floor_db == 30.0
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()


def test_config_numbers_have_one_spelling():
    """30 and 30.0 (or a NumPy float) are one definition: one hash, one cache, one manifest."""
    assert FeatureConfig(spectral_floor_db=30).hash == FeatureConfig(spectral_floor_db=30.0).hash
    assert FeatureConfig(spectral_floor_db=np.float32(30)).hash == FeatureConfig(spectral_floor_db=30.0).hash
    assert FeatureConfig(fmin_f0=60, fmax_f0=600, trim_top_db=35).hash == FeatureConfig().hash
    assert type(FeatureConfig(spectral_floor_db=30).spectral_floor_db) is float
    # Every real-valued setting is normalised, including ones added later.
    real = {f.name for f in dataclasses.fields(FeatureConfig) if str(f.type).startswith("float")}
    assert real == set(_config._REAL_FIELDS)


def test_estimate_snr_is_the_extractors_figure_and_reads_the_background(extractor, utterance):
    rng = np.random.default_rng(0)
    pause = np.zeros(SR // 2, np.float32)
    y = np.concatenate([pause, utterance, pause])
    noisy = mix_at_snr(y, white_noise(y.size, rng), 20.0)
    for clip in (y, noisy):
        assert estimate_snr(clip, SR) == pytest.approx(extractor.extract_with_info(clip, SR)[1].snr_db)
    assert estimate_snr(y, SR) > 60 and 15 < estimate_snr(noisy, SR) < 30
    # Not the level: 20 dB quieter reads the same; resampled input is analysed at the config's rate.
    assert estimate_snr(noisy * 0.1, SR) == pytest.approx(estimate_snr(noisy, SR), abs=0.1)
    assert estimate_snr(soxr.resample(noisy, SR, 44100), 44100) == pytest.approx(estimate_snr(noisy, SR), abs=1.0)
    with pytest.raises(NoSpeechError, match="silent"):
        estimate_snr(np.zeros(SR, np.float32), SR)
    with pytest.raises(NoSpeechError, match="too short"):
        estimate_snr(noisy[:100], SR)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="speech_anchor_db"):
        FeatureConfig(speech_anchor_db=40.0)
    with pytest.raises(ValueError, match="spectral_floor_db"):
        FeatureConfig(spectral_floor_db=0.0)
    with pytest.raises(ValueError, match="speech_margin_s"):
        FeatureConfig(speech_margin_s=-0.1)
    with pytest.raises(ValueError, match=r"unknown feature groups \['pitch'\]"):
        FeatureConfig(groups=("prosody", "pitch"))
    with pytest.raises(ValueError, match="at least one"):
        FeatureConfig(groups=())
    with pytest.raises(ValueError, match="win_length"):
        FeatureConfig(win_length=1024)
    with pytest.raises(ValueError, match="fmin_f0"):
        FeatureConfig(fmin_f0=700.0)
    with pytest.raises(ValueError, match="covariation_mfcc"):
        FeatureConfig(n_mfcc=13, covariation_mfcc=20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FeatureConfig().n_fft = 1024  # type: ignore[misc]


# -- DataFrame API ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    files = {
        f"{emotion}.wav": write_audio(root / f"{emotion}.wav", synthesize_utterance(emotion, seed=1, duration=1.5), SR)
        for emotion in ("angry", "calm")
    }
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64)))
    files["corrupt.wav"] = corrupt
    return files


def test_process_file_returns_one_named_row(extractor, clip_files):
    path = clip_files["angry.wav"]
    df = extractor.process_file(path)
    assert df.shape == (1, len(extractor.feature_names))
    assert list(df.columns) == extractor.feature_names
    assert df.index.name == "file" and df.index[0] == str(path)
    assert (df.dtypes == np.float64).all()
    np.testing.assert_array_equal(df.iloc[0].to_numpy(), extractor.extract_file(path))
    assert 0.0 < df.at[str(path), "f0_mean"] < 600.0


def test_process_signal_matches_extract(extractor, utterance):
    df = extractor.process_signal(utterance, SR)
    assert df.shape == (1, len(extractor.feature_names)) and list(df.columns) == extractor.feature_names
    np.testing.assert_array_equal(df.iloc[0].to_numpy(), extractor.extract(utterance, SR))


def test_process_files_skips_and_records_a_corrupt_file(extractor, clip_files):
    paths = [clip_files["angry.wav"], clip_files["corrupt.wav"], clip_files["calm.wav"]]
    df = extractor.process_files(paths, errors="skip")
    assert df.index.tolist() == [str(paths[0]), str(paths[2])]
    assert list(df.columns) == extractor.feature_names
    np.testing.assert_array_equal(df.loc[str(paths[2])].to_numpy(), extractor.extract_file(paths[2]))
    assert list(extractor.failures_) == [str(paths[1])]
    assert "AudioDecodeError" in extractor.failures_[str(paths[1])]
    with pytest.raises(VibeCheckError, match="1 file"):
        extractor.process_files(paths, errors="raise")


# -- functionals -----------------------------------------------------------------------------------
def test_summarize_known_values():
    x = np.array([[1.0, 2.0, 4.0, 8.0, 5.0]])
    out = dict(zip(FUNCTIONALS, summarize(x, frame_rate=10.0)[0]))
    m = 4.0
    c = x[0] - m
    std = np.sqrt(np.mean(c**2))  # population (ddof=0) statistics, as in opensmile
    assert out["mean"] == pytest.approx(m)
    assert out["std"] == pytest.approx(std)
    assert out["p10"] == pytest.approx(1.4)  # linear interpolation at rank 0.4: 1 + 0.4 * (2 - 1)
    assert out["p50"] == pytest.approx(4.0)
    assert out["p90"] == pytest.approx(6.8)  # sorted [1, 2, 4, 5, 8]: 5 + 0.6 * (8 - 5)
    assert out["range"] == pytest.approx(6.8 - 1.4)
    assert out["skew"] == pytest.approx(np.mean(c**3) / std**3)
    assert out["kurt"] == pytest.approx(np.mean(c**4) / std**4 - 3.0)
    # least-squares slope of x over t = 0, 0.1, ..., 0.4 s, per second
    assert out["slope"] == pytest.approx(np.polyfit(np.arange(5) / 10.0, x[0], 1)[0])


def test_summarize_rows_subsets_and_degenerate_rows():
    x = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    out = summarize(x, frame_rate=100.0, functionals=("slope", "mean", "std", "skew", "kurt"))
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out[0, :2], [100.0, 1.5])  # one unit per 10 ms frame = 100 per s
    np.testing.assert_allclose(out[1], [0.0, 5.0, 0.0, 0.0, 0.0])  # constant: no NaN from 0/0
    assert summarize(np.array([[3.0]]), frame_rate=100.0).tolist() == [[0.0] * len(FUNCTIONALS)]


def test_summarize_ignores_nan_and_inf_frames_and_keeps_their_times():
    x = np.array(
        [
            [1.0, np.nan, 3.0, np.nan, 5.0],  # valid at t = 0, 2, 4 s: slope 1 per s, not 2
            [np.nan, 7.0, np.nan, np.nan, np.nan],  # one valid frame: zeros, never NaN
            [2.0, 2.0, np.inf, 4.0, 4.0],  # inf counts as missing too
            [1.0, 2.0, 3.0, 4.0, 5.0],  # complete rows are unaffected by the others' gaps
        ]
    )
    out = summarize(x, frame_rate=1.0, functionals=("mean", "p50", "slope"))
    np.testing.assert_allclose(out[0], [3.0, 3.0, 1.0])
    np.testing.assert_array_equal(out[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out[2, :2], [3.0, 3.0])
    np.testing.assert_allclose(out[3], [3.0, 3.0, 1.0])
    assert np.isfinite(out).all()


# -- generated reference ---------------------------------------------------------------------------
def test_committed_feature_docs_are_current():
    assert DOCS.is_file(), f"{DOCS} is missing; run: python -m vibe_check.features._docs docs/features.md"
    assert DOCS.read_text(encoding="utf-8") == render_feature_docs(), (
        "docs/features.md is stale; regenerate it with: python -m vibe_check.features._docs docs/features.md"
    )


def test_rendered_docs_list_every_feature_once():
    text = render_feature_docs()
    table = describe_features()
    for name in table.name:
        assert text.count(f"| `{name}` |") == 1, name
    for group in FEATURE_GROUPS:
        assert f"| [{group}](#{group}) | {len(names_of_group(table, group))} |" in text
    small = render_feature_docs(FeatureConfig(groups=("prosody",)))
    assert "mfcc_01_mean" not in small and "`f0_mean`" in small


def test_parallel_extraction_compiles_in_the_parent_before_workers_start(tmp_path, monkeypatch):
    # Workers compiling librosa's cached numba kernels at once can corrupt the cache for good
    # (numba issue 10128): the parent runs the extractor once first, and only for parallel runs.
    from vibe_check.features import _parallel

    path = write_audio(tmp_path / "a.wav", synthesize_utterance("happy", duration=1.5), 16000)
    calls = []
    real = FeatureExtractor.extract

    def spy(self, y, sr):
        calls.append(os.getpid())
        return real(self, y, sr)

    monkeypatch.setattr(FeatureExtractor, "extract", spy)
    monkeypatch.setattr(_parallel, "_WARM", set())
    fx = FeatureExtractor(FeatureConfig(groups=("prosody",)))
    _parallel.extract_many(fx, [path], n_jobs=1)
    assert calls == []  # sequential: nothing to warm (extract_file does not go through the spy)
    rows, failures = _parallel.extract_many(fx, [path, path], n_jobs=2)
    assert calls == [os.getpid()] and not failures and len(rows) == 1
    _parallel.extract_many(fx, [path, path], n_jobs=2)
    assert calls == [os.getpid()]  # once per definition and process
