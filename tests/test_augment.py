"""Augmentation and robustness: signal transforms, augmented manifests, training on them, the
robustness table, and the noise-robust front end of the extractor."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.signal import welch

from vibe_check.cli import main
from vibe_check.data import (
    AUGMENTATIONS,
    AugmentedClip,
    active_power,
    apply_gain,
    augment,
    babble_noise,
    leading_silence,
    mix_at_snr,
    pink_noise,
    speed_perturb,
    synthesize_utterance,
    telephone_band,
    white_noise,
)
from vibe_check.features import FeatureConfig, FeatureExtractor, build_manifest
from vibe_check.features._spectral import floor_spectrum
from vibe_check.models import CustomEmotionModel
from vibe_check.training import CONDITIONS, EmotionTrainer, corrupt, evaluate_robustness, format_robustness
from vibe_check.training._cli import augment_list

SR = 16000


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    """A generated utterance with half a second of silence on each side, like a RAVDESS clip."""
    y = synthesize_utterance("angry", speaker=2, seed=3)
    return leading_silence(np.concatenate([y, np.zeros(SR // 2, np.float32)]), SR, 0.5)


def band_power(y, sr, lo, hi):
    f, p = welch(y, fs=sr, nperseg=1024)
    return p[(f >= lo) & (f < hi)].mean()


# -- transforms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0, 30.0])
def test_mix_at_snr_hits_the_requested_snr(voice, snr):
    noise = white_noise(voice.size, np.random.default_rng(0))
    noisy = mix_at_snr(voice, noise, snr)
    assert noisy.dtype == np.float32 and noisy.shape == voice.shape
    measured = 10 * np.log10(active_power(voice) / active_power(noisy - voice))
    assert measured == pytest.approx(snr, abs=0.3)


def test_active_power_ignores_the_silence_around_speech(voice):
    trimmed = voice[SR // 2 : -SR // 2]
    assert 10 * np.log10(active_power(voice) / active_power(trimmed)) == pytest.approx(0.0, abs=1.0)


def test_pink_noise_falls_3_db_per_octave():
    y = pink_noise(SR * 4, np.random.default_rng(1))
    assert y.std() == pytest.approx(1.0, rel=1e-3)
    drop = 10 * np.log10(band_power(y, SR, 500, 700) / band_power(y, SR, 2000, 2800))
    assert drop == pytest.approx(6.0, abs=1.5)  # two octaves


def test_babble_is_made_of_the_sources():
    rng = np.random.default_rng(2)
    sources = [synthesize_utterance(e, speaker=s, seed=s) for e, s in (("happy", 1), ("sad", 2), ("calm", 3))]
    b = babble_noise(sources, SR * 2, rng, n_talkers=4)
    assert b.shape == (SR * 2,) and np.abs(b).max() > 0.1
    with pytest.raises(ValueError, match="at least one source"):
        babble_noise([], SR, rng)


def test_telephone_band_limits_and_resamples(voice):
    noise = white_noise(SR * 2, np.random.default_rng(3))
    phone, sr = telephone_band(noise, SR)
    assert sr == 8000 and phone.size == SR
    inside = band_power(phone, sr, 800, 3000)
    assert band_power(phone, sr, 0, 150) < inside / 100 and band_power(phone, sr, 3800, 4000) < inside / 100


def test_gain_clips_like_an_adc(voice):
    loud = apply_gain(voice, 20.0)
    assert np.abs(loud).max() == pytest.approx(1.0) and np.abs(apply_gain(voice, 20.0, clip=False)).max() > 1.0
    assert np.allclose(apply_gain(voice, -20.0), voice * 0.1, atol=1e-7)


def test_speed_perturbation_shifts_pitch_and_duration():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = speed_perturb(tone, SR, 1.1)
    assert fast.size == pytest.approx(SR / 1.1, abs=2)
    f, p = welch(fast, fs=SR, nperseg=4096)
    assert f[p.argmax()] == pytest.approx(220, abs=5)


def test_augment_is_seeded_and_checks_its_name(voice):
    for kind in AUGMENTATIONS:
        a, sr_a = augment(voice, SR, kind, rng=np.random.default_rng(7), sources=[voice])
        b, sr_b = augment(voice, SR, kind, rng=np.random.default_rng(7), sources=[voice])
        assert sr_a == sr_b and np.array_equal(a, b), kind
        assert a.dtype == np.float32 and np.isfinite(a).all()
    with pytest.raises(ValueError, match="unknown augmentation 'reverb'"):
        augment(voice, SR, "reverb", rng=np.random.default_rng(0))


def test_augmented_clip_is_reproducible(synthetic_corpus):
    path = str(next(synthetic_corpus.rglob("*.wav")))
    clip = AugmentedClip(path, "noise", AugmentedClip.cache_key("abc", "noise"))
    (a, sr_a), (b, _) = clip.load(SR), clip.load(SR)
    assert sr_a == SR and np.array_equal(a, b)
    other = AugmentedClip(path, "noise", AugmentedClip.cache_key("abd", "noise"))
    assert not np.array_equal(a, other.load(SR)[0])
    assert str(clip).endswith("#noise")


def test_only_babble_decodes_the_other_clips(synthetic_corpus, monkeypatch):
    import vibe_check.audio

    paths = [str(p) for p in sorted(synthetic_corpus.rglob("*.wav"))[:4]]
    decoded = []
    real = vibe_check.audio.load_audio
    monkeypatch.setattr(vibe_check.audio, "load_audio", lambda path, **kw: decoded.append(path) or real(path, **kw))
    for kind, expected in (("noise", 1), ("speed_0.9", 1), ("babble", 4)):
        decoded.clear()
        AugmentedClip(paths[0], kind, AugmentedClip.cache_key("abc", kind), tuple(paths[1:])).load(SR)
        assert len(decoded) == expected, kind


def test_augment_option_parsing():
    assert augment_list("noise, babble") == ["noise", "babble"]
    assert augment_list("none") == []


# -- the noise-robust front end ------------------------------------------------------------------------
def test_noise_reduction_keeps_features_closer_to_the_clean_ones(voice):
    noisy = mix_at_snr(voice, white_noise(voice.size, np.random.default_rng(4)), 20.0)
    shifts = {}
    for reduce in (True, False):
        fx = FeatureExtractor(FeatureConfig(noise_reduction=reduce))
        clean, noisy_vec = fx.extract(voice, SR), fx.extract(noisy, SR)
        spectral = [i for i, n in enumerate(fx.feature_names) if fx.feature_groups[n] == "spectral"]
        shifts[reduce] = np.median(np.abs(noisy_vec[spectral] - clean[spectral]) / (np.abs(clean[spectral]) + 1e-3))
    assert shifts[True] < shifts[False] / 2, shifts


def test_noise_only_lead_in_is_trimmed(voice):
    fx = FeatureExtractor()
    _, clean_info = fx.extract_with_info(voice, SR)
    noisy = mix_at_snr(voice, white_noise(voice.size, np.random.default_rng(5)), 20.0)
    _, noisy_info = fx.extract_with_info(noisy, SR)
    # Without the subtraction the noisy clip keeps its 1 s of noise-only lead-in and tail.
    assert noisy_info.speech_duration_s == pytest.approx(clean_info.speech_duration_s, abs=0.15)
    assert noisy_info.snr_db < clean_info.snr_db


def test_babble_in_the_lead_in_and_tail_is_trimmed(voice):
    """Other talkers 20 dB below the speaker survive a threshold relative to the loudest frame
    and the noise subtraction (babble is not stationary); the loud-core bound removes them."""
    talkers = [synthesize_utterance(e, speaker=s, seed=s) for s, e in enumerate(["calm", "sad", "happy", "neutral", "fearful", "disgust"], 3)]
    noisy = mix_at_snr(voice, babble_noise(talkers, voice.size, np.random.default_rng(1)), 20.0)
    durations = {}
    default = FeatureConfig().speech_anchor_db
    for core_db in (None, default):
        fx = FeatureExtractor(FeatureConfig(speech_anchor_db=core_db))
        durations[core_db] = (fx.extract_with_info(voice, SR)[1].speech_duration_s, fx.extract_with_info(noisy, SR)[1].speech_duration_s)
    clean, babbled = durations[None]
    assert babbled > clean + 1.0, durations  # without the bound the babble-only second counts as speech
    clean, babbled = durations[default]
    assert clean == pytest.approx(durations[None][0], abs=0.05), durations  # clean speech keeps its extent
    margin = FeatureConfig().speech_margin_s
    assert babbled <= clean + 2 * margin + 0.05, durations


def test_spectral_floor_spares_the_loud_spectrum():
    S = np.array([[1.0, 0.5, 1e-3, 1e-6], [1e-2, 1e-2, 1e-9, 0.0]], np.float32)
    floored = floor_spectrum(S, 20.0, quantile=100)
    assert floored.dtype == S.dtype
    np.testing.assert_allclose(floored[0], [1.0, 0.5, 1e-2, 1e-2], rtol=1e-6)  # each bin against its own peak
    np.testing.assert_allclose(floored[1], [1e-2, 1e-2, 1e-4, 1e-4], rtol=1e-6)
    assert np.array_equal(floor_spectrum(S, 200.0)[S > 0], S[S > 0])


def test_spectral_floor_keeps_features_closer_under_babble(voice):
    """Other talkers 20 dB down fill the spectrum's valleys and quiet frames; a floor 30 dB below
    each bin's loud level hides them, so the features of a babble-covered clip move less."""
    talkers = [synthesize_utterance(e, speaker=s, seed=s) for s, e in enumerate(["calm", "sad", "happy", "neutral", "fearful", "disgust"], 3)]
    noisy = mix_at_snr(voice, babble_noise(talkers, voice.size, np.random.default_rng(2)), 20.0)
    shifts = {}
    for floor in (None, 30.0):
        fx = FeatureExtractor(FeatureConfig(spectral_floor_db=floor))
        moved = np.abs(fx.extract(noisy, SR) - fx.extract(voice, SR))
        for group in ("contrast", "covariation"):  # peak-to-valley dB; correlations over frames
            shifts[floor, group] = np.median([m for m, n in zip(moved, fx.feature_names) if fx.feature_groups[n] == group])
    assert shifts[30.0, "contrast"] < shifts[None, "contrast"] / 2, shifts
    assert shifts[30.0, "covariation"] < 0.8 * shifts[None, "covariation"], shifts
    # A floor below everything in the clip is no floor; the pitch track never sees it.
    fx, deep = FeatureExtractor(), FeatureExtractor(FeatureConfig(spectral_floor_db=150.0))
    np.testing.assert_allclose(deep.extract(voice, SR), fx.extract(voice, SR), rtol=1e-4, atol=1e-6)
    floored = FeatureExtractor(FeatureConfig(spectral_floor_db=30.0))
    prosody = [i for i, n in enumerate(fx.feature_names) if fx.feature_groups[n] == "prosody"]
    np.testing.assert_array_equal(floored.extract(voice, SR)[prosody], fx.extract(voice, SR)[prosody])


