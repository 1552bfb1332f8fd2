"""The feature manifest: content-hash cache, resumption, error table, parallel and Dask backends, CLI."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibe_check.cli import main
from vibe_check.data import list_audio_files, parse_filename
from vibe_check.exceptions import DatasetError
from vibe_check.features import (
    METADATA_COLUMNS,
    FeatureConfig,
    FeatureExtractor,
    _manifest,
    build_manifest,
    describe_features,
    feature_columns,
    file_sha256,
    load_manifest,
    manifest_errors,
)

N_FILES = 45  # 3 actors x (neutral at normal intensity + 7 emotions x 2 intensities), one take


# -- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(synthetic_corpus, tmp_path_factory) -> tuple[pd.DataFrame, Path, Path]:
    """The manifest of the whole generated corpus, built serially: (df, manifest path, cache dir)."""
    root = tmp_path_factory.mktemp("reference")
    out, cache = root / "manifest.parquet", root / "cache"
    df = build_manifest(synthetic_corpus, out, cache_dir=cache, progress=False)
    return df, out, cache


@pytest.fixture(scope="module")
def subset(synthetic_corpus) -> list[Path]:
    """Eight files spread over the three actors, for the runs that only need to agree with the reference."""
    return list_audio_files(synthetic_corpus)[::6]


@pytest.fixture
def extract_calls(monkeypatch) -> list[str]:
    """Paths passed to ``FeatureExtractor.extract_file`` during the test (in-process runs only)."""
    calls: list[str] = []
    original = FeatureExtractor.extract_file

    def counting(self, path):
        calls.append(str(path))
        return original(self, path)

    monkeypatch.setattr(FeatureExtractor, "extract_file", counting)
    return calls


def rows_of(df: pd.DataFrame, paths) -> pd.DataFrame:
    """The rows of ``df`` for ``paths``, in that order, with a fresh index."""
    return df.set_index("path").loc[[str(p) for p in paths]].reset_index()[df.columns]


def assert_same_manifest(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    # Every run executes the same code on the same bytes; a 1e-9 relative tolerance allows only
    # for a different BLAS thread split in worker processes, nothing a real difference could hide in.
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected.reset_index(drop=True), check_exact=False, rtol=1e-9, atol=1e-12)
    assert actual.attrs["feature_names"] == expected.attrs["feature_names"]
    assert actual.attrs["feature_hash"] == expected.attrs["feature_hash"]


# -- the manifest ----------------------------------------------------------------------------------
def test_rows_and_metadata(reference, synthetic_corpus):
    df, out, _ = reference
    names = FeatureExtractor().feature_names
    assert out.is_file()
    assert len(df) == N_FILES
    assert list(df.columns) == METADATA_COLUMNS + names
    assert sorted(df.path) == sorted(str(p) for p in list_audio_files(synthetic_corpus))
    assert manifest_errors(df).empty and not out.with_suffix(".errors.csv").exists()
    assert df.attrs["feature_names"] == names == feature_columns(df)
    assert df.attrs["feature_hash"] == FeatureConfig().hash
    assert df.attrs["feature_config"] == FeatureConfig().to_dict()

    counts = df.groupby("emotion").size()
    assert counts["neutral"] == 3 and (counts.drop("neutral") == 6).all() and len(counts) == 8
    assert df.groupby(["actor", "gender"]).size().to_dict() == {(1, "male"): 15, (2, "female"): 15, (3, "male"): 15}
    for row in df.itertuples(index=False):
        info = parse_filename(row.path).as_dict()
        assert {k: getattr(row, k) for k in info} == info
        assert row.file == Path(row.path).name
    sample = df.sample(3, random_state=0)
    assert all(file_sha256(p) == h for p, h in zip(sample.path, sample.sha256))
    assert df.sha256.is_unique
    features = df[names].to_numpy()
    assert features.dtype == np.float64 and np.isfinite(features).all()
    first = df.iloc[0]
    np.testing.assert_allclose(first[names].to_numpy(float), FeatureExtractor().extract_file(first.path), rtol=1e-12)
    # The labels are in the features: angry clips are higher pitched than sad ones of the same actor.
    f0 = df.groupby(["actor", "emotion"]).f0_mean.mean().unstack()
    assert (f0["angry"] > f0["sad"]).all()


def test_parquet_round_trip_keeps_the_definition(reference):
    df, out, _ = reference
    loaded = load_manifest(out)
    pd.testing.assert_frame_equal(loaded, df)
    for key in ("feature_names", "feature_hash", "feature_config"):
        assert loaded.attrs[key] == df.attrs[key], key
    assert feature_columns(loaded) == df.attrs["feature_names"]
    assert manifest_errors(loaded).empty
    assert len(load_manifest(out, config=FeatureConfig())) == N_FILES


def test_load_manifest_refuses_another_definition_or_a_foreign_file(reference, tmp_path):
    _, out, _ = reference
    with pytest.raises(DatasetError, match="another feature definition|rebuild"):
        load_manifest(out, config=FeatureConfig(n_mfcc=13))
    with pytest.raises(DatasetError, match="not found"):
        load_manifest(tmp_path / "missing.parquet")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), plain)
    with pytest.raises(DatasetError, match="no vibe-check feature definition"):
        load_manifest(plain)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="not a readable Parquet"):
        load_manifest(junk)


def test_linked_actor_folders_are_followed(synthetic_corpus, tmp_path):
    # A subset of a corpus made of links to its actor folders (to hold speakers out).
    subset = tmp_path / "subset"
    subset.mkdir()
    (subset / "Actor_01").symlink_to(synthetic_corpus / "Actor_01", target_is_directory=True)
    (subset / "again").symlink_to(subset, target_is_directory=True)  # a loop is walked once
    files = list_audio_files(subset)
    expected = list_audio_files(synthetic_corpus / "Actor_01")
    assert [p.name for p in files] == [p.name for p in expected] and len(files) == 15
    # A write in progress (atomic_path's hidden temporary file) is not a clip.
    (subset / "Actor_02").mkdir()
    shutil.copy(expected[0], subset / "Actor_02" / f".{expected[0].name}.123.ab.tmp.wav")
    assert len(list_audio_files(subset)) == 15


# -- the cache -------------------------------------------------------------------------------------
def test_second_run_extracts_nothing(reference, synthetic_corpus, extract_calls, tmp_path):
    df, _, cache = reference
    again = build_manifest(synthetic_corpus, tmp_path / "again.parquet", cache_dir=cache, progress=False)
    assert extract_calls == []
    assert_same_manifest(again, df)


def test_cache_is_keyed_by_content_and_definition(reference, synthetic_corpus, extract_calls, tmp_path):
    """A renamed copy of a clip is not re-extracted (same bytes); another definition re-extracts."""
    df, _, cache = reference
    source = list_audio_files(synthetic_corpus)[0]
    copy = tmp_path / "Actor_01" / source.name
    copy.parent.mkdir()
    shutil.copy(source, copy)
    first = build_manifest([copy], None, cache_dir=cache, progress=False)
    assert extract_calls == []
    np.testing.assert_array_equal(first[df.attrs["feature_names"]].to_numpy(), rows_of(df, [source])[df.attrs["feature_names"]].to_numpy())
    other = build_manifest([copy], None, config=FeatureConfig(groups=("prosody",)), cache_dir=cache, progress=False)
    assert extract_calls == [str(copy)]
    assert other.attrs["feature_names"] == describe_features(FeatureConfig(groups=("prosody",))).name.tolist()


def test_interrupted_run_resumes_with_only_the_rest(synthetic_corpus, monkeypatch, tmp_path):
    files = list_audio_files(synthetic_corpus)[:12]
    monkeypatch.setattr(_manifest, "CHUNK", 4)  # the cache is saved every 4 files
    calls: list[str] = []
    original = FeatureExtractor.extract_file

    def interrupted_at_7th(self, path):
        calls.append(str(path))
        if len(calls) == 7:
            raise KeyboardInterrupt  # like Ctrl-C: not an Exception, so no per-file error record
        return original(self, path)

    monkeypatch.setattr(FeatureExtractor, "extract_file", interrupted_at_7th)
    out, cache = tmp_path / "manifest.parquet", tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        build_manifest(files, out, cache_dir=cache, progress=False)
    assert not out.exists(), "an interrupted run must not leave a partial manifest"
    assert len(list((cache / FeatureConfig().hash).glob("shard-*.parquet"))) == 1  # files 1-4 saved

    calls.clear()
    monkeypatch.setattr(FeatureExtractor, "extract_file", lambda self, path: (calls.append(str(path)), original(self, path))[1])
    df = build_manifest(files, out, cache_dir=cache, progress=False)
    assert calls == [str(p) for p in files[4:]], "only the 8 files after the last saved shard are extracted"
    assert len(df) == 12 and df.path.tolist() == [str(p) for p in files]
    assert manifest_errors(df).empty


def test_an_unexpected_failure_is_reported_and_retried_on_the_next_run(synthetic_corpus, monkeypatch, tmp_path):
    files = list_audio_files(synthetic_corpus)[:3]
    original = FeatureExtractor.extract_file

    def out_of_memory_once(self, path):
        if str(path) == str(files[1]):
            raise MemoryError("no room today")
        return original(self, path)

    monkeypatch.setattr(FeatureExtractor, "extract_file", out_of_memory_once)
    df = build_manifest(files, None, cache_dir=tmp_path / "cache", progress=False)
    assert len(df) == 2 and "MemoryError: no room today" in manifest_errors(df).reason.iloc[0]
    monkeypatch.setattr(FeatureExtractor, "extract_file", original)
    assert len(build_manifest(files, None, cache_dir=tmp_path / "cache", progress=False)) == 3  # not cached as bad


def test_bad_files_go_to_the_errors_table(synthetic_corpus, extract_calls, tmp_path):
    good = list_audio_files(synthetic_corpus)[:3]
    data = tmp_path / "data"
    for p in good:
        (data / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, data / p.parent.name / p.name)
    bad_dir = data / "Actor_09"
    bad_dir.mkdir()
    corrupt = bad_dir / "03-01-05-01-01-01-09.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    empty = bad_dir / "03-01-03-01-01-01-09.wav"
    empty.touch()
    badly_named = bad_dir / "hello.wav"
    shutil.copy(good[0], badly_named)
    out = tmp_path / "manifest.parquet"

    df = build_manifest(data, out, cache_dir=tmp_path / "cache", progress=False)
    assert sorted(df.file) == sorted(p.name for p in good)
    assert np.isfinite(df[df.attrs["feature_names"]].to_numpy()).all()
    errors = manifest_errors(df).set_index("path").reason
    assert sorted(errors.index) == sorted(map(str, (corrupt, empty, badly_named)))
    assert "AudioDecodeError" in errors[str(corrupt)] and "could not be decoded" in errors[str(corrupt)]
    assert "EmptyAudioError" in errors[str(empty)] and "0 bytes" in errors[str(empty)]
    assert "7 dash-separated fields" in errors[str(badly_named)]
    assert str(badly_named) not in extract_calls, "a file without labels is not worth extracting"
    written = pd.read_csv(out.with_suffix(".errors.csv"))
    assert sorted(written.path) == sorted(errors.index)
    assert manifest_errors(load_manifest(out)).set_index("path").reason.to_dict() == errors.to_dict()

    # Failures are cached with the features: a rerun neither re-extracts nor forgets them.
    extract_calls.clear()
    again = build_manifest(data, out, cache_dir=tmp_path / "cache", progress=False)
    assert extract_calls == []
    assert manifest_errors(again).set_index("path").reason.to_dict() == errors.to_dict()

    # Without required labels the badly named file is kept, with empty metadata.
    unlabeled = build_manifest(data, None, cache_dir=tmp_path / "cache", progress=False, require_labels=False)
    row = unlabeled.set_index("path").loc[str(badly_named)]
    assert pd.isna(row.emotion) and row.file == "hello.wav"


# -- parallel backends -----------------------------------------------------------------------------
def test_two_jobs_equal_one(reference, subset, tmp_path):
    df = build_manifest(subset, None, n_jobs=2, cache_dir=tmp_path / "cache", progress=False)
    assert_same_manifest(df, rows_of(reference[0], subset))


def test_dask_backend_equals_local(reference, subset, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the Dask backend needs the 'distributed' extra")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster, distributed.Client(cluster), distributed.get_task_stream() as tasks:
        df = build_manifest(subset, None, backend="dask", n_jobs=-1, cache_dir=tmp_path / "cache", progress=False)
    assert tasks.data, "the extraction should have run as Dask tasks, not locally"
    assert_same_manifest(df, rows_of(reference[0], subset))


# -- the command line ------------------------------------------------------------------------------
def test_cli_writes_the_manifest(reference, synthetic_corpus, tmp_path, capsys):
    df, _, cache = reference
    out = tmp_path / "cli" / "manifest.parquet"
    code = main(["features", "--data-dir", str(synthetic_corpus), "--out", str(out), "--cache-dir", str(cache), "--no-progress"])
    assert code == 0
    assert out.is_file()
    assert_same_manifest(load_manifest(out), df)
    stdout = capsys.readouterr().out
    assert f"{N_FILES} files x {len(df.attrs['feature_names'])} features" in stdout and df.attrs["feature_hash"] in stdout


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    code = main(["features", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.parquet"), "--no-progress"])
    assert code == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "m.parquet").exists()


def test_cli_describe_prints_the_feature_table(tmp_path, capsys):
    assert main(["features", "--data-dir", str(tmp_path), "--describe"]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(printed, describe_features())


def test_cli_describe_needs_no_data_dir(capsys):
    assert main(["features", "--describe"]) == 0
