"""Figures of explanations and calibration, as PNG files (matplotlib, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not with
pyplot: no global figure state, no backend switching, safe in a web worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import rankdata

from .._atomic import atomic_path
from ._shap import ShapResult

__all__ = [
    "plot_shap_beeswarm",
    "plot_shap_bar",
    "plot_group_importance",
    "plot_permutation",
    "plot_reliability",
    "CLASS_COLORS",
]

DPI = 110
#: One colour per class, stable across figures (tab10 minus grey, plus two extras for >9 classes).
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
                "#393b79", "#637939"]
# Probability contributions are on the 0-1 scale ("probability points" read as percentage points).
_SPACE_WORDS = {"probability": "probability, 0-1 scale", "log-odds": "logits"}


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", facecolor="white")
    return path


def _title(result: ShapResult, what: str) -> str:
    model = f"{result.model}: " if result.model else ""
    return f"{model}{what} ({_SPACE_WORDS.get(result.space, result.space)}), {result.values.shape[0]} clips"


def _swarm_offsets(x: np.ndarray, *, width: float = 0.38, n_bins: int = 60) -> np.ndarray:
    """Vertical offsets that spread points with similar x into a swarm, like shap's beeswarm."""
    offsets = np.zeros(x.size)
    if x.size < 2 or np.ptp(x) == 0:
        return offsets
    bins = np.minimum(((x - x.min()) / np.ptp(x) * n_bins).astype(int), n_bins - 1)
    for b in np.unique(bins):
        idx = np.flatnonzero(bins == b)
        ranks = np.arange(idx.size)
        offsets[idx] = np.ceil(ranks / 2) * np.where(ranks % 2, 1, -1)  # 0, +1, -1, +2, -2, ...
    peak = np.abs(offsets).max()
    return offsets / peak * width if peak else offsets


