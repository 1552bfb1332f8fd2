"""Bundle safety: integrity before unpickling, the .skops allow-list, compatibility checks, atomic writes.

Bundles come from the session fixture ``trained_models``; modified copies are written with
``save_bundle`` into each test's own folder (the fixture's files are never touched).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from vibe_check.exceptions import BundleError, BundleIntegrityError, IncompatibleBundleError, UntrustedBundleError
from vibe_check.features import feature_columns
from vibe_check.models import SKOPS_TRUSTED_TYPES, CustomEmotionModel, load_bundle, read_bundle_metadata, save_bundle
from vibe_check.models._bundle import sidecar_path

MODEL_TYPES = ("logreg", "random_forest", "hist_gb", "lda", "ensemble")


class Marker:
    """Leaves a file behind when it is unpickled or restored: proof that loading ran code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))

    def __setstate__(self, state):  # called by skops when it restores an instance
        Path(state["path"]).write_text("code ran")


def copy_bundle(src: Path, dest_dir: Path) -> Path:
    dest = dest_dir / src.name
    shutil.copy(src, dest)
    shutil.copy(sidecar_path(src), sidecar_path(dest))
    return dest


@pytest.fixture(scope="module")
def rows(trained_models) -> np.ndarray:
    manifest = trained_models["manifest"]
    return manifest[feature_columns(manifest)].to_numpy()[::4]


@pytest.fixture(scope="module")
def logreg_payload(trained_models) -> dict:
    return load_bundle(trained_models["paths"]["logreg"])


def resave(payload: dict, path: Path, **meta_changes) -> Path:
    """A copy of a bundle with edited metadata, written properly (valid SHA-256 sidecar)."""
    meta = {**payload["metadata"], **meta_changes}
    return save_bundle(path, pipeline=payload["pipeline"], label_encoder=payload["label_encoder"], metadata=meta, extra=payload["extra"])


# -- formats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_TYPES)
def test_pkl_and_skops_give_identical_probabilities(trained_models, rows, name):
    pkl = trained_models["paths"][name]
    skops_path = pkl.with_suffix(".skops")
    untrusted = set(sio.get_untrusted_types(file=skops_path))
    assert untrusted <= set(SKOPS_TRUSTED_TYPES), f"{name}: {untrusted - set(SKOPS_TRUSTED_TYPES)} not allowed"
    a, b = CustomEmotionModel(pkl), CustomEmotionModel(skops_path)
    assert a.name == b.name == name
    assert a.classes_.tolist() == b.classes_.tolist() and a.feature_names == b.feature_names
    Pa, Pb = a.predict_proba_features(rows), b.predict_proba_features(rows)
    np.testing.assert_array_equal(Pa, Pb)
    assert Pa.std(axis=0).max() > 0.01  # a real model, not a constant
    np.testing.assert_array_equal(a.extra["feature_median"], b.extra["feature_median"])
    assert a.info()["format"] == "pkl" and b.info()["format"] == "skops"


def test_skops_file_predictions_match_pkl_on_audio(trained_models):
    files = sorted(Path(trained_models["corpus"]).glob("Actor_01/*.wav"))[:3]
    a = CustomEmotionModel(trained_models["best"])
    b = CustomEmotionModel(trained_models["best"].with_suffix(".skops"))
    np.testing.assert_array_equal(a.predict_proba(files), b.predict_proba(files))


# -- integrity -------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_byte], ids=["truncated", "byte-flipped"])
@pytest.mark.parametrize("suffix", [".pkl", ".skops"])
def test_damaged_bundle_refused_before_loading(trained_models, tmp_path, monkeypatch, damage, suffix):
    path = copy_bundle(trained_models["paths"]["logreg"].with_suffix(suffix), tmp_path)
    damage(path)

    def must_not_load(*args, **kwargs):
        raise AssertionError("a bundle that failed its checksum was deserialised")

    monkeypatch.setattr(joblib, "load", must_not_load)
    monkeypatch.setattr(sio, "load", must_not_load)
    monkeypatch.setattr(sio, "get_untrusted_types", must_not_load)
    with pytest.raises(BundleIntegrityError, match="SHA-256") as err:
        CustomEmotionModel(path)
    assert "truncated, corrupt or was altered" in str(err.value)


