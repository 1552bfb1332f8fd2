"""SHAP values for every vibe-check model, always shaped ``(n_rows, n_features, n_classes)``.

Which explainer, in which output space
--------------------------------------
Every model is a Pipeline ``scaler -> classifier``; SHAP explains the classifier on the scaled
rows it actually sees, and reports the values under the original feature names (a per-feature
affine scaler does not change which feature a contribution belongs to).

=====================  ======================================  ==========================
classifier             explainer                               native output space
=====================  ======================================  ==========================
LDA (the default),     ``shap.LinearExplainer``, masker =      logits (``decision_function``,
LogisticRegression     the scaled background rows              whose softmax is
                                                               ``predict_proba``)
RandomForest           ``shap.TreeExplainer``,                 probability
                       ``tree_path_dependent``
HistGradientBoosting   ``shap.TreeExplainer``,                 logits (raw scores)
                       ``tree_path_dependent``
soft-voting ensemble   mean of the members' probability-space  probability
                       values (see below)
=====================  ======================================  ==========================

"Logits" are the class scores the softmax turns into probabilities (a binary model's single
score ``d`` is shown as the two logits ``(-d/2, d/2)``). They are not log-odds against a
reference class: adding the same number to every class's logit of a row changes no probability,
so only the differences between classes' values mean anything. The space is named
``"log-odds"`` in :attr:`ShapResult.space` for compatibility. A linear model is explained only
when its ``predict_proba`` is the softmax (or, binary, the sigmoid) of its ``decision_function``:
that is checked on the background rows, and a one-vs-rest or probability-less linear model
(``SGDClassifier``, ``RidgeClassifier``, ``LinearSVC``) is refused with :class:`ExplanationError`.

Trees use the path-dependent algorithm: it is exact (base value + sum of SHAP = model output to
machine precision), about 50 times faster than the interventional one, and shap 0.51's
interventional algorithm does not add up for multiclass HistGradientBoosting (errors of 0.1-0.6
in logits were measured). Its base value is the model's mean output over the training data,
weighted by the trees' node weights: for a forest fitted with class weights (vibe-check's random
forest uses ``class_weight="balanced_subsample"``) those are class-weighted, so the base value is
the class-balanced average (about ``1/K`` for every class), not the mean predicted probability
over the training clips; a class rarer than the others starts from a base above its mean.

From logits to probability
--------------------------
Soft voting averages the members' *probabilities*, and SHAP values are linear in the model
output, so the ensemble's probability-space SHAP values are exactly the weighted mean of its
members' probability-space SHAP values. The random forest is explained in probability space
directly; LDA, logistic regression and gradient boosting only have exact SHAP values in logit
space. Those are carried into probability space through the softmax with the average Jacobian
along the straight path from the base logits ``z0`` to the row's logits ``z``:

    phi_p[j] = J_bar @ phi_z[j],   J_bar = integral over t in [0, 1] of J_softmax(z0 + t (z - z0)) dt

so that ``sum_j phi_p[j] = softmax(z) - softmax(z0)`` exactly (fundamental theorem of calculus;
the integral is evaluated by composite Gauss-Legendre quadrature, with more panels for a wider
logit spread up to a cap: additivity errors below 1e-9 were measured on random paths with spreads
up to 2000, where the cap is reached, and they grow beyond it (about 1e-3 at 20000); the models
here stay far below, at most about 40 on RAVDESS). This is the
"integrated gradients" rule applied to the link function only: each feature keeps its share of
the logit movement, and its effect on every class's probability, including the classes it
pushes *down* through the softmax, follows from the Jacobian. It is an approximation of the
members' true probability-space SHAP values (which would need model-agnostic sampling over about
940 features), but it is additive and its base value ``softmax(z0)`` is stated. Every feature's
probability contributions sum to zero over the classes, as probabilities must.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from ..exceptions import VibeCheckError

__all__ = [
    "ExplanationError",
    "ShapResult",
    "PipelineShap",
    "shap_values",
    "unsupported_reason",
    "logits_to_probability_shap",
    "OUTPUT_SPACES",
]

#: ``native``: each model's own exact space (see the module docstring); ``probability``: every
#: model in probability space (exact for forests, softmax-path conversion for logit-space models).
OUTPUT_SPACES = ("native", "probability")

_GAUSS_NODES = 16  # per panel
_MAX_PANELS = 1000


class ExplanationError(VibeCheckError, ValueError):
    """The model cannot be explained (unsupported estimator, wrong input shape)."""


@dataclass
class ShapResult:
    """SHAP values of some rows for every class.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_features, n_classes)
    base_values : ndarray, shape (n_rows, n_classes)
        ``base_values + values.sum(axis=1)`` is the model output in :attr:`space`.
    data : ndarray, shape (n_rows, n_features)
        The raw (unscaled) feature values of the rows.
    feature_names, classes : list of str
    space : {"log-odds", "probability"}
        ``"log-odds"`` means the model's logits (softmax scores; see the module docstring).
    method : str
        The explainer used, in words.
    seconds : float
        Wall time spent computing the values.
    y_true : ndarray of str, optional
        True labels of the rows, when known.
    rows : ndarray of int, optional
        Row numbers in the training matrix, when the rows come from it.

    Examples
    --------
    >>> res = shap_values(pipeline, X[:50], feature_names=names, classes=classes)  # doctest: +SKIP
    >>> res.values.shape  # doctest: +SKIP
    (50, 942, 8)
    >>> res.mean_abs().head()  # doctest: +SKIP
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    classes: list[str]
    space: str
    method: str
    seconds: float = 0.0
    model: str = ""
    y_true: np.ndarray | None = None
    rows: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """The explained model output, ``base_values + values.sum(axis=1)``, shape (n_rows, n_classes)."""
        return self.base_values + self.values.sum(axis=1)

    def mean_abs(self) -> pd.DataFrame:
        """Mean |SHAP| per feature for every class, and ``overall`` = their sum over classes.

        The sum (not the mean) over classes is the length of the stacked per-class bar in
        :func:`~vibe_check.explain.plot_shap_bar`. Rows are sorted by ``overall``, descending.

        Examples
        --------
        >>> table = res.mean_abs()  # doctest: +SKIP
        >>> table.loc["f0_std", "angry"]  # doctest: +SKIP
        """
        per_class = np.abs(self.values).mean(axis=0)  # (features, classes)
        table = pd.DataFrame(per_class, index=pd.Index(self.feature_names, name="feature"), columns=list(self.classes))
        table.insert(0, "overall", per_class.sum(axis=1))
        return table.sort_values("overall", ascending=False)

    def by_group(self, feature_groups: Mapping[str, str]) -> pd.DataFrame:
        """Mean |SHAP| aggregated per feature group.

        Columns: ``n_features``; ``sum`` (the group's share of :meth:`mean_abs` ``overall``, so the
        groups add up to the features' total); ``per_feature`` (``sum / n_features``, which does
        not reward a group for being large); ``net`` (mean over rows of |sum of the group's SHAP
        values|, summed over classes: the group's joint push, where opposite pushes of its
        features cancel); and ``share`` of the total ``sum``.

        Examples
        --------
        >>> res.by_group(extractor.feature_groups).loc["prosody", "sum"]  # doctest: +SKIP
        """
        groups = np.array([feature_groups.get(f, "other") for f in self.feature_names], dtype=object)
        overall = np.abs(self.values).mean(axis=0).sum(axis=1)
        order = list(dict.fromkeys(groups))
        rows = []
        for g in order:
            sel = groups == g
            rows.append({
                "group": g,
                "n_features": int(sel.sum()),
                "sum": float(overall[sel].sum()),
                "per_feature": float(overall[sel].mean()),
                "net": float(np.abs(self.values[:, sel, :].sum(axis=1)).mean(axis=0).sum()),
            })
        table = pd.DataFrame(rows).set_index("group")
        table["share"] = table["sum"] / table["sum"].sum()
        return table.sort_values("sum", ascending=False)


