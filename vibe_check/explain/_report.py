"""One self-contained HTML report per training run: metrics, fairness, calibration, explanations.

The report is a single file (images embedded as base64, inline CSS, no scripts, no network
access) that can be mailed or archived next to the bundles it describes. It is named by task and
mode like the bundles (``report_emotion.html``, ``report_sentiment.html``,
``report_emotion_speaker.html``), so runs of different tasks into one folder do not overwrite
each other. The PNG figures and the importance tables are also written beside it, in a folder
named after it (``report_emotion_files/``) that is written fresh on every run: figures of models
no longer in the run do not linger.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .._atomic import atomic_path
from ..features import FEATURE_GROUPS, FeatureConfig, describe_features
from ..models._bundle import library_versions
from ..training._metrics import classification_metrics, reliability_curve
from ..training._models import final_classifier, model_label
from ..training._train import SELECTION_RULE, EmotionTrainer
from . import _html as h
from ._importance import GlobalExplanation, _check_sample_size, explain_global
from ._plots import plot_group_importance, plot_permutation, plot_reliability, plot_shap_bar, plot_shap_beeswarm
from ._shap import unsupported_reason

__all__ = ["write_report", "GENDER_GAP_FLAG", "REPORT_SECTIONS"]

#: A mean accuracy difference between genders above this (5 points) is flagged in the report.
GENDER_GAP_FLAG = 0.05
#: Section ids, in order (anchors of the table of contents).
REPORT_SECTIONS = {
    "summary": "Summary", "metrics": "Cross-validated metrics", "per-class": "Per-class precision, recall and F1",
    "confusion": "Confusion matrices", "fairness": "Per-gender and per-actor accuracy", "calibration": "Calibration",
    "robustness": "Robustness to recording conditions", "explanations": "Explanations: what the models rely on",
    "features": "Feature definition", "data": "Data", "provenance": "Provenance: command, versions, timings",
}
_HEADLINE = [("macro_f1", "macro-F1"), ("uar", "UAR"), ("accuracy", "accuracy"), ("log_loss", "log loss"),
             ("ece", "ECE"), ("gender_gap", "gender gap")]


def _pooled(trainer) -> dict[str, dict]:
    """Metrics of each model on all its out-of-fold predictions pooled (every clip predicted once)."""
    out = {}
    for name, r in trainer.cv_results_.items():
        oof = r.oof
        y = trainer.label_encoder_.transform(oof["y_true"])
        proba = oof[[f"proba_{c}" for c in trainer.classes_]].to_numpy()
        out[name] = classification_metrics(y, proba, trainer.classes_,
                                           gender=oof["gender"].to_numpy(dtype=object) if "gender" in oof else None,
                                           actor=oof["actor"].to_numpy() if "actor" in oof else None)
        out[name]["_y"], out[name]["_proba"] = y, proba
    return out


def _speaker_mode(trainer) -> bool:
    return bool(getattr(trainer, "speaker_normalization", False))


def _default_report_name(trainer) -> str:
    """``report_<task>[_speaker].html``: named like the run's bundles, so reports of different tasks
    and modes written to one folder do not overwrite each other.

    Examples
    --------
    >>> _default_report_name(trainer)  # doctest: +SKIP
    'report_emotion.html'
    """
    return f"report_{trainer.task}{'_speaker' if _speaker_mode(trainer) else ''}.html"


_SPEAKER_MODE_NOTE = (
    "<b>Speaker-normalised mode</b> (<code>--speaker-normalize</code>): every feature is the clip's difference "
    "from its speaker's mean feature vector (augmented copies are centred on the same speaker's copies of the same "
    "kind). In this cross-validation each held-out speaker is centred on the mean of <i>all</i> of their own clips, "
    "the one being classified included; a deployed model centres on a few reference clips of the speaker instead "
    "(at least 4), so these figures are what the mode gives with many references, not with few "
    "(<code>evaluate_speaker_references</code> measures smaller reference sets). This is not the headline figure, "
    "which classifies every clip on its own.")


def _summary(trainer, pooled) -> str:
    best = trainer.best_model_
    f1m, f1s = trainer.cv_results_[best].scalar("macro_f1")
    ds = trainer.data_summary_
    items = [
        f"Task <b>{h.esc(trainer.task)}</b>: {len(trainer.classes_)} classes ({h.esc(', '.join(map(str, trainer.classes_)))}).",
        f"Chosen model: <b>{h.esc(model_label(best))}</b> (<code>{h.esc(best)}</code>), macro-F1 "
        f"<b>{h.pm(f1m, f1s)}</b> (mean ± std over {len(trainer.folds_)} speaker-independent folds; "
        f"pooled accuracy {pooled[best]['accuracy']:.3f}).",
        f"Selection rule: {h.esc(SELECTION_RULE)}.",
        f"Data: {ds['n_files']} clips from {len(ds['actors'])} actors; no actor is in both the training and the "
        "test side of any fold, so every figure here is measured on unseen speakers"
        + (" (centred on their own clips' mean: see below)." if _speaker_mode(trainer) else "."),
        f"Feature definition <code>{h.esc(trainer.feature_hash_)}</code>, {len(trainer.feature_names_in_)} features.",
    ]
    if _speaker_mode(trainer):
        items.insert(1, _SPEAKER_MODE_NOTE)
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _metrics(trainer) -> str:
    rows, classes = [], []
    for _, row in trainer.metrics_table().iterrows():
        cells = [row["model"]] + [h.pm(row[f"{k}_mean"], row[f"{k}_std"]) if f"{k}_mean" in row and pd.notna(row.get(f"{k}_mean")) else ""
                                  for k, _ in _HEADLINE]
        rows.append(cells + [row["fit_seconds_per_fold"], row["predict_ms_per_clip"]])
        classes.append("best" if row["best"] else "")
    body = [h.table(["model", *[label for _, label in _HEADLINE], "fit s/fold", "predict ms/clip"], rows, digits=2,
                    row_classes=classes),
            '<p class="note">mean ± standard deviation over folds; the chosen model is in bold. UAR = unweighted '
            "average recall; ECE = expected calibration error of the top class (10 bins); gender gap = largest "
            "accuracy difference between genders within a fold.</p>"]
    folds = next(iter(trainer.cv_results_.values())).fold_metrics
    header = ["model"] + [f"fold {m['fold']} (actors {', '.join(str(a) for a in m['test_actors'])})" for m in folds]
    for key, label in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("log_loss", "log loss")):
        rows = [[name] + [m[key] for m in r.fold_metrics] for name, r in trainer.cv_results_.items()]
        body.append(f"<h3>{label} per fold</h3>" + h.table(header, rows))
    return "\n".join(body)


def _per_class(trainer, pooled) -> str:
    classes = [str(c) for c in trainer.classes_]
    rows = [[name] + [h.pm(r.summary["per_class_f1"][c]["mean"], r.summary["per_class_f1"][c]["std"], 2) for c in classes]
            for name, r in trainer.cv_results_.items()]
    body = ["<h3>F1 per class (mean ± std over folds)</h3>", h.table(["model", *classes], rows)]
    for name, m in pooled.items():
        t = h.table(["class", "precision", "recall", "F1", "support"],
                    [[c, m["per_class"][c]["precision"], m["per_class"][c]["recall"], m["per_class"][c]["f1"],
                      m["per_class"][c]["support"]] for c in classes])
        body.append(h.details(f"{name}: precision, recall, F1 on all out-of-fold predictions", t,
                              open_=name == trainer.best_model_))
    return "\n".join(body)


def _confusion(trainer, pooled) -> str:
    classes = [str(c) for c in trainer.classes_]
    body = ['<p class="note">Rows are the true class, columns the prediction; all out-of-fold predictions pooled. '
            "Normalised rows sum to 1 (the diagonal is each class's recall).</p>"]
    for name, m in pooled.items():
        cm, cmn = np.asarray(m["confusion"]), np.asarray(m["confusion_normalized"])
        inner = ('<div class="grid"><div><b>counts</b>' + h.heat_table(cm, classes, classes, shade=cmn)
                 + "</div><div><b>normalised by true class</b>" + h.heat_table(cmn, classes, classes, shade=cmn, fmt="{:.2f}")
                 + "</div></div>")
        body.append(h.details(f"{name}{' (chosen)' if name == trainer.best_model_ else ''}", inner,
                              open_=name == trainer.best_model_))
    return "\n".join(body)


def _fairness(trainer, pooled) -> str:
    body = []
    genders = sorted({g for m in pooled.values() for g in m.get("per_gender", {})})
    if genders:
        rows, flags = [], []
        for name, m in pooled.items():
            r = trainer.cv_results_[name]
            measured = "gender_gap" in r.summary  # not when every held-out fold holds one gender
            gap_m, gap_s = r.scalar("gender_gap") if measured else (np.nan, np.nan)
            flagged = measured and gap_m > GENDER_GAP_FLAG
            flags.append(flagged)
            verdict = (f'<span class="flag">gap above {GENDER_GAP_FLAG:.2f}</span>' if flagged
                       else '<span class="ok">within tolerance</span>' if measured else "not measured: one gender per fold")
            rows.append([name] + [f"{m['per_gender'][g]['accuracy']:.3f} (n={m['per_gender'][g]['n']})" if g in m["per_gender"]
                                  else "" for g in genders] + [h.pm(gap_m, gap_s) if measured else "n/a", verdict])
        body.append(h.table(["model", *[f"accuracy: {g}" for g in genders], "gender gap (per fold)", "flag"], rows, raw=True))
        body.append(f'<p class="note">Accuracy by speaker gender on pooled out-of-fold predictions; the gap is the '
                    f"largest difference within a fold, mean ± std over folds, flagged above {GENDER_GAP_FLAG:.2f}. "
                    f"{sum(flags)} of {len(flags)} models flagged.</p>")
    actors = sorted({a for m in pooled.values() for a in m.get("per_actor", {})}, key=int)
    if actors:
        names = list(pooled)
        acc = np.array([[pooled[n]["per_actor"].get(a, np.nan) for n in names] for a in actors])
        oof = next(iter(trainer.cv_results_.values())).oof
        gender_of = oof.groupby("actor")["gender"].first().to_dict() if "gender" in oof else {}
        labels = [f"actor {a} ({gender_of.get(int(a), '?')})" for a in actors]
        body.append("<h3>Accuracy per actor (every actor is unseen by the model that predicts it)</h3>")
        body.append(h.heat_table(acc, labels, names, shade=acc, fmt="{:.2f}", corner="actor \\ model"))
        worst = [f"{labels[i]} {acc[i, names.index(trainer.best_model_)]:.2f}"
                 for i in np.argsort(acc[:, names.index(trainer.best_model_)])[:3]]
        body.append(f'<p class="note">Hardest speakers for the chosen model: {h.esc("; ".join(worst))}.</p>')
    return "\n".join(body)


def _calibration(trainer, pooled, fig_dir: Path) -> str:
    curves = {n: reliability_curve(m["_y"], m["_proba"]) for n, m in pooled.items()}
    ece = {n: trainer.cv_results_[n].scalar("ece")[0] for n in pooled}
    path = plot_reliability(curves, fig_dir / "reliability.png", ece=ece)
    rows = [[n, h.pm(*trainer.cv_results_[n].scalar("ece")), m["ece"], float(m["_proba"].max(axis=1).mean()), m["accuracy"]]
            for n, m in pooled.items()]
    return (h.img(path, "reliability diagram")
            + h.table(["model", "ECE (per fold)", "ECE (pooled)", "mean confidence", "accuracy"], rows)
            + '<p class="note">A calibrated model is right as often as it is confident: its curve follows the diagonal. '
            "Below the diagonal the model is over-confident.</p>"
            + _lda_fit_notes(trainer))


def _lda_fit_notes(trainer) -> str:
    """The temperature and nuisance weight the final LDA fits chose on their inner speaker folds."""
    rows = []
    for name, estimator in trainer.estimators_.items():
        clf = final_classifier(estimator)
        if getattr(clf, "temperature_", None) is None:
            continue
        scores = getattr(clf, "nuisance_scores_", {})
        tried = ", ".join(f"{w:g}: {v:.3f}" for w, v in scores.items()) or "not chosen (no augmented copies)"
        rows.append([name, f"{clf.temperature_:.2f}", f"{clf.nuisance_weight_:g}", tried])
    if not rows:
        return ""
    return ("<p>The LDA's temperature and nuisance weight (how much it discounts what the augmented copies of a "
            "recording vary in), each chosen by held-out log-loss on speaker-grouped inner folds of the final "
            "fit's training rows:</p>"
            + h.table(["model", "temperature", "nuisance weight", "held-out log-loss per weight"], rows))


def _robustness(trainer, table: pd.DataFrame | None) -> str:
    if table is None or not len(table):
        return ("<p>Not measured in this run. <code>vibe-check train --robustness --report</code> scores the chosen "
                "model on the held-out speakers' clips with noise, gain changes, a telephone channel and leading "
                "silence added; <code>python benchmarks/bench_robustness.py</code> prints the same table.</p>")
    ds = trainer.data_summary_
    aug = ", ".join(ds.get("augmentations") or []) or "none"
    rows = []
    for _, r in table.iterrows():
        target = verdict = ""
        if r["met"] is not None:
            target = f"≤ {r['target_drop']:.2f}"
            verdict = '<span class="ok">met</span>' if r["met"] else '<span class="flag">missed</span>'
        rows.append([h.esc(r["model"]), h.esc(r["condition"]), h.pm(r["macro_f1_mean"], r["macro_f1_std"]), f"{r['drop']:.3f}",
                     target, verdict, int(r["failed"])])
    return (f"<p>Each fold's model (training augmentation: {h.esc(aug)}) scored on its held-out speakers' clips, "
            "clean and corrupted; macro-F1 mean ± std over folds and the drop from clean. Babble is made of "
            "training-side talkers only. Unusable clips are scored as wrong.</p>"
            + h.table(["model", "condition", "macro-F1", "drop", "target drop", "", "unusable clips"], rows, raw=True))


def _space_of(method: str, space: str) -> str:
    """How one model's SHAP values were computed and in which space, in words, from its method."""
    grouped = method.startswith("sum over each group's classes of: ")
    inner = method.removeprefix("sum over each group's classes of: ")
    if space == "log-odds":
        words = "<b>logits</b> (the class scores whose softmax is the probability; exact)"
    elif inner.startswith("soft-voting"):
        words = "<b>probability</b>: the weighted mean of its members' probability-space values" + (
            " (the logit-space members' carried into probability along the softmax path)" if "softmax path" in inner else "")
    elif "softmax path" in inner:
        words = ("<b>probability</b>: its exact logit values carried into probability along the softmax path "
                 "(the sum stays exact)")
    else:
        words = "<b>probability</b> (exact)"
    if grouped:
        words += "; each class's values are the sum of its emotions' values in the emotion model it is read from"
    return words


