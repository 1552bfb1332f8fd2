"""Limits and network settings of the HTTP service, in one frozen object.

Every limit exists so that one request can never take the process down or starve the others:
the upload size, times the uploads received at once (at most ``workers + queue_size``) and those
waiting for a worker (as many), bounds memory; the audio duration bounds CPU per request, the
worker pool and its queue bound concurrency, and the timeout bounds how long a client waits.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Mapping

__all__ = ["ServeSettings"]

_MIB = 1024 * 1024
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(raw: str) -> bool:
    """An on/off environment value; anything else is refused (bool("0") would be True)."""
    word = raw.strip().lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(f"is not one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}")
    return word in _TRUE


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a number") from None


def _converter(kind: type) -> Callable[[str], object]:
    """The parser of an environment value for a field whose default is of type ``kind``."""
    if kind is bool:
        return _flag

    def convert(raw: str):
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"is not a valid {kind.__name__}") from None
    return convert


#: Variables named after a ``vibe-check serve`` option whose setting has another name, unit or
#: sense: suffix -> (field, conversion of the raw value). The others share the field's name.
OPTION_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "MAX_UPLOAD_MB": ("max_upload_bytes", lambda raw: int(_number(raw) * _MIB)),
    "TIMEOUT": ("request_timeout_s", _number),
    "NO_DRIFT": ("drift", lambda raw: not _flag(raw)),
}


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
        :class:`~vibe_check.models.CustomEmotionModel`): slightly better on unseen speakers
        (the README's table, ``benchmarks/bench_test_time_augmentation.py``) for 5-7x the
        feature time per request (``benchmarks/load_test.py --test-time-augmentation``).
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
        problems = self.invalid_fields(asdict(self))
        if problems:
            raise ValueError("invalid serve settings: " + "; ".join(
                f"{name} {why}, got {getattr(self, name)}" for name, why in problems.items()))

    @staticmethod
    def invalid_fields(values: Mapping[str, object]) -> dict[str, str]:
        """What is wrong with each of ``values`` (field -> "must be positive"...); only the fields given are checked.

        The rules in one place, so that the command line and the environment can name their own
        option or variable in the message.

        Examples
        --------
        >>> ServeSettings.invalid_fields({"workers": 0, "port": 80})
        {'workers': 'must be at least 1'}
        """
        rules = {
            "max_upload_bytes": (lambda v: v >= 1, "must be positive"),
            "max_audio_seconds": (lambda v: v > 0, "must be positive"),
            "request_timeout_s": (lambda v: v > 0, "must be positive"),
            "workers": (lambda v: v >= 1, "must be at least 1"),
            "queue_size": (lambda v: v >= 0, "must be 0 or more"),
            "max_batch_files": (lambda v: v >= 1, "must be at least 1"),
            "explain_top_k": (lambda v: 1 <= v <= 50, "must be between 1 and 50"),
            "drift_window": (lambda v: v >= 1, "must be at least 1"),
            "shap_fraction": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
            "max_speakers": (lambda v: v >= 1, "must be at least 1"),
            "max_reference_clips": (lambda v: v >= 1, "must be at least 1"),
            "port": (lambda v: 0 <= v <= 65535, "must be between 0 and 65535"),
        }
        # `not ok(v)` rather than a negated comparison, so NaN fails every rule.
        return {name: why for name, (ok, why) in rules.items() if name in values and not ok(values[name])}

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
    def env_variables(cls, prefix: str = "VIBE_CHECK_") -> dict[str, str]:
        """Every environment variable :meth:`from_env` reads -> the field it sets.

        Examples
        --------
        >>> ServeSettings.env_variables()["VIBE_CHECK_TIMEOUT"]
        'request_timeout_s'
        """
        names = {prefix + f.name.upper(): f.name for f in fields(cls)}
        names.update({prefix + suffix: field for suffix, (field, _) in OPTION_VARIABLES.items()})
        return names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "VIBE_CHECK_") -> "ServeSettings":
        """Defaults overridden by environment variables.

        Each setting is read from ``VIBE_CHECK_<FIELD>`` (``VIBE_CHECK_WORKERS=4``) and, where
        ``vibe-check serve``'s option has another name, from ``VIBE_CHECK_<OPTION>`` too:
        ``VIBE_CHECK_MAX_UPLOAD_MB`` (MiB), ``VIBE_CHECK_TIMEOUT`` (seconds) and
        ``VIBE_CHECK_NO_DRIFT``. Flags take 1/true/yes/on or 0/false/no/off. Empty values are
        ignored; a value that does not parse or is out of range raises ``ValueError`` naming the
        variable.

        Examples
        --------
        >>> ServeSettings.from_env({"VIBE_CHECK_MAX_UPLOAD_MB": "2", "VIBE_CHECK_NO_DRIFT": "1"}).max_upload_bytes
        2097152
        """
        environ = os.environ if environ is None else environ
        changes: dict[str, object] = {}
        source: dict[str, str] = {}  # field -> the variable it was read from, for the messages
        problems = []
        for variable, name in cls.env_variables(prefix).items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            if name in source:
                problems.append(f"{source[name]} and {variable} both set {name}; keep one")
                continue
            suffix = variable[len(prefix):]
            # Otherwise the default's type (str, int, float or bool) parses the value.
            convert = OPTION_VARIABLES[suffix][1] if suffix in OPTION_VARIABLES else _converter(type(getattr(cls, name)))
            try:
                changes[name] = convert(raw)
            except ValueError as exc:
                problems.append(f"{variable}={raw!r} {exc}")
                continue
            source[name] = variable
        for name, why in cls.invalid_fields(changes).items():
            problems.append(f"{source[name]}={environ[source[name]]!r} {why}")
        if problems:
            raise ValueError("invalid serve settings in the environment: " + "; ".join(problems))
        return cls(**changes)
