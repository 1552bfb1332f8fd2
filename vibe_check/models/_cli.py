"""``vibe-check predict``: classify audio files with a trained bundle.

It also holds what ``vibe-check explain`` shares with it: the options that say which model to
use and how (:func:`add_model_arguments`), and loading and adapting that model
(:func:`load_model_for_cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .._argtypes import positive_seconds
from ..audio import DEFAULT_MAX_DURATION
from ..exceptions import VibeCheckError

__all__ = ["add_predict_arguments", "run_predict", "format_table", "note_generated_speech", "add_model_arguments",
           "audio_inputs", "load_model_for_cli", "note_too_long", "CommandFailed"]


class CommandFailed(Exception):
    """A reason to stop a command: printed as ``error: <message>``, and ``exit_code`` is returned."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def note_generated_speech(trained_on_generated_speech: bool, path: str | Path) -> None:
    """Tell the user (on stderr) when a bundle was trained on the demo's generated speech."""
    if trained_on_generated_speech:
        print(f"note: {Path(path).name} was trained by the demo on generated speech: it shows that the pipeline "
              "works, not how real voices sound, so its predictions on real recordings mean little. For a real "
              "model, train on RAVDESS (README: 'Train on real RAVDESS').", file=sys.stderr)



def add_model_arguments(parser: argparse.ArgumentParser, *, verb: str) -> None:
    """The bundle, the audio files and how the bundle is used, as ``predict`` and ``explain`` take them.

    ``verb`` ("classify", "explain") words the help. ``--speaker-reference`` takes one or more
    paths (a shell glob), so the usage line puts the files before it; ``--`` ends the references
    when they come first.
    """
    parser.usage = ("%(prog)s --model MODEL [options] FILE [FILE ...] [--speaker-reference REF [REF ...]]\n"
                    "       %(prog)s --model MODEL [options] --speaker-reference REF [REF ...] -- FILE [FILE ...]")
    parser.add_argument("--model", required=True, help="bundle to use (.pkl or .skops, with its .json sidecar)")
    # "*", not "+": a missing FILE is reported by audio_inputs, which knows whether
    # --speaker-reference took the files.
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help=f"audio files to {verb} (WAV, FLAC, OGG, MP3), or folders: every audio file under them")
    parser.add_argument("--test-time-augmentation", action="store_true",
                        help="also classify speed copies of each file and average (5-7x the feature time; see README)")
    parser.add_argument("--speaker-reference", nargs="+", action="extend", metavar="REF",
                        help="for a speaker-normalised bundle (*_speaker_model.pkl): recordings (or a folder of them) "
                             "of the same speaker, a typical mix of their speech (at least 4), that the files are "
                             f"classified relative to. It takes every path after it: give the files to {verb} first "
                             "(FILE... --speaker-reference alice_*.wav), or end the references with -- "
                             "(--speaker-reference alice_*.wav -- FILE...)")
    parser.add_argument("--max-duration", type=positive_seconds, default=DEFAULT_MAX_DURATION, metavar="SECONDS",
                        help="longest accepted audio; longer files are refused, since the features summarise one "
                             "utterance (default: %(default)g)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel feature extraction workers (default: %(default)s)")


def audio_inputs(args: argparse.Namespace, *, verb: str) -> tuple[list[str], int]:
    """The audio files named on the command line, folders expanded, and how many folders held none.

    Empty folders are reported on stderr; the command goes on with the other files and fails at
    the end.

    Raises
    ------
    CommandFailed
        No FILE at all (exit code 2, saying so when ``--speaker-reference`` took them), or no
        audio file in the folders given (1).
    """
    from ..data import expand_audio_paths

    if not args.files:
        if args.speaker_reference:
            shown = ", ".join(args.speaker_reference[:3]) + (", ..." if len(args.speaker_reference) > 3 else "")
            raise CommandFailed(
                f"no FILE to {verb}: --speaker-reference took every path after it ({shown}); put the files "
                "before --speaker-reference, or end the references with -- (--speaker-reference REF ... -- FILE ...)", 2)
        raise CommandFailed(f"no FILE to {verb}: give audio files or folders after the options", 2)
    files, empty = expand_audio_paths(args.files)
    for problem in empty:
        print(f"error: {problem}", file=sys.stderr)
    if not files:
        raise CommandFailed(f"no audio files to {verb}")
    return files, len(empty)


def load_model_for_cli(args: argparse.Namespace):
    """``--model`` loaded as the options ask: with test-time augmentation, ``--max-duration``, and
    adapted to the speaker of ``--speaker-reference``.

    Prints the generated-speech note, and the reference clips that were skipped as ``warning:``
    lines.

    Raises
    ------
    CommandFailed
        The bundle does not load, or a speaker-normalised bundle has no usable references.
    """
    from ..data import expand_audio_paths
    from ._custom import CustomEmotionModel

    references, empty = expand_audio_paths(args.speaker_reference or [])
    if empty:
        raise CommandFailed("--speaker-reference: " + "; ".join(empty))
    try:
        model = CustomEmotionModel(args.model, test_time_augmentation=args.test_time_augmentation,
                                   max_duration=args.max_duration)
    except VibeCheckError as exc:
        raise CommandFailed(f"cannot load {args.model}: {exc}") from None
    note_generated_speech(model.trained_on_generated_speech, args.model)
    if model.speaker_normalized and not references:
        raise CommandFailed(
            f"{Path(args.model).name} is speaker-normalised: it classifies clips relative to their speaker's "
            "average, so give --speaker-reference with a few recordings (at least 4) of the same speaker")
    if not references:
        return model
    try:
        # A reference that cannot be read is skipped with a Python warning; a command line
        # user gets it as one of its own `warning:` lines instead of a source line.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = model.for_speaker(references, n_jobs=args.n_jobs)
    except VibeCheckError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    return model


def note_too_long(error_types, max_duration: float) -> None:
    """After the output: how to accept longer files, when some were refused as too long."""
    if "AudioTooLongError" in set(error_types):
        print(f"note: files longer than {max_duration:g} s are refused; --max-duration SECONDS raises the limit, "
              "but the features summarise one utterance, so splitting long recordings is better", file=sys.stderr)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, verb="classify")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file (JSON Lines) instead of a table")


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
    try:
        files, n_empty = audio_inputs(args, verb="classify")
        model = load_model_for_cli(args)
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
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
    note_too_long((r["error"]["type"] for r in results if "error" in r), args.max_duration)
    return 1 if failed or n_empty else 0
