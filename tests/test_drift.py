"""Production monitoring: PSI math, the drift monitor on real extracted features (clean clips vs
the same clips 20 dB quieter in noise), bounded memory, SHAP sampling, the metrics on /metrics,
and the alerting rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vibe_check.serving._drift import PSI_SIGNIFICANT, PSI_STABLE, DriftMonitor, psi

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "utils" / "prometheus" / "alerts.yml"
#: Feature groups a quieter, noisier recording must move past the significant threshold.
AFFECTED_GROUPS = ("energy", "spectral", "mel", "cepstral")


def degrade(y: np.ndarray, *, gain_db: float = -20.0, snr_db: float = 15.0, seed: int = 0) -> np.ndarray:
    """``y`` ``gain_db`` quieter with white noise added at ``snr_db`` below its (new) RMS level."""
    from vibe_check.data import make_noise

    quiet = np.asarray(y, dtype=np.float64) * 10 ** (gain_db / 20)
    rms = float(np.sqrt(np.mean(quiet ** 2)))
    noise = make_noise(duration=(len(quiet) + 1) / 16000, amplitude=rms / 10 ** (snr_db / 20), seed=seed)[: len(quiet)]
    return (quiet + noise).astype(np.float32)


def corpus_clips(corpus: Path, limit: int | None = None) -> list[np.ndarray]:
    """The generated corpus's clips as 16 kHz samples, in a fixed order."""
    import soundfile as sf

    files = sorted(p for p in Path(corpus).rglob("*") if p.suffix in (".wav", ".flac"))[:limit]
    return [sf.read(p, dtype="float32")[0] for p in files]


class FakeExplainer:
    """Counts calls; SHAP values proportional to the feature index."""

    def __init__(self, n_features: int, n_classes: int = 3):
        self.calls = 0
        self.n_features, self.n_classes = n_features, n_classes

    def shap_values(self, X):
        self.calls += 1
        X = np.atleast_2d(X)
        values = np.broadcast_to(np.arange(self.n_features, dtype=float)[None, :, None],
                                 (len(X), self.n_features, self.n_classes))
        return type("R", (), {"values": values})()


def reference_from(X: np.ndarray) -> dict:
    from vibe_check.training._train import drift_reference

    return drift_reference(np.asarray(X, dtype=np.float64))


# -- PSI math ---------------------------------------------------------------------------------------
def test_psi_of_known_distributions():
    q = np.full(10, 0.1)
    assert psi(np.full(10, 100), q) == pytest.approx(0, abs=1e-9)  # identical
    moderate = psi(np.array([5, 5, 10, 10, 10, 10, 10, 10, 15, 15]) * 10, q)  # a mild tilt
    assert PSI_STABLE / 2 < moderate < PSI_SIGNIFICANT
    shifted = psi(np.r_[np.zeros(5), np.full(5, 200)], q)  # everything in the upper half
    assert shifted > 1 and np.isfinite(shifted)  # empty bins are smoothed, never infinite
    # The closed form on two bins: p = (0.9, 0.1) vs q = (0.5, 0.5), no smoothing.
    exact = 0.4 * np.log(0.9 / 0.5) + (-0.4) * np.log(0.1 / 0.5)
    assert psi(np.array([900_000, 100_000]), np.array([0.5, 0.5]), alpha=0) == pytest.approx(exact, rel=1e-6)
    rows = psi(np.vstack([np.full(10, 10), np.r_[100, np.zeros(9)]]), np.vstack([q, q]))  # one PSI per row
    assert rows.shape == (2,) and rows[0] < 1e-9 < 1 < rows[1]


def test_monitor_on_random_features_is_stable_then_drifts():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(2000, 6))
    groups = ["a", "a", "b", "b", "c", "c"]
    mon = DriftMonitor(reference_from(train), groups, window=400, shap_fraction=0)
    for x in rng.normal(size=(400, 6)):
        mon.observe(x)
    stable = mon.group_psi()
    assert set(stable) == {"a", "b", "c"} and max(stable.values()) < PSI_STABLE, stable
    for x in rng.normal(size=(400, 6)) + np.array([0, 0, 1.5, 1.5, 0, 0]):  # only group b shifts
        mon.observe(x)
    drifted = mon.group_psi()
    assert drifted["b"] > PSI_SIGNIFICANT and drifted["a"] < PSI_STABLE and drifted["c"] < PSI_STABLE, drifted