def test_malicious_pickle_with_wrong_hash_is_never_unpickled(trained_models, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_model.pkl"
    joblib.dump({"format": "vibe-check-bundle", "payload": Marker(str(marker))}, path)
    shutil.copy(sidecar_path(trained_models["paths"]["logreg"]), sidecar_path(path))  # a genuine sidecar, wrong hash
    with pytest.raises(BundleIntegrityError):
        CustomEmotionModel(path)
    with pytest.raises(BundleIntegrityError):
        load_bundle(path, check_compatibility=False)
    assert not marker.exists(), "the pickle was executed"
    joblib.load(path)  # the control: unpickling this file does run code
    assert marker.exists()


@pytest.mark.parametrize("sidecar", ["[1, 2]", '{"versions": null}'])
def test_sidecar_that_is_not_bundle_metadata(trained_models, tmp_path, sidecar):
    path = copy_bundle(trained_models["paths"]["logreg"], tmp_path)
    sidecar_path(path).write_text(sidecar)
    with pytest.raises(BundleIntegrityError, match="not a vibe-check bundle's metadata"):
        CustomEmotionModel(path)


def test_missing_sidecar(trained_models, tmp_path):
    path = copy_bundle(trained_models["paths"]["logreg"], tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(BundleIntegrityError, match=r"logreg_emotion_model\.json is missing"):
        CustomEmotionModel(path)
    with pytest.raises(BundleError, match="no bundle"):
        CustomEmotionModel(tmp_path / "nothing.pkl")


def test_sidecars_are_distinct_and_record_the_hash(trained_models):
    pkl = trained_models["paths"]["logreg"]
    meta_pkl, meta_skops = read_bundle_metadata(pkl), read_bundle_metadata(pkl.with_suffix(".skops"))
    assert meta_pkl["bundle_file"] == pkl.name and meta_skops["bundle_file"] == pkl.with_suffix(".skops").name
    assert meta_pkl["sha256"] != meta_skops["sha256"]
    assert CustomEmotionModel(pkl).info()["sha256"] == meta_pkl["sha256"]


# -- compatibility ---------------------------------------------------------------------------
def test_other_feature_definition_refused(logreg_payload, tmp_path):
    path = resave(logreg_payload, tmp_path / "old_features.pkl", feature_hash="0123456789abcdef")
    with pytest.raises(IncompatibleBundleError, match="feature definition 0123456789abcdef") as err:
        CustomEmotionModel(path)
    assert "retrain" in str(err.value).lower()


def test_definition_with_numbers_written_as_ints_loads(logreg_payload, tmp_path):
    """Before real-valued settings were stored as floats, ``fmin_f0=60`` hashed apart from 60.0:
    such a bundle still loads (same settings, same code version), and a version bump is still refused."""
    from vibe_check.features import FEATURE_SET_VERSION, FeatureConfig
    from vibe_check.features._config import definition_hash

    as_written = {**logreg_payload["metadata"]["feature_config"], "fmin_f0": 60, "trim_top_db": 35}
    path = resave(logreg_payload, tmp_path / "ints.pkl", feature_config=as_written, feature_hash=definition_hash(as_written))
    model = CustomEmotionModel(path)
    assert model.extractor.config == FeatureConfig.from_dict(logreg_payload["metadata"]["feature_config"])
    older = {**as_written, "feature_set_version": FEATURE_SET_VERSION - 1}
    path = resave(logreg_payload, tmp_path / "older.pkl", feature_config=older, feature_hash=definition_hash(older))
    with pytest.raises(IncompatibleBundleError, match="feature definition"):
        CustomEmotionModel(path)


def test_other_sklearn_version_refused(logreg_payload, tmp_path):
    versions = {**logreg_payload["metadata"]["versions"], "scikit-learn": "1.2.2"}
    path = resave(logreg_payload, tmp_path / "old_sklearn.skops", versions=versions)
    with pytest.raises(IncompatibleBundleError, match=r"scikit-learn 1\.2\.2 \(installed: ") as err:
        CustomEmotionModel(path)
    assert "retrain" in str(err.value).lower()


def test_same_minor_version_accepted(logreg_payload, tmp_path):
    import sklearn

    major_minor = ".".join(sklearn.__version__.split(".")[:2])
    versions = {**logreg_payload["metadata"]["versions"], "scikit-learn": f"{major_minor}.99"}
    model = CustomEmotionModel(resave(logreg_payload, tmp_path / "patch.pkl", versions=versions))
    assert model.info()["versions"]["scikit-learn"] == f"{major_minor}.99"


def test_other_feature_names_refused(logreg_payload, tmp_path):
    names = list(logreg_payload["metadata"]["feature_names"])
    renamed = resave(logreg_payload, tmp_path / "renamed.pkl", feature_names=[*names[:-1], "f0_magic"])
    with pytest.raises(IncompatibleBundleError, match="f0_magic") as err:
        CustomEmotionModel(renamed)
    assert names[-1] in str(err.value) and "retrain" in str(err.value).lower()
    swapped = resave(logreg_payload, tmp_path / "swapped.pkl", feature_names=[names[1], names[0], *names[2:]])
    with pytest.raises(IncompatibleBundleError, match="another order"):
        CustomEmotionModel(swapped)


def test_label_encoder_and_metadata_classes_must_agree(logreg_payload, tmp_path):
    classes = list(logreg_payload["metadata"]["classes"])
    path = resave(logreg_payload, tmp_path / "classes.pkl", classes=classes[::-1])
    with pytest.raises(BundleError, match="classes"):
        CustomEmotionModel(path)


# -- the .skops allow-list -------------------------------------------------------------------
def test_skops_with_os_system_refused(logreg_payload, tmp_path):
    pipeline = make_pipeline(FunctionTransformer(func=os.system), LogisticRegression())
    path = save_bundle(tmp_path / "shell.skops", pipeline=pipeline, label_encoder=logreg_payload["label_encoder"],
                       metadata=logreg_payload["metadata"])
    with pytest.raises(UntrustedBundleError, match=r"allow-list.*posix\.system"):
        CustomEmotionModel(path)


def test_skops_name_on_a_file_that_is_not_skops(trained_models, tmp_path):
    # An untrusted source can supply the file and a sidecar whose checksum matches it.
    path = copy_bundle(trained_models["paths"]["logreg"].with_suffix(".skops"), tmp_path)
    path.write_bytes(b"not a zip archive at all")
    meta = json.loads(sidecar_path(path).read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="not a readable skops file"):
        CustomEmotionModel(path)


def test_skops_with_custom_class_refused_without_running_it(logreg_payload, tmp_path):
    marker = tmp_path / "pwned"
    path = save_bundle(tmp_path / "custom.skops", pipeline=logreg_payload["pipeline"],
                       label_encoder=logreg_payload["label_encoder"], metadata=logreg_payload["metadata"],
                       extra={"hook": Marker(str(marker))})
    with pytest.raises(UntrustedBundleError, match=r"Marker"):
        CustomEmotionModel(path)
    assert not marker.exists()
    sio.load(path, trusted=sio.get_untrusted_types(file=path))  # the control: trusting it runs its code
    assert marker.exists()


# -- atomic writes ---------------------------------------------------------------------------
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


@pytest.mark.parametrize("suffix", [".pkl", ".skops"])
def test_interrupted_save_leaves_no_partial_bundle(logreg_payload, tmp_path, monkeypatch, suffix):
    target = tmp_path / f"model{suffix}"
    seen = []

    def failing_dump(obj, filename, *args, **kwargs):
        seen.append(Path(filename).name)
        Path(filename).write_bytes(pickle.dumps(obj)[:1000])  # partial bytes, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(joblib, "dump", failing_dump)
    monkeypatch.setattr(sio, "dump", failing_dump)
    with pytest.raises(OSError, match="No space"):
        resave(logreg_payload, target)
    assert seen and seen[0] != target.name  # written under a temporary name
    assert not target.exists() and not sidecar_path(target).exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_save_keeps_the_previous_bundle(logreg_payload, tmp_path, monkeypatch, rows):
    target = resave(logreg_payload, tmp_path / "model.pkl")
    before = target.read_bytes()
    expected = CustomEmotionModel(target).predict_proba_features(rows)

    def failing_dump(obj, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x80\x04partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", failing_dump)
    with pytest.raises(KeyboardInterrupt):
        resave(logreg_payload, target, model_name="replacement")
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(CustomEmotionModel(target).predict_proba_features(rows), expected)


def test_sidecar_is_plain_json_with_the_metadata(trained_models):
    trainer = trained_models["trainer"]
    side = json.loads(sidecar_path(trained_models["best"]).read_text())
    assert side["bundle_file"] == "best_emotion_model.pkl"
    assert side["size_bytes"] == trained_models["best"].stat().st_size
    assert side["model_name"] == trainer.best_model_ and side["feature_hash"] == trainer.feature_hash_
    assert side["feature_names"] == list(trainer.feature_names_in_)


def test_a_report_figure_that_fails_to_render_keeps_the_old_one(tmp_path, monkeypatch):
    # Every result file (reports, figures, CSV tables, caches) is written through atomic_path.
    from matplotlib.figure import Figure

    from vibe_check.explain import _plots

    target = tmp_path / "fig.png"
    target.write_bytes(b"the previous figure")

    def disk_full(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space"):
        _plots._save(Figure(), target)
    assert target.read_bytes() == b"the previous figure" and _leftovers(tmp_path) == []
