"""Parallel feature extraction with joblib (any joblib backend, including dask's)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Sequence

import numpy as np
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from ..exceptions import VibeCheckError

__all__ = ["extract_many", "extract_one", "warm_up"]

_WARM: set[str] = set()  # feature definitions whose compiled kernels this process has used


def warm_up(extractor) -> None:
    """Run ``extractor`` once on a generated utterance in this process, before workers start.

    librosa's pitch and trimming kernels are compiled by numba and cached on disk as two files per
    kernel. Workers that compile the same kernel at once can leave a pair written by different
    processes, and every later process that loads it crashes with a segmentation fault (numba
    issue 10128, librosa issue 1998), for good. Compiled here first, the workers only read the
    cache. Costs one extraction per feature definition and process.
    """
    if extractor.config.hash in _WARM:
        return
    from ..data import synthesize_utterance

    sr = extractor.config.sample_rate
    try:
        extractor.extract(synthesize_utterance("neutral", sr=sr, duration=1.0), sr)
    except VibeCheckError:  # a definition that refuses this clip still compiled what it reached
        pass
    _WARM.add(extractor.config.hash)


def extract_one(extractor, source) -> tuple[str, np.ndarray | None, str | None]:
    """Extract one file (or an :class:`~vibe_check.data.AugmentedClip` of one); a failure is
    returned as a message instead of raised, so a batch goes on."""
    try:
        if hasattr(source, "load"):
            vector = extractor.extract(*source.load(extractor.config.sample_rate))
        else:
            vector = extractor.extract_file(source)
        return str(source), vector, None
    except Exception as exc:  # our own errors, but also a decoder bug, must not end a 1,000-file run
        return str(source), None, f"{type(exc).__name__}: {exc}"


def extract_many(
    extractor,
    paths: Sequence[str | os.PathLike],
    *,
    n_jobs: int = 1,
    backend: str | None = None,
    progress: bool = False,
    batch_size: int | str = "auto",
):
    """Run :func:`extract_one` over ``paths``; returns ``({str(path): vector}, {str(path): error})``."""
    paths = [p if hasattr(p, "load") else str(p) for p in paths]
    rows: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    if not paths:
        return rows, failures
    sequential = n_jobs == 1 and backend is None
    if not sequential:
        warm_up(extractor)
    backend_context = parallel_config(backend=backend) if backend else nullcontext()
    with tqdm(total=len(paths), desc="features", unit="file", disable=not progress) as bar, backend_context:
        if sequential:
            results = (extract_one(extractor, p) for p in paths)
        else:
            results = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=batch_size)(
                delayed(extract_one)(extractor, p) for p in paths
            )
        for path, vec, err in results:
            if err is None:
                rows[path] = vec
            else:
                failures[path] = err
            bar.update(1)
    return rows, failures
