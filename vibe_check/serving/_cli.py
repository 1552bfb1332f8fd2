"""``vibe-check serve``: run the HTTP service on a model bundle."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from ._settings import ServeSettings

__all__ = ["add_serve_arguments", "run_serve"]

_MIB = 1024 * 1024


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServeSettings()
    parser.add_argument("--model", required=True, help="model bundle (.pkl or .skops), e.g. models/custom/best_emotion_model.pkl")
    parser.add_argument("--host", help=f"interface to bind (default: {d.host}; use 0.0.0.0 only behind a proxy you trust)")
    parser.add_argument("--port", type=int, help=f"TCP port (default: {d.port})")
    parser.add_argument("--workers", type=int, help=f"prediction worker threads (default: {d.workers})")
    parser.add_argument("--queue-size", type=int, help=f"predictions that may wait for a worker before 503 (default: {d.queue_size})")
    parser.add_argument("--max-upload-mb", type=float, help=f"largest upload per file in MiB (default: {d.max_upload_bytes / _MIB:g})")
    parser.add_argument("--max-audio-seconds", type=float, help=f"longest accepted audio (default: {d.max_audio_seconds:g})")
    parser.add_argument("--timeout", type=float, help=f"seconds a prediction may take before 504 (default: {d.request_timeout_s:g})")
    parser.add_argument("--drift-window", type=int, help=f"recent requests compared with the training data for drift (default: {d.drift_window})")
    parser.add_argument("--shap-fraction", type=float, help=f"share of requests whose SHAP values are monitored, 0 disables (default: {d.shap_fraction:g})")
    parser.add_argument("--no-drift", action="store_true", help="turn off drift, input and SHAP monitoring")
    parser.add_argument("--max-speakers", type=int,
                        help=f"speaker-normalised models: speakers whose references are kept in memory (default: {d.max_speakers})")
    parser.add_argument("--max-reference-clips", type=int,
                        help=f"speaker-normalised models: most recent reference clips kept per speaker (default: {d.max_reference_clips})")
    parser.add_argument("--test-time-augmentation", action="store_true",
                        help="classify every clip with speed copies of itself: more accurate, 5-7x the feature time (see README)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn log level (default: %(default)s)")
    parser.epilog = "Every option can also be set with a VIBE_CHECK_<SETTING> environment variable (e.g. VIBE_CHECK_WORKERS=4)."


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Environment defaults, overridden by the options given on the command line."""
    return ServeSettings.from_env().with_overrides(
        host=args.host, port=args.port, workers=args.workers, queue_size=args.queue_size,
        max_upload_bytes=None if args.max_upload_mb is None else int(args.max_upload_mb * _MIB),
        max_audio_seconds=args.max_audio_seconds, request_timeout_s=args.timeout,
        drift_window=getattr(args, "drift_window", None), shap_fraction=getattr(args, "shap_fraction", None),
        drift=False if getattr(args, "no_drift", False) else None,
        test_time_augmentation=True if getattr(args, "test_time_augmentation", False) else None,
        max_speakers=getattr(args, "max_speakers", None), max_reference_clips=getattr(args, "max_reference_clips", None),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ._app import create_app
    except ImportError as exc:
        print(f"error: serving needs the 'serve' extra ({exc.name} is missing): pip install 'vibe-check[serve]'", file=sys.stderr)
        return 1
    from ..exceptions import VibeCheckError
    from ..models._cli import note_generated_speech
    from ..models._custom import CustomEmotionModel

    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        # Loaded before the server starts, so a bad bundle fails the command at once with its reason.
        model = CustomEmotionModel(args.model, max_duration=settings.max_audio_seconds,
                                   test_time_augmentation=settings.test_time_augmentation)
    except (VibeCheckError, OSError) as exc:
        print(f"error: cannot serve {args.model}: {exc}", file=sys.stderr)
        return 1
    note_generated_speech(model, args.model)
    if not _is_loopback(settings.host):
        print(f"warning: binding {settings.host}: the service is reachable from other machines and has no authentication",
              file=sys.stderr)
    app = create_app(model, settings=settings)
    print(f"serving {args.model} on http://{settings.host}:{settings.port} (metrics at /metrics)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=args.log_level == "debug")
    return 0
