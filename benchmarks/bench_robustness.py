#!/usr/bin/env python
"""Robustness of a model to recording conditions, on speakers it has never heard.

Trains speaker-independently (as ``vibe-check train``, optionally with augmented training
copies), then scores each fold's model on the held-out clips clean and corrupted: white and
babble-like noise at 20 and 10 dB SNR, gain -20 dB and +10 dB (clipped), telephone band
(300-3400 Hz at 8 kHz), 2 s of leading silence, and white noise at 40 dB SNR (a quiet room's
background in place of the studio's silence). Prints macro-F1 (mean +- std over folds) per
condition, the drop from clean and the target where there is one.

    python benchmarks/bench_robustness.py [--data-dir ../shared/data/ravdess16k] [--models lda,ensemble]
                                          [--augment noise,babble | --augment none] [--spectral-floor-db 30]
"""

from __future__ import annotations

import sys
import time

from _corpus import corpus_manifest, corpus_parser, model_lists
from vibe_check.training import EmotionTrainer
from vibe_check.training._robustness import evaluate_robustness, format_robustness


def main(argv=None) -> int:
    ap = corpus_parser(__doc__)
    ap.add_argument("--models", default="", help="comma-separated models to score (default: the one training picks)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    models, trainer_models = model_lists(args.models)
    trainer = EmotionTrainer(models=trainer_models, n_splits=args.folds, n_jobs=args.n_jobs).fit(manifest)
    table = evaluate_robustness(trainer, manifest, models or None, n_jobs=args.n_jobs, cache_dir=args.cache_dir)
    print(f"\n{trainer.data_summary_['n_files']} clips, {len(trainer.folds_)} speaker-independent folds, training augmentation: {', '.join(args.augment) or 'none'}")
    print(format_robustness(table))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
