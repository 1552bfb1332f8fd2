"""Decoding and validating audio: one place turns any input into clean mono float32 at the target rate.

Every entry point (feature extraction, inference, serving) goes through :func:`load_audio` or
:func:`prepare_signal`, so every bad input gets the same clear error.
"""

from __future__ import annotations

import io
import re
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from .exceptions import (
    AudioDecodeError,
    AudioFileNotFoundError,
    AudioTooLongError,
    EmptyAudioError,
    InvalidAudioError,
    NoSpeechError,
)

__all__ = ["load_audio", "prepare_signal", "require_sound", "trim_silence", "to_mono_float", "AudioSource"]

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]

#: Default longest input accepted, in seconds. Long recordings should be split by the caller;
#: features are utterance-level statistics, so minutes of audio would blur them anyway.
DEFAULT_MAX_DURATION = 60.0
#: Least sound left after trimming for a clip to count as speech, in seconds.
DEFAULT_MIN_DURATION = 0.25
#: Peak level under which a signal is taken as silence (-80 dBFS, near the 16-bit noise floor).
#: Not higher: real clips recorded 20 dB quieter than RAVDESS peak around -60 dBFS.
SILENCE_PEAK = 1e-4


def to_mono_float(y: np.ndarray) -> np.ndarray:
    """Convert any sample array to mono float32, full scale at 1.0.

    Integer PCM is scaled by its type's range into [-1, 1] (unsigned PCM is centred first); float
    samples are taken as they are (levels are normalised later, so their scale does not matter); 2-D input is
    ``(frames, channels)`` (soundfile's layout) unless the first axis is clearly the channel axis
    (librosa's layout). Channels are averaged.

    Examples
    --------
    >>> to_mono_float(np.array([0, 16384, -32768], dtype=np.int16))
    array([ 0. ,  0.5, -1. ], dtype=float32)
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        raise InvalidAudioError(f"audio samples must be numeric, got dtype {y.dtype}")
    if y.ndim == 2:
        if y.shape[0] <= 8 and y.shape[1] > y.shape[0]:
            y = y.T
    elif y.ndim != 1:
        raise InvalidAudioError(f"audio must be 1-D (mono) or 2-D (multichannel), got shape {y.shape}")
    if y.dtype.kind in "iu":
        info = np.iinfo(y.dtype)
        # Signed PCM spans [min, -min); unsigned PCM (8-bit WAV) is centred on (max + 1) / 2 and
        # spans that much either side.
        offset, scale = (0.0, -float(info.min)) if info.min < 0 else ((info.max + 1) / 2.0,) * 2
        y = (y.astype(np.float64) - offset) / scale
    if y.ndim == 2:
        y = y.mean(axis=1)
    return y.astype(np.float32, copy=False)


def prepare_signal(
    y: np.ndarray,
    sr: int,
    *,
    target_sr: int = 16000,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> np.ndarray:
    """Validate an in-memory signal and return it as mono float32 at ``target_sr``.

    Parameters
    ----------
    y : np.ndarray
        Samples, 1-D or ``(frames, channels)``; float or integer PCM.
    sr : int
        Sample rate of ``y`` in Hz.
    target_sr : int, keyword-only
        Rate to resample to (with soxr, high quality).
    max_duration : float or None, keyword-only
        Longest accepted input in seconds; ``None`` disables the check.

    Raises
    ------
    EmptyAudioError, InvalidAudioError, AudioTooLongError

    Examples
    --------
    >>> y = prepare_signal(np.zeros((8000, 2), dtype=np.int16), 8000)
    >>> y.shape, y.dtype
    ((16000,), dtype('float32'))
    """
    if (not isinstance(sr, (int, float, np.integer, np.floating)) or isinstance(sr, bool)
            or not float(sr).is_integer() or int(sr) < 1000 or int(sr) > 384000):
        raise InvalidAudioError(f"sample rate must be an integer between 1000 and 384000 Hz, got {sr!r}")
    sr = int(sr)
    y = np.asarray(y)
    if y.size == 0:
        raise EmptyAudioError("the audio holds no samples")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InvalidAudioError("the audio contains NaN or infinite samples")
    y = to_mono_float(y)
    if y.size == 0:
        raise EmptyAudioError("the audio holds no samples")
    duration = y.size / sr
    if max_duration is not None and duration > max_duration:
        raise AudioTooLongError(
            f"the audio lasts {duration:.1f} s, longer than the maximum of {max_duration:.0f} s; "
            "split it into utterances"
        )
    if sr != target_sr:
        y = soxr.resample(y, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return y


def load_audio(
    source: AudioSource,
    *,
    target_sr: int = 16000,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> np.ndarray:
    """Decode a file (path, bytes or file object) to mono float32 at ``target_sr``.

    Raises a specific :class:`~vibe_check.exceptions.AudioError` for a missing path, an empty
    file, a file that is not audio or is corrupt, and audio longer than ``max_duration``. The
    duration is checked from the header before decoding, so a huge file is refused without
    reading it into memory.

    Examples
    --------
    >>> y = load_audio("clip.wav")  # doctest: +SKIP
    """
    name = "the audio data"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise EmptyAudioError("the uploaded audio is empty (0 bytes)")
        fileobj: BinaryIO | str = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise AudioFileNotFoundError(f"no such audio file: {path}")
        if path.is_dir():
            raise AudioDecodeError(f"{path} is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise EmptyAudioError(f"{path} is empty (0 bytes)")
        fileobj = str(path)
    else:
        fileobj = source
        name = getattr(source, "name", "<file object>")
    _check_wav_complete(source, name)
    try:
        with sf.SoundFile(fileobj) as f:
            sr = f.samplerate
            frames = f.frames
            if max_duration is not None and frames > max_duration * sr:
                raise AudioTooLongError(
                    f"{name} lasts {frames / sr:.1f} s, longer than the maximum of {max_duration:.0f} s; "
                    "split it into utterances"
                )
            y = f.read(dtype="float32", always_2d=True)
    except AudioTooLongError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        # libsndfile's text starts with "Error opening <repr of the file object>: "; keep the reason.
        reason = getattr(exc, "error_string", None) or re.sub(r"^Error opening .*?: ", "", str(exc))
        raise AudioDecodeError(
            f"{name} could not be decoded as audio (corrupt, or not a format libsndfile reads: "
            f"WAV, FLAC, OGG, MP3...): {reason}"
        ) from None
    if y.shape[0] == 0:
        raise EmptyAudioError(f"{name} holds no samples")
    if y.shape[0] < 0.95 * frames:
        # A cut-short MP3 still announces its full length; the 5 % margin covers encoders whose
        # length in the header is an estimate. (A WAV was checked above, before decoding.)
        raise AudioDecodeError(
            f"{name} is truncated: its header announces {frames / sr:.2f} s of audio but only "
            f"{y.shape[0] / sr:.2f} s could be decoded (an interrupted copy or upload?); re-export or re-upload it"
        )
    return prepare_signal(y, sr, target_sr=target_sr, max_duration=None)


#: ``data`` chunk sizes that streaming writers put in a WAV header when the length is unknown.
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)


def _check_wav_complete(source: AudioSource, name: str) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk is cut short.

    libsndfile silently decodes whatever part of a truncated WAV is left (an interrupted copy or
    upload would be classified from its first second), so the size announced in the header is
    compared with the bytes that follow it. Only chunk headers are read. Other formats, and WAVs
    written by streaming tools that leave the size unset, are left to the decoder.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        _walk_riff(io.BytesIO(bytes(source)), 0, len(source), name)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            _walk_riff(f, 0, os.fstat(f.fileno()).st_size, name)
    elif getattr(source, "seekable", lambda: False)():
        start = source.tell()
        try:
            _walk_riff(source, start, source.seek(0, io.SEEK_END), name)
        finally:
            source.seek(start)


def _walk_riff(f: BinaryIO, start: int, end: int, name: str) -> None:
    f.seek(start)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = start + 12
    for _ in range(1000):  # a WAV has a handful of chunks; stop walking a pathological file
        f.seek(pos)
        chunk = f.read(8)
        if len(chunk) < 8:
            return
        declared = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"data":
            available = end - pos - 8
            if declared not in _UNKNOWN_WAV_SIZES and declared > available:
                raise AudioDecodeError(
                    f"{name} is truncated: its header announces {declared} bytes of audio but only "
                    f"{available} follow (an interrupted copy or upload?); re-export or re-upload it"
                )
            return
        pos += 8 + declared + (declared & 1)


def require_sound(y: np.ndarray, sr: int, *, frame_length: int = 512, min_duration: float = DEFAULT_MIN_DURATION) -> None:
    """Refuse digital silence and a signal shorter than one analysis frame (``NoSpeechError``).

    Silence is judged around the signal's mean: a constant offset (a DC bias in the recording
    chain) is not sound.
    """
    peak = float(np.max(np.abs(y - y.mean()))) if y.size else 0.0
    if peak < SILENCE_PEAK:
        raise NoSpeechError(f"the audio is silent (peak level {20 * np.log10(peak + 1e-12):.0f} dBFS)")
    if y.size < frame_length:
        raise NoSpeechError(
            f"the audio is too short to hold speech ({y.size / sr * 1000:.0f} ms; at least "
            f"{min_duration * 1000:.0f} ms of sound is needed)"
        )


def trim_silence(
    y: np.ndarray,
    sr: int,
    *,
    top_db: float = 35.0,
    min_duration: float = DEFAULT_MIN_DURATION,
    frame_length: int = 512,
    hop_length: int = 160,
) -> np.ndarray:
    """Cut leading and trailing silence; refuse a clip with no speech left.

    Silence is judged relative to the clip's loudest frame (``top_db`` below it), as in
    :func:`librosa.effects.trim`, plus an absolute floor so digital silence is never "speech".

    Raises
    ------
    NoSpeechError
        When the clip is silent or shorter than ``min_duration`` seconds after trimming.
    """
    import librosa

    require_sound(y, sr, frame_length=frame_length, min_duration=min_duration)
    trimmed, _ = librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)
    duration = trimmed.size / sr
    if duration < min_duration:
        raise NoSpeechError(
            f"too little sound to hold speech after trimming silence ({duration * 1000:.0f} ms; "
            f"at least {min_duration * 1000:.0f} ms is needed)"
        )
    return trimmed
