"""Model bundles on disk: the fitted pipeline, the label encoder and the metadata.

A bundle is ``<name>.pkl`` (joblib) or ``<name>.skops`` with a JSON sidecar ``<name>.json`` that
repeats the metadata for people and tools and records the SHA-256 of the bundle file.

Trust model
-----------
Unpickling runs code, so a ``.pkl`` bundle is only as safe as its source. Before unpickling we
check the file against the SHA-256 in its sidecar, which catches truncation, corruption and
accidental edits (not a deliberate attacker who rewrites both files). A ``.skops`` bundle is
loaded without pickle: only the types on :data:`SKOPS_TRUSTED_TYPES` (what vibe-check itself
writes) may appear, and a file holding any other type is refused. Use ``.skops`` for bundles
from sources you do not control.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib

from .._version import __version__
from ..exceptions import BundleError, BundleIntegrityError, IncompatibleBundleError, UntrustedBundleError

if TYPE_CHECKING:  # annotations only: reading a bundle's sidecar should not import scikit-learn
    from sklearn.base import BaseEstimator
    from sklearn.preprocessing import LabelEncoder

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "SKOPS_TRUSTED_TYPES",
    "library_versions",
    "save_bundle",
    "load_bundle",
    "read_bundle_metadata",
    "sidecar_path",
]

BUNDLE_FORMAT = "vibe-check-bundle"
BUNDLE_FORMAT_VERSION = 1

#: Types a vibe-check ``.skops`` bundle may contain beyond skops' defaults.
SKOPS_TRUSTED_TYPES = [
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.ensemble._voting.VotingClassifier",
    "vibe_check.training._models.GroupedClassifier",
    "vibe_check.training._models.BalancedLinearDiscriminantAnalysis",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    "builtins.slice",
    "collections.OrderedDict",
    "numpy.random.mtrand.RandomState",
]


def library_versions() -> dict[str, str]:
    """Versions of the libraries a bundle depends on."""
    import numpy
    import sklearn

    versions = {"vibe_check": __version__, "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
                "python": platform.python_version()}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("librosa", "scipy", "shap", "skops"):
        try:
            versions[dist] = version(dist)  # metadata only: importing shap alone takes seconds
        except PackageNotFoundError:
            pass
    return versions


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.json`` beside ``model.pkl``, ``model.skops.json`` beside ``model.skops`` (both may coexist)."""
    path = Path(path)
    return path.with_suffix(".json") if path.suffix == ".pkl" else path.with_name(path.name + ".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_bundle(path: str | os.PathLike, *, pipeline: BaseEstimator, label_encoder: LabelEncoder, metadata: dict,
                extra: dict | None = None) -> Path:
    """Write a bundle and its JSON sidecar atomically.

    The bundle goes to a temporary name first and is renamed over ``path`` only when complete, so
    an interrupted run never leaves a half-written bundle under the final name. The format is
    chosen by the extension: ``.pkl`` (joblib pickle) or ``.skops``.

    Parameters
    ----------
    path : path
        Destination, ending in ``.pkl`` or ``.skops``.
    pipeline : fitted estimator
    label_encoder : fitted LabelEncoder
    metadata : dict
        JSON-serialisable metadata (classes, feature names and definition, metrics, ...).
    extra : dict, optional
        Arrays stored in the bundle but not in the sidecar (for example background samples).
    """
    path = Path(path)
    if path.suffix not in (".pkl", ".skops"):
        raise BundleError(f"bundle path must end in .pkl or .skops, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = _jsonable({**metadata, "format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION,
                      "versions": metadata.get("versions") or library_versions()})
    payload = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, "pipeline": pipeline,
               "label_encoder": label_encoder, "metadata": meta, "extra": extra or {}}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix == ".pkl":
            joblib.dump(payload, tmp, compress=3)
        else:
            import skops.io as sio

            payload["metadata"] = json.dumps(meta)  # skops stores plain JSON text without custom types
            sio.dump(payload, tmp)
        sidecar = {**meta, "bundle_file": path.name, "sha256": _sha256(tmp), "size_bytes": tmp.stat().st_size}
        side_tmp = tmp.with_name(tmp.name + ".json")
        side_tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True))
        os.replace(tmp, path)
        os.replace(side_tmp, sidecar_path(path))
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".json")):
            if leftover.exists():
                leftover.unlink()
    return path


def _not_a_bundle(path: Path) -> str | None:
    """Why ``path`` is not a bundle, for the paths given by mistake (a folder, a sidecar, audio); else None."""
    from ..data._ravdess import AUDIO_EXTENSIONS  # lazy: the data package is not needed to load a model

    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in (".pkl", ".skops") and sidecar_path(p).exists())
        best = [p for p in found if p.name.startswith("best_")]
        if not found:
            return f"{path} is a folder, not a bundle, and holds none (a bundle is a .pkl or .skops file with its .json sidecar)"
        return f"{path} is a folder, not a bundle; did you mean {(best or found)[0]}?"
    if path.suffix.lower() == ".json":
        stem = path.with_suffix("")
        candidates = [stem] if stem.suffix == ".skops" else [stem.with_suffix(".pkl")]
        there = [c for c in candidates if c.is_file()]
        hint = f"; did you mean {there[0]}?" if there else " (give the .pkl or .skops file beside it)"
        return f"{path.name} is a bundle's metadata sidecar, not the bundle{hint}"
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        return (f"{path} is an audio file, not a model bundle: a bundle is a .pkl or .skops file, "
                "e.g. models/custom/best_emotion_model.pkl")
    return None