# -- output-space conversion -----------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def logits_to_probability_shap(values: np.ndarray, base_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry logit-space SHAP values into probability space along the softmax path.

    Parameters
    ----------
    values : ndarray, shape (n, features, classes)
        SHAP values of the multinomial logits.
    base_logits : ndarray, shape (classes,) or (n, classes)

    Returns
    -------
    values_p : ndarray, shape (n, features, classes)
        ``values_p[i, j] = J_bar_i @ values[i, j]`` with ``J_bar_i`` the mean softmax Jacobian on
        the segment from the base logits to row ``i``'s logits.
    base_p : ndarray, shape (n, classes)
        ``softmax(base_logits)``; ``base_p + values_p.sum(1) == softmax(base_logits + values.sum(1))``.

    Examples
    --------
    >>> phi = np.array([[[1.0, -1.0], [0.5, 0.0]]])
    >>> vp, bp = logits_to_probability_shap(phi, np.zeros(2))
    >>> bool(np.allclose(bp + vp.sum(1), _softmax(phi.sum(1))))
    True
    """
    n, _, K = values.shape
    z0 = np.broadcast_to(np.asarray(base_logits, dtype=np.float64), (n, K))
    dz = values.sum(axis=1)  # (n, K)
    # The softmax turns over within about 1/spread of the path when the logits move by `spread`
    # (over-confident models reach hundreds), so the path is cut into about `spread` panels of
    # Gauss-Legendre nodes. Up to a spread of about 2000 (the panel cap, which bounds the memory)
    # the measured additivity error stays below 1e-9; beyond it the error grows.
    spread = np.ptp(dz, axis=1)
    panels = np.clip(np.ceil(spread / 2.0), 1, _MAX_PANELS).astype(int)
    jac = np.empty((n, K, K))
    for m in np.unique(panels):
        rows = np.flatnonzero(panels == m)
        t, w = _path_nodes(int(m))
        p = _softmax(z0[rows, None, :] + t[None, :, None] * dz[rows, None, :])  # (rows, T, K)
        # J(z) = diag(p) - p p^T, averaged over the path with the quadrature weights.
        pw = p * w[None, :, None]
        block = -np.matmul(pw.transpose(0, 2, 1), p)
        block[:, np.arange(K), np.arange(K)] += pw.sum(axis=1)
        jac[rows] = block
    return np.einsum("nkl,njl->njk", jac, values), _softmax(z0)


def _path_nodes(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [0, 1] with ``panels`` equal panels."""
    t, w = np.polynomial.legendre.leggauss(_GAUSS_NODES)
    starts = np.arange(panels) / panels
    nodes = (starts[:, None] + (t[None, :] + 1) / (2 * panels)).ravel()
    return nodes, np.tile(w / (2 * panels), panels)


