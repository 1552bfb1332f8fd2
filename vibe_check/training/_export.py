"""Training metrics for Prometheus, named like the service's (``vibe_check_training_*``).

A training run is a batch job, so nothing scrapes it while it runs: its cross-validation scores
and timings are written once, either as a node-exporter textfile (picked up by the textfile
collector) or pushed to a Pushgateway. Dashboards can then put the CV macro-F1 of the model a
service loaded next to that service's live confidence.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from ._train import EmotionTrainer

__all__ = ["export_training_metrics", "training_registry", "CV_METRICS"]

#: CV metrics (keys of ``ModelCV.summary``) exported as ``vibe_check_training_cv_<key>``.
CV_METRICS = ("macro_f1", "accuracy", "uar", "ece", "log_loss")


def training_registry(trainer: EmotionTrainer) -> CollectorRegistry:
    """A registry holding the fitted trainer's CV metrics and timings.

    Gauges
    ------
    ``vibe_check_training_cv_<metric>{model, task, stat="mean"|"std"}``
        For macro_f1, accuracy, uar, ece and log_loss, over the speaker-independent folds.
    ``vibe_check_training_fit_seconds{model, task, phase="cv"|"refit"}``
        Fitting time per model, summed over the CV folds, and of the final refit.
    ``vibe_check_training_run_seconds{task}``
        Wall time of the whole ``fit``.
    ``vibe_check_training_best_model{model, task}``
        1 for the model the selection rule chose.
    ``vibe_check_training_files{task}``, ``vibe_check_training_folds{task}``
        Size of the training data and number of folds.
    ``vibe_check_training_last_run_timestamp_seconds{task}``
        When the metrics were exported (Unix time), to alert on stale models.

    Raises
    ------
    ValueError
        The trainer has not been fitted.
    """
    if not hasattr(trainer, "cv_results_"):
        raise ValueError("the trainer is not fitted: call fit() before exporting its metrics")
    registry = CollectorRegistry()
    task = str(trainer.task)
    cv = {key: Gauge(f"vibe_check_training_cv_{key}", f"Cross-validated {key} over speaker-independent folds.",
                     ["model", "task", "stat"], registry=registry)
          for key in CV_METRICS}
    fit = Gauge("vibe_check_training_fit_seconds", "Fitting time per model (cv: summed over folds; refit: final fit).",
                ["model", "task", "phase"], registry=registry)
    best = Gauge("vibe_check_training_best_model", "1 for the model chosen by the selection rule.", ["model", "task"], registry=registry)
    for model, result in trainer.cv_results_.items():
        for key, gauge in cv.items():
            if key in result.summary:
                mean, std = result.scalar(key)
                gauge.labels(model=model, task=task, stat="mean").set(mean)
                gauge.labels(model=model, task=task, stat="std").set(std)
        fit.labels(model=model, task=task, phase="cv").set(float(sum(result.fit_seconds)))
        refit = getattr(trainer, "refit_seconds_", {}).get(model)
        if refit is not None:
            fit.labels(model=model, task=task, phase="refit").set(float(refit))
        best.labels(model=model, task=task).set(1.0 if model == trainer.best_model_ else 0.0)
    Gauge("vibe_check_training_run_seconds", "Wall time of the training run.", ["task"], registry=registry).labels(
        task=task).set(float(getattr(trainer, "fit_seconds_", 0.0)))
    Gauge("vibe_check_training_files", "Audio files trained on.", ["task"], registry=registry).labels(
        task=task).set(float(trainer.data_summary_.get("n_files", 0)))
    Gauge("vibe_check_training_folds", "Cross-validation folds.", ["task"], registry=registry).labels(task=task).set(len(trainer.folds_))
    Gauge("vibe_check_training_last_run_timestamp_seconds", "When these training metrics were exported.", ["task"],
          registry=registry).labels(task=task).set(time.time())
    return registry


def export_training_metrics(trainer: EmotionTrainer, *, path: str | os.PathLike | None = None, pushgateway: str | None = None,
                            job: str = "vibe_check_training") -> CollectorRegistry:
    """Write a fitted trainer's metrics as a Prometheus textfile and/or push them to a Pushgateway.

    Parameters
    ----------
    trainer : EmotionTrainer
        A fitted trainer.
    path : path, optional
        Textfile to write (node-exporter's textfile collector reads ``*.prom`` files); written
        atomically, so the collector never reads half a file.
    pushgateway : str, optional
        Pushgateway address (``http://127.0.0.1:9091``); the metrics replace the group of ``job``.
    job : str
        Pushgateway job name.

    Returns
    -------
    CollectorRegistry
        The metrics, whether or not they were written anywhere.

    Examples
    --------
    >>> export_training_metrics(trainer, path="/var/lib/node_exporter/vibe_check.prom")  # doctest: +SKIP
    """
    registry = training_registry(trainer)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)  # prometheus_client writes a temporary file and renames it
    if pushgateway:
        push_to_gateway(pushgateway, job=job, registry=registry)
    return registry