def _space_paragraph(explained: dict[str, GlobalExplanation]) -> str:
    """Which output space each explained model is in, built from the models themselves."""
    lines = "".join(f"<li>{h.esc(model_label(n))} (<code>{h.esc(n)}</code>): {_space_of(ge.shap.method, ge.shap.space)}</li>"
                    for n, ge in explained.items())
    text = f"<p>Output space of each model's SHAP values:</p><ul>{lines}</ul>"
    if any(ge.shap.space == "log-odds" for ge in explained.values()):
        text += ("<p>In logits only the differences between classes count: adding the same amount to every class's "
                 "logit changes no probability. A feature's value for one class is its push on that class's score; "
                 "whether it raises that class's probability depends on its pushes on the other classes too.</p>")
    if any("softmax path" in ge.shap.method for ge in explained.values()):
        text += ('<p class="note">The softmax-path conversion: see <code>vibe_check.explain._shap</code>.</p>')
    return text


def _explanations(trainer, explained: dict[str, GlobalExplanation], fig_dir: Path, groups: dict[str, str],
                  descriptions: dict[str, str], skipped: dict[str, str]) -> tuple[str, dict]:
    timings = {}
    notes = "".join(f"<li><code>{h.esc(n)}</code>: {h.esc(r)}</li>" for n, r in skipped.items())
    skipped_html = f'<p class="flag">Not explained:</p><ul>{notes}</ul>' if notes else ""
    if not explained:
        return skipped_html or "<p>No model was explained.</p>", timings
    any_ge = next(iter(explained.values()))
    res0 = any_ge.shap
    folds = sorted(set(res0.extra["fold"].tolist()))
    speaker = (" Speaker-normalised mode: every feature is the clip's difference from its speaker's mean, so "
               "&ldquo;high&rdquo; means higher than this speaker usually is." if _speaker_mode(trainer) else "")
    body = [skipped_html, f"""<p>SHAP values of <b>{res0.values.shape[0]} held-out clips</b> (folds {', '.join(map(str, folds))}): each
fold's model is refit on that fold's training speakers and explains clips of its unseen test speakers, against a
background of that fold's original (not augmented) training clips. A SHAP value is how much a feature moved one
class's output away from the base value for that clip; base value + the sum over features = the model's output. The
base value is where every clip starts: for the linear models, their output at the mean of the background clips (in
probability, the softmax of those logits); for the trees, their average output over the training data weighted by the
trees' node weights, which the random forest's class weights make class-balanced (about 1/K for each of K classes).
Mean |SHAP| ranks what a model relies on, not what causes an emotion; correlated features share credit.{speaker}</p>""",
            _space_paragraph(explained)]
    top_rows = []
    for rank in range(10):
        top_rows.append([rank + 1] + [ge.mean_abs.index[rank] if rank < len(ge.mean_abs) else "" for ge in explained.values()])
    body.append("<h3>Top 10 features per model (mean |SHAP|)</h3>" + h.table(["rank", *explained], top_rows))
    for name, ge in explained.items():
        t0 = time.perf_counter()
        bar = plot_shap_bar(ge.shap, fig_dir / f"{name}_shap_bar.png", feature_groups=groups)
        bee = plot_shap_beeswarm(ge.shap, fig_dir / f"{name}_shap_beeswarm.png", relative_to_speaker=_speaker_mode(trainer))
        grp = plot_group_importance(ge.groups, fig_dir / f"{name}_shap_groups.png", title=f"{name}: mean |SHAP| by feature group")
        with atomic_path(fig_dir / f"{name}_shap_importance.csv") as tmp:
            ge.mean_abs.to_csv(tmp)
        parts = [f'<section id="shap-{h.esc(name)}"><h3>{h.esc(model_label(name))} (<code>{h.esc(name)}</code>)</h3>',
                 f'<p class="note">{h.esc(ge.shap.method)}; output space: {h.esc(ge.shap.space)}; SHAP took '
                 f"{ge.seconds['shap']:.2f} s, fold refits {ge.seconds['refit']:.1f} s.</p>",
                 h.img(bar, f"{name} SHAP bar plot"), h.img(bee, f"{name} SHAP beeswarm"),
                 '<div class="grid"><div>' + h.img(grp, f"{name} SHAP by group", css_class="half") + "</div><div>"
                 + h.table(["group", "features", "sum of mean |SHAP|", "per feature", "net (joint push)", "share"],
                           [[g, int(r.n_features), r["sum"], r.per_feature, r.net, r.share] for g, r in ge.groups.iterrows()], digits=4)
                 + "</div></div>"]
        top = ge.mean_abs.head(15)
        cls_cols = [c for c in top.columns if c != "overall"]
        parts.append(h.table(["feature", "group", "mean |SHAP| (sum over classes)", "strongest for", "description"],
                             [[f, groups.get(f, "?"), r["overall"], r[cls_cols].astype(float).idxmax(), descriptions.get(f, "")]
                              for f, r in top.iterrows()], digits=4))
        if ge.impurity is not None:
            parts.append(h.details("impurity importance (mean decrease in impurity, training data)",
                                   h.table(["feature", "group", "importance"],
                                           [[f, groups.get(f, "?"), v] for f, v in ge.impurity.head(15).items()], digits=4)))
        for perm in (ge.permutation_groups, ge.permutation):
            if perm is None:
                continue
            png = plot_permutation(perm, fig_dir / f"{name}_permutation_{perm.by}.png")
            with atomic_path(fig_dir / f"{name}_permutation_{perm.by}.csv") as tmp:
                perm.table.to_csv(tmp)
            what = "feature groups, each permuted as a whole" if perm.by == "group" else f"{len(perm.table)} features"
            parts.append(h.details(
                f"permutation importance: {what} ({perm.seconds:.2f} s)",
                f'<p class="note">Held-out clips: {perm.n_rows} from folds {perm.folds}; {perm.n_repeats} shuffles each; '
                f"score: {perm.scoring} (baseline {perm.baseline:.3f}); importance = how much the score worsens.</p>"
                + h.img(png, f"{name} permutation importance", css_class="half"), open_=perm.by == "group"))
        timings[name] = {**ge.seconds, "plots": time.perf_counter() - t0}
        body.append("\n".join(parts) + "</section>")
    return "\n".join(body), timings


