"""The synthetic emotional-speech generator: determinism, audible emotion cues, corpus layout, learnability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from vibe_check.data import (
    EMOTIONS,
    SyntheticSpeaker,
    generate_corpus,
    make_noise,
    make_speakers,
    make_tone,
    scan_dataset,
    synthesize_utterance,
    write_audio,
)

librosa = pytest.importorskip("librosa")

SR = 16000
HOP = 256


def _voiced_track(y: np.ndarray, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 (semitones re 1 Hz) and RMS on the frames loud enough to be speech."""
    f0 = librosa.yin(y, fmin=60, fmax=600, sr=sr, frame_length=1024, hop_length=HOP)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=HOP)[0]
    active = rms > 0.1 * rms.max()
    return 12 * np.log2(f0[active]), rms[active]


def _cues(y: np.ndarray) -> dict[str, float]:
    """Measured prosodic cues of one clip: pitch level, final movement, level, speech duration."""
    st, rms = _voiced_track(y)
    rms_all = librosa.feature.rms(y=y, frame_length=1024, hop_length=HOP)[0]
    idx = np.flatnonzero(rms_all > 0.1 * rms_all.max())
    return {
        "f0": float(np.median(st)),
        "final": float(np.median(st[-max(3, st.size // 10) :]) - np.median(st[: st.size // 2])),
        "level_db": float(20 * np.log10(np.sqrt(np.mean(y**2)))),
        "speech_s": float((idx[-1] - idx[0]) * HOP / SR),
    }


def _mean_cues(emotion: str, speakers=(1, 2), seeds=(0, 1, 2), intensity="normal") -> dict[str, float]:
    cues = [
        _cues(synthesize_utterance(emotion, speaker=s, seed=k, intensity=intensity)) for s in speakers for k in seeds
    ]
    return {key: float(np.mean([c[key] for c in cues])) for key in cues[0]}


# -- the signal ----------------------------------------------------------------------------------
def test_same_seed_same_samples_other_seed_other_samples():
    a = synthesize_utterance("happy", speaker=3, seed=7)
    assert np.array_equal(a, synthesize_utterance("happy", speaker=3, seed=7))
    b = synthesize_utterance("happy", speaker=3, seed=8)
    assert a.shape != b.shape or not np.array_equal(a, b)


@pytest.mark.parametrize("emotion", list(EMOTIONS.values()))
def test_samples_are_clean_float32_in_range(emotion):
    y = synthesize_utterance(emotion, speaker=2, seed=1, intensity="strong")
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0
    assert 1.5 <= y.size / SR <= 6.5


def test_silence_at_both_ends_like_ravdess():
    y = synthesize_utterance("neutral", speaker=1, seed=0)
    edge = int(0.28 * SR)
    speech_rms = np.sqrt(np.mean(y**2))
    for part in (y[:edge], y[-edge:]):
        rms = np.sqrt(np.mean(part**2))
        assert rms < 1e-3 and rms < speech_rms / 100


@pytest.mark.parametrize("duration", [0.5, 1.0, 3.0, 5.0])
def test_duration_is_exact_when_asked(duration):
    y = synthesize_utterance("sad", duration=duration, seed=2)
    assert y.size == round(duration * SR)
    assert np.abs(y).max() > 0.01  # speech was squeezed in, not cut off


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_other_sample_rates(sr):
    y = synthesize_utterance("fearful", sr=sr, duration=2.0)
    assert y.size == 2 * sr and np.isfinite(y).all()


def test_random_syllable_sequences_and_ravdess_statements():
    takes = [synthesize_utterance("calm", seed=4, statement=s) for s in (None, 1, 2)]
    for i, a in enumerate(takes):
        assert a.size > 1.5 * SR
        for b in takes[i + 1 :]:
            assert a.size != b.size or not np.array_equal(a, b)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown emotion"):
        synthesize_utterance("bored")
    with pytest.raises(ValueError, match="intensity"):
        synthesize_utterance("sad", intensity="extreme")
    with pytest.raises(ValueError, match="statement"):
        synthesize_utterance("sad", statement=3)
    with pytest.raises(ValueError, match="sr"):
        synthesize_utterance("sad", sr=100)
    with pytest.raises(ValueError, match="speaker id"):
        synthesize_utterance("sad", speaker=0)


def test_emotion_codes_are_accepted():
    assert np.array_equal(synthesize_utterance("05", seed=1), synthesize_utterance("angry", seed=1))


# -- speakers ------------------------------------------------------------------------------------
def test_speakers_alternate_gender_and_are_stable():
    speakers = make_speakers(6, seed=3)
    assert [s.id for s in speakers] == [1, 2, 3, 4, 5, 6]
    assert [s.gender for s in speakers] == ["male", "female"] * 3
    assert all(100 <= s.base_f0 <= 130 for s in speakers[::2])
    assert all(190 <= s.base_f0 <= 230 for s in speakers[1::2])
    assert make_speakers(6, seed=3)[:2] == make_speakers(2, seed=3)
    assert make_speakers(2, seed=4) != make_speakers(2, seed=3)
    assert isinstance(speakers[0], SyntheticSpeaker)
    with pytest.raises(dataclasses.FrozenInstanceError):
        speakers[0].base_f0 = 1.0


def test_female_voices_are_higher_than_male():
    male = [_cues(synthesize_utterance("neutral", speaker=s, seed=0))["f0"] for s in (1, 3, 5)]
    female = [_cues(synthesize_utterance("neutral", speaker=s, seed=0))["f0"] for s in (2, 4, 6)]
    assert min(female) > max(male) + 6  # at least half an octave apart


# -- emotion cues, measured on the audio -------------------------------------------------------------
def test_angry_is_louder_and_higher_than_sad_for_each_speaker():
    for spk in (1, 2, 5):
        angry = _cues(synthesize_utterance("angry", speaker=spk, seed=0))
        sad = _cues(synthesize_utterance("sad", speaker=spk, seed=0))
        assert angry["level_db"] > sad["level_db"] + 6
        assert angry["f0"] > sad["f0"] + 2


def test_surprised_ends_on_a_rise_neutral_on_a_fall():
    surprised, neutral = _mean_cues("surprised"), _mean_cues("neutral")
    assert surprised["final"] > 2.0
    assert neutral["final"] < 0.0


def test_sad_is_slower_than_fearful():
    assert _mean_cues("sad")["speech_s"] > 1.3 * _mean_cues("fearful")["speech_s"]


def test_strong_intensity_exaggerates():
    normal = _mean_cues("angry", seeds=(0, 1))
    strong = _mean_cues("angry", seeds=(0, 1), intensity="strong")
    assert strong["level_db"] > normal["level_db"] + 2
    assert strong["f0"] > normal["f0"]


# -- test-audio helpers -------------------------------------------------------------------------
def test_tone_and_noise_helpers():
    tone = make_tone(440.0, duration=0.5, sr=8000, amplitude=0.25)
    assert tone.dtype == np.float32 and tone.size == 4000
    assert abs(float(np.abs(tone).max()) - 0.25) < 1e-3
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * 8000 / tone.size - 440.0) < 2.0
    noise = make_noise(duration=1.0, amplitude=0.1, seed=1)
    assert noise.size == SR and abs(float(noise.std()) - 0.1) < 0.01
    assert np.array_equal(noise, make_noise(duration=1.0, amplitude=0.1, seed=1))
    assert not np.array_equal(noise, make_noise(duration=1.0, amplitude=0.1, seed=2))
    with pytest.raises(ValueError):
        make_tone(9000.0, sr=16000)
    with pytest.raises(ValueError):
        make_noise(duration=0)


def test_write_audio_is_atomic_and_clips(tmp_path):
    y = np.array([0.0, 0.5, 2.0, -3.0], dtype=np.float32)
    out = write_audio(tmp_path / "sub" / "x.wav", y, SR)
    assert out == tmp_path / "sub" / "x.wav"
    back, sr = sf.read(out, dtype="float32")
    assert sr == SR and back.max() <= 1.0 and back.min() >= -1.0 and abs(back[1] - 0.5) < 1e-3
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.wav"]  # no temporary left behind
    write_audio(tmp_path / "x.flac", make_tone(), SR)
    assert sf.info(tmp_path / "x.flac").format == "FLAC"
    with pytest.raises(ValueError, match="extension"):
        write_audio(tmp_path / "x.mp4", y, SR)
    with pytest.raises(ValueError, match="finite"):
        write_audio(tmp_path / "nan.wav", np.array([np.nan]), SR)
    assert not (tmp_path / "nan.wav").exists()


# -- the corpus ---------------------------------------------------------------------------------
N_SPEAKERS, TAKES = 6, 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate_corpus(root, n_speakers=N_SPEAKERS, takes=TAKES, seed=0)


def test_corpus_layout_follows_ravdess(corpus):
    root, files = corpus
    per_actor = 7 * 2 * TAKES + TAKES  # neutral has no strong intensity
    assert len(files) == N_SPEAKERS * per_actor
    assert sorted(files.actor.unique()) == list(range(1, N_SPEAKERS + 1))
    assert set(files.emotion) == set(EMOTIONS.values())
    assert (files.gender == np.where(files.actor % 2 == 1, "male", "female")).all()
    assert set(files[files.emotion == "neutral"].intensity) == {"normal"}
    assert set(files[files.emotion == "angry"].intensity) == {"normal", "strong"}
    assert set(files.statement) == {1, 2} and set(files.repetition) == {1}
    for path, actor in zip(files.path, files.actor):
        assert f"Actor_{actor:02d}" in path
    info = sf.info(files.path.iloc[0])
    assert info.samplerate == SR and info.channels == 1 and info.subtype == "PCM_16"
    assert 2.0 <= np.mean([sf.info(p).duration for p in files.path[:40]]) <= 4.5
    assert scan_dataset(root)[1].empty
    assert not list(root.rglob("*.tmp"))


def test_corpus_is_idempotent(corpus):
    root, files = corpus
    before = {p: (root / p).stat().st_mtime_ns for p in files.path}
    again = generate_corpus(root, n_speakers=N_SPEAKERS, takes=TAKES, seed=0)
    assert list(again.path) == list(files.path)
    assert {p: (root / p).stat().st_mtime_ns for p in again.path} == before


def test_parallel_generation_gives_identical_files(tmp_path):
    kw = dict(n_speakers=2, emotions=["angry", "sad"], takes=1, seed=5)
    serial = generate_corpus(tmp_path / "a", n_jobs=1, **kw)
    parallel = generate_corpus(tmp_path / "b", n_jobs=2, **kw)
    assert list(serial.file) == list(parallel.file) and len(serial) == 8
    for a, b in zip(serial.path, parallel.path):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read()


def test_overwrite_rewrites_and_bad_options_are_refused(tmp_path):
    files = generate_corpus(tmp_path, n_speakers=1, emotions=["calm"], takes=1)
    path = files.path.iloc[0]
    first = sf.read(path)[0]
    with open(path, "wb") as f:
        f.write(b"corrupt")
    generate_corpus(tmp_path, n_speakers=1, emotions=["calm"], takes=1, overwrite=True)
    assert np.array_equal(sf.read(path)[0], first)
    with pytest.raises(ValueError, match="takes"):
        generate_corpus(tmp_path, takes=5)
    with pytest.raises(ValueError, match="fmt"):
        generate_corpus(tmp_path, fmt="mp3")
    with pytest.raises(ValueError, match="emotion"):
        generate_corpus(tmp_path, emotions=["bored"])


def _clip_features(path: str) -> np.ndarray:
    """Simple utterance statistics: MFCC mean/std, YIN F0 median/spread, RMS level/variation, length."""
    y, sr = sf.read(path, dtype="float32")
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=1024, hop_length=HOP)
    st, rms = _voiced_track(y, sr)
    return np.r_[
        mfcc.mean(1), mfcc.std(1), np.median(st), st.std(), np.log(rms.mean()), rms.std() / rms.mean(), y.size / sr
    ]


def test_emotions_are_learnable_across_speakers(corpus):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    _, files = corpus
    # Single-threaded BLAS: librosa's small mel products are ~100x slower when BLAS threads
    # compete for a few busy cores.
    with threadpool_limits(limits=1, user_api="blas"):
        X = np.array([_clip_features(p) for p in files.path])
    y = files.emotion.to_numpy(dtype=str)
    groups = files.actor.to_numpy(dtype=int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pred = cross_val_predict(model, X, y, groups=groups, cv=GroupKFold(n_splits=N_SPEAKERS))
    accuracy, macro_f1 = float(np.mean(pred == y)), float(f1_score(y, pred, average="macro"))
    print(f"speaker-independent accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f} (chance 0.125)")
    assert accuracy > 0.4 and macro_f1 > 0.4
    assert accuracy < 0.99  # emotions overlap like real speech; a perfect score would mean a leak
