"""Errors of the HTTP layer, and the one JSON shape every error response has.

Audio problems are the package's own :class:`~vibe_check.exceptions.AudioError` family (422);
these classes cover what only a service can get wrong: size, media type, load, time and capacity.
The ``type`` a client sees, and the ``error_type`` label of ``vibe_check_errors_total``, is the
exception's class name, so the label's values are bounded by the code, never by the input.
"""

from __future__ import annotations

__all__ = [
    "ServiceError",
    "BadRequestError",
    "UploadTooLargeError",
    "UnsupportedMediaTypeError",
    "ExplainUnavailableError",
    "UnknownSpeakerError",
    "ModelNotReadyError",
    "ServiceBusyError",
    "RequestTimeoutError",
    "error_body",
    "AUDIO_ERROR_STATUS",
]

#: Status of every :class:`~vibe_check.exceptions.AudioError`: the request was well formed, the audio unusable.
AUDIO_ERROR_STATUS = 422


def error_body(error_type: str, message: str) -> dict:
    """``{"error": {"type": ..., "message": ...}}``, the body of every error response."""
    return {"error": {"type": error_type, "message": message}}


class ServiceError(Exception):
    """An error with an HTTP status; subclasses set :attr:`status`."""

    status = 500

    @property
    def error_type(self) -> str:
        return type(self).__name__

    @property
    def message(self) -> str:
        return str(self)


class BadRequestError(ServiceError):
    """The request is malformed (no file field, unreadable multipart...)."""

    status = 400


class UploadTooLargeError(ServiceError):
    """The upload is larger than ``max_upload_bytes``."""

    status = 413


class UnsupportedMediaTypeError(ServiceError):
    """The body is neither multipart nor raw audio bytes."""

    status = 415


class ExplainUnavailableError(ServiceError):
    """The model in service cannot explain its predictions."""

    status = 501


class UnknownSpeakerError(ServiceError):
    """No reference clips are stored for this speaker id (never sent, deleted or forgotten)."""

    status = 404


class ModelNotReadyError(ServiceError):
    """The model is still loading, or failed to load."""

    status = 503


class ServiceBusyError(ServiceError):
    """Every worker is busy and the queue is full; retry later."""

    status = 503


class RequestTimeoutError(ServiceError):
    """The prediction took longer than ``request_timeout_s``."""

    status = 504
