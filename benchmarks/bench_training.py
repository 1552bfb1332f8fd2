#!/usr/bin/env python
"""Training time per model and for a whole run on RAVDESS (speaker-independent 5-fold CV + refit).

    python benchmarks/bench_training.py [--data-dir ../shared/data/ravdess16k] [--models logreg,lda,...]
                                        [--augment none]

Features come from the manifest cache (built first if missing: that time is printed apart).
Prints per model: fit seconds per fold, refit seconds, prediction ms per clip and macro-F1, then
the wall time of the whole run (CV of every model + refit + saving the bundles).
"""

from __future__ import annotations

import sys
import tempfile
import time

from _corpus import corpus_manifest, corpus_parser
from vibe_check.training import EmotionTrainer
from vibe_check.training._train import DEFAULT_MODELS


def main(argv=None) -> int:
    ap = corpus_parser(__doc__, folds=False)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--task", default="emotion")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    t_features = time.perf_counter() - t0
    t1 = time.perf_counter()
    trainer = EmotionTrainer(task=args.task, models=args.models.split(","), n_jobs=args.n_jobs).fit(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        trainer.save_bundles(tmp)
    t_run = time.perf_counter() - t1
    ds = trainer.data_summary_
    print(f"{ds['n_files']} clips + {ds['n_augmented_rows']} augmented training copies ({', '.join(ds['augmentations']) or 'none'}), "
          f"task {args.task}, {len(trainer.folds_)} speaker-independent folds, n_jobs={args.n_jobs}")
    print(f"features (manifest, cached after the first run): {t_features:.1f} s\n")
    print(f"{'model':<15} {'fit s/fold':>10} {'refit s':>8} {'predict ms/clip':>16} {'macro-F1':>16}")
    table = trainer.metrics_table().set_index("model")
    for name, row in table.iterrows():
        print(f"{name:<15} {row['fit_seconds_per_fold']:>10.2f} {trainer.refit_seconds_[name]:>8.2f} "
              f"{row['predict_ms_per_clip']:>16.3f} {row['macro_f1_mean']:>9.3f} ± {row['macro_f1_std']:.3f}")
    print(f"\nwhole run (CV of {len(table)} models + refit + bundles): {t_run:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
