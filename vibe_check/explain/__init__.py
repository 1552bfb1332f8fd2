"""Explanations: SHAP values, feature importances, and reports a person wants to read.

Global (per model, on held-out clips of the trainer's speaker-independent folds):
:func:`explain_model` (SHAP values, always ``(n, features, classes)``), :func:`explain_global`
(SHAP + per-class and per-group aggregates + impurity and permutation importance),
:func:`permutation_importance`.

Local (per prediction): :class:`Explainer` (build once per bundle, explain many clips; a clip
is one row, or its row and its test-time speed copies' rows, explained as the one answer they
make), :func:`explain_instance`, :func:`explain_audio` (what ``CustomEmotionModel.explain``
calls) and :func:`explain_rows` (the same for a clip already extracted).

Reports: :func:`write_report` (one self-contained HTML file per training run, named by task and
mode: ``report_emotion.html``) and the ``plot_*`` figures.

Examples
--------
>>> from vibe_check.explain import Explainer, write_report
>>> ex = Explainer.from_bundle(load_bundle("models/custom/best_emotion_model.pkl"))  # doctest: +SKIP
>>> ex.explain(vector)["towards"][0]["sentence"]  # doctest: +SKIP
'pitch variability high (f0_std = 48.1 Hz, typical 21.0) -> towards angry'
>>> write_report(trainer, "models/custom", command="vibe-check train --report")  # doctest: +SKIP
"""

from ..training._folds import FoldModels
from ._importance import (
    SCORINGS,
    GlobalExplanation,
    PermutationResult,
    explain_global,
    explain_model,
    impurity_importance,
    permutation_importance,
)
from ._local import Explainer, explain_audio, explain_instance, explain_rows, model_explainer
from ._plots import plot_group_importance, plot_permutation, plot_reliability, plot_shap_bar, plot_shap_beeswarm
from ._report import GENDER_GAP_FLAG, REPORT_SECTIONS, write_report
from ._shap import (
    OUTPUT_SPACES,
    ExplanationError,
    PipelineShap,
    ShapResult,
    logits_to_probability_shap,
    shap_values,
    unsupported_reason,
)
from ._words import plain_label

__all__ = [
    "GENDER_GAP_FLAG",
    "OUTPUT_SPACES",
    "REPORT_SECTIONS",
    "SCORINGS",
    "Explainer",
    "ExplanationError",
    "FoldModels",
    "GlobalExplanation",
    "PermutationResult",
    "PipelineShap",
    "ShapResult",
    "explain_audio",
    "explain_global",
    "explain_instance",
    "explain_rows",
    "model_explainer",
    "explain_model",
    "impurity_importance",
    "logits_to_probability_shap",
    "permutation_importance",
    "plain_label",
    "plot_group_importance",
    "plot_permutation",
    "plot_reliability",
    "plot_shap_bar",
    "plot_shap_beeswarm",
    "shap_values",
    "unsupported_reason",
    "write_report",
]
