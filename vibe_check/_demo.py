"""The end-to-end demo on generated speech: no download, no corpus, about a minute on 2 cores.

Generates emotional speech for several synthetic speakers, extracts features, cross-validates
the models speaker-independently, saves bundles, writes the SHAP plots and the HTML report,
then predicts and explains clips of two speakers that no model has heard, and finally shows the
optional speaker-normalised mode (a few unlabelled clips of each new speaker as references).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo", "add_demo_arguments"]

#: The script recorded as the command of every bundle the demo saves; it tells the demo's own
#: bundles (which it may replace) from bundles trained on real data (which it must not).
DEMO_SCRIPT = "demo_custom_models.py"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="models/custom", help="bundles and report (default: %(default)s)")
    parser.add_argument("--data-dir", default="data/demo_corpus", help="where generated audio goes (default: %(default)s)")
    parser.add_argument("--speakers", type=int, default=8, help="training speakers (default: %(default)s; 2 more are held out)")
    parser.add_argument("--takes", type=int, default=2, help="statement x repetition takes per emotion (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel workers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="skip SHAP plots and the HTML report")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace bundles in --output-dir that the demo did not train (refused by default)")


def _demo_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, recorded in every bundle the demo saves."""
    argv = [DEMO_SCRIPT, "--output-dir", str(args.output_dir), "--data-dir", str(args.data_dir),
            "--speakers", str(args.speakers), "--takes", str(args.takes), "--n-jobs", str(args.n_jobs),
            "--seed", str(args.seed)] + (["--no-report"] if args.no_report else [])
    return " ".join(shlex.quote(a) for a in argv)


def foreign_bundles(directory: str | Path) -> dict[Path, str]:
    """Bundles in ``directory`` that the demo did not train, with the command that did.

    A bundle whose metadata is missing or unreadable counts as foreign: the demo cannot tell
    who made it, so it must not replace it.
    """
    from .models import read_bundle_metadata

    found = {}
    for path in sorted([*Path(directory).glob("*.pkl"), *Path(directory).glob("*.skops")]):
        try:
            command = str(read_bundle_metadata(path).get("command", ""))
        except Exception:  # missing or broken sidecar: unknown origin
            command = ""
        if command.split(" ", 1)[0] != DEMO_SCRIPT:
            found[path] = command or "unknown (no readable metadata)"
    return found


