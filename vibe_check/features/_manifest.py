"""The feature manifest: one Parquet row per file with its metadata and named features.

Extraction is cached per file, keyed by the SHA-256 of the file's bytes and the feature
definition hash, in Parquet shards written atomically as work progresses. A second run extracts
nothing, an interrupted run resumes where it stopped, and a file that fails is recorded with its
reason while every other file is processed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from joblib import effective_n_jobs
from tqdm.auto import tqdm

from .._atomic import atomic_path
from ..data import AUGMENTATIONS, ORIGINAL, AugmentedClip, RavdessInfo, list_audio_files, parse_filename
from ..exceptions import DatasetError, FilenameError, VibeCheckError
from ._config import FeatureConfig
from ._extractor import FeatureExtractor
from ._parallel import extract_many

__all__ = ["build_manifest", "load_manifest", "feature_columns", "METADATA_COLUMNS", "file_sha256", "manifest_errors", "write_manifest"]

log = logging.getLogger(__name__)

METADATA_COLUMNS = ["path", "file", "sha256", "augmentation", *RavdessInfo.__dataclass_fields__]
_META_KEY = b"vibe_check"
CHUNK = 48  # files per cache shard: small enough to lose little on interruption


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


class _FeatureCache:
    """Per-file features keyed by content hash, in append-only Parquet shards for one config."""

    def __init__(self, root: Path, config: FeatureConfig, feature_names: list[str]):
        self.dir = Path(root) / config.hash
        self.dir.mkdir(parents=True, exist_ok=True)
        self.feature_names = feature_names
        self.vectors: dict[str, np.ndarray] = {}
        self.errors: dict[str, str] = {}
        for shard in sorted(self.dir.glob("shard-*.parquet")):
            try:
                t = pq.read_table(shard).to_pandas()
            except Exception as exc:  # a damaged shard costs a re-extraction, never the run
                log.warning("ignoring unreadable cache shard %s: %s", shard, exc)
                continue
            for row in t.itertuples(index=False):
                if row.error:
                    self.errors[row.sha256] = row.error
                else:
                    self.vectors[row.sha256] = np.asarray(row.features, dtype=np.float64)

    def __contains__(self, key: str) -> bool:
        return key in self.vectors or key in self.errors

    def add(self, results: dict[str, tuple[np.ndarray | None, str | None]]) -> None:
        """Keep ``{key: (vector, error)}`` for this run; on disk, the vectors and the input's own failures."""
        for k, (vec, err) in results.items():
            if err:
                self.errors[k] = err
            else:
                self.vectors[k] = vec
        # A failure of the input itself (undecodable, silent, too short) is cached; anything else
        # (out of memory, a codec missing today, a bug) is tried again on the next run.
        keys = [k for k, (_, err) in results.items() if not err or _is_input_error(err)]
        if not keys:
            return
        table = pa.table(
            {
                "sha256": keys,
                "features": [None if results[k][0] is None else results[k][0].tolist() for k in keys],
                "error": [results[k][1] or "" for k in keys],
            }
        )
        _atomic_write_table(table, self.dir / f"shard-{uuid.uuid4().hex}.parquet")


def _is_input_error(message: str) -> bool:
    """Whether an :func:`~._parallel.extract_one` failure message names one of vibe-check's own
    errors, which say what is wrong with the input."""
    return message.split(":", 1)[0] in _INPUT_ERRORS


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(c) for c in cls.__subclasses__()))


_INPUT_ERRORS = {c.__name__ for c in _subclasses(VibeCheckError)}


def _metadata_row(path: Path) -> tuple[dict, str | None]:
    try:
        return parse_filename(path).as_dict(), None
    except FilenameError as exc:
        return {}, str(exc)