def test_bin_indices_match_the_training_bins():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(500, 4))
    ref = reference_from(train)
    mon = DriftMonitor(ref, ["g"] * 4, shap_fraction=0)
    x = rng.normal(size=4)
    expected = [np.searchsorted(ref["edges"][j], x[j], side="right") for j in range(4)]
    assert mon.bin_indices(x).tolist() == expected


def test_window_is_bounded_and_shap_sampling_respects_the_fraction():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(300, 5))
    fake = FakeExplainer(5)
    mon = DriftMonitor(reference_from(train), ["a", "a", "b", "b", "b"], window=50, shap_fraction=0.1, top_features=2,
                       feature_names=list("vwxyz"), explainer=lambda: fake, background=train[:20])
    for x in rng.normal(size=(1000, 5)):
        mon.observe(x)
    assert mon.size == 50 and len(mon._bins) == 50  # memory bounded by the window
    assert mon.shap_samples == 100  # exactly every 10th request
    assert fake.calls == 100 + 1  # plus one batch of background rows to fix the top features
    assert len(mon._shap) == 50
    assert mon.top_features == ["z", "y"]  # largest background mean |SHAP|, fixed
    groups, features = mon.shap_summary()
    assert groups == pytest.approx({"a": 0 + 1, "b": 2 + 3 + 4}) and features == pytest.approx({"z": 4, "y": 3})
    assert [DriftMonitor(reference_from(train), ["g"] * 5, shap_fraction=f).should_sample(n)
            for f in (0.0, 1.0) for n in (1, 2)] == [False, False, True, True]
    off = DriftMonitor(reference_from(train), ["g"] * 5, shap_fraction=0, explainer=lambda: fake)
    for x in rng.normal(size=(30, 5)):
        off.observe(x)
    assert off.shap_samples == 0 and fake.calls == 101
    with pytest.raises(ValueError, match="shap_fraction"):
        DriftMonitor(reference_from(train), ["g"] * 5, shap_fraction=1.5)
    with pytest.raises(ValueError, match="feature groups"):
        DriftMonitor(reference_from(train), ["g"] * 4)


def test_broken_input_never_fails_the_request():
    mon = DriftMonitor(reference_from(np.random.default_rng(3).normal(size=(100, 3))), ["g"] * 3)
    mon.observe(np.zeros(7))  # wrong length: logged, not raised
    assert mon.size == 0
    assert np.isnan(mon.group_psi()["g"])  # nothing seen: no PSI rather than a false "stable"


# -- real extractor: clean vs quieter and noisier ---------------------------------------------------
@pytest.fixture(scope="module")
def extracted(synthetic_corpus):
    """Features of the generated corpus as recorded, and of the same clips 20 dB quieter with
    white noise at 10-20 dB SNR, through the real extractor."""
    from vibe_check.features import FeatureExtractor

    ex = FeatureExtractor()
    clips = corpus_clips(synthetic_corpus)
    clean = [ex.extract_prepared(y) for y in clips]
    noisy = [ex.extract_prepared(degrade(y, snr_db=(10, 15, 20)[i % 3], seed=i)) for i, y in enumerate(clips)]
    return {"extractor": ex, "clean": clean, "noisy": noisy}


def test_drift_of_clean_vs_quieter_noisy_clips(extracted):
    ex = extracted["extractor"]
    X = np.vstack([v for v, _ in extracted["clean"]])
    ref = reference_from(X)  # the trainer's reference, on these clips
    clean = DriftMonitor(ref, ex.feature_groups, feature_names=ex.feature_names, shap_fraction=0)
    noisy = DriftMonitor(ref, ex.feature_groups, feature_names=ex.feature_names, shap_fraction=0)
    for (v, _), (w, _) in zip(extracted["clean"], extracted["noisy"]):
        clean.observe(v)
        noisy.observe(w)
    before, after = clean.group_psi(), noisy.group_psi()
    print("PSI clean", {g: round(v, 3) for g, v in before.items()})
    print("PSI noisy", {g: round(v, 3) for g, v in after.items()})
    assert max(before.values()) < PSI_STABLE, before
    for g in AFFECTED_GROUPS:
        assert after[g] > PSI_SIGNIFICANT, (g, after)
    # The signal facts moved as made: about 20 dB quieter, SNR down to 10-20 dB.
    level = np.median([i.level_dbfs for _, i in extracted["clean"]]) - np.median([i.level_dbfs for _, i in extracted["noisy"]])
    assert 15 < level < 25
    assert np.median([i.snr_db for _, i in extracted["noisy"]]) < np.median([i.snr_db for _, i in extracted["clean"]]) - 10


