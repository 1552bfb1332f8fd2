"""Training: speaker-independent cross-validation, honest metrics, model selection, bundles."""

from ._cv import check_speaker_independent, speaker_folds
from ._export import export_training_metrics
from ._metrics import classification_metrics, expected_calibration_error, reliability_curve, summarize_folds
from ._models import (BASE_MODELS, MODEL_NAMES, BalancedLinearDiscriminantAnalysis, GroupedClassifier, fit_temperature,
                      make_ensemble, make_model)
from ._robustness import CONDITIONS, TARGET_DROP, corrupt, evaluate_robustness, format_robustness
from ._speaker import MIN_REFERENCE_CLIPS, center_by_group, evaluate_speaker_references
from ._tta import evaluate_test_time_augmentation
from ._train import DEFAULT_AUGMENTATIONS, SELECTION_RULE, TASKS, EmotionTrainer, drift_reference, label_mapping, labels_for_task

__all__ = [
    "BASE_MODELS",
    "CONDITIONS",
    "DEFAULT_AUGMENTATIONS",
    "TARGET_DROP",
    "corrupt",
    "evaluate_robustness",
    "format_robustness",
    "MIN_REFERENCE_CLIPS",
    "MODEL_NAMES",
    "SELECTION_RULE",
    "TASKS",
    "BalancedLinearDiscriminantAnalysis",
    "EmotionTrainer",
    "GroupedClassifier",
    "check_speaker_independent",
    "center_by_group",
    "classification_metrics",
    "drift_reference",
    "evaluate_speaker_references",
    "evaluate_test_time_augmentation",
    "expected_calibration_error",
    "export_training_metrics",
    "fit_temperature",
    "label_mapping",
    "labels_for_task",
    "make_ensemble",
    "make_model",
    "reliability_curve",
    "speaker_folds",
    "summarize_folds",
]
