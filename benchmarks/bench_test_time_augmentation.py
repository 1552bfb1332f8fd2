#!/usr/bin/env python
"""Test-time augmentation: macro-F1 on unseen speakers with and without speed copies of each clip.

Trains speaker-independently (as ``vibe-check train``), then classifies every held-out clip alone
and together with its own speed copies (0.85x, 0.9x, 1.1x, 1.15x: the manifest's copies of that
clip, never another clip), averaging the log-probabilities. Prints both figures per model and task,
and the cost per clip of the extra feature extractions.

    python benchmarks/bench_test_time_augmentation.py [--data-dir ../shared/data/ravdess16k] [--models lda,ensemble]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from _corpus import corpus_manifest, corpus_parser, model_lists
from vibe_check.training import EmotionTrainer, evaluate_test_time_augmentation


def _cost_per_clip(manifest, n: int = 40) -> tuple[float, float]:
    """Median ms to extract one clip's features, alone and with its four speed copies."""
    from vibe_check.audio import load_audio
    from vibe_check.data._augment import SPEED_FACTORS
    from vibe_check.features import FeatureConfig, FeatureExtractor
    from vibe_check.models._custom import _clip_rows

    fx = FeatureExtractor(FeatureConfig.from_dict(manifest.attrs["feature_config"]))
    paths = manifest.loc[manifest["augmentation"] == "none", "path"].iloc[:n]
    alone, tta = [], []
    for p in paths:
        y = load_audio(p, target_sr=fx.config.sample_rate)
        t0 = time.perf_counter()
        _clip_rows(fx, y)
        t1 = time.perf_counter()
        _clip_rows(fx, y, SPEED_FACTORS)
        alone.append(t1 - t0)
        tta.append(time.perf_counter() - t1)
    return 1000 * float(np.median(alone)), 1000 * float(np.median(tta))


def main(argv=None) -> int:
    ap = corpus_parser(__doc__)
    ap.add_argument("--models", default="lda", help="comma-separated models (default: %(default)s)")
    ap.add_argument("--tasks", default="emotion,sentiment", help="comma-separated tasks (default: %(default)s)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    models, trainer_models = model_lists(args.models)
    print(f"{'task':<10} {'model':<10} {'clip alone':>15} {'with speed copies':>19} {'folds better':>13}")
    for task in [t for t in args.tasks.split(",") if t]:
        trainer = EmotionTrainer(task=task, models=trainer_models, n_splits=args.folds, n_jobs=args.n_jobs).fit(manifest)
        table = evaluate_test_time_augmentation(trainer, manifest, models)
        for r in table.itertuples():
            print(f"{task:<10} {r.model:<10} {r.macro_f1_mean:>7.3f} ± {r.macro_f1_std:.3f} "
                  f"{r.tta_macro_f1_mean:>10.3f} ± {r.tta_macro_f1_std:.3f} {r.folds_better:>9d} of {args.folds}")
    alone, tta = _cost_per_clip(manifest)
    print(f"\nfeature extraction per clip (median of 40): {alone:.1f} ms alone, {tta:.1f} ms with 4 speed copies")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
