"""Prometheus metrics of the service, in a registry of its own.

Each app gets a fresh :class:`~prometheus_client.CollectorRegistry`, so several apps in one process
(tests, a load test next to a service) never share or collide on counters, and ``/metrics`` shows
exactly this service. Every label has a bounded set of values: endpoints are route templates,
error types are exception class names, emotions are the model's classes and stages are fixed.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..features._config import FEATURE_GROUPS as _EXTRACTOR_GROUPS

__all__ = ["ServiceMetrics", "LATENCY_BUCKETS", "CONFIDENCE_BUCKETS", "STAGES"]

PREFIX = "vibe_check"
#: Stages timed on every prediction; ``end_to_end`` is the whole HTTP request as the client sees it.
STAGES = ("decode", "features", "model", "explain", "end_to_end")
#: 5 ms .. 10 s: decoding a short clip takes milliseconds, SHAP explanations can take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 7.5, 10.0)
#: Confidence is a top-class probability: 1/n_classes .. 1, finer where decisions are made (and
#: around the confidence-collapse thresholds, 0.2 + 0.8/n_classes: 0.3 for 8 classes, 0.47 for 3).
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0)
#: Input level of a request in dBFS and its estimated SNR in dB. Studio clips (RAVDESS) read 83-94 dB
#: of SNR, so the buckets go on to 120 dB: a quantile of clean inputs is not pinned at the top bucket.
LEVEL_BUCKETS = (-80.0, -70.0, -60.0, -50.0, -45.0, -40.0, -35.0, -30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0)
SNR_BUCKETS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0, 70.0, 80.0, 85.0, 90.0, 95.0, 100.0, 110.0, 120.0)
#: Feature groups of the extractor: drift and SHAP series exist for each from the start.
FEATURE_GROUPS = tuple(_EXTRACTOR_GROUPS)


class ServiceMetrics:
    """The service's metrics (all named ``vibe_check_*``).

    Attributes
    ----------
    registry : CollectorRegistry
        What ``/metrics`` exposes.
    requests : Counter
        ``vibe_check_requests_total{endpoint, method, status}``.
    errors : Counter
        ``vibe_check_errors_total{endpoint, error_type}``: failed requests.
    item_errors : Counter
        ``vibe_check_item_errors_total{endpoint, error_type}``: unusable clips inside batch and
        reference uploads whose request succeeded.
    latency : Histogram
        ``vibe_check_latency_seconds{stage}`` (see :data:`STAGES`).
    confidence : Histogram
        ``vibe_check_prediction_confidence``.
    predictions : Counter
        ``vibe_check_predictions_total{emotion}``.
    audio_seconds : Counter
        ``vibe_check_audio_seconds_total``: duration of the audio classified.
    in_flight : Gauge
        ``vibe_check_in_flight_requests`` (scrapes of ``/metrics`` itself are left out).
    pool_busy : Gauge
        ``vibe_check_worker_slots_used``: predictions running or queued in the worker pool.
    pool_capacity : Gauge
        ``vibe_check_worker_slots``: ``workers + queue_size``, beyond which requests get 503.
    model_info : Gauge
        ``vibe_check_model_info{model, task, feature_hash, version}``, value 1 while the model serves.
    model_classes : Gauge
        ``vibe_check_model_classes``: the number of classes of the model in service, so rules can
        compare confidence with chance (1/n_classes): the confidence-collapse alert does.
    speakers : Gauge
        ``vibe_check_speakers``: speakers with reference clips in memory (speaker-normalised models).
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests handled.", ["endpoint", "method", "status"], registry=r)
        self.errors = Counter(f"{PREFIX}_errors", "Failed requests, by error type.",
                              ["endpoint", "error_type"], registry=r)
        # Apart from the requests': one bad clip in a batch of 16 is not one failed request in 16.
        self.item_errors = Counter(f"{PREFIX}_item_errors", "Clips of batch and reference uploads that could not be used, by error type.",
                                   ["endpoint", "error_type"], registry=r)
        self.latency = Histogram(f"{PREFIX}_latency_seconds", "Time spent per prediction stage, and end to end.",
                                 ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.confidence = Histogram(f"{PREFIX}_prediction_confidence", "Probability of the predicted class.",
                                    buckets=CONFIDENCE_BUCKETS, registry=r)
        self.predictions = Counter(f"{PREFIX}_predictions", "Predictions made, by predicted emotion (or sentiment).",
                                   ["emotion"], registry=r)
        self.audio_seconds = Counter(f"{PREFIX}_audio_seconds", "Seconds of audio classified.", registry=r)
        self.in_flight = Gauge(f"{PREFIX}_in_flight_requests", "Requests being handled now.", registry=r)
        self.pool_busy = Gauge(f"{PREFIX}_worker_slots_used", "Predictions running or queued in the worker pool.", registry=r)
        self.speakers = Gauge(f"{PREFIX}_speakers", "Speakers whose reference clips are in memory (speaker-normalised models).",
                              registry=r)
        self.pool_capacity = Gauge(f"{PREFIX}_worker_slots", "Predictions the worker pool admits at once (workers + queue).", registry=r)
        self.model_info = Gauge(f"{PREFIX}_model_info", "The model in service (value 1).",
                                ["model", "task", "feature_hash", "version"], registry=r)
        self.model_classes = Gauge(f"{PREFIX}_model_classes", "Number of classes of the model in service "
                                   "(chance confidence is 1/n).", registry=r)
        self.model_classes.set(float("nan"))  # no model yet
        # Production monitoring (filled by serving._drift.DriftMonitor; bounded labels: fixed groups,
        # the model's classes, a fixed list of top features).
        self.drift_psi = Gauge(f"{PREFIX}_feature_drift_psi", "Mean PSI of the group's features: recent requests vs training "
                               "(<0.1 stable, 0.1-0.25 moderate, >0.25 significant).", ["group"], registry=r)
        self.drift_window = Gauge(f"{PREFIX}_drift_window_size", "Requests in the drift window.", registry=r)
        self.input_level = Histogram(f"{PREFIX}_input_level_dbfs", "Input level of requests (dBFS, 95th pct of frame RMS).",
                                     buckets=LEVEL_BUCKETS, registry=r)
        self.input_snr = Histogram(f"{PREFIX}_input_snr_db", "Estimated SNR of requests (dB).", buckets=SNR_BUCKETS, registry=r)
        self.shap_mean_abs = Gauge(f"{PREFIX}_shap_mean_abs", "Mean |SHAP| per feature group over sampled recent requests.",
                                   ["group"], registry=r)
        self.shap_feature_mean_abs = Gauge(f"{PREFIX}_shap_feature_mean_abs", "Mean |SHAP| of the top features over sampled "
                                           "recent requests.", ["feature"], registry=r)
        self.training_share = Gauge(f"{PREFIX}_training_class_share", "Share of each class in the training data.",
                                    ["emotion"], registry=r)
        self.model_cv_macro_f1 = Gauge(f"{PREFIX}_model_cv_macro_f1", "Cross-validated macro-F1 of the model in service "
                                       "(from its bundle).", ["model"], registry=r)

    @contextmanager
    def time_stage(self, stage: str) -> Iterator[None]:
        """Observe the time spent in the block under ``stage``, also when it raises (failures cost time too)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.latency.labels(stage=stage).observe(time.perf_counter() - start)

    def record_prediction(self, emotion: str, confidence: float, duration_s: float) -> None:
        self.predictions.labels(emotion=emotion).inc()
        self.confidence.observe(confidence)
        self.audio_seconds.inc(max(0.0, duration_s))

    def record_error(self, endpoint: str, error_type: str) -> None:
        self.errors.labels(endpoint=endpoint, error_type=error_type).inc()

    def record_item_error(self, endpoint: str, error_type: str) -> None:
        self.item_errors.labels(endpoint=endpoint, error_type=error_type).inc()

    def set_model(self, *, model: str, task: str, feature_hash: str, version: str, cv_macro_f1: float | None = None) -> None:
        self.model_info.clear()  # one model per service: a reload replaces the series
        self.model_info.labels(model=model, task=task, feature_hash=feature_hash, version=version).set(1)
        self.model_cv_macro_f1.clear()
        self.model_cv_macro_f1.labels(model=model).set(float("nan") if cv_macro_f1 is None else cv_macro_f1)

    def init_labels(self, classes, class_counts: dict | None = None) -> None:
        """Create the series of every known emotion and stage at zero, so rates and dashboards
        show 0 rather than "no data" before the first occurrence; and each class's share of the
        training clips (``class_counts``, from the bundle; NaN where unknown), whether or not
        drift is monitored; and the number of classes (``vibe_check_model_classes``)."""
        classes = [str(c) for c in classes]
        for c in classes:
            self.predictions.labels(emotion=c)
        for stage in STAGES:
            self.latency.labels(stage=stage)
        self.model_classes.set(len(classes) if classes else float("nan"))
        counts = {str(k): float(v) for k, v in (class_counts or {}).items()}
        total = sum(counts.values())
        for c in classes:
            self.training_share.labels(emotion=str(c)).set(counts.get(str(c), 0.0) / total if total else float("nan"))
        for group in FEATURE_GROUPS:  # NaN: nothing measured yet (or monitoring is off)
            self.drift_psi.labels(group=group).set(float("nan"))
            self.shap_mean_abs.labels(group=group).set(float("nan"))
