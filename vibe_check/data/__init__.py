"""Data layer: RAVDESS file names, the corpus downloader and generated emotional speech."""

from ._download import DEFAULT_MD5, DEFAULT_URL, fetch_ravdess
from ._ravdess import (
    AUDIO_EXTENSIONS,
    EMOTIONS,
    SENTIMENT_OF_EMOTION,
    RavdessInfo,
    list_audio_files,
    parse_filename,
    scan_dataset,
)
from ._synthetic import (
    SyntheticSpeaker,
    generate_corpus,
    make_noise,
    make_speakers,
    make_tone,
    synthesize_utterance,
    write_audio,
)

__all__ = [
    "DEFAULT_MD5",
    "DEFAULT_URL",
    "fetch_ravdess",
    "AUDIO_EXTENSIONS",
    "EMOTIONS",
    "SENTIMENT_OF_EMOTION",
    "RavdessInfo",
    "list_audio_files",
    "parse_filename",
    "scan_dataset",
    "SyntheticSpeaker",
    "generate_corpus",
    "make_noise",
    "make_speakers",
    "make_tone",
    "synthesize_utterance",
    "write_audio",
]
