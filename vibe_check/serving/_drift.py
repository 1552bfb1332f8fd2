"""Watching the model in production: feature drift, input conditions and live SHAP importance.

A :class:`DriftMonitor` sees every prediction right after feature extraction. It keeps the bin of
each feature of the last ``window`` requests (a bounded :class:`collections.deque`) and, when
Prometheus scrapes ``/metrics``, compares the window with the training data:

``vibe_check_feature_drift_psi{group}``
    Mean over the group's features of the population stability index between the window's share
    in the training quantile bins and the training proportions (see :func:`psi`).
``vibe_check_drift_window_size``
    Requests in the window (PSI is only reported from ``min_window`` requests on).
``vibe_check_input_level_dbfs``, ``vibe_check_input_snr_db``
    Histograms of the input level and estimated SNR of every request.
``vibe_check_training_class_share{emotion}``
    Each class's share of the training data, to put next to ``vibe_check_predictions_total``.
``vibe_check_shap_mean_abs{group}``, ``vibe_check_shap_feature_mean_abs{feature}``
    For a deterministic fraction of requests (every ``1/shap_fraction``-th), the SHAP values of
    the request from the model's explainer (the one :meth:`explain` builds and keeps), averaged
    over classes as |SHAP|; per group the sum over the group's features; reported as the mean over
    the sampled requests still in the window. Features: the ``top_features`` with the largest
    mean |SHAP| over the bundle's background rows, fixed when the explainer is first used.

Every label set is bounded: the feature groups of the extractor, the model's classes and a fixed
list of top features. Everything costs microseconds per request except the sampled SHAP values
(about a millisecond for logistic regression, tens of milliseconds for tree models).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["DriftMonitor", "psi", "PSI_STABLE", "PSI_SIGNIFICANT", "shared_explainer"]

log = logging.getLogger(__name__)

#: Usual reading of the PSI: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 significant.
PSI_STABLE = 0.1
PSI_SIGNIFICANT = 0.25


def psi(counts: np.ndarray, reference: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """Population stability index of observed bin counts against reference proportions.

    ``PSI = sum_i (p_i - q_i) ln(p_i / q_i)`` with ``p`` the observed shares and ``q`` the
    reference shares, per row. Both are smoothed so that an empty bin does not make it infinite:
    ``p_i = (c_i + alpha) / (n + alpha * B)`` (``B`` bins) and ``q_i`` floored at ``1e-4`` and
    renormalised.

    Reading: PSI < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift. With ``n``
    observations drawn from the reference itself the expected PSI is about ``(B - 1) / n``
    (0.045 for 10 bins and 200 requests), so small windows read high.

    Parameters
    ----------
    counts : ndarray, shape (..., B)
    reference : ndarray, shape (..., B)

    Examples
    --------
    >>> q = np.full(10, 0.1)
    >>> float(psi(np.full(10, 50), q)) < 1e-9
    True
    >>> float(psi(np.r_[np.zeros(8), 250, 250], q)) > 1
    True
    """
    counts = np.asarray(counts, dtype=np.float64)
    q = np.maximum(np.asarray(reference, dtype=np.float64), 1e-4)
    q = q / q.sum(axis=-1, keepdims=True)
    n_bins = counts.shape[-1]
    p = (counts + alpha) / (counts.sum(axis=-1, keepdims=True) + alpha * n_bins)
    return ((p - q) * np.log(p / q)).sum(axis=-1)


def shared_explainer(model):
    """The model's :class:`~vibe_check.explain.Explainer`, the one ``?explain=true`` uses too
    (:func:`~vibe_check.explain.model_explainer`)."""
    from ..explain import model_explainer  # lazy: shap and matplotlib only when SHAP is monitored

    return model_explainer(model)


class DriftMonitor:
    """Feature drift, input conditions and sampled SHAP importance of the requests a service sees.

    Parameters
    ----------
    reference : dict
        The bundle's ``extra["drift_reference"]``: ``edges`` (features, B - 1) inner quantile
        edges and ``proportions`` (features, B) training shares per bin.
    feature_groups : mapping or sequence
        Group of every feature, in vector order (a list) or by name (with ``feature_names``).
    window : int
        Requests kept for drift and SHAP averages (memory is bounded by it).
    shap_fraction : float
        Share of requests whose SHAP values are computed (0 disables); sampled deterministically,
        every ``1/shap_fraction``-th request.
    top_features : int
        Features exported individually in ``vibe_check_shap_feature_mean_abs``.
    class_counts : mapping, optional
        Training examples per class (``metadata["data_summary"]["class_counts"]``).
    classes : sequence of str, optional
        The model's classes (all get a training share, 0 when absent from ``class_counts``).
    feature_names : sequence of str, optional
        Needed when ``feature_groups`` is a mapping, and to name the top features.
    explainer : callable, optional
        Returns the explainer (with ``shap_values(X)`` and ``background`` via the model); called on
        the first sampled request.
    background : ndarray, optional
        Training rows used to pick the top features.
    min_window : int
        Requests needed before PSI is reported (NaN before). PSI of small windows reads high
        (about ``(B - 1) / n``), so the alert also asks for a window of 50 requests or more.
    metrics : ServiceMetrics, optional
        Where the metrics go; without it the monitor only computes.
    """

    def __init__(self, reference: Mapping, feature_groups, *, window: int = 500, shap_fraction: float = 0.1,
                 top_features: int = 10, class_counts: Mapping | None = None, classes: Sequence | None = None,
                 feature_names: Sequence[str] | None = None, explainer: Callable | None = None,
                 background: np.ndarray | None = None, min_window: int = 1, metrics=None):
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if not 0 <= shap_fraction <= 1:
            raise ValueError(f"shap_fraction must be between 0 and 1, got {shap_fraction}")
        self.edges = np.asarray(reference["edges"], dtype=np.float64)
        self.proportions = np.asarray(reference["proportions"], dtype=np.float64)
        self.n_features, self.n_bins = self.proportions.shape
        if isinstance(feature_groups, Mapping):
            if feature_names is None:
                raise ValueError("feature_names are needed when feature_groups is a mapping")
            groups = [feature_groups.get(f, "other") for f in feature_names]
        else:
            groups = list(feature_groups)
        if len(groups) != self.n_features:
            raise ValueError(f"{len(groups)} feature groups for {self.n_features} features in the drift reference")
        self.feature_names = list(feature_names) if feature_names is not None else [f"f{j}" for j in range(self.n_features)]
        self.groups = list(dict.fromkeys(groups))
        self._group_index = {g: np.flatnonzero(np.array(groups, dtype=object) == g) for g in self.groups}
        self.window = int(window)
        self.min_window = int(min_window)
        self.shap_fraction = float(shap_fraction)
        self.top_features_n = int(top_features)
        self.top_features: list[str] | None = None
        self._top_index: np.ndarray | None = None
        self._explainer_factory = explainer
        self._background = background
        counts = {str(k): float(v) for k, v in (class_counts or {}).items()}
        names = [str(c) for c in (classes if classes is not None else counts)]
        total = sum(counts.get(c, 0.0) for c in names) or 1.0
        self.training_share = {c: counts.get(c, 0.0) / total for c in names}
        self._bins: deque[np.ndarray] = deque(maxlen=self.window)  # one row of bin indices per request
        self._shap: deque[np.ndarray] = deque(maxlen=self.window)  # |SHAP| per feature of sampled requests
        self._seen = 0
        self._shap_sampled = 0
        self._lock = threading.Lock()
        self._offsets = np.arange(self.n_features) * self.n_bins
        self.metrics = metrics
        if metrics is not None:
            self._init_metrics(metrics)

    @classmethod
    def for_model(cls, model, *, window: int = 500, shap_fraction: float = 0.1, top_features: int = 10,
                  metrics=None) -> "DriftMonitor | None":
        """A monitor for a loaded bundle, or ``None`` when the bundle has no drift reference."""
        extra = getattr(model, "extra", {}) or {}
        if "drift_reference" not in extra:
            log.warning("the bundle has no drift reference (retrain it): drift monitoring is off")
            return None
        meta = getattr(model, "metadata", {}) or {}
        explainable = hasattr(model, "explain_rows") and hasattr(model, "pipeline")
        return cls(extra["drift_reference"], model.extractor.feature_groups, feature_names=model.feature_names,
                   window=window, shap_fraction=shap_fraction if explainable else 0.0, top_features=top_features,
                   class_counts=(meta.get("data_summary") or {}).get("class_counts"),
                   classes=[str(c) for c in getattr(model, "classes_", [])] or None,
                   explainer=(lambda: shared_explainer(model)) if explainable else None,
                   background=extra.get("background"), metrics=metrics)

    # -- per request ------------------------------------------------------------------------
    def bin_indices(self, vector: np.ndarray) -> np.ndarray:
        """Training quantile bin of every feature (as ``np.searchsorted(edges, x, side="right")``)."""
        x = np.asarray(vector, dtype=np.float64).reshape(-1)
        return (x[:, None] >= self.edges).sum(axis=1).astype(np.int8)

    def should_sample(self, n: int) -> bool:
        """Whether request number ``n`` (1-based) gets SHAP values: deterministic, ``floor(n f)`` steps."""
        f = self.shap_fraction
        return f > 0 and math.floor(n * f) > math.floor((n - 1) * f)

    def observe(self, vector: np.ndarray, info=None) -> None:
        """Record one request's feature vector and its :class:`SignalInfo` (level, SNR). Never raises."""
        try:
            self._observe(vector, info)
        except Exception as exc:  # monitoring must never fail a prediction
            log.warning("drift monitoring failed on a request: %s", exc)

    def _observe(self, vector: np.ndarray, info) -> None:
        bins = self.bin_indices(vector)
        with self._lock:
            self._bins.append(bins)
            self._seen += 1
            sample = self.should_sample(self._seen)
        if self.metrics is not None and info is not None:
            for hist, value in ((self.metrics.input_level, info.level_dbfs), (self.metrics.input_snr, info.snr_db)):
                if value is not None and math.isfinite(value):
                    hist.observe(value)
        if sample and self._explainer_factory is not None:
            self._observe_shap(vector)

    def _observe_shap(self, vector: np.ndarray) -> None:
        explainer = self._explainer_factory()
        if self.top_features is None:
            self._fix_top_features(explainer)
        values = explainer.shap_values(np.asarray(vector, dtype=np.float64)[None, :]).values  # (1, features, classes)
        mean_abs = np.abs(values[0]).mean(axis=1)
        with self._lock:
            self._shap.append(mean_abs.astype(np.float32))
            self._shap_sampled += 1

    def _fix_top_features(self, explainer) -> None:
        """The ``top_features`` features with the largest mean |SHAP| over (up to 50) background rows."""
        k = min(self.top_features_n, self.n_features)
        order = np.arange(k)
        if self._background is not None and len(self._background):
            values = explainer.shap_values(np.asarray(self._background[:50], dtype=np.float64)).values
            order = np.argsort(-np.abs(values).mean(axis=(0, 2)), kind="stable")[:k]
        with self._lock:
            if self.top_features is None:
                self._top_index = order
                self.top_features = [self.feature_names[j] for j in order]

    # -- summaries --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._bins)

    @property
    def shap_samples(self) -> int:
        """Requests whose SHAP values were computed so far."""
        return self._shap_sampled

    def feature_psi(self) -> np.ndarray:
        """PSI of every feature over the window (NaN below ``min_window`` requests)."""
        with self._lock:
            rows = list(self._bins)
        if len(rows) < max(1, self.min_window):
            return np.full(self.n_features, np.nan)
        idx = np.vstack(rows).astype(np.int64) + self._offsets
        counts = np.bincount(idx.ravel(), minlength=self.n_features * self.n_bins).reshape(self.n_features, self.n_bins)
        return psi(counts, self.proportions)

    def group_psi(self) -> dict[str, float]:
        """Mean PSI of each group's features."""
        per_feature = self.feature_psi()
        return {g: float(per_feature[i].mean()) for g, i in self._group_index.items()}

    def shap_summary(self) -> tuple[dict[str, float], dict[str, float]]:
        """Mean |SHAP| per group (sum over its features) and per top feature, over the sampled
        requests in the window (empty dicts before the first sample)."""
        with self._lock:
            rows = list(self._shap)
        if not rows:
            return {}, {}
        mean = np.vstack(rows).mean(axis=0)
        groups = {g: float(mean[i].sum()) for g, i in self._group_index.items()}
        features = {self.feature_names[j]: float(mean[j]) for j in (self._top_index if self._top_index is not None else [])}
        return groups, features

    # -- metrics ----------------------------------------------------------------------------
    def _init_metrics(self, m) -> None:
        for g in self.groups:
            m.drift_psi.labels(group=g).set(float("nan"))
            m.shap_mean_abs.labels(group=g).set(float("nan"))
        m.training_share.clear()
        for c, share in self.training_share.items():
            m.training_share.labels(emotion=c).set(share)

    def export(self) -> None:
        """Bring the gauges up to date (the app calls it on every scrape of ``/metrics``)."""
        m = self.metrics
        if m is None:
            return
        for g, value in self.group_psi().items():
            m.drift_psi.labels(group=g).set(value)
        m.drift_window.set(self.size)
        groups, features = self.shap_summary()
        for g, value in groups.items():
            m.shap_mean_abs.labels(group=g).set(value)
        for f, value in features.items():
            m.shap_feature_mean_abs.labels(feature=f).set(value)