def run_demo(args: argparse.Namespace) -> int:
    from .data import GENERATED_SOURCE, generate_corpus
    from .features import build_manifest
    from .models import CustomEmotionModel
    from .training import EmotionTrainer

    t0 = time.perf_counter()
    last = [t0]

    def step(what: str) -> None:
        now = time.perf_counter()
        print(f"   ({what}: {now - last[0]:.1f} s)")
        last[0] = now

    out, data_dir = Path(args.output_dir), Path(args.data_dir)
    held_out = (args.speakers + 1, args.speakers + 2)
    command = _demo_command(args)
    foreign = {} if getattr(args, "overwrite", False) else foreign_bundles(out)
    if foreign:
        # Bundles trained on real data take minutes to remake; the demo's take a minute.
        listed = "; ".join(f"{p.name} (made by: {c})" for p, c in list(foreign.items())[:3])
        print(f"{out}/ holds {len(foreign)} bundle(s) the demo did not train: {listed}. The demo would replace "
              f"them with models of generated speech. Run it with --output-dir models/demo, or pass --overwrite.",
              file=sys.stderr)
        return 2

    print(f"1. generating emotional speech: {args.speakers + 2} synthetic speakers x 8 emotions -> {data_dir}")
    corpus = generate_corpus(data_dir, n_speakers=args.speakers + 2, takes=args.takes, seed=args.seed, n_jobs=args.n_jobs)
    train_files = corpus.loc[~corpus["actor"].isin(held_out), "path"].tolist()
    test_files = corpus.loc[corpus["actor"].isin(held_out), "path"].tolist()
    print(f"   {len(corpus)} clips; speakers {held_out[0]} and {held_out[1]} are kept apart for the end")
    step("generation")

    print("2. extracting named features (cached: a second run extracts nothing)")
    manifest = build_manifest(train_files, data_dir.parent / "demo_manifest.parquet", n_jobs=args.n_jobs,
                              cache_dir=data_dir.parent / ".feature_cache", progress=False)
    print(f"   {len(manifest)} clips x {len(manifest.attrs['feature_names'])} features")
    step("features")

    print("3. speaker-independent cross-validation (no speaker in both training and test folds)")
    # Lighter forests and boosting than the defaults: the demo's 240 clips need fewer trees, and
    # the whole demo has to finish in about a minute on a 2-core laptop.
    light = {"random_forest": {"model__n_estimators": 120}, "hist_gb": {"model__max_iter": 60}}
    trainer = EmotionTrainer(n_splits=min(5, args.speakers), random_state=args.seed, n_jobs=args.n_jobs,
                             model_params=light).fit(manifest)
    step("cross-validation and refit")
    print()
    print(trainer.format_table())
    written = trainer.save_bundles(out, command=command, data_source=GENERATED_SOURCE)
    print(f"\n   bundles: {', '.join(p.name for p in written.values())} in {out}/")

    report = None
    if not args.no_report:
        from .explain import write_report

        print("4. SHAP explanations and the HTML report")
        report = write_report(trainer, out / "report", command=command, shap_sample=120, max_folds=1,
                              permutation_features=20, n_repeats=2, permutation_sample=120)
        step("SHAP and report")
        print(f"   report: {report}")

    print(f"5. predicting {len(test_files)} clips of the two held-out speakers with the best model")
    model = CustomEmotionModel(written["best"])
    results = model.predict_batch(test_files, n_jobs=args.n_jobs)
    truth = corpus.set_index("path").loc[test_files, "emotion"].tolist()
    predicted = [r.get("emotion") for r in results]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    print(f"   accuracy on unseen speakers: {accuracy:.2f} (chance: {1 / len(model.classes_):.2f})")
    step("prediction")
    print(f"   {'file':<28} {'true':<10} {'predicted':<10} confidence")
    for path, t, r in list(zip(test_files, truth, results))[:: max(1, len(test_files) // 6)][:6]:
        print(f"   {Path(path).name:<28} {t:<10} {r.get('emotion', 'error'):<10} {r.get('confidence', float('nan')):.2f}")

    if hasattr(model, "explain"):
        example = test_files[0]
        print(f"6. why? explaining {Path(example).name}")
        explanation = model.explain(example, top_k=4)
        print(f"   predicted {explanation['predicted']} ({explanation['probability']:.2f}); strongest reasons:")
        for reason in explanation["towards"]:
            print(f"   + {reason['sentence']}")
        for reason in explanation["away"][:2]:
            print(f"   - {reason['sentence']}")

    print("7. speaker-normalised mode: an LDA trained on features relative to each speaker's average")
    # Three folds: this step shows the API; its cross-validation is not what it reports.
    adapted_trainer = EmotionTrainer(models=["lda"], n_splits=min(3, args.speakers), random_state=args.seed,
                                     n_jobs=args.n_jobs, speaker_normalization=True).fit(manifest)
    speaker_bundle = adapted_trainer.save_bundles(out, command=command, data_source=GENERATED_SOURCE)["best"]
    speaker_model = CustomEmotionModel(speaker_bundle)
    plain_right = adapted_right = n_scored = 0
    for actor in held_out:
        files = corpus.loc[corpus["actor"] == actor].sort_values("path")
        # Every other clip is a reference (a mix of emotions, labels unused); the rest are scored.
        references, scored = files.iloc[::2], files.iloc[1::2]
        # One process: for a few dozen clips, starting workers costs more than it saves.
        for_actor = speaker_model.for_speaker(references["path"].tolist())
        truth_a = scored["emotion"].to_numpy()
        adapted_right += int((for_actor.predict(scored["path"].tolist()) == truth_a).sum())
        plain_right += int(sum(predicted[test_files.index(p)] == t for p, t in zip(scored["path"], truth_a)))  # from step 5
        n_scored += len(scored)
    print(f"   each held-out speaker gives {len(references)} unlabelled clips as references; on their other {n_scored} "
          f"clips: accuracy {adapted_right / n_scored:.2f} (the best model without references: {plain_right / n_scored:.2f})")
    print(f"   bundle: {speaker_bundle.name}; CustomEmotionModel(...).for_speaker(reference_clips)")
    step("speaker-normalised mode")

    print(f"\ndone in {time.perf_counter() - t0:.1f} s. Next: `vibe-check predict --model {written['best']} FILE.wav`"
          + (f"; open {report} in a browser" if report else ""))
    return 0
