#!/usr/bin/env python
"""The speaker-normalised mode: macro-F1 on unseen speakers against the number of reference clips.

Trains speaker-independently twice (as ``vibe-check train`` and as ``vibe-check train
--speaker-normalize``, same folds and augmentation), then scores the speaker-normalised model
with each held-out speaker giving k unlabelled reference clips (drawn at random from the
speaker's other clips, never the clip being classified), for several k, and with references
drawn only from calm and neutral clips (a skewed reference set), alone and with test-time
augmentation (each clip's own speed copies too). Prints macro-F1 (mean +- std over folds) next to
the headline model, which needs no reference.

    python benchmarks/bench_speaker_adaptation.py [--data-dir ../shared/data/ravdess16k] [--model lda]
"""

from __future__ import annotations

import sys
import time

from _corpus import corpus_manifest, corpus_parser
from vibe_check.training import EmotionTrainer, evaluate_speaker_references


def main(argv=None) -> int:
    ap = corpus_parser(__doc__)
    ap.add_argument("--model", default="lda", help="model to score (default: %(default)s)")
    ap.add_argument("--task", default="emotion", choices=("emotion", "sentiment"))
    ap.add_argument("--references", default="4,8,16,32,all", help="reference set sizes (default: %(default)s)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = corpus_manifest(args)
    if manifest is None:
        return 2
    sizes = [None if k == "all" else int(k) for k in args.references.split(",") if k]
    common = dict(task=args.task, models=[args.model], n_splits=args.folds, n_jobs=args.n_jobs)
    plain = EmotionTrainer(**common).fit(manifest)
    adapted = EmotionTrainer(**common, speaker_normalization=True).fit(manifest)
    table = evaluate_speaker_references(adapted, manifest, sizes, model=args.model)
    with_tta = evaluate_speaker_references(adapted, manifest, sizes, model=args.model, test_time_augmentation=True)
    skewed = evaluate_speaker_references(adapted, manifest, [k for k in sizes if k is not None and k <= 8], model=args.model,
                                         reference_emotions=("calm", "neutral"))
    print(f"\n{plain.data_summary_['n_files']} clips, {len(plain.folds_)} speaker-independent folds, task {args.task}, "
          f"model {args.model}, training augmentation: {', '.join(args.augment) or 'none'}")
    f1 = plain.cv_results_[args.model].summary["macro_f1"]
    print(f"  {'reference clips per speaker':<40} {'macro-F1':>15} {'+ test-time speed copies':>26}")
    print(f"  {'none (the headline model)':<40} {f1['mean']:>8.3f} ± {f1['std']:.3f}")
    for label, part, tta in (("random", table, with_tta), ("calm/neutral only", skewed, None)):
        for n, r in enumerate(part.itertuples()):
            k = "all other" if r.n_references == "all" else str(r.n_references)
            extra = "" if tta is None else f" {tta['macro_f1_mean'].iloc[n]:>18.3f} ± {tta['macro_f1_std'].iloc[n]:.3f}"
            print(f"  {f'{k} {label}':<40} {r.macro_f1_mean:>8.3f} ± {r.macro_f1_std:.3f}{extra}")
    f1 = adapted.cv_results_[args.model].summary["macro_f1"]
    print(f"  {'all, the clip itself included (trainer CV)':<40} {f1['mean']:>8.3f} ± {f1['std']:.3f}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
