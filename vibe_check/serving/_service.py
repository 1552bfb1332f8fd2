"""The model behind the HTTP layer: loading, a bounded worker pool and timed prediction stages.

Decoding, feature extraction and the model are CPU-bound, so they run in a fixed pool of worker
threads rather than on the event loop, which stays free to answer ``/healthz`` and ``/metrics``
while predictions run. Admission is bounded: at most ``workers + queue_size`` predictions are
running or waiting; the next one gets 503 at once, so a burst cannot grow an unbounded queue whose
clients would all time out anyway.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..exceptions import AudioError, AudioTooLongError, EmptyAudioError, SpeakerReferenceError, VibeCheckError
from ._errors import ModelNotReadyError, RequestTimeoutError, ServiceBusyError, UnknownSpeakerError, UploadTooLargeError
from ._metrics import ServiceMetrics
from ._settings import ServeSettings
from ._speakers import SpeakerReferences

__all__ = ["EmotionService", "to_json", "model_summary"]

log = logging.getLogger(__name__)


def to_json(obj: Any) -> Any:
    """Plain JSON values from numpy/pandas results; NaN and infinities become ``None``
    (strict JSON has no NaN, and a client must not choke on one odd statistic)."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, np.generic):
        return to_json(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a DataFrame: one record per row
        return to_json(obj.to_dict(orient="records"))
    if hasattr(obj, "to_dict"):  # a Series
        return to_json(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return to_json(vars(obj))
    return obj


def model_summary(model) -> dict:
    """What ``GET /model`` shows: identity, classes, feature definition, CV metrics and versions.

    Built on the model's own ``info()``, without the bundle's file-system path (clients need
    not know the server's layout): ``bundle`` is the file's name only. ``trained_on_generated_speech``
    is true for a bundle trained on :mod:`vibe_check.data`'s generated speech (the demo's), whose
    predictions on real recordings mean little; the web page says so.
    """
    from ..data import GENERATED_SOURCE

    meta = dict(getattr(model, "metadata", {}) or {})
    summary = dict(model.info()) if hasattr(model, "info") else {
        "name": getattr(model, "name", None), "task": meta.get("task"), "classes": meta.get("classes"),
        "feature_hash": meta.get("feature_hash"), "versions": meta.get("versions"), "created_at": meta.get("created_at"),
    }
    path = summary.pop("path", None) or getattr(model, "path", None)
    summary["bundle"] = Path(path).name if path else None
    summary["trained_on_generated_speech"] = meta.get("data_source") == GENERATED_SOURCE
    summary["n_training_files"] = (meta.get("data_summary") or {}).get("n_files")
    summary["explainable"] = hasattr(model, "explain_rows")
    if getattr(model, "speaker_normalized", False):  # what a client must send before ?speaker=
        summary["min_reference_clips"] = model.min_reference_clips
    return to_json(summary)


def _cv_macro_f1(model) -> float | None:
    """Mean CV macro-F1 from the bundle's metadata, if recorded."""
    try:
        return float(model.cv_summary()["macro_f1"]["mean"])
    except Exception:
        return None


class EmotionService:
    """A model, its metrics and the worker pool that runs it.

    Parameters
    ----------
    model_or_path : CustomEmotionModel or path
        A loaded model, or a bundle path loaded by :meth:`load` (the app does it in the
        background at startup, so ``/readyz`` answers 503 until it is done).
    settings : ServeSettings
    metrics : ServiceMetrics
    """

    def __init__(self, model_or_path, settings: ServeSettings, metrics: ServiceMetrics):
        self.settings = settings
        self.metrics = metrics
        self.model = None
        self.load_error: str | None = None
        self.drift = None  # a DriftMonitor once a model is in service (unless settings.drift is off)
        self.bundle_path: Path | None = None
        # Reference rows of each speaker, for a speaker-normalised model (empty otherwise).
        self.speakers = SpeakerReferences(settings.max_speakers, settings.max_reference_clips)
        if isinstance(model_or_path, (str, os.PathLike)):
            self.bundle_path = Path(model_or_path)
        else:
            if settings.test_time_augmentation and not getattr(model_or_path, "test_time_speeds", ()):
                raise ValueError("the settings ask for test-time augmentation, but the model given was loaded without it: "
                                 "CustomEmotionModel(path, test_time_augmentation=True)")
            self._set_model(model_or_path)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)
        metrics.pool_capacity.set(settings.max_in_flight)

    # -- model ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.model is not None

    def _set_model(self, model) -> None:
        meta = getattr(model, "metadata", {}) or {}
        self.metrics.set_model(
            model=str(getattr(model, "name", None) or meta.get("model_name", "unknown")),
            task=str(meta.get("task", "unknown")),
            feature_hash=str(meta.get("feature_hash", "unknown")),
            version=__version__,
            cv_macro_f1=_cv_macro_f1(model),
        )
        self.metrics.init_labels(getattr(model, "classes_", []), (meta.get("data_summary") or {}).get("class_counts"))
        self.drift = None
        if self.settings.drift:
            from ._drift import DriftMonitor

            self.drift = DriftMonitor.for_model(model, window=self.settings.drift_window,
                                                shap_fraction=self.settings.shap_fraction, metrics=self.metrics)
        self.model = model

    def load(self) -> None:
        """Load the bundle given at construction (a no-op when a model was given). Never raises:
        a failure is kept in :attr:`load_error` and shown by ``/readyz``."""
        if self.model is not None or self.bundle_path is None:
            return
        try:
            from ..models._custom import CustomEmotionModel

            model = CustomEmotionModel(self.bundle_path, max_duration=self.settings.max_audio_seconds,
                                       test_time_augmentation=self.settings.test_time_augmentation)
        except Exception as exc:  # the process stays up to report the failure on /readyz
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("could not load model %s: %s", self.bundle_path, self.load_error)
            return
        self.warm_up(model)  # before readiness: a ready service answers at full speed
        self._set_model(model)
        log.info("model %s loaded", self.bundle_path)

    @staticmethod
    def warm_up(model) -> None:
        """Run the stages once on a generated second of speech so the first client does not pay
        for lazy imports, JIT compilation and building the SHAP explainer (seconds, once). Best effort."""
        try:
            from ..data import synthesize_utterance

            sr = int(model.extractor.config.sample_rate)
            y = synthesize_utterance("neutral", sr=sr, duration=1.0, seed=0)
            if getattr(model, "speaker_normalized", False):  # warm up the path a speaker's clips take
                model = model.for_speaker_rows([model.reference_rows(y)] * model.min_reference_clips)
            rows, info = model.clip_rows(y)
            proba = model.clip_proba(rows)
            if hasattr(model, "explain_rows"):
                model.explain_rows(rows, info, top_k=1, proba=proba)
        except Exception as exc:
            log.warning("warm-up failed (the first request will be slower): %s", exc)

    def require_ready(self):
        if self.model is None:
            if self.load_error:
                raise ModelNotReadyError(f"the model failed to load: {self.load_error}")
            raise ModelNotReadyError("the model is still loading; retry shortly")
        return self.model

    # -- worker pool ------------------------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:  # created lazily so an app can be started again after shutdown
                self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="vibe-check-worker")
            return self._executor

    def _release(self, _fut: Future) -> None:
        self._slots.release()
        self.metrics.pool_busy.dec()

    async def run(self, fn: Callable, *args) -> Any:
        """Run ``fn(*args)`` on the worker pool, bounded in admission and in time.

        Raises
        ------
        ServiceBusyError
            Every slot (running plus queued) is taken.
        RequestTimeoutError
            No result within ``request_timeout_s``. A job not started yet is cancelled; a running
            one cannot be interrupted (threads cannot be killed), so it keeps its slot until it
            ends, and the pool's admission count stays truthful.
        """
        if not self._slots.acquire(blocking=False):
            raise ServiceBusyError(
                f"all {self.settings.workers} workers are busy and {self.settings.queue_size} requests are "
                "already queued; retry shortly"
            )
        self.metrics.pool_busy.inc()
        try:
            fut = self._pool().submit(fn, *args)
        except RuntimeError:  # pool shut down (the app is stopping)
            self._release(None)
            raise ServiceBusyError("the service is shutting down") from None
        fut.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout=self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            fut.cancel()
            raise RequestTimeoutError(
                f"the prediction took longer than {self.settings.request_timeout_s:g} s; send shorter audio or retry"
            ) from None

    def shutdown(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    # -- prediction stages (run in worker threads) ------------------------------------------
    def _check_size(self, data: bytes, name: str) -> None:
        # The request-body limit allows for multipart overhead, so a file can pass it by a little.
        if len(data) > self.settings.max_upload_bytes:
            raise UploadTooLargeError(f"{name} has {len(data)} bytes, more than the limit of {self.settings.max_upload_bytes}")

    def precheck(self, data: bytes) -> None:
        """Refuse an empty or oversized upload, and audio too long from its header, before decoding it.

        Cheap (a header read), so the app runs it before queueing: such uploads never wait
        behind real predictions for a worker.
        """
        import soundfile as sf

        if len(data) == 0:
            raise EmptyAudioError("the uploaded audio is empty (0 bytes)")
        self._check_size(data, "the upload")
        try:
            info = sf.info(io.BytesIO(data))
        except Exception:  # not audio, or not a format with a header: decoding reports it properly
            return
        self._check_duration(info.duration)

    def _check_duration(self, seconds: float) -> None:
        limit = self.settings.max_audio_seconds
        if seconds > limit:
            raise AudioTooLongError(
                f"the audio lasts {seconds:.1f} s, longer than this service's maximum of {limit:g} s; "
                "split it into utterances"
            )

    def model_for(self, speaker: str | None):
        """The model that classifies a clip: the one in service, or for a speaker-normalised model,
        that model adapted to ``speaker``'s stored references.

        Raises
        ------
        SpeakerReferenceError
            A speaker-normalised model and no speaker; a speaker and a model that takes none; or
            fewer stored references than the model needs.
        UnknownSpeakerError
            No references stored for ``speaker``.
        """
        model = self.require_ready()
        if speaker is None:
            if getattr(model, "speaker_normalized", False):
                raise SpeakerReferenceError(
                    "the model in service classifies a clip relative to its speaker's average: POST a few clips of "
                    "the speaker to /speakers/<id>/references, then send ?speaker=<id> with each clip"
                )
            return model
        self._require_speaker_model(model)
        rows = self.speakers.rows(speaker)
        if rows is None:
            raise UnknownSpeakerError(f"no reference clips stored for speaker {speaker!r}: POST some to "
                                      f"/speakers/{speaker}/references first")
        return model.for_speaker_rows(rows)

    @staticmethod
    def _require_speaker_model(model) -> None:
        if not getattr(model, "speaker_normalized", False):
            raise SpeakerReferenceError(
                "the model in service classifies every clip on its own and takes no speaker references; serve a "
                "bundle trained with `vibe-check train --speaker-normalize` to classify clips relative to a speaker"
            )

    def add_references(self, speaker: str, uploads: list[tuple[str, bytes]]) -> dict:
        """Store the feature rows of a speaker's reference clips; a bad clip is reported and skipped."""
        model = self.require_ready()
        self._require_speaker_model(model)
        rows = []

        def extract(data: bytes) -> dict:
            rows.append(model.reference_rows(self._decode(model, data)))
            return {"ok": True}

        results = self._each(uploads, extract)
        if not rows and self.speakers.count(speaker) is None:
            # Nothing stored and nothing was: answering 200 would announce a speaker that does not exist.
            first = next((f" (first: {r['error']['type']}: {r['error']['message']})" for r in results if "error" in r), "")
            raise SpeakerReferenceError(f"none of the {len(results)} reference clip(s) of {speaker!r} could be used, "
                                        f"so nothing is stored{first}")
        total = self.speakers.add(speaker, rows) if rows else self.speakers.count(speaker)
        self.metrics.speakers.set(len(self.speakers))
        return {**self.speaker_status(speaker, total), "added": len(rows), "results": results}

    def speaker_status(self, speaker: str, count: int | None = None) -> dict:
        """``n_references`` stored for ``speaker`` and whether that is enough (:class:`UnknownSpeakerError` if none)."""
        model = self.require_ready()
        self._require_speaker_model(model)
        count = self.speakers.count(speaker) if count is None else count
        if count is None:
            raise UnknownSpeakerError(f"no reference clips stored for speaker {speaker!r}")
        return {"speaker": speaker, "n_references": count, "min_reference_clips": model.min_reference_clips,
                "ready": count >= model.min_reference_clips}

    def forget_speaker(self, speaker: str) -> dict:
        self._require_speaker_model(self.require_ready())
        if not self.speakers.remove(speaker):
            raise UnknownSpeakerError(f"no reference clips stored for speaker {speaker!r}")
        self.metrics.speakers.set(len(self.speakers))
        return {"speaker": speaker, "deleted": True}

    def _decode(self, model, data: bytes) -> np.ndarray:
        """Decode one upload (timed), refusing audio longer than the service's limit."""
        with self.metrics.time_stage("decode"):
            self.precheck(data)
            y = model.decode(data)
        self._check_duration(y.size / float(model.extractor.config.sample_rate))
        return y

    def predict_bytes(self, data: bytes, explain_top_k: int | None = None, speaker: str | None = None) -> dict:
        """Decode, extract, classify (and optionally explain) one upload, timing every stage."""
        return self._predict(self.model_for(speaker), data, explain_top_k)

    def _predict(self, model, data: bytes, explain_top_k: int | None = None) -> dict:
        t = self.metrics.time_stage
        y = self._decode(model, data)
        with t("features"):
            rows, info = model.clip_rows(y)  # with test-time augmentation, also its speed copies
        if self.drift is not None:
            self.drift.observe(rows[0], info)  # the clip as recorded, as the training rows were
        with t("model"):
            proba = np.asarray(model.clip_proba(rows))
        result = to_json(model.result_from_proba(proba, info))
        self.metrics.record_prediction(str(result["emotion"]), float(result["confidence"]), float(result.get("duration_s") or 0.0))
        if explain_top_k is not None:
            with t("explain"):
                try:
                    result["explanation"] = to_json(model.explain_rows(rows, info, top_k=explain_top_k, proba=proba))
                except VibeCheckError as exc:  # the audio was fine (it was just classified): the explainer is not
                    log.warning("explanation failed: %s: %s", type(exc).__name__, exc)
                    result["explanation"] = None
                    result["explanation_error"] = f"{type(exc).__name__}: {exc}"
        return result

    def predict_many(self, uploads: list[tuple[str, bytes]], speaker: str | None = None) -> list[dict]:
        """One result per upload, in order; a bad item gets an ``error`` entry instead of failing the batch."""
        model = self.model_for(speaker)  # once: a speaker without references fails the request, not each item
        return self._each(uploads, lambda data: self._predict(model, data))

    def _each(self, uploads: list[tuple[str, bytes]], process: Callable[[bytes], dict]) -> list[dict]:
        """``process`` every upload; a bad item gets an ``error`` entry and the others go on."""
        out = []
        for index, (filename, data) in enumerate(uploads):
            item = {"index": index, "filename": filename}
            try:
                self._check_size(data, filename)
                item.update(process(data))
            except (AudioError, UploadTooLargeError) as exc:
                item["error"] = {"type": type(exc).__name__, "message": str(exc)}
            except Exception as exc:  # one bad item must not fail its neighbours
                log.exception("unexpected error on batch item %d (%s)", index, filename)
                item["error"] = {"type": type(exc).__name__, "message": "unexpected error while processing this file; it has been logged"}
            out.append(item)
        return out
