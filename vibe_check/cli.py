"""The ``vibe-check`` command line: one subcommand per stage, each defined next to its stage.

A subcommand's module (and the numerical libraries behind it) is imported only when that
subcommand is run or asked for its help, so ``vibe-check --help`` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Iterable, Sequence

from ._version import __version__

# name -> (module, function adding the arguments, function running the command, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "download": ("vibe_check.data._download", "add_download_arguments", "run_download",
                 "download RAVDESS (or use a local zip / folder)"),
    "features": ("vibe_check.features._cli", "add_features_arguments", "run_features",
                 "extract named features into a Parquet manifest"),
    "predict": ("vibe_check.models._cli", "add_predict_arguments", "run_predict",
                "predict the emotion of audio files with a trained bundle"),
    "serve": ("vibe_check.serving._cli", "add_serve_arguments", "run_serve", "serve a model over HTTP with Prometheus metrics"),
    "train": ("vibe_check.training._cli", "add_train_arguments", "run_train",
              "cross-validate models speaker-independently and save bundles"),
    "evaluate": ("vibe_check.training._cli", "add_evaluate_arguments", "run_evaluate",
                 "score a saved bundle on clips it has not seen"),
    "explain": ("vibe_check.explain._cli", "add_explain_arguments", "run_explain", "explain why a model heard an emotion in audio files"),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommands in ``commands`` (all by default) get their arguments.

    Every subcommand is listed with its help either way. Defining a subcommand's arguments
    imports its stage, which takes seconds (scipy, scikit-learn, matplotlib), so :func:`main`
    defines only the one on the command line.

    Examples
    --------
    >>> build_parser(["serve"]).parse_args(["serve", "--model", "m.pkl"]).command
    'serve'
    """
    full = set(COMMANDS) if commands is None else set(commands)
    unknown = full - set(COMMANDS)
    if unknown:
        raise ValueError(f"unknown command(s) {sorted(unknown)}; choose from {', '.join(COMMANDS)}")
    parser = argparse.ArgumentParser(
        prog="vibe-check",
        description="Explainable speech emotion recognition with classical machine learning.",
    )
    parser.add_argument("--version", action="version", version=f"vibe-check {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, add_args, _run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in full:
            getattr(importlib.import_module(module), add_args)(p)
    return parser


def _command_in(argv: Sequence[str]) -> list[str]:
    """The subcommand named on a command line, as a list (empty when there is none or it is unknown).

    The top-level options (``-v``, ``--version``, ``--help``) take no value, so the first word
    that is not an option is the subcommand.
    """
    word = next((a for a in argv if not a.startswith("-")), None)
    return [word] if word in COMMANDS else []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    module, _add, run, _help = COMMANDS[args.command]
    try:
        return int(getattr(importlib.import_module(module), run)(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and the next run resumes", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`vibe-check ... | head`): not an error. Point stdout at devnull so that
        # Python's own flush at exit does not raise again (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
