"""``vibe-check predict``: classify audio files with a trained bundle."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..exceptions import VibeCheckError

__all__ = ["add_predict_arguments", "run_predict", "format_table", "note_generated_speech"]


def note_generated_speech(model, path: str | Path) -> None:
    """Tell the user (on stderr) when a bundle was trained on the demo's generated speech."""
    if model.trained_on_generated_speech:
        print(f"note: {Path(path).name} was trained by the demo on generated speech: it shows that the pipeline "
              "works, not how real voices sound, so its predictions on real recordings mean little. For a real "
              "model, train on RAVDESS (README: 'Train on real RAVDESS').", file=sys.stderr)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="bundle to use (.pkl or .skops, with its .json sidecar)")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="audio files (WAV, FLAC, OGG, MP3), or folders: every audio file under them")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of a table")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel feature extraction workers (default: %(default)s)")
    parser.add_argument("--test-time-augmentation", action="store_true",
                        help="also classify speed copies of each file and average (5-7x the feature time; see README)")
    parser.add_argument("--speaker-reference", nargs="+", metavar="REF",
                        help="for a speaker-normalised bundle (*_speaker_model.pkl): recordings (or a folder of them) "
                             "of the same speaker, a typical mix of their speech (at least 4), that the files are "
                             "classified relative to")


def _top(result: dict, k: int = 3) -> str:
    ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{label} {p:.2f}" for label, p in ranked)


def format_table(files: list[str], results: list[dict]) -> str:
    """Aligned text: file, emotion, confidence and the top three classes (or the error) per file.

    Examples
    --------
    >>> print(format_table(["a.wav"], [{"emotion": "sad", "confidence": 0.8, "probabilities": {"sad": 0.8, "calm": 0.2}}]))
    file   emotion  confidence  top-3
    a.wav  sad            0.80  sad 0.80, calm 0.20
    """
    rows = [("file", "emotion", "confidence", "top-3")]
    for path, res in zip(files, results):
        if "error" in res:
            rows.append((path, "ERROR", "", f"{res['error']['type']}: {res['error']['message']}"))
        else:
            rows.append((path, res["emotion"], f"{res['confidence']:.2f}", _top(res)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip() for r in rows
    )


def run_predict(args: argparse.Namespace) -> int:
    from ..data import expand_audio_paths
    from ._custom import CustomEmotionModel

    files, empty = expand_audio_paths(args.files)
    references, empty_references = expand_audio_paths(args.speaker_reference or [])
    for problem in empty + empty_references:
        print(f"error: {problem}", file=sys.stderr)
    if not files:
        return 1

    try:
        model = CustomEmotionModel(args.model, test_time_augmentation=args.test_time_augmentation)
    except VibeCheckError as exc:
        print(f"error: cannot load {args.model}: {exc}", file=sys.stderr)
        return 1
    note_generated_speech(model, args.model)
    if model.speaker_normalized and not references:
        print(f"error: {Path(args.model).name} is speaker-normalised: it classifies clips relative to their speaker's "
              "average, so give --speaker-reference with a few recordings (at least 4) of the same speaker", file=sys.stderr)
        return 1
    if references:
        try:
            model = model.for_speaker(references, n_jobs=args.n_jobs)
        except VibeCheckError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    results = model.predict_batch(files, n_jobs=args.n_jobs)
    if args.json:
        for path, res in zip(files, results):
            out = {"file": path, **{k: v for k, v in res.items() if k != "item"}}
            print(json.dumps(out))
    else:
        print(format_table(files, results))
    failed = sum("error" in r for r in results)
    if failed:
        print(f"{failed} of {len(results)} file(s) failed", file=sys.stderr)
    return 1 if failed or empty or empty_references else 0
