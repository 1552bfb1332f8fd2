"""``vibe-check serve``: run the HTTP service on a model bundle."""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import socket
import sys
from typing import Mapping

from ._settings import _MIB, ServeSettings

__all__ = ["add_serve_arguments", "run_serve", "settings_from_args", "env_variable", "unknown_env_variables"]

_PREFIX = "VIBE_CHECK_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

#: Option -> (setting field, conversion of the option's value to the field's unit). Options that
#: are not settings (--model, --log-level) are resolved by run_serve.
_OPTION_FIELDS = {
    "host": ("host", None),
    "port": ("port", None),
    "workers": ("workers", None),
    "queue_size": ("queue_size", None),
    "max_upload_mb": ("max_upload_bytes", lambda mb: int(mb * _MIB)),
    "max_audio_seconds": ("max_audio_seconds", None),
    "timeout": ("request_timeout_s", None),
    "drift_window": ("drift_window", None),
    "shap_fraction": ("shap_fraction", None),
    "no_drift": ("drift", lambda flag: False if flag else None),  # absent: the environment or the default
    "max_speakers": ("max_speakers", None),
    "max_reference_clips": ("max_reference_clips", None),
    "test_time_augmentation": ("test_time_augmentation", lambda flag: True if flag else None),
}
#: Settings with no option, set only from the environment: variable suffix -> what it limits.
_ENV_ONLY = {
    "MAX_BATCH_FILES": "most files in one /predict/batch request",
    "EXPLAIN_TOP_K": "reasons returned with ?explain=true, unless top_k is given",
}


def env_variable(option: str) -> str:
    """The environment variable of a ``vibe-check serve`` option.

    Examples
    --------
    >>> env_variable("--max-upload-mb")
    'VIBE_CHECK_MAX_UPLOAD_MB'
    """
    return _PREFIX + option.lstrip("-").replace("-", "_").upper()


def unknown_env_variables(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """``VIBE_CHECK_*`` variables that no part of vibe-check reads -> the closest known name, if any.

    Examples
    --------
    >>> unknown_env_variables({"VIBE_CHECK_TIMEOUTS": "5", "VIBE_CHECK_WORKERS": "2", "PATH": "/bin"})
    {'VIBE_CHECK_TIMEOUTS': 'VIBE_CHECK_TIMEOUT'}
    """
    from ..data._download import ENV_DATA_HOME, ENV_MD5, ENV_URL

    environ = os.environ if environ is None else environ
    known = {*ServeSettings.env_variables(_PREFIX), env_variable("--model"), env_variable("--log-level"),
             ENV_URL, ENV_MD5, ENV_DATA_HOME}
    return {name: next(iter(difflib.get_close_matches(name, known, n=1)), None)
            for name in sorted(v for v in environ if v.startswith(_PREFIX) and v not in known)}


def _epilog() -> str:
    d = ServeSettings()
    options = [env_variable(o) for o in ("--model", *(f"--{o.replace('_', '-')}" for o in _OPTION_FIELDS), "--log-level")]
    only = "\n".join(f"  {_PREFIX}{suffix}: {why} (default: {getattr(d, suffix.lower())})"
                     for suffix, why in _ENV_ONLY.items())
    return ("environment:\n"
            "  Every option can also be set with a variable named after it; an option given on the\n"
            "  command line wins. Flags take 1/true/yes/on or 0/false/no/off.\n  "
            + ",\n  ".join(", ".join(options[i:i + 3]) for i in range(0, len(options), 3))
            + ".\n  Two limits are set only from the environment:\n" + only + "\n"
            "  The settings' own names (VIBE_CHECK_MAX_UPLOAD_BYTES, VIBE_CHECK_REQUEST_TIMEOUT_S,\n"
            "  VIBE_CHECK_DRIFT) are read too. Any other VIBE_CHECK_* variable gets a warning.")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServeSettings()
    # The epilog is a list of variable names: keep its line breaks.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", help="model bundle (.pkl or .skops), e.g. models/custom/best_emotion_model.pkl; "
                                        "required unless VIBE_CHECK_MODEL is set")
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
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="uvicorn log level (default: info)")
    parser.epilog = _epilog()


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeSettings:
    """Environment defaults, overridden by the options given on the command line.

    Raises ``ValueError`` naming the option (``argument --timeout: must be positive, got -1``) or
    the variable whose value is wrong.
    """
    settings = ServeSettings.from_env(environ)
    given = {option: getattr(args, option, None) for option in _OPTION_FIELDS}
    changes, option_of = {}, {}
    for option, value in given.items():
        if value is None:
            continue
        field, convert = _OPTION_FIELDS[option]
        value = convert(value) if convert else value
        if value is not None:
            changes[field], option_of[field] = value, option
    problems = ServeSettings.invalid_fields(changes)
    if problems:
        raise ValueError("; ".join(f"argument --{option_of[f].replace('_', '-')}: {why}, got {given[option_of[f]]}"
                                   for f, why in problems.items()))
    return settings.with_overrides(**changes)


def _from_option_or_env(args: argparse.Namespace, option: str, environ: Mapping[str, str]) -> str | None:
    value = getattr(args, option.lstrip("-").replace("-", "_"), None)
    return value if value is not None else (environ.get(env_variable(option)) or None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port_problem(host: str, port: int) -> str | None:
    """Why the service could not listen on ``host:port``, if it could not: checked before the
    service starts, which otherwise says it is serving and then exits with uvicorn's code 3."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def run_serve(args: argparse.Namespace) -> int:
    environ = os.environ
    for name, close in unknown_env_variables(environ).items():
        hint = f"did you mean {close}? " if close else ""
        print(f"warning: {name} is not a vibe-check setting and is ignored ({hint}vibe-check serve --help lists them)",
              file=sys.stderr)
    model_path = _from_option_or_env(args, "--model", environ)
    if not model_path:
        print("error: give the bundle to serve with --model (or VIBE_CHECK_MODEL)", file=sys.stderr)
        return 2
    log_level = (_from_option_or_env(args, "--log-level", environ) or "info").lower()
    if log_level not in LOG_LEVELS:
        print(f"error: VIBE_CHECK_LOG_LEVEL={log_level!r}: choose from {', '.join(LOG_LEVELS)}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args, environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
        # Loaded before the server starts, so a bad bundle fails the command at once with its reason.
        model = CustomEmotionModel(model_path, max_duration=settings.max_audio_seconds,
                                   test_time_augmentation=settings.test_time_augmentation)
    except (VibeCheckError, OSError) as exc:
        print(f"error: cannot serve {model_path}: {exc}", file=sys.stderr)
        return 1
    problem = _port_problem(settings.host, settings.port)
    if problem:
        print(f"error: {problem} (choose another port with --port)", file=sys.stderr)
        return 1
    note_generated_speech(model.trained_on_generated_speech, model_path)
    if not _is_loopback(settings.host):
        print(f"warning: binding {settings.host}: the service is reachable from other machines and has no authentication",
              file=sys.stderr)
    app = create_app(model, settings=settings)
    print(f"starting the service for {model_path} on http://{settings.host}:{settings.port} (metrics at /metrics)",
          file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level, access_log=log_level == "debug")
    return 0