def read_bundle_metadata(path: str | os.PathLike) -> dict:
    """The sidecar metadata of a bundle, without loading the model."""
    problem = _not_a_bundle(Path(path))
    if problem:
        raise BundleError(problem)
    side = sidecar_path(path)
    if not side.exists():
        raise BundleIntegrityError(
            f"{side.name} is missing: a bundle is only loaded together with its metadata file "
            f"(it records the SHA-256 that proves {Path(path).name} is intact)"
        )
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise BundleIntegrityError(f"{side} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("versions", {}), dict):
        raise BundleIntegrityError(f"{side} is not a vibe-check bundle's metadata (a JSON object with its fields)")
    return meta


def _check_compatible(meta: dict, path: Path) -> None:
    from ..features import FEATURE_SET_VERSION, FeatureConfig
    from ..features._config import definition_hash

    problems = []
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path.name} is not a vibe-check bundle")
    if meta.get("format_version") != BUNDLE_FORMAT_VERSION:
        problems.append(f"bundle format {meta.get('format_version')} (this vibe-check reads {BUNDLE_FORMAT_VERSION})")
    try:
        current_hash = FeatureConfig.from_dict(meta["feature_config"]).hash
    except Exception as exc:
        problems.append(f"feature definition unreadable by this vibe-check ({exc})")
    else:
        # A bundle saved before real-valued settings were normalised to floats hashed them as
        # written (``30`` for 30.0): the same definition, if this version's code computes it.
        as_written = definition_hash({**meta["feature_config"], "feature_set_version": FEATURE_SET_VERSION})
        if meta.get("feature_hash") not in (current_hash, as_written):
            problems.append(
                f"feature definition {meta.get('feature_hash')} (this vibe-check {__version__} computes "
                f"{current_hash} for the same settings)"
            )
    import sklearn

    saved = str(meta.get("versions", {}).get("scikit-learn", "?"))
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        problems.append(f"scikit-learn {saved} (installed: {sklearn.__version__})")
    if problems:
        raise IncompatibleBundleError(
            f"{path.name} is incompatible with this installation: " + "; ".join(problems)
            + ". Retrain it with this version (vibe-check train), or install the versions it was made with."
        )


def load_bundle(path: str | os.PathLike, *, check_compatibility: bool = True) -> dict:
    """Load a bundle after checking its integrity, trust and compatibility.

    Raises
    ------
    BundleError
        The path is missing or not a bundle.
    BundleIntegrityError
        The file does not match the SHA-256 in its sidecar (truncated, altered) or the sidecar is missing.
    UntrustedBundleError
        A ``.skops`` file holds a type outside the allow-list.
    IncompatibleBundleError
        Another feature definition, bundle format or scikit-learn version; the message says which
        and what to do.

    Examples
    --------
    >>> bundle = load_bundle("models/custom/best_emotion_model.pkl")  # doctest: +SKIP
    >>> bundle["metadata"]["classes"]  # doctest: +SKIP
    """
    path = Path(path)
    problem = _not_a_bundle(path)
    if problem:
        raise BundleError(problem)
    if not path.is_file():
        raise BundleError(f"no bundle at {path} (no such file)")
    meta = read_bundle_metadata(path)
    actual = _sha256(path)
    if actual != meta.get("sha256"):
        raise BundleIntegrityError(
            f"{path.name} does not match the SHA-256 recorded in {sidecar_path(path).name} "
            f"(expected {str(meta.get('sha256'))[:12]}..., got {actual[:12]}...): the file is truncated, "
            "corrupt or was altered; re-download or retrain it"
        )
    if check_compatibility:
        _check_compatible(meta, path)
    if path.suffix == ".skops":
        payload = _load_skops(path)
        payload["metadata"] = json.loads(payload["metadata"])
    else:
        try:
            payload = joblib.load(path)
        except Exception as exc:
            raise BundleError(f"{path.name} could not be unpickled: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path.name} is not a vibe-check bundle")
    return payload


def _load_skops(path: Path) -> dict:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip, or a zip that is not a skops file
        raise BundleError(f"{path.name} is not a readable skops file: {type(exc).__name__}: {exc}") from None
    refused = sorted(set(untrusted) - set(SKOPS_TRUSTED_TYPES))
    if refused:
        raise UntrustedBundleError(
            f"{path.name} contains types outside vibe-check's allow-list and was not loaded: {', '.join(refused)}"
        )
    return sio.load(path, trusted=untrusted)
