"""The demo (``python demo_custom_models.py``): end to end on generated speech, and safe for trained bundles."""

from __future__ import annotations

import argparse
import shutil

from vibe_check._demo import DEMO_SCRIPT, add_demo_arguments, foreign_bundles, run_demo
from vibe_check.cli import main
from vibe_check.data import GENERATED_SOURCE
from vibe_check.models import CustomEmotionModel, read_bundle_metadata


def _demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_demo_runs_end_to_end_and_may_run_again(tmp_path, capsys):
    out = tmp_path / "models"
    args = _demo_args("--output-dir", str(out), "--data-dir", str(tmp_path / "data" / "corpus"),
                      "--speakers", "3", "--takes", "1", "--n-jobs", "1", "--no-report")
    assert run_demo(args) == 0
    printed = capsys.readouterr().out
    assert "accuracy on unseen speakers" in printed and "speaker-normalised mode" in printed
    best = out / "best_emotion_model.pkl"
    assert CustomEmotionModel(best).classes_.size == 8
    # Its bundles say they were trained on generated speech, and the CLI tells whoever uses them.
    assert CustomEmotionModel(best).trained_on_generated_speech
    assert read_bundle_metadata(best)["data_source"] == GENERATED_SOURCE
    clip = next((tmp_path / "data" / "corpus").rglob("*.wav"))
    assert main(["predict", "--model", str(best), str(clip)]) == 0
    assert "trained by the demo on generated speech" in capsys.readouterr().err
    command = read_bundle_metadata(best)["command"]
    assert command.startswith(f"{DEMO_SCRIPT} --output-dir {out}")
    assert foreign_bundles(out) == {}  # its own bundles: a second run may replace them


def test_the_demo_refuses_to_replace_bundles_it_did_not_train(trained_models, tmp_path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    for path in (trained_models["best"], trained_models["best"].with_suffix(".json")):
        shutil.copy(path, out / path.name)
    (out / "orphan_model.pkl").write_bytes(b"no metadata beside it")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    corpus = tmp_path / "data" / "corpus"
    assert run_demo(_demo_args("--output-dir", str(out), "--data-dir", str(corpus))) == 2
    err = capsys.readouterr().err
    assert not CustomEmotionModel(trained_models["best"]).trained_on_generated_speech  # nobody said so
    assert "2 bundle(s) the demo did not train" in err and "--overwrite" in err and "best_emotion_model.pkl" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not corpus.exists()  # refused before any work
