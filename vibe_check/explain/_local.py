"""Local explanations: why did the model call *this* clip angry?

An :class:`Explainer` is built once per model bundle (it prepares the SHAP explainers and the
feature table) and then explains any number of feature vectors, which is what a service does
per request. Explaining one clip costs about a millisecond or two for LDA and logistic
regression, a few milliseconds for the tree models and about 16 ms for the soft-voting ensemble
(RAVDESS-trained bundles, one thread).

With test-time augmentation a model's answer for a clip combines the clip's row with rows of its
speed copies (the normalised geometric mean of their probabilities); :meth:`Explainer.explain`
takes all the rows and explains that answer: exactly for LDA, logistic regression and gradient
boosting, approximately for the random forest and the ensemble (the ``explains`` and
``approximate`` fields of the result say which).
"""

from __future__ import annotations

import threading
import time
from typing import Mapping, Sequence

import numpy as np

from .._threads import one_thread
from ..models._custom import class_columns, combine_copies
from ._shap import ExplanationError, PipelineShap, ShapResult
from ._words import SPACE_UNITS, feature_unit, level_word, plain_label, sentence

__all__ = ["Explainer", "explain_instance", "explain_audio", "explain_rows", "model_explainer"]

_BUILDING = threading.Lock()  # building an explainer takes seconds: once per model, whichever thread asks first


def _feature_table(feature_names: Sequence[str], feature_config: Mapping | None) -> tuple[dict, dict]:
    """Group and description of every feature, from the feature definition the model was trained on."""
    from ..features import FeatureConfig, describe_features

    cfg = FeatureConfig.from_dict(dict(feature_config)) if feature_config else None
    table = describe_features(cfg)
    groups, descriptions = dict(zip(table["name"], table["group"])), dict(zip(table["name"], table["description"]))
    return ({f: groups.get(f, "unknown") for f in feature_names}, {f: descriptions.get(f, "") for f in feature_names})


