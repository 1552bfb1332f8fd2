"""Limits and network settings of the HTTP service, in one frozen object.

Every limit exists so that one request can never take the process down or starve the others:
the upload size, times the uploads received at once (at most ``workers + queue_size``) and those
waiting for a worker (as many), bounds memory; the audio duration bounds CPU per request, the
worker pool and its queue bound concurrency, and the timeout bounds how long a client waits.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace

__all__ = ["ServeSettings"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Settings of :func:`~vibe_check.serving.create_app` and ``vibe-check serve``.

    Parameters
    ----------
    host : str
        Interface to bind; loopback by default so a service is never exposed by accident.
    port : int
        TCP port.
    max_upload_bytes : int
        Largest accepted audio upload (one file). Larger requests get 413, checked from the
        ``Content-Length`` header before reading and again while the body streams in.
    max_audio_seconds : float
        Longest accepted audio; longer clips get 422. Features are utterance statistics, so
        minutes of audio would blur them and cost seconds of CPU.
    request_timeout_s : float
        Time a prediction may take, queueing included, before the client gets 504.
    workers : int
        Threads running the CPU-bound decode/feature/model stages.
    queue_size : int
        Predictions that may wait for a free worker; beyond ``workers + queue_size`` requests in
        progress the service answers 503 at once instead of queueing without bound.
    max_batch_files : int
        Most files in one ``/predict/batch`` request.
    explain_top_k : int
        Default number of reasons returned with ``?explain=true``.
    drift : bool
        Monitor feature drift, input level/SNR and sampled SHAP values (``serving._drift``).
    drift_window : int
        Recent requests the drift monitor compares with the training data.
    shap_fraction : float
        Share of requests whose SHAP values feed ``vibe_check_shap_*`` (0 disables).
    max_speakers : int
        Speakers whose reference clips a speaker-normalised model keeps in memory (the least
        recently used is forgotten first).
    max_reference_clips : int
        Reference clips kept per speaker: the most recent ones.
    test_time_augmentation : bool
        Classify every clip together with speed copies of itself (see
        :class:`~vibe_check.models.CustomEmotionModel`): better on unseen speakers (RAVDESS
        sentiment 0.811 against 0.794 macro-F1) for about 6x the feature time per request
        (``benchmarks/load_test.py --test-time-augmentation``).
        A model given already loaded keeps its own option, and must have it when this is set.

    Examples
    --------
    >>> ServeSettings(max_audio_seconds=10).max_audio_seconds
    10
    >>> ServeSettings.from_env({"VIBE_CHECK_PORT": "9000"}).port
    9000
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 10 * _MIB
    max_audio_seconds: float = 30.0
    request_timeout_s: float = 30.0
    workers: int = 2
    queue_size: int = 16
    max_batch_files: int = 16
    explain_top_k: int = 5
    drift: bool = True
    drift_window: int = 500
    shap_fraction: float = 0.1
    max_speakers: int = 1000
    max_reference_clips: int = 64
    test_time_augmentation: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.max_upload_bytes < 1:
            problems.append(f"max_upload_bytes must be positive, got {self.max_upload_bytes}")
        if not self.max_audio_seconds > 0:
            problems.append(f"max_audio_seconds must be positive, got {self.max_audio_seconds}")
        if not self.request_timeout_s > 0:
            problems.append(f"request_timeout_s must be positive, got {self.request_timeout_s}")
        if self.workers < 1:
            problems.append(f"workers must be at least 1, got {self.workers}")
        if self.queue_size < 0:
            problems.append(f"queue_size must be 0 or more, got {self.queue_size}")
        if self.max_batch_files < 1:
            problems.append(f"max_batch_files must be at least 1, got {self.max_batch_files}")
        if not 1 <= self.explain_top_k <= 50:
            problems.append(f"explain_top_k must be between 1 and 50, got {self.explain_top_k}")
        if self.drift_window < 1:
            problems.append(f"drift_window must be at least 1, got {self.drift_window}")
        if not 0 <= self.shap_fraction <= 1:
            problems.append(f"shap_fraction must be between 0 and 1, got {self.shap_fraction}")
        if self.max_speakers < 1:
            problems.append(f"max_speakers must be at least 1, got {self.max_speakers}")
        if self.max_reference_clips < 1:
            problems.append(f"max_reference_clips must be at least 1, got {self.max_reference_clips}")
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be between 0 and 65535, got {self.port}")
        if problems:
            raise ValueError("invalid serve settings: " + "; ".join(problems))

    @property
    def max_batch_bytes(self) -> int:
        """Largest accepted ``/predict/batch`` body: every file at its maximum size."""
        return self.max_upload_bytes * self.max_batch_files

    @property
    def max_in_flight(self) -> int:
        """Predictions admitted at once (running plus queued)."""
        return self.workers + self.queue_size

    def with_overrides(self, **changes) -> "ServeSettings":
        """A copy with the given fields changed; ``None`` values are ignored (unset CLI options)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: dict | None = None, prefix: str = "VIBE_CHECK_") -> "ServeSettings":
        """Defaults overridden by ``VIBE_CHECK_<FIELD>`` environment variables (e.g. ``VIBE_CHECK_WORKERS=4``)."""
        environ = os.environ if environ is None else environ
        changes = {}
        for f in fields(cls):
            raw = environ.get(prefix + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(getattr(cls, f.name))  # the default's type: str, int or float
            if kind is bool:  # bool("0") is True: read the usual words instead
                changes[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                continue
            try:
                changes[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"{prefix + f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
        return cls(**changes)
