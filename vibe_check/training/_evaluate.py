"""Scoring a saved bundle on clips it has never seen (another actor, another corpus)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import ORIGINAL, is_ravdess_name
from ..exceptions import DatasetError
from ..features import FeatureConfig, build_manifest, manifest_errors
from ..models._bundle import load_bundle
from ..models._custom import training_speed_copies
from ._metrics import classification_metrics
from ._speaker import center_by_group

__all__ = ["evaluate_bundle", "read_label_csv"]

log = logging.getLogger(__name__)


def read_label_csv(path: str | os.PathLike) -> dict[str, str]:
    """``file,emotion`` CSV -> {file name: label}. File names are matched without folders."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:  # missing, unreadable, empty or not CSV (pandas' errors are ValueErrors)
        raise DatasetError(f"cannot read the label CSV {path}: {exc}") from None
    missing = {"file", "emotion"} - set(table.columns)
    if missing:
        raise DatasetError(f"{path}: the label CSV needs columns file,emotion (missing {sorted(missing)})")
    return {Path(str(f)).name: str(e).strip().lower() for f, e in zip(table["file"], table["emotion"])}


def _nothing_to_score(data, skipped: list[dict], labels_from_csv: bool) -> DatasetError:
    """The error when no clip is left: the first reasons, and what to do when the names are the problem."""
    if not skipped:
        return DatasetError(f"no labelled, readable clips in {data}")
    by_reason: dict[str, list[str]] = {}  # the same reason for many files is quoted once
    for skip in skipped:
        name = Path(skip["path"]).name
        why = skip["reason"][len(name) + 2:] if skip["reason"].startswith(f"{name}: ") else skip["reason"]
        by_reason.setdefault(why, []).append(name)
    shown = "; ".join(f"{names[0]}{f' and {len(names) - 1} more' if len(names) > 1 else ''}: {why}"
                      for why, names in list(by_reason.items())[:3])
    more = f"; and {len(by_reason) - 3} other reason(s)" if len(by_reason) > 3 else ""
    message = f"no labelled, readable clips in {data}: {len(skipped)} file(s) skipped ({shown}{more})"
    if not labels_from_csv and any(not is_ravdess_name(s["path"]) for s in skipped):
        message += (". Without a label CSV the emotion is read from RAVDESS file names (like 03-01-05-02-01-01-12.wav): "
                    "name the clips so, or give a CSV with columns file,emotion (--labels on the command line)")
    return DatasetError(message)