def _features(trainer) -> str:
    cfg = FeatureConfig.from_dict(trainer.feature_config_)
    table = describe_features(cfg)
    counts = table.groupby("group", sort=False).size()
    config_rows = [[k, ", ".join(v) if isinstance(v, list) else str(v)] for k, v in trainer.feature_config_.items()]
    return (f"<p>Definition hash <code>{h.esc(trainer.feature_hash_)}</code> (SHA-256 of the configuration below and the "
            f"feature code version); {len(table)} features in {len(counts)} groups. Every feature's name, group and "
            "description: <code>vibe-check features --describe</code> or <code>docs/features.md</code>.</p>"
            + '<div class="grid"><div>' + h.table(["setting", "value"], config_rows) + "</div><div>"
            + h.table(["group", "features", "what it describes"], [[g, int(counts.get(g, 0)), FEATURE_GROUPS[g]] for g in cfg.groups])
            + "</div></div>")


def _data(trainer) -> str:
    ds = trainer.data_summary_
    copies = (f" Training sides also held {ds['n_augmented_rows']} augmented copies ({h.esc(', '.join(ds['augmentations']))}) "
              "of their own clips; every score is on original clips." if ds.get("n_augmented_rows") else "")
    return (f"<p>{ds['n_files']} clips; actors {h.esc(', '.join(map(str, ds['actors'])))}.{copies}</p>"
            + '<div class="grid"><div>' + h.table(["class", "clips"], list(ds["class_counts"].items())) + "</div><div>"
            + h.table(["gender", "clips"], list(ds.get("gender_counts", {}).items())) + "</div><div>"
            + h.table(["fold", "test actors", "test clips"],
                      [[i, ", ".join(map(str, m["test_actors"])), m["n"]]
                       for i, m in enumerate(next(iter(trainer.cv_results_.values())).fold_metrics)])
            + "</div></div>")


