"""What the RAVDESS benchmarks share: the corpus options and its cached feature manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from vibe_check.features import build_manifest
from vibe_check.features._cli import add_spectral_floor_argument, feature_config
from vibe_check.training import DEFAULT_AUGMENTATIONS, EmotionTrainer
from vibe_check.training._cli import augment_list


def corpus_parser(doc: str | None, *, folds: bool = True) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help, the corpus options and, with ``folds``,
    ``--folds`` (speaker-grouped folds, 5 by default)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(ap)
    if folds:
        ap.add_argument("--folds", type=int, default=5, help="speaker-grouped folds (default: %(default)s)")
    return ap


def add_corpus_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default="../shared/data/ravdess16k", help="RAVDESS folder (default: %(default)s)")
    ap.add_argument("--n-jobs", type=int, default=2, help="parallel workers (default: %(default)s)")
    ap.add_argument("--cache-dir", default="data/.feature_cache", help="feature cache (default: %(default)s)")
    ap.add_argument("--augment", type=augment_list, default=list(DEFAULT_AUGMENTATIONS),
                    help="augmented training copies, comma-separated, or 'none' (default: as vibe-check train)")
    add_spectral_floor_argument(ap)


def corpus_manifest(args: argparse.Namespace) -> pd.DataFrame | None:
    """The feature manifest of ``--data-dir`` (from the cache after the first run), with the
    ``--augment`` copies; None, with a message, when the folder is missing."""
    if not Path(args.data_dir).is_dir():
        print(f"no data at {args.data_dir}; pass --data-dir", file=sys.stderr)
        return None
    return build_manifest(args.data_dir, None, config=feature_config(args), n_jobs=args.n_jobs,
                          cache_dir=args.cache_dir, progress=False, augment=args.augment)


def model_lists(spec: str) -> tuple[list[str], list[str]]:
    """A ``--models`` value as (the models to score, the models to train).

    A listed ensemble is the default one, so all the default models are trained for it (the
    trainer alone would soft-vote the listed candidates when two or more are listed, as in
    ``--models logreg,lda,ensemble``). Nothing listed: train the defaults and score the one
    training picks.
    """
    models = [m for m in spec.split(",") if m]
    return models, (models if models and "ensemble" not in models else list(EmotionTrainer().models))
