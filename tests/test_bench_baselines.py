"""The baselines benchmark runs end to end on a generated corpus and caches what it extracts."""

from __future__ import annotations

import re
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest

from vibe_check.audio import load_audio
from vibe_check.data import synthesize_utterance, write_audio
from vibe_check.features._manifest import file_sha256

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_baselines

    return bench_baselines


def test_baselines_are_scored_on_the_same_folds_and_their_features_cached(bench, trained_models, tmp_path, capsys, monkeypatch):
    extracted = []

    def counting_recipe(paths):  # a cheap stand-in: the real recipe has its own test below
        extracted.extend(paths)
        return np.vstack([np.r_[m.mean(axis=1), m.std(axis=1)] for m in
                          (librosa.feature.mfcc(y=load_audio(p), sr=16000, n_mfcc=13) for p in paths)])

    title, _, models = bench.BASELINES["librosa"]
    monkeypatch.setitem(bench.BASELINES, "librosa", (title, counting_recipe, models))
    args = ["--data-dir", str(trained_models["corpus"]), "--folds", "3", "--augment", "speed_1.1",
            "--baselines", "librosa", "--cache-dir", str(tmp_path), "--n-jobs", "1"]

    assert bench.main(args) == 0
    out = capsys.readouterr().out
    n_files = len(list(Path(trained_models["corpus"]).rglob("*.wav")))
    assert len(extracted) == n_files
    assert (tmp_path / "baselines" / "librosa.parquet").is_file()
    summary = out.split("speaker-grouped folds")[-1]
    rows = re.findall(r"^(.+?)\s+(\d\.\d{3}) ± (\d\.\d{3})\s+\[([\d. ]+)\]", summary, flags=re.M)
    names = [r[0] for r in rows]
    assert names[:3] == ["mean/std librosa recipe (26) + random forest", "mean/std librosa recipe (26) + gradient boosting",
                         "mean/std librosa recipe (26) + logistic regression"]
    assert names[3].startswith("vibe-check features (") and names[4].startswith("vibe-check default")
    for _, mean, _, folds in rows:
        scores = [float(s) for s in folds.split()]
        assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
        assert abs(sum(scores) / 3 - float(mean)) < 1e-3

    # A second run reads every file from the cache, by content hash.
    files = pd.DataFrame({"path": sorted(map(str, Path(trained_models["corpus"]).rglob("*.wav")))})
    files["sha256"] = [file_sha256(p) for p in files["path"]]
    extracted.clear()
    again = bench.cached_features("librosa", counting_recipe, files, tmp_path, n_jobs=1)
    assert extracted == [] and again.shape == (n_files, 26)


def test_an_unknown_baseline_is_refused_by_name(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--baselines", "mfcc_magic"])
    assert "mfcc_magic" in capsys.readouterr().err


def test_the_librosa_recipe_gives_386_finite_features_per_file(bench, tmp_path):
    paths = [str(write_audio(tmp_path / f"{i}.wav", synthesize_utterance(emotion, sr=16000, seed=i), 16000))
             for i, emotion in enumerate(["angry", "sad"])]
    X = bench.librosa_recipe(paths)
    assert X.shape == (2, 386) and np.isfinite(X).all()
    assert not np.allclose(X[0], X[1])
