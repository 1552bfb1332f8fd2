"""Inference with a trained bundle: files, arrays, bytes and batches in, emotions and probabilities out.

:class:`CustomEmotionModel` wraps a bundle written by :class:`~vibe_check.training.EmotionTrainer`.
Inference runs in four stages that can be called (and timed) one by one::

    source --decode--> y --features--> (vector, SignalInfo) --predict_proba_features--> p
           --result_from_proba--> {"emotion", "confidence", "probabilities", ...}

Every bad input is refused with a specific :class:`~vibe_check.exceptions.AudioError` (missing,
empty, corrupt, truncated, too long, NaN samples, silence...), never answered with a guess.

A bundle trained in the speaker-normalised mode (``vibe-check train --speaker-normalize``)
classifies a clip relative to its speaker's average: :meth:`CustomEmotionModel.for_speaker` takes
reference clips of the speaker, and its ``features`` stage subtracts their mean vector. With
``test_time_augmentation=True`` every clip is also classified from speed copies of itself, and the
log-probabilities are averaged.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import numpy as np

from .._threads import one_thread
from ..audio import DEFAULT_MAX_DURATION, load_audio, prepare_signal
from ..data import GENERATED_SOURCE, speed_copies, speed_perturb
from ..exceptions import BundleError, IncompatibleBundleError, InvalidAudioError, NoSpeechError, SpeakerReferenceError
from ..features import FeatureConfig, FeatureExtractor, SignalInfo
from ..features._parallel import warm_up
from ._bundle import load_bundle, read_bundle_metadata
from ._fast_predict import compile_predict_proba

__all__ = ["CustomEmotionModel", "InferenceItem"]

#: What the batch and scikit-learn style methods accept per item: a path, encoded audio bytes, or
#: a ``(samples, sample_rate)`` tuple.
InferenceItem = Union[str, os.PathLike, bytes, "tuple[np.ndarray, int]"]

#: Cross-validation metrics summarised by :meth:`CustomEmotionModel.info`.
_CV_METRICS = ("macro_f1", "uar", "accuracy")

#: Up to this many rows the flattened tree ensembles (:mod:`._fast_predict`) answer; larger
#: batches go to scikit-learn, whose per-tree loops pay off once there are many rows (measured
#: crossover between 100 and 500 rows for the random forest).
_FAST_MAX_ROWS = 64


def _decode(extractor: FeatureExtractor, source: Any, sr: int | None = None) -> np.ndarray:
    """Mono float32 samples at the extractor's rate from a path, bytes, a file object,
    an array with ``sr`` or a ``(y, sr)`` tuple."""
    target, limit = extractor.config.sample_rate, extractor.max_duration
    if isinstance(source, tuple):
        if len(source) != 2 or sr is not None:
            raise InvalidAudioError("an in-memory item must be a (samples, sample_rate) pair")
        source, sr = source
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read"):
        if sr is not None:
            raise InvalidAudioError("a sample rate is only given with an array of samples; files carry their own")
        return load_audio(source, target_sr=target, max_duration=limit)
    if isinstance(source, (np.ndarray, list)):
        if sr is None:
            raise InvalidAudioError("an array of samples needs its sample rate: pass (y, sr)")
        return prepare_signal(np.asarray(source), sr, target_sr=target, max_duration=limit)
    raise InvalidAudioError(
        f"cannot read audio from a {type(source).__name__}; give a path, bytes, a file object or (samples, sample_rate)"
    )


def _item_list(items: Iterable[Any]) -> list:
    """The items of a batch as a list; one item on its own (which iterates into characters or
    bytes) is refused with a pointer to the single-item methods."""
    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview, tuple)) or hasattr(items, "read"):
        raise TypeError("expected a list of items (paths, bytes or (y, sr) tuples); for one file use predict_emotion_from_file")
    if isinstance(items, np.ndarray):
        if items.ndim == 1 and items.dtype.kind in "OUS":  # an array of paths
            return items.tolist()
        raise TypeError("expected a list of items; for one array of samples use predict_emotion_from_array(y, sr)")
    return list(items)


def class_columns(pipeline_classes: Sequence, classes: Sequence[str]) -> np.ndarray:
    """Index in ``classes`` of each column of a pipeline's ``predict_proba``: encoded classes are
    positions, labels are looked up. ``ValueError`` names what does not fit.

    Examples
    --------
    >>> class_columns(np.array([0, 2]), ["angry", "calm", "sad"]).tolist()
    [0, 2]
    >>> class_columns(np.array(["sad", "angry"]), ["angry", "calm", "sad"]).tolist()
    [2, 0]
    """
    pipeline_classes = np.asarray(pipeline_classes)
    if pipeline_classes.dtype.kind in "iu":
        if pipeline_classes.size and (pipeline_classes.min() < 0 or pipeline_classes.max() >= len(classes)):
            raise ValueError(f"the model's classes {pipeline_classes.tolist()} do not match its {len(classes)} labels")
        return pipeline_classes.astype(int)
    index = {str(c): i for i, c in enumerate(classes)}
    try:
        return np.array([index[str(c)] for c in pipeline_classes])
    except KeyError as exc:
        raise ValueError(f"the model predicts class {exc} unknown to its labels") from None


def combine_copies(P: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """One probability row per item from its consecutive rows of ``P`` (``sizes[i]`` rows for item
    ``i``: a clip, then its test-time speed copies): their normalised geometric mean.

    Examples
    --------
    >>> combine_copies(np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]), [1, 2]).round(3).tolist()
    [[0.9, 0.1], [0.333, 0.667]]
    """
    sizes = np.asarray(sizes)
    if sizes.max() == 1:
        return P
    log_p = np.log(np.clip(P, 1e-300, None))
    starts = np.cumsum([0, *sizes[:-1]])
    Q = np.exp(np.add.reduceat(log_p, starts, axis=0) / sizes[:, None])
    return Q / Q.sum(axis=1, keepdims=True)


def _clip_rows(extractor: FeatureExtractor, y: np.ndarray, speeds: Sequence[float] = ()) -> tuple[np.ndarray, SignalInfo]:
    """Feature rows of decoded audio: the clip as it is, then one row per speed copy of it
    (test-time augmentation; none by default), with the clip's signal facts."""
    vector, info = extractor.extract_prepared(y)
    sr = extractor.config.sample_rate
    rows = [vector]
    for f in speeds:
        try:
            rows.append(extractor.extract_prepared(speed_perturb(y, sr, f))[0])
        except NoSpeechError as exc:  # a faster copy of a clip at the length limit is shorter than it
            raise NoSpeechError(f"the clip's {f:g}x speed copy, which test-time augmentation classifies too, has too "
                                f"little sound ({exc}); classify this clip without test-time augmentation") from None
    return np.vstack(rows), info


