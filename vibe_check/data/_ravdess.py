"""RAVDESS file names: the 7-part identifier and the metadata it encodes.

``03-01-05-02-01-01-12.wav`` = modality (03 audio-only), vocal channel (01 speech), emotion (05
angry), intensity (02 strong), statement (01 "Kids are talking by the door"), repetition (01) and
actor (12; odd actors are male, even actors female).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..exceptions import DatasetError, FilenameError

__all__ = [
    "EMOTIONS",
    "SENTIMENT_OF_EMOTION",
    "AUDIO_EXTENSIONS",
    "RavdessInfo",
    "is_ravdess_name",
    "parse_filename",
    "scan_dataset",
]

log = logging.getLogger(__name__)

#: Emotion codes as published with RAVDESS.
EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
#: The 3-class sentiment task: positive = happy, surprised; neutral = neutral, calm;
#: negative = sad, angry, fearful, disgust.
SENTIMENT_OF_EMOTION: dict[str, str] = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "positive",
    "surprised": "positive",
    "sad": "negative",
    "angry": "negative",
    "fearful": "negative",
    "disgust": "negative",
}
MODALITIES = {"01": "full-AV", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class RavdessInfo:
    """Metadata encoded in one RAVDESS file name."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int
    gender: str

    def as_dict(self) -> dict:
        return asdict(self)


def _lookup(table: dict[str, str], code: str, what: str, name: str) -> str:
    try:
        return table[code]
    except KeyError:
        raise FilenameError(f"{name}: unknown {what} code {code!r} (expected one of {sorted(table)})") from None


def parse_filename(path: str | os.PathLike) -> RavdessInfo:
    """Parse a RAVDESS file name into its metadata.

    Raises
    ------
    FilenameError
        With the reason, when the name does not follow the scheme.

    Examples
    --------
    >>> info = parse_filename("Actor_12/03-01-05-02-01-01-12.wav")
    >>> info.emotion, info.intensity, info.actor, info.gender
    ('angry', 'strong', 12, 'female')
    """
    name = Path(path).name
    stem = Path(name).stem
    parts = stem.split("-")
    if len(parts) != 7:
        raise FilenameError(f"{name}: expected 7 dash-separated fields like 03-01-05-02-01-01-12, got {len(parts)}")
    if not all(len(p) == 2 and p.isdigit() for p in parts):
        raise FilenameError(f"{name}: every field must be two digits")
    modality, channel, emotion, intensity, statement, repetition, actor = parts
    _lookup(STATEMENTS, statement, "statement", name)
    info = RavdessInfo(
        modality=_lookup(MODALITIES, modality, "modality", name),
        vocal_channel=_lookup(VOCAL_CHANNELS, channel, "vocal channel", name),
        emotion=_lookup(EMOTIONS, emotion, "emotion", name),
        intensity=_lookup(INTENSITIES, intensity, "intensity", name),
        statement=int(statement),
        repetition=int(repetition),
        actor=int(actor),
        gender="male" if int(actor) % 2 else "female",
    )
    if info.repetition not in (1, 2):
        raise FilenameError(f"{name}: repetition must be 01 or 02, got {repetition}")
    if not 1 <= info.actor <= 99:
        raise FilenameError(f"{name}: actor must be 01-99, got {actor}")
    if info.emotion == "neutral" and info.intensity == "strong":
        raise FilenameError(f"{name}: RAVDESS has no strong intensity for neutral")
    return info


def is_ravdess_name(path: str | os.PathLike) -> bool:
    """Whether the file name follows the RAVDESS scheme (:func:`parse_filename` accepts it).

    Examples
    --------
    >>> is_ravdess_name("03-01-05-02-01-01-12.wav"), is_ravdess_name("angry.wav")
    (True, False)
    """
    try:
        parse_filename(path)
    except FilenameError:
        return False
    return True


def list_audio_files(root: str | os.PathLike, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files under ``root``, sorted, by extension (case-insensitive).

    Linked folders are followed (a corpus subset made of links to actor folders), each real
    folder once. Hidden files (``.name``, such as a write in progress) are skipped.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"data folder not found: {root}")
    exts = tuple(e.lower() for e in extensions)
    if root.is_file():
        return [root]
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree, or two links to one folder
            dirs.clear()
            continue
        seen.add(real)
        # Hidden files are skipped: they include the temporary files of writes in progress.
        found += [Path(folder) / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in exts and (Path(folder) / f).is_file()]
    return sorted(found)


def expand_audio_paths(paths: Iterable[str | os.PathLike],
                       extensions: Iterable[str] = AUDIO_EXTENSIONS) -> tuple[list[str], list[str]]:
    """Command-line paths as audio files: each folder becomes the audio files under it (sorted,
    recursive), anything else is kept as given for the caller to read (or to report as bad).

    Returns
    -------
    files : list of str
        In the order given, folders expanded in place.
    empty_folders : list of str
        A message for each folder given that holds no audio file with one of ``extensions``
        (``"no audio files (.wav, .flac, .ogg, .mp3) under <folder>"``).

    Examples
    --------
    >>> expand_audio_paths(["clip.wav", "missing.flac"])
    (['clip.wav', 'missing.flac'], [])
    """
    extensions = tuple(extensions)
    files, empty = [], []
    for path in paths:
        if Path(path).is_dir():
            found = list_audio_files(path, extensions)
            files.extend(str(p) for p in found)
            if not found:
                empty.append(f"no audio files ({', '.join(extensions)}) under {path}")
        else:
            files.append(str(path))
    return files, empty


def scan_dataset(root: str | os.PathLike, *, speech_only: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Find RAVDESS files under ``root`` and parse their names.

    Returns
    -------
    files : DataFrame
        One row per valid file: ``path``, ``file`` and the :class:`RavdessInfo` fields.
    skipped : DataFrame
        ``path`` and ``reason`` for every audio file whose name could not be parsed (never raises).

    Examples
    --------
    >>> files, skipped = scan_dataset("../shared/data/ravdess16k")  # doctest: +SKIP
    >>> files.groupby("emotion").size()  # doctest: +SKIP
    """
    rows, skipped = [], []
    for path in list_audio_files(root):
        try:
            info = parse_filename(path)
        except FilenameError as exc:
            log.warning("skipping %s", exc)
            skipped.append({"path": str(path), "reason": str(exc)})
            continue
        if speech_only and info.vocal_channel != "speech":
            skipped.append({"path": str(path), "reason": f"{path.name}: song, not speech"})
            continue
        rows.append({"path": str(path), "file": path.name, **info.as_dict()})
    files = pd.DataFrame(rows, columns=["path", "file", *RavdessInfo.__dataclass_fields__])
    return files, pd.DataFrame(skipped, columns=["path", "reason"])