def _provenance(trainer, command: str, timings: dict, started: float) -> str:
    rows = [["training (cross-validation + refit)", getattr(trainer, "fit_seconds_", float("nan"))]]
    for name, r in trainer.cv_results_.items():
        rows.append([f"{name}: fit per fold (mean)", float(np.mean(r.fit_seconds))])
        if name in getattr(trainer, "refit_seconds_", {}):
            rows.append([f"{name}: refit on all data", trainer.refit_seconds_[name]])
    for name, t in timings.get("explain", {}).items():
        for key, secs in t.items():
            rows.append([f"{name}: {key.replace('_', ' ')}", secs])
    rows.append(["this report", time.perf_counter() - started])
    versions = library_versions()
    return (f"<p>Command:</p><pre>{h.esc(command)}</pre>"
            f"<p>Random seed {trainer.random_state}; report written {datetime.now(timezone.utc).isoformat(timespec='seconds')}.</p>"
            + '<div class="grid"><div>' + h.table(["library", "version"], list(versions.items())) + "</div><div>"
            + h.table(["step", "seconds"], rows, digits=2) + "</div></div>")


def _replace_dir(new: Path, final: Path) -> None:
    """Put the freshly written folder ``new`` in place of ``final``: only this run's files remain."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old")
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_report(trainer: EmotionTrainer, out_dir: str | os.PathLike, *, command: str = "", shap_sample: int | None = 200,
                 models: Sequence[str] | None = None, max_folds: int | None = 2, permutation: bool = True,
                 permutation_features: int | None = 40, n_repeats: int = 3, permutation_sample: int | None = 200,
                 filename: str | None = None, robustness: pd.DataFrame | None = None) -> Path:
    """Write the HTML report of a fitted :class:`~vibe_check.training.EmotionTrainer`.

    Parameters
    ----------
    trainer : fitted EmotionTrainer
    out_dir : path
        Folder for the report and its figures folder.
    command : str
        The command line that produced the run (shown verbatim).
    shap_sample : int or None
        Held-out clips explained per model, at least 1 (all of the used folds' clips when None).
    models : sequence of str, optional
        Models to explain (default, None: all; an empty list explains none); metrics always
        cover every model.
    max_folds : int or None
        Folds whose models are refit for the held-out explanations.
    permutation : bool
        Include permutation importance (per group, and per feature for the top SHAP features).
    permutation_features : int or None
        How many top SHAP features get single-feature permutation importance (all when None,
        none when 0).
    n_repeats, permutation_sample : int
        Shuffles per feature and held-out clips for permutation importance.
    filename : str, optional
        Name of the HTML file in ``out_dir``. Default: by task and mode, like the bundles:
        ``report_emotion.html``, ``report_sentiment.html``, ``report_emotion_speaker.html``.
        The PNG figures and importance CSVs go to ``<name without .html>_files/`` beside it,
        which is replaced as a whole (a previous run's figures do not remain).
    robustness : DataFrame, optional
        A table from :func:`~vibe_check.training.evaluate_robustness`, shown in its own section.

    Returns
    -------
    Path
        The HTML file.

    Raises
    ------
    ValueError
        ``shap_sample`` or ``permutation_sample`` below 1.

    Examples
    --------
    >>> write_report(trainer, "models/custom", command="vibe-check train --report")  # doctest: +SKIP
    PosixPath('models/custom/report_emotion.html')
    """
    started = time.perf_counter()
    _check_sample_size(shap_sample, "shap_sample")  # before minutes of refits, not after
    if permutation:
        _check_sample_size(permutation_sample, "permutation_sample")
    out = Path(out_dir)
    filename = filename or _default_report_name(trainer)
    fig_final = out / f"{Path(filename).stem}_files"
    # Figures go to a new folder that replaces the old one at the end, so that the old report's
    # figures stay whole until then and figures of models no longer in the run do not remain.
    fig_dir = out / f".{fig_final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    fig_dir.mkdir(parents=True)
    try:
        path = _write_report(trainer, out, fig_dir, filename=filename, command=command, shap_sample=shap_sample,
                             models=models, max_folds=max_folds, permutation=permutation,
                             permutation_features=permutation_features, n_repeats=n_repeats,
                             permutation_sample=permutation_sample, robustness=robustness, started=started)
        _replace_dir(fig_dir, fig_final)
    finally:
        shutil.rmtree(fig_dir, ignore_errors=True)  # a failed run leaves no half-written folder
    return path


def _write_report(trainer, out: Path, fig_dir: Path, *, filename: str, command: str, shap_sample, models, max_folds,
                  permutation, permutation_features, n_repeats, permutation_sample, robustness, started) -> Path:
    table = describe_features(FeatureConfig.from_dict(trainer.feature_config_))
    groups, descriptions = dict(zip(table["name"], table["group"])), dict(zip(table["name"], table["description"]))
    pooled = _pooled(trainer)
    wanted = list(trainer.estimators_ if models is None else models)
    # A model shap cannot explain (multiclass GradientBoostingClassifier, a one-vs-rest linear
    # model) is named, not fatal. Its link is checked on original training clips, as explained.
    check_rows, originals = getattr(trainer, "_X_train", None), getattr(trainer, "_originals_train", None)
    if check_rows is not None:
        check_rows = check_rows[originals] if originals is not None else check_rows
        check_rows = check_rows[:: max(1, len(check_rows) // 100)]
    skipped = {n: r for n in wanted
               if (r := unsupported_reason(trainer.estimators_[n], len(trainer.classes_), background=check_rows))}
    explained = explain_global(trainer, [n for n in wanted if n not in skipped], sample_size=shap_sample, max_folds=max_folds, permutation=permutation,
                               permutation_features=permutation_features, n_repeats=n_repeats,
                               permutation_sample=permutation_sample)
    explanations, explain_timings = _explanations(trainer, explained, fig_dir, groups, descriptions, skipped)
    bodies = {
        "summary": _summary(trainer, pooled),
        "metrics": _metrics(trainer),
        "per-class": _per_class(trainer, pooled),
        "confusion": _confusion(trainer, pooled),
        "fairness": _fairness(trainer, pooled),
        "calibration": _calibration(trainer, pooled, fig_dir),
        "robustness": _robustness(trainer, robustness),
        "explanations": explanations,
        "features": _features(trainer),
        "data": _data(trainer),
    }
    bodies["provenance"] = _provenance(trainer, command, {"explain": explain_timings}, started)
    nav = "<nav>" + "".join(f'<a href="#{k}">{h.esc(v)}</a>' for k, v in REPORT_SECTIONS.items()) + "</nav>"
    title = (f"vibe-check training report: {trainer.task}, {len(trainer.classes_)} classes"
             + (", speaker-normalised" if _speaker_mode(trainer) else ""))
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{h.esc(title)}</title>'
           f"<style>{h.CSS}</style></head><body>\n<h1>{h.esc(title)}</h1>\n{nav}\n"
           + "\n".join(h.section(k, REPORT_SECTIONS[k], bodies[k]) for k in REPORT_SECTIONS)
           + "\n</body></html>\n")
    path = out / filename
    with atomic_path(path) as tmp:  # never leave a half-written report under the final name
        tmp.write_text(doc, encoding="utf-8")
    return path