class Explainer:
    """Explain single predictions of a fitted pipeline with SHAP, in words.

    Parameters
    ----------
    pipeline : fitted Pipeline or soft VotingClassifier
    feature_names : sequence of str
    classes : sequence of str
        Class names in the model's encoded output order.
    background : ndarray, optional
        Raw training rows (masker of the linear explainer).
    feature_median, feature_q25, feature_q75 : ndarray, optional
        Training statistics of every feature: the "typical" values in the sentences. Without
        them the background rows' statistics are used.
    feature_config : dict, optional
        The feature definition (``FeatureConfig.to_dict()``) for groups and descriptions.
    output : {"probability", "native"}
        Space of the contributions. ``probability`` (default): on the 0-1 probability scale
        (+0.05 = 5 percentage points); ``native`` is the model's exact space (logits, i.e. softmax
        scores, for LDA, logistic regression and boosting).
    model_name : str, optional
    relative_to_speaker : bool
        The model is speaker-normalised (its features are differences from the speaker's
        average), so the sentences say "for this speaker" and "from the speaker's average".

    Examples
    --------
    >>> ex = Explainer.from_bundle(load_bundle("models/custom/best_emotion_model.pkl"))  # doctest: +SKIP
    >>> result = ex.explain(feature_vector, top_k=5)  # doctest: +SKIP
    >>> print(result["towards"][0]["sentence"])  # doctest: +SKIP
    pitch variability high (f0_std = 48.1 Hz, typical 21.0) -> towards angry
    """

    def __init__(self, pipeline, *, feature_names: Sequence[str], classes: Sequence[str],
                 background: np.ndarray | None = None, feature_median: np.ndarray | None = None,
                 feature_q25: np.ndarray | None = None, feature_q75: np.ndarray | None = None,
                 feature_config: Mapping | None = None, output: str = "probability", model_name: str = "",
                 relative_to_speaker: bool = False):
        self.pipeline = pipeline
        self.relative_to_speaker = relative_to_speaker  # a speaker-normalised model: features are differences
        self.feature_names = list(feature_names)
        self.classes = [str(c) for c in classes]
        self.model_name = model_name
        if background is None and (feature_median is None or feature_q25 is None or feature_q75 is None):
            raise ExplanationError("need background rows or feature statistics (median, q25, q75) to say what is typical")
        if feature_median is None or feature_q25 is None or feature_q75 is None:
            feature_q25, feature_median, feature_q75 = np.percentile(np.asarray(background, dtype=np.float64), [25, 50, 75], axis=0)
        self.median = np.asarray(feature_median, dtype=np.float64)
        self.q25 = np.asarray(feature_q25, dtype=np.float64)
        self.q75 = np.asarray(feature_q75, dtype=np.float64)
        self.groups, self.descriptions = _feature_table(self.feature_names, feature_config)
        self.units = [feature_unit(f, self.descriptions[f]) for f in self.feature_names]
        self.labels = [plain_label(f) for f in self.feature_names]
        self._shap = PipelineShap(pipeline, n_classes=len(self.classes),
                                  background=None if background is None else np.asarray(background, dtype=np.float64),
                                  output=output)
        self.space = self._shap.space
        self.method = self._shap.method

    @classmethod
    def from_bundle(cls, bundle, *, output: str = "probability") -> "Explainer":
        """Build from a loaded bundle: the dict of :func:`~vibe_check.models.load_bundle`, or any
        object with ``pipeline``, ``metadata`` and ``extra`` attributes (``CustomEmotionModel``)."""
        get = bundle.get if isinstance(bundle, Mapping) else (lambda k, d=None: getattr(bundle, k, d))
        meta, extra = get("metadata") or {}, get("extra") or {}
        return cls(get("pipeline"), feature_names=meta["feature_names"], classes=meta["classes"],
                   background=extra.get("background"), feature_median=extra.get("feature_median"),
                   feature_q25=extra.get("feature_q25"), feature_q75=extra.get("feature_q75"),
                   feature_config=meta.get("feature_config"), output=output, model_name=meta.get("model_name", ""),
                   relative_to_speaker=bool(meta.get("speaker_normalization")))

    def shap_values(self, X: np.ndarray) -> ShapResult:
        """SHAP values (n, features, classes) of raw feature rows, in :attr:`space`."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != len(self.feature_names):
            raise ExplanationError(f"got {X.shape[1]} features, the model expects {len(self.feature_names)}")
        t0 = time.perf_counter()
        with one_thread():  # one clip: threads only add start-up and spin-wait costs
            values, base = self._shap(X)
        return ShapResult(values=values, base_values=base, data=X, feature_names=self.feature_names,
                          classes=self.classes, space=self.space, method=self.method,
                          seconds=time.perf_counter() - t0, model=self.model_name)

    def _item(self, j: int, x: np.ndarray, contribution: float, target: str) -> dict:
        name = self.feature_names[j]
        value = float(x[j])
        return {
            "name": name,
            "label": self.labels[j],
            "group": self.groups[name],
            "description": self.descriptions[name],
            "value": value,
            "unit": self.units[j],
            "typical": float(self.median[j]),
            "q25": float(self.q25[j]),
            "q75": float(self.q75[j]),
            "level": level_word(value, self.q25[j], self.q75[j]),
            "contribution": float(contribution),
            "sentence": sentence(name, value=value, median=float(self.median[j]), q25=float(self.q25[j]),
                                 q75=float(self.q75[j]), unit=self.units[j], target=target, towards=contribution > 0,
                                 relative=self.relative_to_speaker),
        }

    def _proba(self, X: np.ndarray) -> np.ndarray:
        """``predict_proba`` of raw rows with one column per class of :attr:`classes` (a pipeline
        fitted without some classes gets zeros for them), as :class:`PipelineShap` aligns its values."""
        raw = np.asarray(self.pipeline.predict_proba(X), dtype=np.float64)
        codes = np.asarray(getattr(self.pipeline, "classes_", np.arange(raw.shape[1])))
        try:
            if codes.size != raw.shape[1]:
                raise ValueError(f"the model's classes {codes.tolist()} do not match its {raw.shape[1]} probability columns")
            idx = class_columns(codes, self.classes)
        except ValueError as exc:
            raise ExplanationError(f"{exc} ({self.classes})") from None
        out = np.zeros((raw.shape[0], len(self.classes)))
        out[:, idx] = raw
        return out

    def explain(self, x: np.ndarray, *, top_k: int = 5, proba: np.ndarray | None = None,
                copies: str = "copies") -> dict:
        """Explain the model's answer for one clip: its raw feature vector, or its row followed by
        rows of copies of it (test-time augmentation).

        Parameters
        ----------
        x : ndarray, shape (features,) or (rows, features)
            One row, or the clip's row then one row per copy (``CustomEmotionModel.clip_rows``).
            Several rows make one answer, the normalised geometric mean of their probabilities,
            as the model gives it; the contributions explain that answer (see ``approximate``).
        top_k : int
            Features listed on each side.
        proba : ndarray, optional
            The answer's class probabilities if already computed (saves a model call), e.g.
            ``CustomEmotionModel.clip_proba(rows)``.
        copies : str
            What the rows after the first are, in words ("speed copies (0.9x, 1.1x)"), for
            ``explains``.

        Returns
        -------
        dict
            ``predicted`` (class), ``probability``, ``probabilities`` (class -> p), ``model``,
            ``space`` and ``method`` of the contributions, ``base_value`` and ``output`` (the
            explained output of the predicted class: ``base_value + sum of all contributions``),
            ``explains`` (what the contributions explain, in words), ``approximate`` and
            ``rows`` (see below), ``towards`` (up to ``top_k`` features with positive
            contributions, largest first) and ``away`` (negative ones, most negative first), each
            a dict with ``name``, ``label``, ``group``, ``description``, ``value`` (the clip's
            own value, from the first row), ``unit``, ``typical`` (training median), ``q25``,
            ``q75``, ``level`` (high/low/typical), ``contribution``, ``sentence``; ``rest`` (sum
            of the contributions not listed), ``summary`` (one sentence) and ``seconds``.

            With one row, or several rows of a model whose probabilities are the softmax of its
            logits (LDA, logistic regression, gradient boosting: the mean of the rows' logit-space
            values explains the geometric mean exactly), ``approximate`` is False and, in
            probability space, ``output`` equals ``probability``. With several rows of the random
            forest or the ensemble the rows' probability-space values are averaged: they explain
            the arithmetic mean of the rows' probabilities, which ``output`` reports, and
            ``approximate`` is True.

        Examples
        --------
        >>> out = explainer.explain(vector, top_k=3)  # doctest: +SKIP
        >>> out["predicted"], [f["name"] for f in out["towards"]]  # doctest: +SKIP
        ('angry', ['f0_std', 'rms_db_p90', 'hnr_mean'])
        >>> rows, _ = model.clip_rows(model.decode("clip.wav"))  # the clip and its speed copies  # doctest: +SKIP
        >>> out = explainer.explain(rows)  # doctest: +SKIP
        >>> abs(out["output"] - out["probability"]) < 1e-9, out["explains"]  # doctest: +SKIP
        (True, 'the clip and its 2 copies, combined as the model combines them (exact)')
        """
        t0 = time.perf_counter()
        X = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ExplanationError(f"expected rows of {len(self.feature_names)} features, got shape {np.shape(x)}")
        n_rows = X.shape[0]
        with one_thread():  # one clip: threads only add start-up and spin-wait costs
            if proba is None:  # the model's answer: over the copies, as CustomEmotionModel combines them
                proba = combine_copies(self._proba(X), [n_rows])[0]
            values, base = self._shap(X) if n_rows == 1 else self._shap.combined(X)
        proba = np.asarray(proba, dtype=np.float64).reshape(-1)
        if proba.size != len(self.classes):
            raise ExplanationError(f"proba has {proba.size} values, the model has {len(self.classes)} classes")
        exact = n_rows == 1 or self._shap.combines_exactly
        x = X[0]  # the clip as recorded: the values the sentences quote
        k = int(np.argmax(proba))
        target = self.classes[k]
        phi = values[0, :, k]
        output = float(base[0, k] + phi.sum())
        order = np.argsort(-phi, kind="stable")
        towards = [j for j in order[:top_k] if phi[j] > 0]
        away = [j for j in order[::-1][:top_k] if phi[j] < 0]
        listed = towards + away
        items_t = [self._item(j, x, phi[j], target) for j in towards]
        items_a = [self._item(j, x, phi[j], target) for j in away]
        unit = SPACE_UNITS.get(self.space, self.space)
        reasons = "; ".join(i["sentence"].rsplit(" -> ", 1)[0] for i in items_t[:3]) or "no single feature stands out"
        group = f"the clip and its {n_rows - 1} {copies}"
        if n_rows == 1:
            explains = "the clip"
        elif not exact:
            explains = (f"{group}: the mean of their probabilities, an approximation of the answer (the normalised "
                        "geometric mean of those probabilities)")
        elif self.space == "probability":
            explains = f"{group}, combined as the model combines them (exact)"
        else:
            explains = f"{group}: the mean of their logits, whose softmax is the answer (exact)"
        summary = f"{target} (p = {proba[k]:.2f}), mainly because of: {reasons}. Contributions are in {unit}"
        if n_rows > 1:
            summary += (f", explaining {group}" if exact else
                        f", and explain the mean probability over {group} ({output:.2f} for {target}), "
                        "an approximation of this answer")
        return {
            "model": self.model_name,
            "predicted": target,
            "probability": float(proba[k]),
            "probabilities": {c: float(p) for c, p in zip(self.classes, proba)},
            "space": self.space,
            "method": self.method,
            "base_value": float(base[0, k]),
            "output": output,
            "explains": explains,
            "approximate": not exact,
            "rows": n_rows,
            "towards": items_t,
            "away": items_a,
            "rest": float(phi.sum() - phi[listed].sum()) if listed else float(phi.sum()),
            "summary": summary + ".",
            "seconds": time.perf_counter() - t0,
        }


def explain_instance(pipeline, x: np.ndarray, *, feature_names: Sequence[str], classes: Sequence[str],
                     background: np.ndarray | None = None, feature_median: np.ndarray | None = None,
                     feature_q25: np.ndarray | None = None, feature_q75: np.ndarray | None = None,
                     top_k: int = 5, output: str = "probability", feature_config: Mapping | None = None) -> dict:
    """One-off local explanation (builds an :class:`Explainer`; reuse one to explain many clips).

    Examples
    --------
    >>> extra = bundle["extra"]  # doctest: +SKIP
    >>> explain_instance(bundle["pipeline"], vector, feature_names=bundle["metadata"]["feature_names"],
    ...                  classes=bundle["metadata"]["classes"], background=extra["background"],
    ...                  feature_median=extra["feature_median"], feature_q25=extra["feature_q25"],
    ...                  feature_q75=extra["feature_q75"])["predicted"]  # doctest: +SKIP
    'angry'
    """
    explainer = Explainer(pipeline, feature_names=feature_names, classes=classes, background=background,
                          feature_median=feature_median, feature_q25=feature_q25, feature_q75=feature_q75,
                          feature_config=feature_config, output=output)
    return explainer.explain(x, top_k=top_k)


def model_explainer(model) -> "Explainer":
    """The model's :class:`Explainer`, built once (seconds: SHAP's explainer and the background).

    It is kept in the model's ``_explainers`` dict, which a speaker-adapted copy
    (:meth:`~vibe_check.models.CustomEmotionModel.for_speaker`) shares with its model: the
    explainer depends on the bundle only, so a service adapting the model per request builds it
    once, and ``?explain=true`` and the drift monitor use the same one.
    """
    cache = model.__dict__.setdefault("_explainers", {})
    if "shap" not in cache:
        with _BUILDING:  # the service's warm-up and its first ?explain request may both get here
            if "shap" not in cache:
                cache["shap"] = Explainer.from_bundle(model)
    return cache["shap"]


def explain_audio(model, source, *, top_k: int = 5, sr: int | None = None) -> dict:
    """Decode, extract, classify and explain one input with a loaded model bundle.

    The :class:`Explainer` is built on the first call and kept on the model, so later calls
    only pay for the explanation itself.

    Parameters
    ----------
    model : CustomEmotionModel
        Anything with ``decode``, ``clip_rows``, ``clip_proba``, ``pipeline``, ``metadata`` and
        ``extra``.
    source : path, bytes, file object, or (samples, sample_rate)
    top_k : int
    sr : int, optional
        Sample rate when ``source`` is an array.

    Returns
    -------
    dict
        :meth:`Explainer.explain`'s dict plus ``signal`` (duration, speech duration, level, SNR).
        ``predicted`` and ``probability`` are the model's own answer for the input (with
        test-time augmentation, over the clip and its speed copies), and the SHAP values explain
        that answer: exactly for LDA, logistic regression and gradient boosting, approximately
        (``approximate`` is True) for the random forest and the ensemble. ``explains`` says which.

    Examples
    --------
    >>> explain_audio(CustomEmotionModel("models/custom/best_emotion_model.pkl"), "clip.wav")["predicted"]  # doctest: +SKIP
    'angry'
    """
    model_explainer(model)  # first: a model that cannot be explained fails before the extraction
    rows, info = model.clip_rows(model.decode(source, sr))
    return explain_rows(model, rows, info, top_k=top_k)


def explain_rows(model, rows: np.ndarray, info, *, top_k: int = 5, proba: np.ndarray | None = None) -> dict:
    """:func:`explain_audio` for a clip already decoded and extracted: ``rows, info =
    model.clip_rows(y)``, and ``proba`` from ``model.clip_proba(rows)`` if the caller has it.

    A service that has just classified a clip explains it with this, without extracting twice.

    Examples
    --------
    >>> rows, info = model.clip_rows(model.decode("clip.wav"))  # doctest: +SKIP
    >>> explain_rows(model, rows, info, top_k=3)["predicted"]  # doctest: +SKIP
    'angry'
    """
    rows = np.atleast_2d(rows)
    proba = np.asarray(model.clip_proba(rows) if proba is None else proba, dtype=np.float64)
    speeds = tuple(getattr(model, "test_time_speeds", ()) or ())
    copies = ("speed copies (" + ", ".join(f"{f:g}x" for f in speeds) + ")" if len(speeds) == len(rows) - 1
              else "copies")
    # Every row: the answer is made from the clip and its speed copies, and so is its explanation.
    out = model_explainer(model).explain(rows, top_k=top_k, proba=proba, copies=copies)
    out["signal"] = {"duration_s": float(info.duration_s), "speech_duration_s": float(info.speech_duration_s),
                     "level_dbfs": float(info.level_dbfs), "snr_db": float(info.snr_db)}
    return out