def _symmetric_binary(values: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A binary model's score d as two-class logits (-d/2, d/2): softmax of them is sigmoid(d)."""
    return np.stack([-values / 2, values / 2], axis=-1), np.stack([-base / 2, base / 2], axis=-1)


# -- per-estimator explainers ----------------------------------------------------------------
def _unfreeze(est):
    """The fitted estimator inside a ``FrozenEstimator`` (soft-voting members are frozen)."""
    return getattr(est, "estimator", est) if type(est).__name__ == "FrozenEstimator" else est


def _as_3d(values, n_rows: int, n_features: int) -> np.ndarray:
    """SHAP output of any shap version as (n, features, outputs): a list of per-class arrays
    (shap < 0.45), a 3-D array (shap >= 0.45), or a 2-D array for single-output models."""
    if isinstance(values, list):
        values = np.stack([np.asarray(v) for v in values], axis=-1)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[:2] != (n_rows, n_features):
        raise ExplanationError(f"unexpected SHAP output shape {values.shape} for {n_rows} rows x {n_features} features")
    return values


_LINK_ROWS = 50  # background rows on which a logit model's link is checked (milliseconds)
_LINK_TOL = 1e-6


def _link_problem(clf, rows: np.ndarray) -> str | None:
    """Why ``clf``'s probabilities are not the softmax (binary: sigmoid) of its decision function
    on ``rows``, or None when they are: the logit-space explanation and its conversion to
    probability (and the test-time augmentation identity) rest on that link."""
    name = type(clf).__name__
    if not hasattr(clf, "predict_proba") or not hasattr(clf, "decision_function"):
        return f"{name} has no predict_proba, so it has no probabilities to explain"
    try:
        d = np.asarray(clf.decision_function(rows), dtype=np.float64)
        p = np.asarray(clf.predict_proba(rows), dtype=np.float64)
    except Exception as exc:  # e.g. SGDClassifier(loss="hinge") refuses predict_proba
        return f"{name} cannot give probabilities ({exc})"
    linked = _softmax(d) if d.ndim == 2 else np.column_stack([expit(-d), expit(d)])
    gap = float(np.abs(linked - p).max()) if linked.shape == p.shape else np.inf
    if gap > _LINK_TOL:
        return (f"{name}'s predict_proba is not the softmax (binary: sigmoid) of its decision_function "
                f"(max difference {gap:.2g} on {len(rows)} background rows; one-vs-rest models are like this), "
                "so its SHAP values would not add up to its probabilities")
    return None


class _ClassifierShap:
    """Exact SHAP values of one fitted classifier (the final step of a pipeline) in its native space."""

    def __init__(self, clf, background_scaled: np.ndarray | None, n_features: int):
        import shap  # lazy: importing shap costs about two seconds

        name = type(clf).__name__
        self.classes = np.asarray(clf.classes_)
        self._is_tree = not hasattr(clf, "coef_")
        # In the scaled space, zero is the training mean: the natural reference when no
        # background rows are given.
        bg = background_scaled if background_scaled is not None else np.zeros((1, n_features))
        if hasattr(clf, "coef_") and hasattr(clf, "decision_function"):
            if (problem := _link_problem(clf, bg[:_LINK_ROWS])) is not None:
                raise ExplanationError(f"no SHAP route for {name}: {problem}; supported: LinearDiscriminantAnalysis, "
                                       "multinomial or binary LogisticRegression, RandomForest, HistGradientBoosting "
                                       "and soft-voting ensembles of them")
            self._explainer = shap.LinearExplainer(clf, shap.maskers.Independent(bg, max_samples=len(bg)))
            self.space, self.method = "log-odds", f"LinearExplainer ({name}, interventional, masker = {len(bg)} background rows)"
        elif name in ("RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier"):
            self._explainer = shap.TreeExplainer(clf, feature_perturbation="tree_path_dependent")
            self.space, self.method = "probability", f"TreeExplainer ({name}, tree_path_dependent)"
        elif name in ("HistGradientBoostingClassifier", "GradientBoostingClassifier"):
            try:
                self._explainer = shap.TreeExplainer(clf, feature_perturbation="tree_path_dependent")
            except Exception as exc:  # shap refuses multiclass GradientBoostingClassifier
                raise ExplanationError(
                    f"shap {shap.__version__} cannot explain a {len(self.classes)}-class {name} ({exc}); "
                    "use hist_gb, which it supports"
                ) from None
            if (problem := _link_problem(clf, bg[:_LINK_ROWS])) is not None:  # e.g. loss="exponential"
                raise ExplanationError(f"no SHAP route for {name}: {problem}")
            self.space, self.method = "log-odds", f"TreeExplainer ({name}, tree_path_dependent)"
        else:
            raise ExplanationError(
                f"no SHAP route for {name}; supported: LinearDiscriminantAnalysis, LogisticRegression, "
                "RandomForest, HistGradientBoosting and soft-voting ensembles of them"
            )

    def __call__(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, f = Xs.shape
        # Tree explainers re-run the model to check additivity; the tests check it instead, so
        # that a service explaining every request pays for one model evaluation, not two.
        kw = {"check_additivity": False} if self._is_tree else {}
        raw = self._explainer.shap_values(Xs, **kw)
        values = _as_3d(raw, n, f)
        base = np.atleast_1d(np.asarray(self._explainer.expected_value, dtype=np.float64)).reshape(-1)
        if values.shape[2] == 1 and len(self.classes) == 2:
            values, base = _symmetric_binary(values[:, :, 0], base[0])
        return values, np.broadcast_to(base, (n, values.shape[2])).copy()


class PipelineShap:
    """Explain a fitted vibe-check pipeline (or soft-voting ensemble of pipelines); build once,
    call on many row batches.

    Parameters
    ----------
    estimator : fitted Pipeline or VotingClassifier
        ``scaler -> classifier`` pipelines, or a soft ``VotingClassifier`` over them (members may
        be wrapped in ``FrozenEstimator``).
    n_classes : int
        Number of classes; models fitted on a subset of them (a fold missing a class) get zero
        contributions for the missing ones.
    background : ndarray, optional
        Raw training rows; masker of the linear explainer (tree explainers do not need them), and
        the rows on which a logit model's softmax link is checked.
    output : {"native", "probability"}
        See :data:`OUTPUT_SPACES`. A soft-voting ensemble is always explained in probability space.

    Raises
    ------
    ExplanationError
        For a classifier with no SHAP route, or a linear (or boosted) one whose ``predict_proba``
        is not the softmax (binary: sigmoid) of its ``decision_function``.

    Examples
    --------
    >>> ps = PipelineShap(pipeline, n_classes=8, background=extra["background"])  # doctest: +SKIP
    >>> values, base = ps(X[:10])  # doctest: +SKIP
    >>> values.shape, ps.space  # doctest: +SKIP
    ((10, 942, 8), 'log-odds')
    """

    def __init__(self, estimator, *, n_classes: int, background: np.ndarray | None = None, output: str = "native"):
        if output not in OUTPUT_SPACES:
            raise ValueError(f"unknown output {output!r}; choose from {OUTPUT_SPACES}")
        self.n_classes = n_classes
        est = _unfreeze(estimator)
        self._groups = None
        if type(est).__name__ == "GroupedClassifier":
            # A group's probability is the sum of its classes': so are its probability-space SHAP
            # values (SHAP is linear in the model output), exactly.
            group_of = np.asarray(est.group_of, dtype=int)
            self.members = [PipelineShap(est.estimator_, n_classes=group_of.size, background=background, output="probability")]
            self.weights = np.ones(1)
            self._groups = (group_of[:, None] == np.asarray(est.classes_, dtype=int)[None, :]).astype(np.float64)
            self.space = "probability"
            self.method = "sum over each group's classes of: " + self.members[0].method
            return
        if type(est).__name__ == "VotingClassifier":
            if getattr(est, "voting", "soft") != "soft":
                raise ExplanationError("only soft-voting ensembles can be explained (hard voting has no probabilities)")
            self.members = [PipelineShap(m, n_classes=n_classes, background=background, output="probability")
                            for m in est.estimators_]
            w = np.ones(len(self.members)) if est.weights is None else np.asarray(est.weights, dtype=np.float64)
            self.weights = w / w.sum()
            self.space = "probability"
            self.method = ("soft-voting ensemble: weighted mean of the members' probability-space SHAP values ("
                           + "; ".join(m.method for m in self.members) + ")")
            return
        self.members = None
        steps = est.steps if hasattr(est, "steps") else [("model", est)]
        self._transform = est[:-1] if len(steps) > 1 else None
        clf = steps[-1][1]
        n_features = getattr(clf, "n_features_in_", None) or (background.shape[1] if background is not None else 0)
        bg = None
        if background is not None:
            bg = np.asarray(background, dtype=np.float64)
            bg = self._transform.transform(bg) if self._transform is not None else bg
        self._clf = _ClassifierShap(clf, bg, n_features)
        self._to_probability = output == "probability" and self._clf.space == "log-odds"
        self.space = "probability" if output == "probability" else self._clf.space
        self.method = self._clf.method + (" -> probability via the softmax path Jacobian" if self._to_probability else "")

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values (n, features, n_classes) and base values (n, n_classes) of raw rows ``X``."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.members is not None:
            parts = [m(X) for m in self.members]
            values = sum(w * v for w, (v, _) in zip(self.weights, parts))
            base = sum(w * b for w, (_, b) in zip(self.weights, parts))
            if self._groups is not None:
                values, base = values @ self._groups, base @ self._groups
            return values, base
        return self._single_model(X)

    def _single_model(self, X: np.ndarray, *, mean_of_rows: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One model's values of raw rows, in its native space and then the output space; with
        ``mean_of_rows``, the native values' mean over the rows (one answer, see :meth:`combined`)."""
        Xs = self._transform.transform(X) if self._transform is not None else X
        values, base = self._clf(Xs)
        if mean_of_rows:
            values, base = values.mean(axis=0, keepdims=True), base.mean(axis=0, keepdims=True)
        if self._to_probability:
            values, base = logits_to_probability_shap(values, base)
        return self._align(values, base)

    @property
    def combines_exactly(self) -> bool:
        """Whether :meth:`combined` explains the normalised geometric mean of several rows'
        probabilities exactly: true for a single logit-space model (softmax link, checked at
        construction), false for the forest, a soft-voting ensemble or grouped classes."""
        return self.members is None and self._clf.space == "log-odds"

    def combined(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values (1, features, n_classes) and base values (1, n_classes) of one answer
        made from several rows ``X``: a clip and its test-time speed copies.

        The answer is the normalised geometric mean of the rows' probabilities. For a softmax
        model that is ``softmax(mean of the rows' logits)``, and SHAP values are linear in the
        explained output, so the mean of the rows' logit-space values explains it exactly (it is
        then carried into probability space as one row would be; see :attr:`combines_exactly`).
        Other models have no such identity: the rows' probability-space values are averaged,
        which explains the *arithmetic* mean of their probabilities, an approximation.

        Examples
        --------
        >>> values, base = ps.combined(model.clip_rows(y)[0])  # doctest: +SKIP
        >>> values.shape  # doctest: +SKIP
        (1, 942, 8)
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if not self.combines_exactly:
            values, base = self(X)
            return values.mean(axis=0, keepdims=True), base.mean(axis=0, keepdims=True)
        return self._single_model(X, mean_of_rows=True)

    def _align(self, values: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        classes = self._clf.classes
        if values.shape[2] == self.n_classes:
            return values, base
        # A model fitted without some classes: its columns go to their encoded positions.
        full_v = np.zeros((*values.shape[:2], self.n_classes))
        full_b = np.zeros((base.shape[0], self.n_classes))
        idx = classes.astype(int)
        full_v[:, :, idx], full_b[:, idx] = values, base
        return full_v, full_b


def shap_values(
    estimator,
    X: np.ndarray,
    *,
    feature_names: Sequence[str],
    classes: Sequence[str],
    background: np.ndarray | None = None,
    output: str = "native",
    model: str = "",
    y_true: np.ndarray | None = None,
) -> ShapResult:
    """SHAP values of raw rows ``X`` for a fitted pipeline or soft-voting ensemble.

    Parameters
    ----------
    estimator : fitted Pipeline or VotingClassifier
    X : ndarray, shape (n, features)
        Raw (unscaled) feature rows, in ``feature_names`` order.
    feature_names, classes : sequence of str
        ``classes`` in the encoded order of the model's outputs.
    background : ndarray, optional
        Raw training rows (the bundle's ``extra["background"]``).
    output : {"native", "probability"}
        See the module docstring.

    Returns
    -------
    ShapResult
        ``values`` always has shape (n, features, classes), also for binary models.

    Examples
    --------
    >>> res = shap_values(trainer.estimators_["logreg"], X[:20], feature_names=trainer.feature_names_in_,
    ...                   classes=trainer.classes_)  # doctest: +SKIP
    >>> np.allclose(res.output, trainer.estimators_["logreg"].decision_function(X[:20]))  # doctest: +SKIP
    True
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if X.shape[1] != len(feature_names):
        raise ExplanationError(f"X has {X.shape[1]} columns, the model has {len(feature_names)} features")
    t0 = time.perf_counter()
    ps = PipelineShap(estimator, n_classes=len(classes), background=background, output=output)
    values, base = ps(X)
    return ShapResult(values=values, base_values=base, data=X, feature_names=list(feature_names),
                      classes=[str(c) for c in classes], space=ps.space, method=ps.method,
                      seconds=time.perf_counter() - t0, model=model, y_true=y_true)


def unsupported_reason(estimator, n_classes: int, background: np.ndarray | None = None) -> str | None:
    """Why ``estimator`` cannot be explained (None when it can).

    Parameters
    ----------
    estimator : fitted Pipeline or VotingClassifier
    n_classes : int
    background : ndarray, optional
        Raw training rows on which a logit model's softmax link is checked (without them, on the
        training mean only).

    Examples
    --------
    >>> unsupported_reason(trainer.estimators_["gradient_boosting"], 8)  # doctest: +SKIP
    'shap 0.51.0 cannot explain a 8-class GradientBoostingClassifier (...); use hist_gb, which it supports'
    >>> unsupported_reason(ovr_sgd_pipeline, 8, background=X[:100])  # doctest: +SKIP
    "no SHAP route for SGDClassifier: SGDClassifier's predict_proba is not the softmax ..."
    """
    try:
        PipelineShap(estimator, n_classes=n_classes, background=background)
    except ExplanationError as exc:
        return str(exc)
    return None