def build_manifest(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    out_path: str | os.PathLike | None = None,
    *,
    config: FeatureConfig | None = None,
    n_jobs: int = 1,
    backend: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    require_labels: bool = True,
    augment: Sequence[str] = (),
) -> pd.DataFrame:
    """Extract features for every audio file and write the manifest (Parquet).

    Parameters
    ----------
    data : path or sequence of paths
        A folder scanned recursively for audio files, or a list of files.
    out_path : path, optional
        Where to write the manifest (``.parquet``). Failures go to ``<stem>.errors.csv`` beside it.
    config : FeatureConfig, optional
        The feature definition; its hash is stored in the manifest.
    n_jobs : int
        Parallel workers (joblib).
    backend : str, optional
        A joblib backend name, for example ``"dask"`` inside a ``distributed.Client`` context.
    cache_dir : path, optional
        Feature cache location; by default ``.feature_cache`` beside ``out_path`` (or under
        ``./data`` when there is no ``out_path``).
    progress : bool
        Show a progress bar.
    require_labels : bool
        Skip (and record) files whose names are not RAVDESS names; with ``False`` they are kept
        with empty metadata.
    augment : sequence of str
        Also extract one augmented copy of every file per name given (keys of
        :data:`~vibe_check.data.AUGMENTATIONS`: ``"noise"``, ``"babble"``, ``"telephone"``,
        ``"speed_0.9"``...). Copies are seeded from the file's hash, cached like the originals, and get
        their own rows with the augmentation's name in the ``augmentation`` column (``"none"``
        for originals). Babble is made of other clips of the same speaker, so a copy never holds
        another speaker's voice and cross-validation stays speaker-independent.

    Returns
    -------
    DataFrame
        One row per file that worked (and per augmented copy): metadata columns then feature
        columns. ``df.attrs`` holds
        ``feature_names``, ``feature_config``, ``feature_hash`` and ``errors`` (records of
        ``path``, ``reason``; :func:`manifest_errors` gives them as a DataFrame).

    Examples
    --------
    >>> df = build_manifest("../shared/data/ravdess16k", "data/manifest.parquet", n_jobs=2)  # doctest: +SKIP
    >>> df[["emotion", "actor", "f0_std"]].head()  # doctest: +SKIP
    """
    cfg = config or FeatureConfig()
    extractor = FeatureExtractor(cfg)
    if isinstance(data, (str, os.PathLike)):
        paths = list_audio_files(data)
    else:
        paths = [Path(p) for p in data]
    if not paths:
        raise DatasetError(f"no audio files found in {data}")
    out = Path(out_path) if out_path is not None else None
    cache_root = Path(cache_dir) if cache_dir else ((out.parent if out else Path("data")) / ".feature_cache")
    cache = _FeatureCache(cache_root, cfg, extractor.feature_names)

    errors: list[dict] = []
    entries: list[tuple[Path, dict, str]] = []
    for p in paths:
        meta, reason = _metadata_row(p)
        if reason and require_labels:
            errors.append({"path": str(p), "reason": reason})
            continue
        if not p.is_file():
            errors.append({"path": str(p), "reason": f"no such file: {p}"})
            continue
        entries.append((p, meta, file_sha256(p)))

    unknown = [a for a in augment if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {', '.join(AUGMENTATIONS)}")
    sources = _speaker_clips(entries) if augment else {}
    copies = {}  # cache key -> the copy: it depends on the file and on the other clips of its speaker
    for p, meta, file_key in entries:
        others = [(o, h) for o, h in sources.get(meta.get("actor"), ()) if o != str(p)]
        digest = hashlib.sha256("".join(sorted(h for _, h in others)).encode()).hexdigest()[:16]
        for kind in augment:
            seed = AugmentedClip.cache_key(file_key, kind)
            copies[p, kind] = (f"{seed}~{digest}", AugmentedClip(str(p), kind, seed, tuple(o for o, _ in others)))
    # (path, metadata, file hash, cache key, augmentation): the originals, then every copy.
    rows = [(p, meta, key, key, ORIGINAL) for p, meta, key in entries]
    rows += [(p, meta, key, copies[p, kind][0], kind) for p, meta, key in entries for kind in augment]
    todo: dict[str, str | AugmentedClip] = {}
    for p, meta, _, key, kind in rows:
        if key in cache or key in todo:
            continue
        todo[key] = str(p) if kind == ORIGINAL else copies[p, kind][1]
    log.info("%d files, %d copies, %d cached, %d to extract", len(entries), len(rows) - len(entries), len(rows) - len(todo), len(todo))
    items = list(todo.items())
    # One cache shard per CHUNK files per worker; a cluster backend's size is unknown here, so
    # n_jobs=-1 counts the local cores there.
    workers = effective_n_jobs(n_jobs) if backend is None or n_jobs > 0 else (os.cpu_count() or 1)
    step = CHUNK * max(1, workers)
    with tqdm(total=len(items), desc="features", unit="file", disable=not progress or not items) as bar:
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            done, failures = extract_many(extractor, [p for _, p in chunk], n_jobs=n_jobs, backend=backend)
            cache.add({key: (done.get(str(p)), failures.get(str(p))) for key, p in chunk})
            bar.update(len(chunk))

    records, vectors = [], []
    for p, meta, file_key, key, kind in rows:
        if key in cache.errors:
            where = str(p) if kind == ORIGINAL else f"{p} ({kind} copy)"
            errors.append({"path": where, "reason": cache.errors[key]})
            continue
        records.append({"path": str(p), "file": p.name, "sha256": file_key, "augmentation": kind, **meta})
        vectors.append(cache.vectors[key])
    meta_df = pd.DataFrame(records, columns=METADATA_COLUMNS)
    feat_df = pd.DataFrame(np.vstack(vectors) if vectors else np.empty((0, len(extractor.feature_names))), columns=extractor.feature_names)
    df = pd.concat([meta_df, feat_df], axis=1)
    errors_df = pd.DataFrame(errors, columns=["path", "reason"])
    _set_attrs(df, cfg, extractor.feature_names, errors_df)
    if errors:
        first = errors[0]["reason"] if errors[0]["reason"].startswith(Path(errors[0]["path"]).name) else \
            f"{errors[0]['path']}: {errors[0]['reason']}"
        log.warning("%d file(s) could not be used, the first: %s", len(errors), first)
    if out is not None:
        write_manifest(df, out)
    return df


def _speaker_clips(entries) -> dict:
    """Actor -> ``(path, content hash)`` of that actor's clips (babble for a clip is made from its
    own speaker). Clips without a known actor get none: mixing them would mix strangers."""
    by_actor: dict = {}
    for p, meta, sha in entries:
        if meta.get("actor") is not None:
            by_actor.setdefault(meta.get("actor"), []).append((str(p), sha))
    return by_actor


def _set_attrs(df: pd.DataFrame, cfg: FeatureConfig, names: list[str], errors: pd.DataFrame) -> None:
    # attrs hold plain Python values only: pandas compares attrs when combining frames.
    df.attrs.update(feature_names=list(names), feature_config=cfg.to_dict(), feature_hash=cfg.hash,
                    errors=errors.to_dict("records"))


def manifest_errors(df: pd.DataFrame) -> pd.DataFrame:
    """The files that could not be used when ``df`` was built: ``path`` and ``reason``."""
    return pd.DataFrame(df.attrs.get("errors", []), columns=["path", "reason"])


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a manifest atomically, with its feature definition in the Parquet metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = df.reset_index(drop=True)
    plain.attrs = {}  # the definition goes into the schema metadata below, in a stable form
    table = pa.Table.from_pandas(plain, preserve_index=False)
    info = {
        "feature_names": df.attrs["feature_names"],
        "feature_config": df.attrs["feature_config"],
        "feature_hash": df.attrs["feature_hash"],
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(info).encode()})
    _atomic_write_table(table, path)
    errors = manifest_errors(df)
    err_path = path.with_suffix(".errors.csv")
    if len(errors):
        with atomic_path(err_path) as tmp:
            errors.to_csv(tmp, index=False)
    elif err_path.exists():
        err_path.unlink()


def load_manifest(path: str | os.PathLike, *, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Read a manifest written by :func:`build_manifest`.

    Raises
    ------
    DatasetError
        When the file is missing, is not a manifest, or was built with another feature
        definition than ``config`` (when given).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"manifest not found: {path}")
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DatasetError(f"{path} is not a readable Parquet manifest: {exc}") from None
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise DatasetError(f"{path} has no vibe-check feature definition; rebuild it with build_manifest")
    info = json.loads(raw)
    if config is not None and info["feature_hash"] != config.hash:
        raise DatasetError(
            f"{path} was built with feature definition {info['feature_hash']}, not {config.hash}; rebuild it"
        )
    df = table.to_pandas()
    err_path = path.with_suffix(".errors.csv")
    errors = pd.read_csv(err_path) if err_path.exists() else pd.DataFrame(columns=["path", "reason"])
    _set_attrs(df, FeatureConfig.from_dict(info["feature_config"]), info["feature_names"], errors)
    return df


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The feature column names of a manifest, in vector order."""
    names = df.attrs.get("feature_names")
    if names:
        return list(names)
    return [c for c in df.columns if c not in METADATA_COLUMNS]