def training_speed_copies(metadata: dict, bundle_name: str) -> dict[str, float]:
    """The speed copies (augmentation name -> factor) a bundle was trained with, which test-time
    augmentation classifies; :class:`~vibe_check.exceptions.BundleError` if it had none."""
    speeds = speed_copies((metadata.get("data_summary") or {}).get("augmentations") or [])
    if not speeds:
        raise BundleError(f"{bundle_name} was trained without speed-perturbed copies, so test-time augmentation "
                          "(which classifies speed copies of each clip) has nothing it was trained for")
    return speeds


def _item_features(extractor: FeatureExtractor, item: Any, catch: bool, speeds: Sequence[float] = ()):
    """Decode and extract one item: ``(rows, info, None)`` (see :func:`_clip_rows`), or
    ``(None, None, error)`` when ``catch``."""
    try:
        rows, info = _clip_rows(extractor, _decode(extractor, item), speeds)
        return rows, info, None
    except Exception as exc:  # noqa: BLE001 - a batch reports any failure per item and goes on
        if not catch:
            raise
        return None, None, {"type": type(exc).__name__, "message": str(exc)}


def _item_label(item: Any, index: int) -> str | int:
    return str(item) if isinstance(item, (str, os.PathLike)) else index


class CustomEmotionModel:
    """A trained emotion (or sentiment) bundle, ready to classify audio.

    Loading checks the bundle's SHA-256, its trust (``.skops`` allow-list) and its compatibility
    with this installation (see :func:`~vibe_check.models.load_bundle`), then rebuilds the feature
    extractor from the bundle's feature definition and checks it yields exactly the feature names
    the model was trained on.

    Parameters
    ----------
    path : path-like
        A ``.pkl`` or ``.skops`` bundle with its JSON sidecar.
    max_duration : float or None, keyword-only
        Longest input accepted, in seconds (longer files are refused from their header, before
        decoding); ``None`` disables the limit.
    test_time_augmentation : bool, keyword-only
        Also classify speed copies of every clip (the speeds of the bundle's training copies,
        0.85x-1.15x by default) and average the log-probabilities. Each clip is still predicted
        on its own. On RAVDESS it took the default LDA from 0.701 to 0.709 macro-F1 and
        sentiment from 0.825 to 0.829, for 5 feature extractions per clip instead of one
        (``python benchmarks/bench_test_time_augmentation.py``). Explanations describe the clip
        as recorded.

    Attributes
    ----------
    pipeline : estimator
        The fitted scikit-learn pipeline (scaler + classifier, or a voting ensemble).
    label_encoder : LabelEncoder
        Maps the pipeline's integer classes to labels.
    metadata : dict
        Everything the trainer recorded: classes, feature names and definition, CV metrics, versions...
    extra : dict
        Arrays stored with the model (SHAP background rows, feature quartiles, drift reference);
        may be empty.
    extractor : FeatureExtractor
        Built from the bundle's feature definition.
    classes_ : np.ndarray of str
        Class labels, in the column order of every probability output.
    feature_names : list of str
        Model input columns, in order.
    path : Path
    name : str
        The model's name (``"ensemble"``, ``"logreg"``...).
    test_time_speeds : tuple of float
        Speeds of the copies classified with every clip (empty unless ``test_time_augmentation``).
    speaker_normalized : bool
        Trained in the speaker-normalised mode: predictions need :meth:`for_speaker` first.
    trained_on_generated_speech : bool
        Trained on :mod:`vibe_check.data`'s generated speech (the demo's bundles): a check that
        the pipeline runs, not a model of real voices.
    speaker_mean_ : ndarray or None
        Mean feature vector of the speaker's reference clips (set by :meth:`for_speaker`).
    n_speaker_references_ : int
        Reference clips that went into :attr:`speaker_mean_`.

    Raises
    ------
    BundleError, BundleIntegrityError, UntrustedBundleError, IncompatibleBundleError
        See :func:`~vibe_check.models.load_bundle`; ``IncompatibleBundleError`` also when this
        version's extractor yields other feature names than the bundle lists.

    Examples
    --------
    >>> model = CustomEmotionModel("models/custom/best_emotion_model.pkl")  # doctest: +SKIP
    >>> model.predict_emotion_from_file("clip.wav")["emotion"]  # doctest: +SKIP
    'angry'
    >>> model.predict(["a.wav", (y, 16000)])  # doctest: +SKIP
    array(['angry', 'sad'], dtype='<U9')
    """

    def __init__(self, path: str | os.PathLike, *, max_duration: float | None = DEFAULT_MAX_DURATION,
                 test_time_augmentation: bool = False):
        self.path = Path(path)
        bundle = load_bundle(self.path)
        self.pipeline = bundle["pipeline"]
        self.label_encoder = bundle["label_encoder"]
        self.metadata: dict = bundle["metadata"]
        self.extra: dict = dict(bundle.get("extra") or {})
        self.sha256: str | None = read_bundle_metadata(self.path).get("sha256")
        self.name: str = str(self.metadata.get("model_name", self.path.stem))
        self.feature_names: list[str] = list(self.metadata.get("feature_names", []))
        self.extractor = FeatureExtractor(FeatureConfig.from_dict(self.metadata["feature_config"]), max_duration=max_duration)
        self._check_feature_names()
        self.classes_ = np.asarray(self.label_encoder.classes_).astype(str)
        self._columns = self._column_order()
        self._fast_proba = self._checked_fast_proba()
        self.test_time_speeds: tuple[float, ...] = (tuple(training_speed_copies(self.metadata, self.path.name).values())
                                                    if test_time_augmentation else ())
        self.speaker_normalized: bool = bool(self.metadata.get("speaker_normalization"))
        self.trained_on_generated_speech: bool = self.metadata.get("data_source") == GENERATED_SOURCE
        # Mean feature rows of the speaker's references (see for_speaker): as recorded, then each speed copy.
        self._speaker_row_means: np.ndarray | None = None
        self.n_speaker_references_ = 0
        # Filled by vibe_check.explain on first use; a speaker-adapted copy shares this dict (the
        # explainer depends on the bundle only), so adapting per request does not rebuild it.
        self._explainers: dict = {}

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> "CustomEmotionModel":
        """Load a bundle (same as the constructor).

        Examples
        --------
        >>> model = CustomEmotionModel.load("models/custom/best_emotion_model.skops")  # doctest: +SKIP
        """
        return cls(path, **kwargs)

    def _check_feature_names(self) -> None:
        ours, theirs = self.extractor.feature_names, self.feature_names
        if ours == theirs:
            return
        missing = [n for n in theirs if n not in set(ours)]
        added = [n for n in ours if n not in set(theirs)]
        parts = [f"the bundle lists {len(theirs)} features, this vibe-check extracts {len(ours)}"]
        if missing:
            parts.append(f"not extracted any more: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if added:
            parts.append(f"new: {', '.join(added[:5])}{' ...' if len(added) > 5 else ''}")
        if not missing and not added:
            i = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
            parts.append(f"same names in another order (position {i}: bundle {theirs[i]!r}, extractor {ours[i]!r})")
        raise IncompatibleBundleError(
            f"{self.path.name} was trained on other features than this vibe-check computes: "
            + "; ".join(parts) + ". Retrain it with this version (vibe-check train)."
        )

    def _column_order(self) -> np.ndarray:
        """Index in ``classes_`` of each column of ``pipeline.predict_proba``."""
        meta_classes = [str(c) for c in self.metadata.get("classes", self.classes_)]
        if meta_classes != self.classes_.tolist():
            raise BundleError(f"{self.path.name}: label encoder classes {self.classes_.tolist()} differ from the metadata's {meta_classes}")
        n_in = getattr(self.pipeline, "n_features_in_", len(self.feature_names))
        if n_in != len(self.feature_names):
            raise IncompatibleBundleError(
                f"{self.path.name}: the model takes {n_in} features but the bundle lists {len(self.feature_names)}; retrain it"
            )
        try:
            return class_columns(getattr(self.pipeline, "classes_", np.arange(len(self.classes_))), self.classes_.tolist())
        except ValueError as exc:
            raise BundleError(f"{self.path.name}: {exc} (its label encoder)") from None

    def _checked_fast_proba(self):
        """The compiled ``predict_proba`` if it reproduces scikit-learn on the bundle's background
        rows (real training features), else None: a scikit-learn release that changed its tree
        internals then costs speed, never correctness."""
        fast = compile_predict_proba(self.pipeline)
        probe = np.asarray(self.extra.get("background", np.empty((0, 0))), dtype=np.float64)
        if fast is None or probe.ndim != 2 or probe.shape[1] != len(self.feature_names) or not np.isfinite(probe).all():
            return None
        probe = probe[:_FAST_MAX_ROWS]
        try:
            with one_thread():
                agree = np.allclose(fast(probe), self.pipeline.predict_proba(probe), rtol=0, atol=1e-9)
        except Exception:  # noqa: BLE001 - any failure just means "use scikit-learn"
            agree = False
        return fast if agree else None

    # -- stages (each callable on its own, e.g. to time them) -----------------------------------
    def decode(self, source: Any, sr: int | None = None) -> np.ndarray:
        """Stage 1: audio as mono float32 at the model's rate.

        Parameters
        ----------
        source : path, bytes, file object, array or (array, sr)
            Files are checked from their header (length, truncation) before decoding.
        sr : int, optional
            Sample rate of ``source`` when it is an array.

        Examples
        --------
        >>> y = model.decode("clip.wav")  # doctest: +SKIP
        """
        return _decode(self.extractor, source, sr)

    def features(self, y: np.ndarray) -> tuple[np.ndarray, SignalInfo]:
        """Stage 2: the feature vector and signal facts of decoded audio (see :meth:`decode`).

        Raises :class:`~vibe_check.exceptions.NoSpeechError` for silence or too little sound.

        Examples
        --------
        >>> vector, info = model.features(model.decode("clip.wav"))  # doctest: +SKIP

        For a speaker-normalised model (see :meth:`for_speaker`) the vector is relative to the
        speaker's reference mean, which is what the model takes.
        """
        self._check_speaker_reference()
        vector, info = self.extractor.extract_prepared(y)
        return self._relative_to_speaker(vector), info

    def clip_rows(self, y: np.ndarray) -> tuple[np.ndarray, SignalInfo]:
        """Stage 2 as the model classifies a clip: its feature row, then one row per test-time
        speed copy of it (none without test-time augmentation), and the clip's signal facts.

        :meth:`clip_proba` turns the rows into the clip's probabilities; the first row is what
        :meth:`features` returns.

        Examples
        --------
        >>> rows, info = model.clip_rows(model.decode("clip.wav"))  # doctest: +SKIP
        >>> rows.shape  # doctest: +SKIP
        (5, 942)

        With ``test_time_augmentation=True`` and the default training: the clip and its 4 speed copies.
        """
        self._check_speaker_reference()
        rows, info = _clip_rows(self.extractor, y, self.test_time_speeds)
        return self._relative_to_speaker(rows), info

    def clip_proba(self, rows: np.ndarray) -> np.ndarray:
        """Stage 3 for the rows of one clip (:meth:`clip_rows`): its class probabilities, the
        normalised geometric mean over the clip and its speed copies; shape ``(n_classes,)``.

        Examples
        --------
        >>> model.clip_proba(model.clip_rows(model.decode("clip.wav"))[0]).sum()  # doctest: +SKIP
        1.0
        """
        return self._proba_of_items([np.atleast_2d(rows)])[0]

    # -- speaker-normalised mode -------------------------------------------------------------------
    def _check_speaker_reference(self) -> None:
        if self.speaker_normalized and self.speaker_mean_ is None:
            raise SpeakerReferenceError(
                f"{self.path.name} is speaker-normalised: it classifies a clip relative to its speaker's average, "
                "so it needs a few recordings of the speaker first: model.for_speaker([...clips...])"
            )

    @property
    def speaker_mean_(self) -> np.ndarray | None:
        return None if self._speaker_row_means is None else self._speaker_row_means[0]

    def _relative_to_speaker(self, vectors: np.ndarray) -> np.ndarray:
        """A clip's vector, or its rows (the clip, then its speed copies), minus the references' mean
        of the same kind: training centred every speed copy on the same speaker's copies of that speed."""
        if self.speaker_mean_ is None:
            return vectors
        return vectors - (self.speaker_mean_ if vectors.ndim == 1 else self._speaker_row_means[: len(vectors)])

    def for_speaker(self, references: Iterable[InferenceItem], *, n_jobs: int = 1) -> "CustomEmotionModel":
        """This model adapted to one speaker: clips are classified relative to the speaker's average.

        Only for bundles trained with ``vibe-check train --speaker-normalize``. The references are
        *unlabelled* recordings of the same speaker, ideally a typical mix of their speech: the
        more the better (on RAVDESS, 4 random clips of a speaker gave 0.690 macro-F1, 8 gave
        0.729, 16 0.735 and all ~59 0.749, against 0.701 for the model that needs none).
        References that are all calm, say, make every other clip look more aroused than it is
        (about 0.50). A reference that cannot be used is skipped with a warning.

        Parameters
        ----------
        references : iterable of path, bytes or (y, sr)
            At least the bundle's ``min_reference_clips`` (4) usable clips of the speaker.
        n_jobs : int
            Worker processes for extraction.

        Returns
        -------
        CustomEmotionModel
            A copy holding :attr:`speaker_mean_`; this model is left unchanged.

        Raises
        ------
        SpeakerReferenceError
            The bundle is not speaker-normalised, or fewer usable references than required.

        Examples
        --------
        >>> model = CustomEmotionModel("models/custom/best_emotion_speaker_model.pkl")  # doctest: +SKIP
        >>> alice = model.for_speaker(["alice_01.wav", "alice_02.wav", "alice_03.wav", "alice_04.wav"])  # doctest: +SKIP
        >>> alice.predict_emotion_from_file("alice_05.wav")["emotion"]  # doctest: +SKIP
        'happy'
        """
        self._require_speaker_mode()
        items = list(references) if not isinstance(references, (str, os.PathLike, bytes)) else [references]
        extracted = self._extract_raw(items, n_jobs, catch=True, speeds=self.test_time_speeds)
        usable = [rows for rows, _, err in extracted if err is None]
        skipped = [f"{_item_label(item, i)} ({err['type']}: {err['message']})"
                   for i, (item, (_, _, err)) in enumerate(zip(items, extracted)) if err is not None]
        if len(usable) < self.min_reference_clips:
            raise SpeakerReferenceError(
                f"{len(usable)} usable reference clip(s) of the speaker, {self.min_reference_clips} needed"
                + (f"; skipped: {'; '.join(skipped)}" if skipped else "")
            )
        if skipped:
            warnings.warn(f"skipped {len(skipped)} reference clip(s): {'; '.join(skipped)}", stacklevel=2)
        return self.for_speaker_rows(usable)

    def _require_speaker_mode(self) -> None:
        if not self.speaker_normalized:
            raise SpeakerReferenceError(
                f"{self.path.name} classifies every clip on its own and takes no speaker references; "
                "train a speaker-normalised model with `vibe-check train --speaker-normalize`"
            )

    @property
    def min_reference_clips(self) -> int:
        """Reference clips a speaker-normalised model needs (0 for a model that takes none)."""
        if not self.speaker_normalized:
            return 0
        return int(self.metadata["speaker_normalization"].get("min_reference_clips", 1))

    def reference_rows(self, y: np.ndarray) -> np.ndarray:
        """The feature rows a decoded reference clip contributes to its speaker's average: the
        clip, then its test-time speed copies (as :meth:`clip_rows`, but not centred).

        For callers that collect a speaker's references over time (the service does) and adapt
        the model with :meth:`for_speaker_rows`; :meth:`for_speaker` does both at once.

        Examples
        --------
        >>> rows = [model.reference_rows(model.decode(path)) for path in alice_clips]  # doctest: +SKIP
        >>> alice = model.for_speaker_rows(rows)  # doctest: +SKIP
        """
        return _clip_rows(self.extractor, y, self.test_time_speeds)[0]

    def for_speaker_rows(self, rows: Sequence[np.ndarray]) -> "CustomEmotionModel":
        """:meth:`for_speaker` from the :meth:`reference_rows` of each reference clip.

        Raises
        ------
        SpeakerReferenceError
            The bundle is not speaker-normalised, fewer rows than :attr:`min_reference_clips`, or
            rows of another shape (another model, or other test-time speeds).
        """
        self._require_speaker_mode()
        rows = [np.atleast_2d(np.asarray(r, dtype=np.float64)) for r in rows]
        if len(rows) < self.min_reference_clips:
            raise SpeakerReferenceError(f"{len(rows)} reference clip(s) of the speaker, {self.min_reference_clips} needed")
        expected = (1 + len(self.test_time_speeds), len(self.feature_names))
        if any(r.shape != expected for r in rows):
            raise SpeakerReferenceError(f"reference rows must each have shape {expected} (from this model's reference_rows)")
        adapted = copy.copy(self)
        adapted._speaker_row_means = np.mean(rows, axis=0)
        adapted.n_speaker_references_ = len(rows)
        return adapted

    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        """Stage 3: class probabilities of feature rows, columns in :attr:`classes_` order.

        Parameters
        ----------
        X : array of shape (n, n_features) or (n_features,)

        Returns
        -------
        np.ndarray of shape (n, n_classes)
            Each row sums to 1.

        Examples
        --------
        >>> P = model.predict_proba_features(vectors)  # doctest: +SKIP
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected feature rows of {len(self.feature_names)} values, got shape {X.shape}")
        P = np.zeros((X.shape[0], len(self.classes_)))
        if X.shape[0]:
            fast = self._fast_proba is not None and X.shape[0] <= _FAST_MAX_ROWS and np.isfinite(X).all()
            with one_thread():
                P[:, self._columns] = (self._fast_proba if fast else self.pipeline.predict_proba)(X)
            P /= P.sum(axis=1, keepdims=True)
        return P

    def result_from_proba(self, p: np.ndarray, info: SignalInfo) -> dict:
        """Stage 4: the result dict of one probability row (see :meth:`predict_emotion_from_file`)."""
        p = np.asarray(p, dtype=np.float64).ravel()
        top = int(np.argmax(p))
        return {
            "emotion": str(self.classes_[top]),
            "confidence": float(p[top]),
            "probabilities": {str(c): float(v) for c, v in zip(self.classes_, p)},
            "duration_s": float(info.duration_s),
            "speech_duration_s": float(info.speech_duration_s),
            "level_dbfs": float(info.level_dbfs),
            "snr_db": float(info.snr_db),
        }

    def _proba_of_items(self, item_rows: Sequence[np.ndarray]) -> np.ndarray:
        """One probability row per item from its feature rows (:func:`_clip_rows`): with
        test-time augmentation, the normalised geometric mean over the clip and its speed copies."""
        return combine_copies(self.predict_proba_features(np.vstack(item_rows)), [len(r) for r in item_rows])

    # -- one input ------------------------------------------------------------------------------
    def _predict_one(self, source: Any, sr: int | None = None) -> dict:
        rows, info, _ = self._extract_all([source if sr is None else (source, sr)], n_jobs=1, catch=False)[0]
        return self.result_from_proba(self._proba_of_items([rows])[0], info)

    def predict_emotion_from_file(self, path: str | os.PathLike) -> dict:
        """Classify an audio file.

        Returns
        -------
        dict
            ``emotion`` (str), ``confidence`` (top probability), ``probabilities`` (every class ->
            probability, summing to 1), ``duration_s`` (input), ``speech_duration_s`` (after
            trimming silence), ``level_dbfs`` and ``snr_db`` (rough input level and SNR).

        Raises
        ------
        AudioError
            A specific subclass for a missing, empty, corrupt, truncated or too long file, and
            :class:`~vibe_check.exceptions.NoSpeechError` for silence or too little sound.

        Examples
        --------
        >>> model.predict_emotion_from_file("clip.wav")  # doctest: +SKIP
        {'emotion': 'angry', 'confidence': 0.71, 'probabilities': {'angry': 0.71, ...}, ...}
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidAudioError(f"expected a file path, got {type(path).__name__}")
        return self._predict_one(path)

    def predict_emotion_from_array(self, y: np.ndarray, sr: int) -> dict:
        """Classify samples in memory: 1-D or ``(frames, channels)``, float or integer PCM, any rate.

        Stereo is averaged to mono, integer PCM scaled by its type's range and the rate converted
        to the model's. Returns the same dict as :meth:`predict_emotion_from_file`.

        Examples
        --------
        >>> from vibe_check.data import synthesize_utterance
        >>> model.predict_emotion_from_array(synthesize_utterance("sad"), 16000)["emotion"]  # doctest: +SKIP
        'sad'
        """
        return self._predict_one(np.asarray(y), sr)

    def predict_emotion_from_bytes(self, data: bytes) -> dict:
        """Classify an encoded audio file held in memory (an upload). Same dict as
        :meth:`predict_emotion_from_file`.

        Examples
        --------
        >>> model.predict_emotion_from_bytes(Path("clip.wav").read_bytes())  # doctest: +SKIP
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidAudioError(f"expected bytes, got {type(data).__name__}")
        return self._predict_one(bytes(data))

    # -- many inputs ------------------------------------------------------------------------------
    def _extract_all(self, items: Sequence[Any], n_jobs: int, catch: bool) -> list[tuple]:
        """Model input of every item: ``(rows, info, error)`` per item (see :func:`_clip_rows`)."""
        self._check_speaker_reference()
        return [(None if rows is None else self._relative_to_speaker(rows), info, err)
                for rows, info, err in self._extract_raw(items, n_jobs, catch, self.test_time_speeds)]

    def _extract_raw(self, items: Sequence[Any], n_jobs: int, catch: bool, speeds: Sequence[float] = ()) -> list[tuple]:
        items = _item_list(items)
        if n_jobs == 1 or len(items) <= 1:
            return [_item_features(self.extractor, item, catch, speeds) for item in items]
        from joblib import Parallel, delayed

        warm_up(self.extractor)
        # Open files cannot travel to worker processes: their bytes can.
        items = [item.read() if hasattr(item, "read") else item for item in items]
        return Parallel(n_jobs=n_jobs)(delayed(_item_features)(self.extractor, item, catch, speeds) for item in items)

    def predict_batch(self, items: Iterable[InferenceItem], n_jobs: int = 1) -> list[dict]:
        """Classify many inputs; one failing item does not stop the others.

        Features are extracted in parallel (joblib, ``n_jobs`` workers) and the model then
        predicts once on all the rows.

        Parameters
        ----------
        items : iterable of path, bytes or (y, sr)
        n_jobs : int
            Worker processes for extraction; -1 uses every core.

        Returns
        -------
        list of dict
            In input order: the result dict of :meth:`predict_emotion_from_file`, or for an item
            that failed ``{"error": {"type": "NoSpeechError", "message": ...}, "item": path or index}``.

        Examples
        --------
        >>> model.predict_batch(["a.wav", "silence.wav"])  # doctest: +SKIP
        [{'emotion': 'happy', ...}, {'error': {'type': 'NoSpeechError', 'message': ...}, 'item': 'silence.wav'}]
        """
        items = _item_list(items)
        extracted = self._extract_all(items, n_jobs, catch=True)
        ok = [i for i, (_, _, err) in enumerate(extracted) if err is None]
        P = self._proba_of_items([extracted[i][0] for i in ok]) if ok else None
        results: list[dict] = [{"error": err, "item": _item_label(item, i)} for i, (item, (_, _, err)) in enumerate(zip(items, extracted))]
        for row, i in enumerate(ok):
            results[i] = self.result_from_proba(P[row], extracted[i][1])
        return results

    def predict_proba(self, items: Iterable[InferenceItem], n_jobs: int = 1) -> np.ndarray:
        """Class probabilities, shape ``(n_items, n_classes)``, columns in :attr:`classes_` order.

        Unlike :meth:`predict_batch`, the first bad item raises its error.

        Examples
        --------
        >>> model.predict_proba(["a.wav", (y, 8000)]).shape  # doctest: +SKIP
        (2, 8)
        """
        extracted = self._extract_all(items, n_jobs, catch=False)
        if not extracted:
            return np.zeros((0, len(self.classes_)))
        return self._proba_of_items([rows for rows, _, _ in extracted])

    def predict(self, items: Iterable[InferenceItem], n_jobs: int = 1) -> np.ndarray:
        """Predicted labels, one per item (the first bad item raises its error).

        Examples
        --------
        >>> model.predict(["a.wav", "b.wav"])  # doctest: +SKIP
        array(['angry', 'calm'], dtype='<U9')
        """
        return self.classes_[self.predict_proba(items, n_jobs=n_jobs).argmax(axis=1)]

    def explain(self, source: Any, *, top_k: int = 5) -> dict:
        """Classify one input and say why: the features pushing towards and away from the
        predicted class, with their values, typical training values and SHAP contributions.

        Parameters
        ----------
        source : path, bytes, file object or (samples, sample_rate)
        top_k : int
            Features listed on each side.

        Returns
        -------
        dict
            See :func:`vibe_check.explain.explain_audio`: ``predicted``, ``probability``,
            ``towards`` / ``away`` (each feature with a plain-words ``sentence``), ``summary``...

        Examples
        --------
        >>> model.explain("clip.wav", top_k=3)["towards"][0]["sentence"]  # doctest: +SKIP
        'pitch variability high (f0_std = 48.1 Hz, typical 21.0) -> towards angry'
        """
        from ..explain import explain_audio  # lazy: shap is imported only when explanations are asked for

        return explain_audio(self, source, top_k=top_k)

    def explain_rows(self, rows: np.ndarray, info: SignalInfo, *, top_k: int = 5, proba: np.ndarray | None = None) -> dict:
        """:meth:`explain` for a clip already extracted (``rows, info = model.clip_rows(y)``), with
        ``proba`` from :meth:`clip_proba` when the caller has it: no second extraction.

        Examples
        --------
        >>> rows, info = model.clip_rows(model.decode("clip.wav"))  # doctest: +SKIP
        >>> model.explain_rows(rows, info, top_k=3)["predicted"]  # doctest: +SKIP
        'angry'
        """
        from ..explain import explain_rows

        return explain_rows(self, rows, info, top_k=top_k, proba=proba)

    # -- description ------------------------------------------------------------------------------
    def cv_summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation over the speaker-independent CV folds of macro-F1, UAR and accuracy."""
        summary = self.metadata.get("cv", {}).get("summary", {})
        return {m: {"mean": float(summary[m]["mean"]), "std": float(summary[m]["std"])} for m in _CV_METRICS if m in summary}

    def info(self) -> dict:
        """What this model is, how well it did in cross-validation, and what it was made with.

        Examples
        --------
        >>> model.info()["cv"]["macro_f1"]  # doctest: +SKIP
        {'mean': 0.57, 'std': 0.03}
        """
        meta = self.metadata
        cv = meta.get("cv", {})
        return {
            "name": self.name,
            "model_label": meta.get("model_label"),
            "model_type": meta.get("model_type"),
            "task": meta.get("task"),
            "classes": self.classes_.tolist(),
            "n_classes": len(self.classes_),
            "feature_hash": meta.get("feature_hash"),
            "n_features": len(self.feature_names),
            "cv": {"protocol": cv.get("protocol"), "n_folds": cv.get("summary", {}).get("n_folds"), **self.cv_summary()},
            "is_best": meta.get("is_best"),
            "speaker_normalized": self.speaker_normalized,
            "speaker_references": self.n_speaker_references_,
            "test_time_speeds": list(self.test_time_speeds),
            "ensemble_members": meta.get("ensemble_members", []),
            "versions": dict(meta.get("versions", {})),
            "created_at": meta.get("created_at"),
            "path": str(self.path),
            "format": self.path.suffix.lstrip("."),
            "sha256": self.sha256,
        }

    def __repr__(self) -> str:
        score = self.cv_summary().get("macro_f1")
        f1 = f", macro_f1={score['mean']:.2f}±{score['std']:.2f}" if score else ""
        speaker = f", speaker_references={self.n_speaker_references_}" if self.speaker_normalized else ""
        return (f"{type(self).__name__}({self.path.name!r}, model={self.name}, task={self.metadata.get('task')}, "
                f"classes={len(self.classes_)}{f1}{speaker})")