def evaluate_bundle(
    bundle_path: str | os.PathLike,
    data: str | os.PathLike,
    *,
    labels_csv: str | os.PathLike | None = None,
    n_jobs: int = 1,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    test_time_augmentation: bool = False,
) -> dict:
    """Metrics of a bundle on a folder of labelled clips.

    Labels come from RAVDESS file names, or from ``labels_csv`` (``file,emotion``) for any corpus.
    Predictions range over all the model's classes, whichever the clips hold; macro-F1 and UAR
    average over the classes present (``classes_in_data``). A speaker-normalised
    bundle (``--speaker-normalize``) sees each speaker's clips centred on the mean of all of them.
    With ``test_time_augmentation`` every clip is classified with its own speed copies (as
    ``CustomEmotionModel(..., test_time_augmentation=True)`` does), extracted and cached like
    training copies.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``macro_f1``, ``uar``, ``per_class``, ``confusion``, ``per_gender``
        and ``per_actor`` (``None`` unless every clip's gender or actor is known, as from RAVDESS
        names), ``gender_gap`` (with two genders or more), ``classes``, ``classes_in_data``, ``model``, ``feature_hash``, ``speaker_normalized``,
        ``test_time_speeds``, ``heard_actors`` (RAVDESS actors of the clips that the bundle was
        trained on: then the figures are not speaker-independent), ``skipped``.

    Examples
    --------
    >>> evaluate_bundle("models/custom/best_emotion_model.pkl", "data/ravdess/Actor_24")  # doctest: +SKIP
    """
    bundle = load_bundle(bundle_path)
    meta = bundle["metadata"]
    config = FeatureConfig.from_dict(meta["feature_config"])
    classes = list(meta["classes"])
    mapping = meta.get("label_mapping") or {}
    csv_labels = read_label_csv(labels_csv) if labels_csv else None
    speeds = list(training_speed_copies(meta, Path(bundle_path).name)) if test_time_augmentation else []
    manifest = build_manifest(data, None, config=config, n_jobs=n_jobs, cache_dir=cache_dir or Path("data") / ".feature_cache",
                              progress=progress, require_labels=csv_labels is None, augment=speeds)
    skipped = manifest_errors(manifest).to_dict("records")
    copies = manifest[manifest["augmentation"] != ORIGINAL]
    manifest = manifest[manifest["augmentation"] == ORIGINAL].reset_index(drop=True)
    if csv_labels is not None:
        raw = manifest["file"].map(csv_labels)
        for f in manifest.loc[raw.isna(), "path"]:
            skipped.append({"path": f, "reason": "no label in the CSV"})
        manifest = manifest[raw.notna()].reset_index(drop=True)
        raw = raw[raw.notna()].reset_index(drop=True)
    else:
        raw = manifest["emotion"]
    if manifest.empty:
        raise _nothing_to_score(data, skipped, csv_labels is not None)
    # An emotion label is mapped into the model's task (e.g. angry -> negative for sentiment).
    labels = np.array([mapping.get(str(v), str(v)) for v in raw], dtype=object)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DatasetError(f"labels {unknown} are not classes of this model ({classes})")
    speaker_mode = meta.get("speaker_normalization")
    if speaker_mode:
        speakers = manifest["actor"]
        if speakers.isna().any():
            raise DatasetError("a speaker-normalised bundle is scored speaker by speaker, so every clip needs its "
                               "speaker (RAVDESS file names give the actor)")
        counts = speakers.value_counts()
        few = counts[counts < int(speaker_mode.get("min_reference_clips", 1))]
        if len(few):
            raise DatasetError(f"actor(s) {sorted(int(a) for a in few.index)} have fewer than "
                               f"{speaker_mode.get('min_reference_clips')} clips to centre a speaker-normalised bundle on")
    # The clips, then (with test-time augmentation) their copies at each speed, in the clips' order.
    log_p = np.zeros((len(manifest), len(classes)))
    looks = np.zeros(len(manifest))
    for kind in [ORIGINAL, *speeds]:
        rows = manifest if kind == ORIGINAL else manifest[["path"]].merge(copies[copies["augmentation"] == kind], on="path", how="left")
        have = rows[meta["feature_names"][0]].notna().to_numpy()
        X = rows.loc[have, meta["feature_names"]].to_numpy(dtype=np.float64)
        if speaker_mode:
            # As in the trainer's cross-validation: each speaker's clips (of one kind) are centred on all of them.
            X = center_by_group(X, manifest["actor"].to_numpy()[have])
        log_p[have] += np.log(np.clip(bundle["pipeline"].predict_proba(X), 1e-300, None))
        looks[have] += 1
    proba = np.exp(log_p / looks[:, None])
    proba /= proba.sum(axis=1, keepdims=True)
    # The model answers with any of its classes, whichever the clips hold: narrowing its choice to
    # the labels present would use the answers to score it (a one-emotion folder would score 1.0).
    present = [c for c in classes if c in set(labels)]
    y = np.array([classes.index(lbl) for lbl in labels])
    gender = manifest["gender"].to_numpy(dtype=object) if manifest["gender"].notna().all() else None
    actor = manifest["actor"].to_numpy() if manifest["actor"].notna().all() else None
    with warnings.catch_warnings():
        # The model answers with any of its classes (above), so answers outside the labels
        # present are expected, not a mistake worth sklearn's warning.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        metrics = classification_metrics(y, proba, classes, gender=gender, actor=actor)
    # The same keys whatever the clips say: null when their genders or actors are unknown.
    metrics.setdefault("per_gender", None)
    metrics.setdefault("per_actor", None)
    # RAVDESS actor numbers name the same people in any copy of the corpus (not in generated speech).
    trained_on = set() if meta.get("data_source") else {int(a) for a in (meta.get("data_summary") or {}).get("actors", [])}
    heard = sorted(trained_on & {int(a) for a in actor}) if actor is not None else []
    metrics.update(
        classes=classes,
        classes_in_data=present,
        model=meta.get("model_name"),
        bundle=Path(bundle_path).name,
        task=meta.get("task"),
        feature_hash=meta.get("feature_hash"),
        speaker_normalized=bool(speaker_mode),
        test_time_speeds=[float(k.split("_", 1)[1]) for k in speeds],
        heard_actors=heard,
        skipped=skipped,
    )
    return metrics
