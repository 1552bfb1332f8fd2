"""``vibe-check features``: build a feature manifest from a folder of audio."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..exceptions import VibeCheckError

__all__ = ["add_features_arguments", "run_features"]


def add_features_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder of audio files (RAVDESS-named); required unless --describe")
    parser.add_argument("--out", default="data/manifest.parquet", help="manifest path (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel workers (default: %(default)s)")
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) to extract on a cluster")
    parser.add_argument("--cache-dir", help="feature cache folder (default: .feature_cache beside --out)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--describe", action="store_true", help="print the feature table (name, group, description) and exit")


def run_features(args: argparse.Namespace) -> int:
    from . import FeatureExtractor, build_manifest, manifest_errors

    if args.describe:
        FeatureExtractor().describe().to_csv(sys.stdout, index=False)
        return 0
    if not args.data_dir:
        print("error: --data-dir is required (a folder of RAVDESS-named audio files)", file=sys.stderr)
        return 2
    try:
        if args.scheduler:
            try:
                from distributed import Client
            except ImportError:
                print("error: --scheduler needs the 'distributed' extra: pip install 'vibe-check[distributed]'", file=sys.stderr)
                return 1
            with Client(args.scheduler):
                df = build_manifest(args.data_dir, args.out, n_jobs=-1, backend="dask", cache_dir=args.cache_dir, progress=not args.no_progress)
        else:
            df = build_manifest(args.data_dir, args.out, n_jobs=args.n_jobs, cache_dir=args.cache_dir, progress=not args.no_progress)
    except VibeCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    errors = manifest_errors(df)
    print(f"wrote {Path(args.out)}: {len(df)} files x {len(df.attrs['feature_names'])} features (definition {df.attrs['feature_hash']})")
    if len(errors):
        print(f"{len(errors)} file(s) skipped, reasons in {Path(args.out).with_suffix('.errors.csv')}:", file=sys.stderr)
        for row in errors.head(5).itertuples():
            print(f"  {row.path}: {row.reason}", file=sys.stderr)
    return 0
