"""CustomEmotionModel: inference from files, arrays, bytes and batches; every bad input refused clearly.

All audio is generated (synthesize_utterance / make_tone / make_noise / write_audio); the models
come from the session fixture ``trained_models`` (bundles trained on a generated corpus).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from vibe_check.cli import main
from vibe_check.data import make_noise, synthesize_utterance, write_audio
from vibe_check.exceptions import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioTooLongError,
    EmptyAudioError,
    InvalidAudioError,
    NoSpeechError,
)
from vibe_check.features import feature_columns
from vibe_check.models import CustomEmotionModel

RESULT_KEYS = {"emotion", "confidence", "probabilities", "duration_s", "speech_duration_s", "level_dbfs", "snr_db"}


def probs(result: dict) -> np.ndarray:
    return np.array(list(result["probabilities"].values()))


def assert_same_result(a: dict, b: dict, tol: float = 1e-9) -> None:
    """Equal up to float rounding (the same rows stacked with others can differ in the last bits)."""
    assert set(a) == set(b) and a["emotion"] == b["emotion"]
    assert list(a["probabilities"]) == list(b["probabilities"])
    np.testing.assert_allclose(probs(a), probs(b), rtol=0, atol=tol)
    for key in RESULT_KEYS - {"emotion", "probabilities"}:
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=tol), key


@pytest.fixture(scope="module")
def model(trained_models) -> CustomEmotionModel:
    return CustomEmotionModel(trained_models["best"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """Generated utterances written as 16-bit WAV, plus the samples as read back."""
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for name, emotion, seed in (("angry", "angry", 5), ("sad", "sad", 2), ("happy", "happy", 3)):
        path = write_audio(root / f"{name}.wav", synthesize_utterance(emotion, speaker=3, seed=seed), 16000)
        y, sr = sf.read(path, dtype="float32")
        out[name] = (path, y, sr)
    out["root"] = root
    return out


# -- results -----------------------------------------------------------------------------------
def test_predicts_corpus_clips_like_the_training_features(model, trained_models):
    manifest = trained_models["manifest"].sort_values("path").iloc[::11]  # 9 clips over actors and emotions
    results = [model.predict_emotion_from_file(p) for p in manifest["path"]]
    for res in results:
        assert set(res) == RESULT_KEYS
        assert list(res["probabilities"]) == model.classes_.tolist()
        assert sum(res["probabilities"].values()) == pytest.approx(1.0, abs=1e-9)
        assert res["emotion"] == max(res["probabilities"], key=res["probabilities"].get)
        assert res["confidence"] == max(res["probabilities"].values())
        assert 0 < res["speech_duration_s"] < res["duration_s"] < 10
        assert np.isfinite([res["level_dbfs"], res["snr_db"]]).all()
    # Inference extracts exactly what the manifest held at training time, so the probabilities
    # equal the model's output on the manifest rows.
    expected = model.predict_proba_features(manifest[feature_columns(manifest)].to_numpy())
    np.testing.assert_allclose(np.vstack([probs(r) for r in results]), expected, atol=1e-9)
    # The model has seen these clips: it gets most of them right.
    assert np.mean([r["emotion"] for r in results] == manifest["emotion"].to_numpy()) >= 0.6


def test_file_array_and_bytes_give_identical_results(model, clips):
    path, y, sr = clips["angry"]
    from_file = model.predict_emotion_from_file(path)
    assert model.predict_emotion_from_array(y, sr) == from_file
    assert model.predict_emotion_from_bytes(path.read_bytes()) == from_file
    assert model.predict_emotion_from_file(str(path)) == from_file


def test_stages_compose_to_the_same_result(model, clips):
    path = clips["sad"][0]
    y = model.decode(path)
    assert y.dtype == np.float32 and y.ndim == 1
    vector, info = model.features(y)
    assert vector.shape == (len(model.feature_names),)
    P = model.predict_proba_features(vector[None, :])
    assert P.shape == (1, len(model.classes_))
    assert model.result_from_proba(P[0], info) == model.predict_emotion_from_file(path)
    with pytest.raises(ValueError, match=str(len(model.feature_names))):
        model.predict_proba_features(vector[:10])


def test_different_clips_get_different_probabilities(model, clips):
    results = [model.predict_emotion_from_file(clips[k][0]) for k in ("angry", "sad", "happy")]
    P = np.vstack([probs(r) for r in results])
    assert np.abs(P[0] - P[1]).max() > 0.05 and np.abs(P[1] - P[2]).max() > 0.05
    assert results[0]["duration_s"] != results[1]["duration_s"]


# -- bad files ---------------------------------------------------------------------------------
def _truncated_wav(path: Path, src: Path) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_mp3(path: Path, src: Path) -> Path:
    y, sr = sf.read(src)
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="MP3", subtype="MPEG_LAYER_III")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 6 // 10])  # the header still announces it all
    return path


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda d, c: (d / "random.wav").write_bytes(np.random.default_rng(0).bytes(4000)) and d / "random.wav",
         AudioDecodeError, "could not be decoded"),
        (lambda d, c: _truncated_wav(d / "truncated.wav", c), AudioDecodeError, "truncated"),
        (lambda d, c: _truncated_mp3(d / "truncated.mp3", c), AudioDecodeError, "truncated"),
        (lambda d, c: (d / "header_only.wav").write_bytes(c.read_bytes()[:30]) and d / "header_only.wav",
         AudioDecodeError, "could not be decoded"),
        (lambda d, c: (d / "notes.txt").write_text("not audio\n" * 50) and d / "notes.txt", AudioDecodeError, "could not be decoded"),
        (lambda d, c: (d / "empty.wav").write_bytes(b"") or d / "empty.wav", EmptyAudioError, "empty"),
        (lambda d, c: d / "missing.wav", AudioFileNotFoundError, "no such audio file"),
        (lambda d, c: d, AudioDecodeError, "directory"),
    ],
    ids=["random-bytes", "truncated-wav", "truncated-mp3", "header-only", "text-file", "empty-file", "missing", "directory"],
)
def test_bad_files_raise_specific_errors(model, clips, tmp_path, make, error, words):
    path = make(tmp_path, clips["angry"][0])
    with pytest.raises(error, match=words):
        model.predict_emotion_from_file(path)
    if path.is_file():  # the same bytes uploaded give the same error
        with pytest.raises(error):
            model.predict_emotion_from_bytes(path.read_bytes())


def test_missing_file_is_also_a_file_not_found_error(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        model.predict_emotion_from_file(tmp_path / "nope.flac")


def test_empty_bytes(model):
    with pytest.raises(EmptyAudioError, match="0 bytes"):
        model.predict_emotion_from_bytes(b"")


def test_wrong_input_types(model, clips):
    with pytest.raises(InvalidAudioError, match="sample rate"):
        model.decode(clips["angry"][1])  # an array without its rate
    with pytest.raises(InvalidAudioError, match="bytes"):
        model.predict_emotion_from_bytes(str(clips["angry"][0]))
    with pytest.raises(InvalidAudioError, match="sample rate"):
        model.predict_emotion_from_array(clips["angry"][1], 0)
    for odd in ("16000", "abc", 1j, True, 16000.5):  # a rate is a whole number of Hz, not a string
        with pytest.raises(InvalidAudioError, match="sample rate"):
            model.predict_emotion_from_array(clips["angry"][1], odd)


# -- bad and unusual arrays --------------------------------------------------------------------
@pytest.mark.parametrize(
    "y, error, words",
    [
        (np.zeros(0, dtype=np.float32), EmptyAudioError, "no samples"),
        (np.array([0.1, np.nan, 0.2] * 8000, dtype=np.float32), InvalidAudioError, "NaN"),
        (np.array([0.1, np.inf, 0.2] * 8000), InvalidAudioError, "infinite"),
        (np.zeros((3, 4, 5)), InvalidAudioError, "1-D"),
        (np.array(["a", "b"]), InvalidAudioError, "numeric"),
    ],
    ids=["empty", "nan", "inf", "3-d", "strings"],
)
def test_bad_arrays_raise_specific_errors(model, y, error, words):
    with pytest.raises(error, match=words):
        model.predict_emotion_from_array(y, 16000)


def test_integer_pcm_is_scaled_by_its_range(model, clips):
    _, y, sr = clips["angry"]
    ref = model.predict_emotion_from_array(y, sr)
    i16 = np.round(y * 32767).astype(np.int16)
    i32 = np.round(y.astype(np.float64) * (2**31 - 1)).astype(np.int32)
    u8 = np.clip(np.round(y * 127 + 128), 0, 255).astype(np.uint8)
    for pcm, tol in ((i16, 1e-4), (i32, 1e-7), (u8, 1.5 / 128)):
        np.testing.assert_allclose(model.decode((pcm, sr)), y, atol=tol, err_msg=str(pcm.dtype))
    np.testing.assert_allclose(probs(model.predict_emotion_from_array(i16, sr)), probs(ref), atol=0.03)
    np.testing.assert_allclose(probs(model.predict_emotion_from_array(i32, sr)), probs(ref), atol=1e-5)
    # 8-bit quantisation noise (-48 dBFS) changes the features; the result equals that of the
    # same quantised signal given as centred floats.
    centred = (u8.astype(np.float32) - 128) / 128
    assert_same_result(model.predict_emotion_from_array(u8, sr), model.predict_emotion_from_array(centred, sr), tol=1e-6)


def test_stereo_is_downmixed(model, clips, tmp_path):
    _, left, sr = clips["angry"]
    right = 0.5 * np.roll(left, 400)  # a second microphone: quieter and later
    mono = ((left.astype(np.float64) + right) / 2).astype(np.float32)
    expected = probs(model.predict_emotion_from_array(mono, sr))
    frames_channels = np.stack([left, right], axis=1)
    np.testing.assert_allclose(probs(model.predict_emotion_from_array(frames_channels, sr)), expected, atol=1e-6)
    np.testing.assert_allclose(probs(model.predict_emotion_from_array(frames_channels.T, sr)), expected, atol=1e-6)  # librosa layout
    path = write_audio(tmp_path / "stereo.wav", frames_channels, sr, subtype="FLOAT")
    np.testing.assert_allclose(probs(model.predict_emotion_from_file(path)), expected, atol=1e-6)
    # The mix is not one channel (compared on features: a confident model's probabilities saturate).
    assert np.abs(model.extractor.extract(left, sr) - model.extractor.extract(mono, sr)).max() > 1e-3


@pytest.mark.parametrize("rate", [44100, 48000])
def test_high_sample_rates_are_resampled(model, clips, rate):
    _, y, sr = clips["angry"]
    ref = model.predict_emotion_from_array(y, sr)
    res = model.predict_emotion_from_array(soxr.resample(y, sr, rate), rate)
    assert res["duration_s"] == pytest.approx(ref["duration_s"], abs=1e-3)
    np.testing.assert_allclose(probs(res), probs(ref), atol=0.1)


def test_8khz_is_resampled(model, clips, tmp_path):
    # Telephone-band audio has nothing above 4 kHz, so it is compared with the 16 kHz clip
    # band-limited the same way; a model that ignored the rate would see a signal twice as fast.
    _, y, sr = clips["sad"]
    narrow = soxr.resample(y, sr, 8000)
    path = write_audio(tmp_path / "phone.wav", narrow, 8000, subtype="FLOAT")
    res = model.predict_emotion_from_file(path)
    band_limited = model.predict_emotion_from_array(soxr.resample(narrow, 8000, sr), sr)
    assert res["duration_s"] == pytest.approx(len(y) / sr, abs=1e-3)
    np.testing.assert_allclose(probs(res), probs(band_limited), atol=0.02)
    as_if_16k = model.predict_emotion_from_array(narrow, 16000)  # wrong rate: half the duration, other features
    assert as_if_16k["duration_s"] == pytest.approx(res["duration_s"] / 2, abs=1e-3)
    assert np.abs(probs(as_if_16k) - probs(res)).max() > 0.05


# -- no speech, too long ------------------------------------------------------------------------
def test_silence_is_refused_not_guessed(model, tmp_path):
    with pytest.raises(NoSpeechError, match="silent"):
        model.predict_emotion_from_array(np.zeros(32000, dtype=np.float32), 16000)
    path = write_audio(tmp_path / "silence.wav", np.zeros(32000, dtype=np.int16), 16000)
    with pytest.raises(NoSpeechError, match="silent"):
        model.predict_emotion_from_file(path)
    # Silence with a DC offset (a biased recording chain) is silence too, not a confident guess.
    biased = 0.01 + 1e-5 * np.random.default_rng(0).standard_normal(32000)
    with pytest.raises(NoSpeechError, match="silent"):
        model.predict_emotion_from_array(biased.astype(np.float32), 16000)
    path = write_audio(tmp_path / "offset.wav", np.full(32000, 200, dtype=np.int16), 16000)
    with pytest.raises(NoSpeechError, match="silent"):
        model.predict_emotion_from_file(path)


def test_too_short_clips_are_refused(model):
    with pytest.raises(NoSpeechError, match="too little sound"):
        model.predict_emotion_from_array(synthesize_utterance("happy", duration=0.3, seed=1), 16000)
    speech = synthesize_utterance("happy", seed=1)
    with pytest.raises(NoSpeechError, match="too short"):
        model.predict_emotion_from_array(speech[8000:8300], 16000)  # 19 ms


def test_long_file_refused_from_the_header(model, tmp_path):
    path = tmp_path / "two_hours.wav"
    block = np.zeros(8000 * 600, dtype=np.int16)  # 10 minutes at 8 kHz
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        for _ in range(12):
            f.write(block)
    del block
    assert path.stat().st_size > 100e6
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(AudioTooLongError, match=r"7200\.0 s.*maximum of 60 s"):
            model.predict_emotion_from_file(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 2e6, f"{peak / 1e6:.0f} MB allocated: the file was decoded"


def test_long_array_and_max_duration(trained_models, clips):
    short_limit = CustomEmotionModel(trained_models["paths"]["logreg"], max_duration=2.0)
    with pytest.raises(AudioTooLongError, match="maximum of 2 s"):
        short_limit.predict_emotion_from_file(clips["angry"][0])  # 2.5 s
    with pytest.raises(AudioTooLongError):
        short_limit.predict_emotion_from_array(make_noise(duration=3.0), 16000)
    unlimited = CustomEmotionModel(trained_models["paths"]["logreg"], max_duration=None)
    assert unlimited.predict_emotion_from_file(clips["angry"][0])["emotion"] in unlimited.classes_


def test_every_audio_error_is_one_family(model):
    with pytest.raises(AudioError):
        model.predict_emotion_from_array(np.zeros(0), 16000)
    with pytest.raises(ValueError):  # and a ValueError for generic handlers
        model.predict_emotion_from_array(np.zeros(0), 16000)


# -- batches -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batch_items(clips, tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    corrupt = d / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(200))
    angry, y_sad, sr = clips["angry"][0], clips["sad"][1], clips["sad"][2]
    items = [
        angry,                                  # 0 path
        str(d / "missing.wav"),                 # 1 missing
        clips["happy"][0].read_bytes(),         # 2 bytes
        (y_sad, sr),                            # 3 array
        str(corrupt),                           # 4 corrupt
        (np.zeros(16000, np.float32), 16000),   # 5 silence
        (soxr.resample(y_sad, sr, 44100), 44100),  # 6 another rate
        b"",                                    # 7 empty upload
    ]
    errors = {1: "AudioFileNotFoundError", 4: "AudioDecodeError", 5: "NoSpeechError", 7: "EmptyAudioError"}
    return items, errors


def test_predict_batch_keeps_order_and_reports_failures(model, clips, batch_items, monkeypatch):
    items, errors = batch_items
    calls = []
    real = model.pipeline.predict_proba
    monkeypatch.setattr(model.pipeline, "predict_proba", lambda X: calls.append(X.shape) or real(X), raising=False)
    results = model.predict_batch(items)
    assert calls == [(4, len(model.feature_names))]  # one prediction on the stacked rows
    assert len(results) == len(items)
    for i, res in enumerate(results):
        if i in errors:
            assert set(res) == {"error", "item"}
            assert res["error"]["type"] == errors[i]
            assert isinstance(res["error"]["message"], str) and len(res["error"]["message"]) > 10
            assert res["item"] == (items[i] if isinstance(items[i], str) else i)
        else:
            assert set(res) == RESULT_KEYS
    assert_same_result(results[0], model.predict_emotion_from_file(clips["angry"][0]))
    assert_same_result(results[2], model.predict_emotion_from_file(clips["happy"][0]))
    assert_same_result(results[3], model.predict_emotion_from_file(clips["sad"][0]))
    assert "missing.wav" in results[1]["error"]["message"]


def test_predict_batch_parallel_equals_serial(model, batch_items):
    items, _ = batch_items
    serial = model.predict_batch(items, n_jobs=1)
    parallel = model.predict_batch(items, n_jobs=2)
    assert [r.get("error") for r in parallel] == [r.get("error") for r in serial]
    for s, p in zip(serial, parallel):
        if "error" not in s:
            assert_same_result(p, s, tol=1e-12)


def test_predict_batch_of_one_item_arrays_of_paths_and_open_files(model, clips):
    path = str(clips["angry"][0])
    for one in (path, clips["angry"][0].read_bytes()):  # would iterate into characters or bytes
        with pytest.raises(TypeError, match="for one file use predict_emotion_from_file"):
            model.predict_batch(one)
    from_array = model.predict_batch(np.array([path, str(clips["sad"][0])]))
    assert_same_result(from_array[0], model.predict_emotion_from_file(path))
    with open(path, "rb") as f:  # an open file goes to a worker process as its bytes
        parallel = model.predict_batch([str(clips["sad"][0]), f], n_jobs=2)
    assert_same_result(parallel[1], from_array[0], tol=1e-12)


def test_predict_batch_all_bad_and_empty(model):
    assert model.predict_batch([]) == []
    out = model.predict_batch([b"", (np.zeros(0), 16000), 42])
    assert [r["error"]["type"] for r in out] == ["EmptyAudioError", "EmptyAudioError", "InvalidAudioError"]
    assert [r["item"] for r in out] == [0, 1, 2]


def test_sklearn_style_predict_and_predict_proba(model, clips):
    items = [clips["angry"][0], (clips["sad"][1], clips["sad"][2]), str(clips["happy"][0])]
    P = model.predict_proba(items)
    assert P.shape == (3, len(model.classes_))
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    labels = model.predict(items)
    assert labels.shape == (3,) and set(labels) <= set(model.classes_)
    assert labels.tolist() == model.classes_[P.argmax(axis=1)].tolist()
    assert labels[0] == model.predict_emotion_from_file(clips["angry"][0])["emotion"]
    assert model.predict_proba([]).shape == (0, len(model.classes_))
    assert isinstance(model.classes_, np.ndarray) and model.classes_.dtype.kind == "U"


def test_predict_proba_raises_the_first_error(model, clips, tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="gone.wav"):
        model.predict_proba([clips["angry"][0], tmp_path / "gone.wav", b""])
    with pytest.raises(TypeError, match="list"):
        model.predict(str(clips["angry"][0]))


# -- description ---------------------------------------------------------------------------------
def test_info_and_repr(model, trained_models):
    trainer = trained_models["trainer"]
    info = model.info()
    assert info["name"] == model.name == trainer.best_model_
    assert info["task"] == "emotion"
    assert info["classes"] == [str(c) for c in trainer.classes_] == model.classes_.tolist()
    assert info["n_classes"] == 8
    assert info["n_features"] == len(model.feature_names) == len(trainer.feature_names_in_)
    assert info["feature_hash"] == trainer.feature_hash_
    mean, std = trainer.cv_results_[trainer.best_model_].scalar("macro_f1")
    assert info["cv"]["macro_f1"] == pytest.approx({"mean": mean, "std": std})
    assert set(info["cv"]) >= {"macro_f1", "uar", "accuracy", "n_folds"} and info["cv"]["n_folds"] == 3
    assert {"scikit-learn", "numpy", "vibe_check"} <= set(info["versions"])
    assert info["created_at"] and info["path"] == str(trained_models["best"])
    assert info["sha256"] == hashlib.sha256(Path(trained_models["best"]).read_bytes()).hexdigest()
    json.dumps(info)  # plain JSON for the HTTP service
    text = repr(model)
    assert text.startswith("CustomEmotionModel('best_emotion_model.pkl', ")
    assert f"model={trainer.best_model_}" in text and "task=emotion" in text and "classes=8" in text
    assert f"macro_f1={mean:.2f}±{std:.2f}" in text


def test_load_classmethod_and_attributes(trained_models):
    m = CustomEmotionModel.load(trained_models["paths"]["logreg"])
    assert m.name == "logreg" and m.path == Path(trained_models["paths"]["logreg"])
    assert m.extractor.feature_names == m.feature_names
    assert {"background", "feature_median", "feature_q25", "feature_q75", "drift_reference"} <= set(m.extra)
    assert m.metadata["feature_hash"] == m.extractor.hash


# -- command line ------------------------------------------------------------------------------
def test_cli_table(trained_models, clips, model, capsys):
    files = [str(clips["angry"][0]), str(clips["sad"][0])]
    assert main(["predict", "--model", str(trained_models["best"]), *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["file", "emotion", "confidence", "top-3"]
    for line, f in zip(out[1:], files):
        res = model.predict_emotion_from_file(f)
        assert line.startswith(f) and res["emotion"] in line and f"{res['confidence']:.2f}" in line
        assert line.count(",") == 2  # three classes listed


def test_cli_json_and_errors(trained_models, clips, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    files = [str(clips["happy"][0]), str(bad), str(tmp_path / "missing.wav")]
    assert main(["predict", "--json", "--model", str(trained_models["best"]), *files]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["file"] for r in rows] == files
    assert set(rows[0]) == RESULT_KEYS | {"file"}
    assert rows[1]["error"]["type"] == "AudioDecodeError" and rows[2]["error"]["type"] == "AudioFileNotFoundError"
    assert "2 of 3" in captured.err
    # table mode shows the error per file, with the same exit code
    assert main(["predict", "--model", str(trained_models["best"]), "--n-jobs", "1", str(bad)]) == 1
    assert "AudioDecodeError" in capsys.readouterr().out


def test_cli_takes_folders_of_audio(trained_models, clips, tmp_path, capsys):
    folder = tmp_path / "recordings"
    (folder / "day2").mkdir(parents=True)
    (folder / "a.wav").write_bytes(clips["angry"][0].read_bytes())
    (folder / "day2" / "b.wav").write_bytes(clips["sad"][0].read_bytes())
    (folder / "notes.txt").write_text("not audio: left out")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--json", "--model", str(trained_models["best"]), str(folder)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == [str(folder / "a.wav"), str(folder / "day2" / "b.wav")]
    assert all("emotion" in r for r in rows)
    assert main(["predict", "--model", str(trained_models["best"]), str(folder), str(empty)]) == 1
    captured = capsys.readouterr()
    assert f"no audio files (.wav, .flac, .ogg, .mp3) under {empty}" in captured.err
    assert str(folder / "day2" / "b.wav") in captured.out


def test_cli_bad_model(tmp_path, clips, capsys):
    assert main(["predict", "--model", str(tmp_path / "none.pkl"), str(clips["angry"][0])]) == 1
    assert "no bundle" in capsys.readouterr().err


def test_one_thread_limit_is_safe_across_overlapping_callers():
    # The service predicts on several threads: A enters, B enters, A leaves while B still runs.
    from threadpoolctl import ThreadpoolController

    from vibe_check._threads import one_thread

    def threads():
        return sorted({pool["num_threads"] for pool in ThreadpoolController().info()})

    before = threads()
    a, b = one_thread(), one_thread()
    a.__enter__()
    b.__enter__()
    assert threads() == [1]
    a.__exit__(None, None, None)
    assert threads() == [1]  # B is still working on one thread
    b.__exit__(None, None, None)
    assert threads() == before  # the last one out restores what was there
