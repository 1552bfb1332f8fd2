"""``vibe-check train`` and ``vibe-check evaluate`` (``train_custom_models.py`` runs the former)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from .._argtypes import int_at_least
from .._atomic import atomic_path
from ..exceptions import VibeCheckError

__all__ = ["augment_list", "add_train_arguments", "run_train", "add_evaluate_arguments", "run_evaluate"]

DEFAULT_DATA_DIRS = ("data/ravdess", "../shared/data/ravdess16k")


BUNDLE_FORMATS = ("pkl", "skops")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _names_from(allowed, what: str):
    """An argparse ``type``: a comma-separated list of names, each one of ``allowed``.

    Checked while the command line is read, so a typo costs nothing instead of a whole run.
    """
    def parse(text: str) -> list[str]:
        names = _csv(text)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}")
        if not names:
            raise argparse.ArgumentTypeError(f"give at least one {what}, from {', '.join(allowed)}")
        return names
    return parse


def augment_list(text: str) -> list[str]:
    """``--augment`` value: comma-separated augmentation names, or ``none`` for no copies.

    Examples
    --------
    >>> augment_list("noise, babble"), augment_list("none")
    (['noise', 'babble'], [])
    """
    from ..data import AUGMENTATIONS

    names = _csv(text)
    unknown = [a for a in names if a != "none" and a not in AUGMENTATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown augmentation {', '.join(map(repr, unknown))}; "
                                         f"choose from {', '.join(AUGMENTATIONS)}, or none")
    return [a for a in names if a != "none"]



#: Bytes of model fits kept for later runs (a full default run on RAVDESS leaves about 31 MB): the
#: least recently used go first.
FIT_CACHE_BYTES = 1 << 30


def _bound_fit_cache(location: Path) -> None:
    import joblib

    joblib.Memory(location, verbose=0).reduce_size(bytes_limit=FIT_CACHE_BYTES)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from ..data import AUGMENTATIONS
    from ..features._cli import DEFAULT_CACHE_DIR, add_spectral_floor_argument
    from ._models import MODEL_NAMES
    from ._train import DEFAULT_AUGMENTATIONS, DEFAULT_MODELS, TASKS

    parser.add_argument("--data-dir", help=f"RAVDESS-named audio folder (default: the first of {', '.join(DEFAULT_DATA_DIRS)} that exists)")
    parser.add_argument("--manifest", help="feature manifest to write/reuse (default: <output-dir>/manifest.parquet)")
    parser.add_argument("--output-dir", default="models/custom", help="where bundles go (default: %(default)s)")
    parser.add_argument("--task", choices=TASKS, default="emotion", help="8 emotions or 3 sentiment classes (default: %(default)s)")
    parser.add_argument("--sentiment-direct", action="store_true",
                        help="with --task sentiment: fit the 3 classes directly instead of reading them off emotion models")
    parser.add_argument("--models", type=_names_from(MODEL_NAMES, "model"), default=list(DEFAULT_MODELS),
                        help=f"comma-separated, from {','.join(MODEL_NAMES)} (default: {','.join(DEFAULT_MODELS)}); 'ensemble' "
                             "soft-votes the listed models, or the default four when fewer than two are listed")
    parser.add_argument("--augment", type=augment_list, default=list(DEFAULT_AUGMENTATIONS),
                        help=f"augmented copies of the training folds' clips, comma-separated from {','.join(AUGMENTATIONS)}, "
                             f"or 'none' (default: {','.join(DEFAULT_AUGMENTATIONS)}); scores are always on original clips")
    add_spectral_floor_argument(parser)
    parser.add_argument("--robustness", action="store_true",
                        help="also score the chosen model on corrupted held-out clips (noise, gain, telephone, silence)")
    parser.add_argument("--speaker-normalize", action="store_true",
                        help="speaker-normalised mode: models classify a clip relative to its speaker's average and need "
                             "reference clips of the speaker to predict (bundles *_speaker_model.pkl); not the headline figure")
    parser.add_argument("--folds", type=int_at_least(2, "cross-validation needs at least 2 folds"), default=5,
                        help="speaker-grouped folds, at most the number of actors (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel workers (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--formats", type=_names_from(BUNDLE_FORMATS, "bundle format"), default=["pkl"],
                        help="bundle formats, comma-separated: pkl, skops (default: pkl)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="feature cache, shared with features and evaluate, and the model fits of training runs "
                             "in its fits/ folder: an interrupted run resumes, a repeated one fits nothing "
                             "(default: %(default)s)")
    parser.add_argument("--no-fit-cache", action="store_true",
                        help="fit every model again instead of reusing fits cached by earlier runs (timing runs)")
    parser.add_argument("--report", action="store_true", help="also write the HTML report with SHAP plots")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--metrics-textfile", metavar="PATH",
                        help="write the run's CV metrics and timings for Prometheus (node-exporter textfile, *.prom)")
    parser.add_argument("--pushgateway", metavar="URL", help="push the same metrics to a Prometheus Pushgateway")


def _default_data_dir() -> Path | None:
    for d in DEFAULT_DATA_DIRS:
        if Path(d).is_dir():
            return Path(d)
    return None


def run_train(args: argparse.Namespace) -> int:
    from ..features import build_manifest
    from ..features._cli import feature_config
    from ._train import EmotionTrainer

    started = time.perf_counter()
    data_dir = Path(args.data_dir) if args.data_dir else _default_data_dir()
    if data_dir is None:
        print("error: no RAVDESS data found. Download it with `vibe-check download` (or pass a local zip: "
              "`vibe-check download --source Audio_Speech_Actors_01-24.zip`), or point to a folder of "
              "RAVDESS-named clips with --data-dir. To see everything work without data: "
              "`python demo_custom_models.py`.", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    manifest_path = Path(args.manifest) if args.manifest else out / "manifest.parquet"
    command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
    progress = not args.no_progress
    try:
        print(f"features: {data_dir} -> {manifest_path}", file=sys.stderr)
        cache_dir = Path(args.cache_dir)
        manifest = build_manifest(data_dir, manifest_path, config=feature_config(args), n_jobs=args.n_jobs,
                                  progress=progress, cache_dir=cache_dir, augment=args.augment)
        n_err = len(manifest.attrs.get("errors", []))
        if n_err:
            print(f"{n_err} file(s) skipped (see {manifest_path.with_suffix('.errors.csv')})", file=sys.stderr)
        fits = None if args.no_fit_cache else cache_dir / "fits"
        trainer = EmotionTrainer(task=args.task, models=args.models, n_splits=args.folds, random_state=args.seed,
                                 n_jobs=args.n_jobs, progress=progress,
                                 sentiment_from_emotions=not args.sentiment_direct,
                                 speaker_normalization=args.speaker_normalize, memory=fits).fit(manifest)
        if fits is not None:
            _bound_fit_cache(fits)
        written = trainer.save_bundles(out, formats=args.formats, command=command)
        robustness = None
        if args.robustness:
            from ._robustness import evaluate_robustness

            print("robustness: scoring the chosen model on corrupted held-out clips", file=sys.stderr)
            robustness = evaluate_robustness(trainer, manifest, n_jobs=args.n_jobs, cache_dir=cache_dir, progress=progress)
            with atomic_path(out / f"robustness_{args.task}.csv") as tmp:
                robustness.to_csv(tmp, index=False)
        report = None
        if args.report:
            from ..explain import write_report

            report = write_report(trainer, out, command=command, robustness=robustness)
        if args.metrics_textfile or args.pushgateway:
            from ._export import export_training_metrics

            try:
                export_training_metrics(trainer, path=args.metrics_textfile, pushgateway=args.pushgateway)
            except OSError as exc:  # the bundles are saved: a gateway that is down costs only the metrics
                print(f"warning: training metrics not exported: {exc}", file=sys.stderr)
    except VibeCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ds = trainer.data_summary_
    copies = f" (+ {ds['n_augmented_rows']} augmented training copies: {', '.join(ds['augmentations'])})" if ds["n_augmented_rows"] else ""
    print(f"\n{ds['n_files']} clips{copies}, {len(ds['actors'])} actors, task {args.task}, "
          f"{len(trainer.folds_)}-fold speaker-independent cross-validation (no actor in both train and test)"
          + (";\nspeaker-normalised mode: each held-out speaker's clips centred on the mean of all of that speaker's clips"
             if args.speaker_normalize else "") + ":\n")
    print(trainer.format_table())
    if robustness is not None:
        from ._robustness import format_robustness

        print("\nrobustness (held-out speakers, corrupted clips):\n" + format_robustness(robustness))
    print(f"\nbundles in {out}/:")
    for key, path in written.items():
        print(f"  {path.name}")
    if report:
        print(f"report: {report}")
    print(f"\ntotal time {time.perf_counter() - started:.1f} s")
    return 0


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from ..features._cli import DEFAULT_CACHE_DIR

    parser.add_argument("--model", required=True, help="bundle (.pkl or .skops)")
    parser.add_argument("--data-dir", required=True, help="folder of clips the model has not seen")
    parser.add_argument("--labels", help="CSV with columns file,emotion (default: labels from RAVDESS file names)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel feature extraction (default: %(default)s)")
    parser.add_argument("--test-time-augmentation", action="store_true",
                        help="classify every clip with its own speed copies too (see README)")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR,
                        help="feature cache, shared with train and features (default: %(default)s)")


def run_evaluate(args: argparse.Namespace) -> int:
    from ..data import GENERATED_SOURCE
    from ..models._bundle import read_bundle_metadata
    from ..models._cli import note_generated_speech
    from ._evaluate import evaluate_bundle

    try:
        note_generated_speech(read_bundle_metadata(args.model).get("data_source") == GENERATED_SOURCE, args.model)
        m = evaluate_bundle(args.model, args.data_dir, labels_csv=args.labels, n_jobs=args.n_jobs,
                            test_time_augmentation=args.test_time_augmentation, cache_dir=args.cache_dir)
    except VibeCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    err = sys.stderr
    print(f"{m['bundle']} ({m['model']}, task {m['task']}, features {m['feature_hash']}) on {m['n']} clips", file=err)
    if len(m["classes_in_data"]) < len(m["classes"]):
        print(f"note: the data holds only {len(m['classes_in_data'])} of the model's {len(m['classes'])} classes "
              f"({', '.join(m['classes_in_data'])}); macro-F1 and UAR average over those", file=err)
    if m["heard_actors"]:
        print(f"warning: actor(s) {', '.join(map(str, m['heard_actors']))} are in this model's training data: these "
              "figures are not speaker-independent (score clips of speakers the model has not heard)", file=err)
    print(f"accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  UAR {m['uar']:.3f}  ECE {m['ece']:.3f}", file=err)
    print(f"{'class':<12}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>6}", file=err)
    for c, v in m["per_class"].items():
        print(f"{c:<12}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1']:>7.3f}{v['support']:>6}", file=err)
    for g, v in (m.get("per_gender") or {}).items():
        print(f"{g}: accuracy {v['accuracy']:.3f} (n={v['n']})", file=err)
    if m["skipped"]:
        print(f"{len(m['skipped'])} file(s) skipped, e.g. {m['skipped'][0]['path']}: {m['skipped'][0]['reason']}", file=err)
    if args.json:
        print(json.dumps(m))
    return 0