# -- the service ------------------------------------------------------------------------------------
def scrape(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def wav(y: np.ndarray) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_metrics_on_the_apps_metrics_endpoint(trained_models):
    from fastapi.testclient import TestClient

    from vibe_check.models._custom import CustomEmotionModel
    from vibe_check.serving import ServeSettings, create_app

    model = CustomEmotionModel(trained_models["best"])
    app = create_app(model, settings=ServeSettings(drift_window=8, shap_fraction=0.25))
    clips = [wav(y) for y in corpus_clips(trained_models["corpus"], limit=12)]
    with TestClient(app) as client:
        for data in clips:
            assert client.post("/predict", content=data, headers={"content-type": "audio/wav"}).status_code == 200
        s = scrape(client)
    monitor = app.state.service.drift
    assert monitor is not None and monitor.shap_samples == 3  # 12 requests x 0.25
    assert s[("vibe_check_drift_window_size", ())] == 8  # bounded by --drift-window
    psi_values = {dict(k)["group"]: v for (n, k), v in s.items() if n == "vibe_check_feature_drift_psi"}
    assert set(model.extractor.feature_groups.values()) <= set(psi_values) and all(np.isfinite(list(psi_values.values())))
    shap_groups = {dict(k)["group"]: v for (n, k), v in s.items() if n == "vibe_check_shap_mean_abs"}
    assert sum(v for v in shap_groups.values() if np.isfinite(v)) > 0
    top = {dict(k)["feature"]: v for (n, k), v in s.items() if n == "vibe_check_shap_feature_mean_abs"}
    assert len(top) == 10 and set(top) <= set(model.feature_names) and monitor.top_features == list(top)
    share = {dict(k)["emotion"]: v for (n, k), v in s.items() if n == "vibe_check_training_class_share"}
    assert set(share) == set(model.classes_) and sum(share.values()) == pytest.approx(1)
    assert s[("vibe_check_input_level_dbfs_count", ())] == 12 and s[("vibe_check_input_snr_db_count", ())] == 12
    assert s[("vibe_check_model_cv_macro_f1", (("model", model.name),))] == pytest.approx(model.cv_summary()["macro_f1"]["mean"])

    off = create_app(model, settings=ServeSettings(drift=False))
    with TestClient(off) as client:
        assert client.post("/predict", content=clips[0], headers={"content-type": "audio/wav"}).status_code == 200
        s = scrape(client)
    assert off.state.service.drift is None and s[("vibe_check_input_level_dbfs_count", ())] == 0
    # The training share comes from the bundle, monitored or not (it was 0 for every class).
    assert {dict(k)["emotion"]: v for (n, k), v in s.items() if n == "vibe_check_training_class_share"} == share


def test_settings_and_cli_options():
    import argparse

    from vibe_check.serving import ServeSettings
    from vibe_check.serving._cli import add_serve_arguments, settings_from_args

    assert ServeSettings.from_env({"VIBE_CHECK_DRIFT": "false", "VIBE_CHECK_SHAP_FRACTION": "0"}).drift is False
    with pytest.raises(ValueError, match="drift_window"):
        ServeSettings(drift_window=0)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    s = settings_from_args(parser.parse_args(["--model", "m.pkl", "--drift-window", "100", "--shap-fraction", "0", "--no-drift"]))
    assert (s.drift_window, s.shap_fraction, s.drift) == (100, 0.0, False)
    assert settings_from_args(parser.parse_args(["--model", "m.pkl"])).drift is True
    s = settings_from_args(parser.parse_args(["--model", "m.pkl", "--max-speakers", "10", "--max-reference-clips", "8"]))
    assert (s.max_speakers, s.max_reference_clips) == (10, 8)
    assert ServeSettings.from_env({"VIBE_CHECK_MAX_SPEAKERS": "5"}).max_speakers == 5
    for bad in ({"max_speakers": 0}, {"max_reference_clips": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ServeSettings(**bad)


def test_alert_rules_pass_promtool():
    import yaml

    rules = {r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert set(rules) == {"VibeCheckFeatureDrift", "VibeCheckHighErrorRate", "VibeCheckHighInputErrorRate", "VibeCheckHighLatency",
                          "VibeCheckConfidenceCollapse"}  # the error and confidence rules are tested in test_prometheus_rules.py
    assert "vibe_check_feature_drift_psi" in rules["VibeCheckFeatureDrift"]["expr"] and "0.25" in rules["VibeCheckFeatureDrift"]["expr"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