def test_spectral_floor_option_reaches_the_bundle(synthetic_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data-dir", str(synthetic_corpus), "--output-dir", "out", "--folds", "3", "--models", "lda",
                 "--augment", "none", "--spectral-floor-db", "30", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    model = CustomEmotionModel.load("out/lda_emotion_model.pkl")
    assert model.extractor.config == FeatureConfig(spectral_floor_db=30.0)
    assert model.extractor.hash != FeatureConfig().hash
    with pytest.raises(SystemExit):
        main(["train", "--spectral-floor-db", "0"])
    assert "must be a positive number of dB" in capsys.readouterr().err


# -- augmented manifests and training --------------------------------------------------------------------
@pytest.fixture(scope="module")
def augmented(synthetic_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("augmented")
    df = build_manifest(synthetic_corpus, root / "m.parquet", cache_dir=root / "cache", progress=False,
                        augment=("noise", "babble"), n_jobs=2)
    return df, root


def test_manifest_has_a_row_per_copy(augmented):
    df, _ = augmented
    counts = df["augmentation"].value_counts().to_dict()
    assert counts == {"none": 45, "noise": 45, "babble": 45}
    names = df.attrs["feature_names"]
    for kind in ("noise", "babble"):
        orig = df[df.augmentation == "none"].set_index("path")
        copy = df[df.augmentation == kind].set_index("path").loc[orig.index]
        assert (copy[["emotion", "actor", "sha256"]] == orig[["emotion", "actor", "sha256"]]).all().all()
        assert not np.allclose(copy[names].to_numpy(), orig[names].to_numpy())


def test_augmented_copies_are_cached(augmented, synthetic_corpus, monkeypatch):
    df, root = augmented
    calls = []

    def load_again(self, sr):
        calls.append(str(self))
        raise AssertionError("an augmented copy was extracted twice")

    monkeypatch.setattr(AugmentedClip, "load", load_again)
    again = build_manifest(synthetic_corpus, None, cache_dir=root / "cache", progress=False, augment=("noise", "babble"))
    assert calls == [] and len(again) == len(df)


def test_a_bad_clip_of_a_speaker_does_not_spoil_its_babble_and_copies_follow_the_speakers_clips(synthetic_corpus, tmp_path):
    actor = sorted((synthetic_corpus / "Actor_01").glob("*.wav"))[:4]
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    for p in actor:
        shutil.copy(p, data / p.name)
    (data / "03-01-05-02-02-02-01.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))  # corrupt
    cache = tmp_path / "cache"
    df = build_manifest(data.parent, None, cache_dir=cache, progress=False, augment=("babble",))
    # The corrupt clip itself is reported; the babble copies of the 4 good ones are all there.
    assert sorted(df[df.augmentation == "babble"].file) == sorted(p.name for p in actor)
    # Without the corrupt clip the speaker's clips changed: the copies are made again, not read
    # back from the cache (which held copies drawn over the old set of clips).
    (data / "03-01-05-02-02-02-01.wav").unlink()
    calls = []
    real = AugmentedClip.load
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AugmentedClip, "load", lambda self, sr: calls.append(self.path) or real(self, sr))
        build_manifest(data.parent, None, cache_dir=cache, progress=False, augment=("babble",))
    assert len(calls) == 4


def test_unknown_augmentation_is_refused(synthetic_corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown augmentation"):
        build_manifest(synthetic_corpus, None, cache_dir=tmp_path, progress=False, augment=("echo",))


def test_copies_only_ever_train(augmented):
    df, _ = augmented
    trainer = EmotionTrainer(models=["logreg"], n_splits=3).fit(df)
    aug = df["augmentation"].to_numpy(dtype=object)
    actors = df["actor"].to_numpy()
    for train, test in trainer.folds_:
        assert (aug[test] == "none").all()
        assert set(actors[train]).isdisjoint(actors[test])
        assert set(aug[train]) == {"none", "noise", "babble"}
    assert sorted(np.concatenate([te for _, te in trainer.folds_]).tolist()) == np.flatnonzero(aug == "none").tolist()
    assert trainer.data_summary_["n_files"] == 45 and trainer.data_summary_["n_augmented_rows"] == 90
    assert len(trainer.cv_results_["logreg"].oof) == 45
    assert "augmented copies (babble, noise)" in trainer.bundle_metadata("logreg")["cv"]["protocol"]
    assert trainer.bundle_extra()["background"].shape[0] <= 45


def test_the_lda_learns_the_nuisance_from_each_recordings_copies(augmented):
    df, _ = augmented
    trainer = EmotionTrainer(models=["lda"], n_splits=3).fit(df)
    lda = trainer.estimators_["lda"][-1]
    # every candidate weight was scored on held-out speakers, and the best one was used
    assert set(lda.nuisance_scores_) == set(lda.nuisance_weights)
    assert lda.nuisance_weight_ == min(lda.nuisance_scores_, key=lda.nuisance_scores_.get)
    note = trainer.bundle_metadata("lda")["nuisance_covariance"]
    assert note["weight"] == lda.nuisance_weight_ and len(note["held_out_log_loss"]) == len(lda.nuisance_weights)
    # copies are paired with their original through the file's checksum: dropping it loses the pairing
    alone = EmotionTrainer(models=["lda"], n_splits=3).fit(df.drop(columns=["sha256", "path"]))
    assert alone.estimators_["lda"][-1].nuisance_weight_ == 0.0


# -- the robustness table -----------------------------------------------------------------------------
def test_corrupt_conditions(voice):
    rng = np.random.default_rng(0)
    for condition in CONDITIONS:
        y, sr = corrupt(condition, voice, SR, rng=rng, babble_pool=[voice])
        assert y.dtype == np.float32 and np.isfinite(y).all(), condition
    assert corrupt("telephone", voice, SR, rng=rng)[1] == 8000
    assert corrupt("2 s leading silence", voice, SR, rng=rng)[0].size == voice.size + 2 * SR
    with pytest.raises(ValueError, match="unknown condition"):
        corrupt("underwater", voice, SR, rng=rng)


def test_robustness_says_why_a_clip_was_not_scored(synthetic_corpus, caplog, monkeypatch):
    from vibe_check.training._robustness import _clip_features

    path = str(next(synthetic_corpus.rglob("*.wav")))
    fx = FeatureExtractor()
    real = FeatureExtractor.extract

    def failing(self, y, sr):
        if sr == 8000:  # the telephone condition
            raise RuntimeError("a bug in a feature")
        return real(self, y, sr)

    monkeypatch.setattr(FeatureExtractor, "extract", failing)
    with caplog.at_level("INFO", logger="vibe_check.training._robustness"):
        rows = _clip_features(fx, path, 0, [], ["clean", "telephone", "gain -20 dB"])
    assert np.isfinite(rows[[0, 2]]).all() and np.isnan(rows[1]).all()  # scored as wrong, the run goes on
    assert "telephone failed unexpectedly: RuntimeError: a bug in a feature" in caplog.text


def test_robustness_table(augmented, tmp_path):
    df, _ = augmented
    trainer = EmotionTrainer(models=["logreg"], n_splits=3).fit(df)
    conditions = ("clean", "white 20 dB", "gain -20 dB")
    table = evaluate_robustness(trainer, df, conditions=conditions, n_jobs=1, cache_dir=tmp_path)
    assert table["condition"].tolist() == list(conditions)
    clean = table.set_index("condition").loc["clean"]
    # Refit on the same training sides, scored on the same clips: exactly the cross-validated figure.
    assert clean["macro_f1_mean"] == pytest.approx(trainer.cv_results_["logreg"].scalar("macro_f1")[0])
    assert clean["drop"] == 0.0
    by_condition = table.set_index("condition")
    assert by_condition.loc["white 20 dB", "target_drop"] == 0.06
    assert by_condition.loc["white 20 dB", "met"] == (by_condition.loc["white 20 dB", "drop"] <= 0.06)
    assert by_condition.loc["clean", "met"] is None
    text = format_robustness(table)
    assert "white 20 dB" in text and ("ok" in text or "MISSED" in text)
    # The corrupted clips' features are cached: a second run extracts nothing.
    assert list(tmp_path.rglob("robustness-*.npy"))


def test_robustness_of_the_speaker_mode_centres_held_out_speakers(augmented, tmp_path):
    # The speaker-normalised models were fit on centred features: raw corrupted clips would be
    # scored against the wrong origin. Clean, the table must give the cross-validated figure.
    df, _ = augmented
    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(df)
    table = evaluate_robustness(trainer, df, conditions=("clean", "gain -20 dB"), n_jobs=1, cache_dir=tmp_path)
    clean = table.set_index("condition").loc["clean", "macro_f1_mean"]
    assert clean == pytest.approx(trainer.cv_results_["lda"].scalar("macro_f1")[0])


def test_cli_train_with_augmentation_robustness_and_report(synthetic_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--data-dir", str(synthetic_corpus), "--output-dir", "out", "--folds", "3", "--models", "logreg,lda",
                 "--augment", "noise", "--robustness", "--report", "--n-jobs", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "45 augmented training copies: noise" in captured.out
    assert "robustness" in captured.out and "telephone" in captured.out
    html = (tmp_path / "out" / "report_emotion.html").read_text()  # named by task and mode, like the bundles
    assert 'id="robustness"' in html and "white 20 dB" in html
    assert "nuisance weight" in html and "held-out log-loss per weight" in html  # the LDA's inner-fold choices
    assert (tmp_path / "out" / "robustness_emotion.csv").exists()
