"""The FastAPI application: routes, upload limits, error responses and request metrics.

Routes
------
``POST /predict``        one clip (multipart field ``file``, or raw ``audio/*`` /
                         ``application/octet-stream`` body); ``?explain=true`` adds reasons.
``POST /predict/batch``  several clips (multipart fields ``files``), one result or error each.
``GET /healthz``         the process is alive.
``GET /readyz``          the model is loaded (503 before).
``GET /model``           the bundle's metadata summary.
``GET /metrics``         Prometheus text format.
``GET /``                ``static/index.html`` when a web page is installed there.

For a speaker-normalised bundle (``vibe-check train --speaker-normalize``), which classifies a
clip relative to its speaker's average:

``POST /speakers/{id}/references``  reference clips of a speaker (multipart fields ``files``).
``GET /speakers/{id}``              how many are stored, and whether that is enough.
``DELETE /speakers/{id}``           forget the speaker.
``POST /predict?speaker={id}``      classify a clip of that speaker (also ``/predict/batch``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi import Path as Path_
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from .._version import __version__
from ..exceptions import VibeCheckError
from ._errors import (
    AUDIO_ERROR_STATUS,
    BadRequestError,
    ExplainUnavailableError,
    ServiceBusyError,
    ServiceError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
    error_body,
)
from ._metrics import ServiceMetrics
from ._service import EmotionService, model_summary
from ._settings import ServeSettings
from ._speakers import SPEAKER_ID_PATTERN

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PREDICT_ENDPOINTS = ("/predict", "/predict/batch")
REFERENCES_ENDPOINT = "/speakers/{speaker_id}/references"
#: A speaker id in a path or query: short and URL-safe.
_SPEAKER_PATH = Path_(pattern=SPEAKER_ID_PATTERN, description="speaker id: letters, digits, '_', '.', '-' (at most 64)")
_SPEAKER_QUERY = Query(None, pattern=SPEAKER_ID_PATTERN,
                       description="with a speaker-normalised model: the speaker whose stored references the clip is classified against")
#: Room for multipart boundaries and part headers on top of the audio bytes themselves.
MULTIPART_OVERHEAD = 64 * 1024
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_TRUE = {"1", "true", "yes", "on"}
_HTTP_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 405: "MethodNotAllowedError"}
_ENDPOINT_KEY = "vibe_check.endpoint"


def _endpoint_of(scope) -> str:
    """The route template a request matches (``"unmatched"`` otherwise): a bounded label value,
    unlike the raw path, which a client chooses."""
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match != Match.NONE:
            return getattr(route, "path", "unmatched")
    return "unmatched"


def _json_error(status: int, error_type: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(error_type, message), status_code=status, headers=headers)


class _ObserveAndLimit:
    """ASGI middleware: counts and times every request, enforces the body size limit, and turns
    any exception that escapes the app into a JSON 500, so a bad request never kills the process.

    The size limit is checked twice: from ``Content-Length`` before a byte is read (413 at once),
    and while the body streams in, since chunked uploads have no length and a client may lie.
    """

    def __init__(self, app, *, service: EmotionService):
        self.app = app
        self.service = service

    def _limit(self, endpoint: str, headers: dict) -> int:
        """Body bytes allowed: the audio limit, per file for a batch, plus room for multipart framing."""
        s = self.service.settings
        limit = s.max_batch_bytes if endpoint in ("/predict/batch", REFERENCES_ENDPOINT) else s.max_upload_bytes
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            limit += MULTIPART_OVERHEAD
        return limit

    def _too_large(self, sent: str, endpoint: str) -> UploadTooLargeError:
        s = self.service.settings
        if endpoint in ("/predict/batch", REFERENCES_ENDPOINT):
            return UploadTooLargeError(
                f"the upload ({sent}) exceeds the limit of {s.max_batch_bytes} bytes for several files "
                f"({s.max_upload_bytes} bytes of audio per file, at most {s.max_batch_files} files); send fewer or smaller clips"
            )
        return UploadTooLargeError(
            f"the upload ({sent}) exceeds the limit of {s.max_upload_bytes} bytes of audio; send a shorter or compressed clip"
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.service.metrics
        endpoint = _endpoint_of(scope)
        scope[_ENDPOINT_KEY] = endpoint
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        headers = dict(scope.get("headers") or [])
        limit = self._limit(endpoint, headers)
        state = {"status": 500, "started": False, "seen": 0}
        tracked = endpoint != "/metrics"  # a scrape should not see itself in flight
        started = time.perf_counter()
        if tracked:
            metrics.in_flight.inc()

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > limit:
                    raise self._too_large(f"more than {limit} bytes so far", endpoint)
            return message

        async def watching_send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                exc = self._too_large(f"{int(declared)} bytes", endpoint)
                metrics.record_error(endpoint, exc.error_type)
                await _json_error(exc.status, exc.error_type, exc.message, {"Connection": "close"})(scope, receive, watching_send)
                return
            await self.app(scope, counting_receive, watching_send)
        except ClientDisconnect:  # the client left mid-upload: nobody to answer, nothing broken
            metrics.record_error(endpoint, "ClientDisconnect")
            state["status"] = 499  # nginx's convention for "client closed request"
        except Exception as exc:  # the last line of defence: log, count, answer 500, keep serving
            log.exception("unhandled error on %s %s", scope["method"], scope.get("path"))
            metrics.record_error(endpoint, type(exc).__name__)
            if not state["started"]:
                await _json_error(500, "InternalServerError",
                                  f"unexpected {type(exc).__name__} while handling the request; it has been logged")(scope, receive, watching_send)
            state["status"] = 500
        finally:
            if tracked:
                metrics.in_flight.dec()
            metrics.requests.labels(endpoint=endpoint, method=method, status=str(state["status"])).inc()
            if endpoint in PREDICT_ENDPOINTS:
                metrics.latency.labels(stage="end_to_end").observe(time.perf_counter() - started)


def _install_error_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Every error response has the same JSON shape and is counted by type."""

    def respond(request: Request, status: int, error_type: str, message: str) -> JSONResponse:
        endpoint = request.scope.get(_ENDPOINT_KEY) or _endpoint_of(request.scope)
        metrics.record_error(endpoint, error_type)
        return _json_error(status, error_type, message)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return respond(request, exc.status, exc.error_type, exc.message)

    @app.exception_handler(VibeCheckError)
    async def _package_error(request: Request, exc: VibeCheckError):
        return respond(request, AUDIO_ERROR_STATUS, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return respond(request, 422, "RequestValidationError", f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":  # Starlette's bare wording: say what was not found
            message = f"no endpoint {request.url.path} (the API is listed at /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (the API is listed at /docs)"
        return respond(request, exc.status_code, _HTTP_ERROR_TYPES.get(exc.status_code, "HTTPError"), message)


async def _read_uploads(request: Request, *, field: str, many: bool, max_files: int) -> tuple[list[tuple[str, bytes]], dict]:
    """The uploaded files as ``(filename, bytes)`` and the other form fields.

    Multipart (``field``) or, for a single file, the raw body (``audio/*`` or
    ``application/octet-stream``). Byte limits are enforced by the middleware as the body streams in.
    At most ``workers + queue_size`` bodies are read at once (503 beyond): with the uploads waiting
    for a worker, that bounds the memory uploads hold to twice the pool's admission.
    """
    slots: asyncio.Semaphore = request.app.state.upload_slots
    if slots.locked():
        raise ServiceBusyError(f"{request.app.state.settings.workers + request.app.state.settings.queue_size} uploads "
                               "are being received already; retry shortly")
    async with slots:
        return await _read_body(request, field=field, many=many, max_files=max_files)


async def _read_body(request: Request, *, field: str, many: bool, max_files: int) -> tuple[list[tuple[str, bytes]], dict]:
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime == "multipart/form-data":
        form = await request.form(max_files=max_files, max_fields=16)
        try:
            files = [v for v in form.getlist(field) if not isinstance(v, str)]
            if many and not files and field != "file":
                files = [v for v in form.getlist("file") if not isinstance(v, str)]  # be lenient with the field name
            uploads = [(f.filename or f"{field}[{i}]", await f.read()) for i, f in enumerate(files)]
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        finally:
            await form.close()
        if not uploads:
            raise BadRequestError(f"no file in the multipart upload: send the audio in a form field named {field!r}")
        return uploads, fields
    if many:
        raise UnsupportedMediaTypeError(
            f"a batch must be multipart/form-data with one {field!r} field per file (got {mime or 'no content type'})"
        )
    if mime.startswith("audio/") or mime in ("application/octet-stream", ""):
        return [("<body>", await request.body())], {}
    raise UnsupportedMediaTypeError(
        f"unsupported content type {mime!r}: upload multipart/form-data with a 'file' field, or send the raw "
        "audio bytes with Content-Type audio/wav (or another audio/* type, or application/octet-stream)"
    )


def create_app(model_or_path, *, settings: ServeSettings | None = None) -> FastAPI:
    """Build the service around a model.

    Parameters
    ----------
    model_or_path : CustomEmotionModel or path
        A loaded model, or a bundle path; a path is loaded in a background thread at startup,
        and ``/readyz`` answers 503 until the model is in service.
    settings : ServeSettings, optional
        Limits and pool size (defaults: ``ServeSettings()``).

    Returns
    -------
    FastAPI
        The app; ``app.state.service`` is the :class:`EmotionService` and
        ``app.state.metrics`` the :class:`ServiceMetrics` with its own registry.

    Examples
    --------
    >>> from fastapi.testclient import TestClient  # doctest: +SKIP
    >>> client = TestClient(create_app("models/custom/best_emotion_model.pkl"))  # doctest: +SKIP
    """
    settings = settings or ServeSettings()
    metrics = ServiceMetrics()
    service = EmotionService(model_or_path, settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not service.ready and service.load_error is None:
            threading.Thread(target=service.load, name="vibe-check-model-loader", daemon=True).start()
        elif service.ready:  # a model given loaded is ready now; warm it up without blocking startup
            threading.Thread(target=service.warm_up, args=(service.model,), name="vibe-check-warm-up", daemon=True).start()
        yield
        service.shutdown()

    app = FastAPI(title="vibe-check", version=__version__, lifespan=lifespan,
                  description="Explainable speech emotion recognition: upload a clip, get the emotion and why.")
    app.state.service = service
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.upload_slots = asyncio.Semaphore(settings.workers + settings.queue_size)
    app.add_middleware(_ObserveAndLimit, service=service)
    _install_error_handlers(app, metrics)

    @app.post("/predict", summary="Classify one clip",
              openapi_extra={"requestBody": {"content": {
                  "multipart/form-data": {"schema": {"type": "object", "properties": {
                      "file": {"type": "string", "format": "binary"}, "explain": {"type": "boolean"}}}},
                  "audio/*": {"schema": {"type": "string", "format": "binary"}}}}})
    async def predict(request: Request, explain: bool = False,
                      top_k: int = Query(settings.explain_top_k, ge=1, le=50, description="reasons returned with explain"),
                      speaker: str | None = _SPEAKER_QUERY):
        model = service.require_ready()
        uploads, fields = await _read_uploads(request, field="file", many=False, max_files=1)
        explain = explain or fields.get("explain", "").strip().lower() in _TRUE
        if explain and not hasattr(model, "explain_rows"):
            raise ExplainUnavailableError("this model cannot explain its predictions yet (no explain method); retry without explain=true")
        service.precheck(uploads[0][1])
        return await service.run(service.predict_bytes, uploads[0][1], top_k if explain else None, speaker)

    @app.post("/predict/batch", summary="Classify several clips",
              openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
                  "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
    async def predict_batch(request: Request, speaker: str | None = _SPEAKER_QUERY):
        service.require_ready()
        uploads, _ = await _read_uploads(request, field="files", many=True, max_files=settings.max_batch_files)
        results = await service.run(service.predict_many, uploads, speaker)
        n_errors = _count_item_errors(results, "/predict/batch")
        return {"results": results, "n_ok": len(results) - n_errors, "n_errors": n_errors}

    def _count_item_errors(results: list[dict], endpoint: str) -> int:
        errors = [item["error"]["type"] for item in results if "error" in item]
        for error_type in errors:
            metrics.record_item_error(endpoint, error_type)
        return len(errors)

    @app.post(REFERENCES_ENDPOINT, summary="Store reference clips of a speaker (speaker-normalised models)",
              openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
                  "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
    async def add_speaker_references(request: Request, speaker_id: str = _SPEAKER_PATH):
        service.require_ready()
        uploads, _ = await _read_uploads(request, field="files", many=True, max_files=settings.max_batch_files)
        status = await service.run(service.add_references, speaker_id, uploads)
        _count_item_errors(status["results"], REFERENCES_ENDPOINT)
        return status

    @app.get("/speakers/{speaker_id}", summary="How many reference clips of a speaker are stored")
    async def speaker_status(speaker_id: str = _SPEAKER_PATH):
        return service.speaker_status(speaker_id)

    @app.delete("/speakers/{speaker_id}", summary="Forget a speaker's reference clips")
    async def forget_speaker(speaker_id: str = _SPEAKER_PATH):
        return service.forget_speaker(speaker_id)

    # GET and HEAD: uptime probes and `curl -I` send HEAD, which FastAPI answers with 405 by default.
    @app.api_route("/healthz", methods=["GET", "HEAD"], summary="The process is alive")
    async def healthz():
        return {"status": "ok", "version": __version__}

    @app.api_route("/readyz", methods=["GET", "HEAD"], summary="The model is loaded")
    async def readyz():
        model = service.require_ready()
        return {"status": "ready", "model": getattr(model, "name", None)}

    @app.get("/model", summary="Metadata of the model in service")
    async def model_info():
        summary = model_summary(service.require_ready())
        summary["limits"] = {k: v for k, v in settings.as_dict().items() if k not in ("host", "port")}
        return summary

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics():
        if service.drift is not None:  # drift and SHAP summaries are computed at scrape time
            service.drift.export()
        return Response(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # "/" belongs to the web page another module installs under static/; serve it only if present.
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index():
        return _static_file("index.html")

    @app.api_route("/static/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def static(name: str):
        return _static_file(name)

    return app


def _static_file(name: str) -> FileResponse:
    root = STATIC_DIR.resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():  # also refuses ../ escapes
        raise StarletteHTTPException(404, f"no such page: /{name}" if name != "index.html" else "no web page is installed")
    return FileResponse(path)