def _rank01(v: np.ndarray) -> np.ndarray:
    """Percentile rank in [0, 1]: colours by rank so that one outlier does not wash out the rest.

    Tied values share their average rank (equal values, equal colour), and a constant feature is
    drawn in the neutral middle colour.

    Examples
    --------
    >>> _rank01(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [0.8333333333333334, 0.0, 0.8333333333333334, 0.3333333333333333]
    >>> _rank01(np.zeros(4)).tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    if v.size < 2 or np.ptp(v) == 0:
        return np.full(v.size, 0.5)
    return (rankdata(v, method="average") - 1) / (v.size - 1)


def plot_shap_beeswarm(result: ShapResult, path: str | os.PathLike, *, top_k: int = 12,
                       classes: Sequence[str] | None = None, relative_to_speaker: bool = False) -> Path:
    """SHAP summary per class: one beeswarm panel per class (emotion) with its ``top_k`` features.

    Each dot is one clip; x = its SHAP value for that class, colour = the feature's value
    (blue low, red high, by rank among the clips shown; equal values share a colour, a constant
    feature is light grey, the middle colour). ``relative_to_speaker``: the features of a
    speaker-normalised model are differences from the speaker's mean, and the colour bar says so.

    Examples
    --------
    >>> plot_shap_beeswarm(res, "reports/logreg_beeswarm.png")  # doctest: +SKIP
    """
    classes = list(classes or result.classes)
    # Two panels a row (three for three classes) keep the figure about as wide as a report page,
    # so that the feature names stay legible when the image is shown at page width.
    ncols = len(classes) if len(classes) <= 3 else 2
    nrows = int(np.ceil(len(classes) / ncols))
    fig = Figure(figsize=(5.8 * ncols, 0.34 * top_k * nrows + 1.3 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    names = np.asarray(result.feature_names)
    scatter = None
    for ax, cls in zip(axes.ravel(), classes):
        k = result.classes.index(cls)
        phi = result.values[:, :, k]
        top = np.argsort(-np.abs(phi).mean(axis=0))[:top_k][::-1]  # largest at the top
        # One scatter call per panel: a call per feature row costs several times more to draw.
        xs = np.concatenate([phi[:, j] for j in top])
        ys = np.concatenate([row + _swarm_offsets(phi[:, j]) for row, j in enumerate(top)])
        cs = np.concatenate([_rank01(result.data[:, j]) for j in top])
        scatter = ax.scatter(xs, ys, c=cs, cmap="coolwarm", vmin=0, vmax=1, s=9, linewidths=0, alpha=0.85)
        ax.axvline(0, color="#555", lw=0.8)
        ax.set_yticks(range(len(top)), names[top], fontsize=8.5)
        ax.set_ylim(-0.6, len(top) - 0.4)
        ax.set_title(cls, fontsize=12, fontweight="bold")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#ddd", lw=0.6)
        ax.set_xlabel("SHAP value (right = raises this class's probability)" if result.space == "probability"
                      else "SHAP value (right = raises this class's logit)", fontsize=8)
    for ax in axes.ravel()[len(classes):]:
        ax.set_visible(False)
    if scatter is not None:
        cbar = fig.colorbar(scatter, ax=axes, shrink=min(0.8, 1.2 / nrows), aspect=25, pad=0.01)
        cbar.set_ticks([0, 1], labels=["low", "high"])
        cbar.set_label("feature value, difference from the speaker's mean (rank among these clips)" if relative_to_speaker
                       else "feature value (rank among these clips)", fontsize=9)
    fig.suptitle(_title(result, "SHAP values per class"), fontsize=14)
    return _save(fig, path)


def plot_shap_bar(result: ShapResult, path: str | os.PathLike, *, top_k: int = 20,
                  feature_groups: Mapping[str, str] | None = None) -> Path:
    """Mean |SHAP| of the ``top_k`` features, stacked per class (legend = class names).

    Examples
    --------
    >>> plot_shap_bar(res, "reports/logreg_bar.png", feature_groups=extractor.feature_groups)  # doctest: +SKIP
    """
    table = result.mean_abs().head(top_k).iloc[::-1]  # largest at the top
    fig = Figure(figsize=(10, 0.34 * len(table) + 1.8), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(table))
    for i, cls in enumerate(result.classes):
        ax.barh(range(len(table)), table[cls], left=left, color=CLASS_COLORS[i % len(CLASS_COLORS)], label=cls,
                edgecolor="white", linewidth=0.4)
        left += table[cls].to_numpy()
    labels = [f"{f}  [{feature_groups.get(f, '?')}]" if feature_groups else f for f in table.index]
    ax.set_yticks(range(len(table)), labels, fontsize=9)
    ax.set_ylim(-0.6, len(table) - 0.4)
    ax.set_xlabel(f"mean |SHAP value| ({_SPACE_WORDS.get(result.space, result.space)}), stacked over classes", fontsize=10)
    ax.grid(axis="x", color="#ddd", lw=0.6)
    ax.set_axisbelow(True)
    ax.legend(title="class", fontsize=9, title_fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(_title(result, f"top {len(table)} features by mean |SHAP|"), fontsize=12)
    return _save(fig, path)


def _hbar(values: pd.Series, errors: pd.Series | None, path, *, title: str, xlabel: str, color: str) -> Path:
    values = values.iloc[::-1]
    fig = Figure(figsize=(7, 0.3 * len(values) + 1.5), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(values)), values.to_numpy(), xerr=None if errors is None else errors.reindex(values.index).to_numpy(),
            color=color, ecolor="#444", capsize=2)
    ax.set_yticks(range(len(values)), [str(i) for i in values.index], fontsize=9)
    ax.set_ylim(-0.6, len(values) - 0.4)
    ax.axvline(0, color="#555", lw=0.8)
    ax.grid(axis="x", color="#ddd", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_title(title, fontsize=12)
    return _save(fig, path)


def plot_group_importance(groups: pd.DataFrame, path: str | os.PathLike, *, title: str = "SHAP by feature group",
                          column: str = "share") -> Path:
    """Bar per feature group of a :meth:`ShapResult.by_group` table (default: share of total mean |SHAP|)."""
    values = groups[column].sort_values(ascending=False)
    values.index = [f"{g} ({int(groups.loc[g, 'n_features'])})" for g in values.index]
    return _hbar(values, None, path, title=title, color="#4c72b0",
                 xlabel="share of total mean |SHAP| (number of features in brackets)" if column == "share" else column)


def plot_permutation(perm, path: str | os.PathLike, *, top_k: int = 20) -> Path:
    """Held-out permutation importance (mean and std over folds and repeats) of a :class:`PermutationResult`."""
    table = perm.table.head(top_k)
    unit = "rise in log loss (nats)" if perm.scoring == "log_loss" else f"drop in {perm.scoring}"
    what = "feature groups (permuted jointly)" if perm.by == "group" else "features"
    return _hbar(table["importance"], table["std"], path, color="#dd8452", xlabel=unit,
                 title=f"{perm.model}: permutation importance of {what}\n{perm.n_rows} held-out clips, "
                       f"{perm.n_repeats} shuffles each")


def plot_reliability(curves: Mapping[str, pd.DataFrame], path: str | os.PathLike, *,
                     ece: Mapping[str, float] | None = None) -> Path:
    """Reliability diagram (top-label confidence vs accuracy) of several models, with the number
    of clips per confidence bin below.

    Parameters
    ----------
    curves : dict of str -> DataFrame
        :func:`~vibe_check.training.reliability_curve` output per model.
    ece : dict of str -> float, optional
        Shown in the legend.
    """
    fig = Figure(figsize=(7.5, 7.5), layout="constrained")
    ax, hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], ls="--", color="#888", lw=1, label="perfect calibration")
    width = 0.1 / (len(curves) + 1)
    for i, (name, curve) in enumerate(curves.items()):
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        ok = curve["count"] > 0
        label = f"{name} (ECE {ece[name]:.3f})" if ece and name in ece else name
        ax.plot(curve.loc[ok, "confidence"], curve.loc[ok, "accuracy"], marker="o", color=color, label=label)
        centers = (curve["bin_low"] + curve["bin_high"]) / 2
        hist.bar(centers - 0.05 + width * (i + 0.5), curve["count"], width=width, color=color)
    ax.set_ylabel("accuracy", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(color="#eee")
    ax.legend(fontsize=9, loc="upper left")
    ax.set_title("Calibration on held-out folds: confidence of the top class vs how often it is right", fontsize=11)
    hist.set_xlabel("confidence of the predicted class", fontsize=10)
    hist.set_ylabel("clips", fontsize=10)
    hist.grid(axis="y", color="#eee")
    return _save(fig, path)
