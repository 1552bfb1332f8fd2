"""The ``vibe-check`` command line: subcommands are defined (and their stages imported) on demand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from vibe_check.cli import COMMANDS, build_parser, main

_LIST_HEAVY_MODULES = """
import sys
from vibe_check.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("heavy:" + ",".join(sorted(m for m in ("sklearn", "scipy.signal", "matplotlib", "librosa", "vibe_check.training._cli")
                      if m in sys.modules)))
"""


def _heavy_modules_after(argv: list[str]) -> str:
    """Run ``main(argv)`` in a fresh interpreter; the heavy modules it imported, comma-separated."""
    out = subprocess.run([sys.executable, "-c", _LIST_HEAVY_MODULES.format(argv=argv)], capture_output=True,
                         text=True, check=True)
    return out.stdout.rsplit("heavy:", 1)[1].strip()


def test_top_level_help_imports_no_stage():
    assert _heavy_modules_after(["--help"]) == ""


def test_a_subcommand_imports_its_own_stage():
    assert "vibe_check.training._cli" in _heavy_modules_after(["-v", "train", "--help"])


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (*_, help_text) in COMMANDS.items():
        assert name in out and help_text in out


def test_an_unknown_command_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        main(["trian"])
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_build_parser_defines_every_command_by_default():
    parser = build_parser()
    args = parser.parse_args(["train", "--models", "lda"])
    assert args.command == "train" and args.models == ["lda"]
    with pytest.raises(ValueError, match="unknown command"):
        build_parser(["trian"])


def test_output_piped_into_a_reader_that_stops_early():
    # `vibe-check features --describe | head -1`: the reader leaving is not an error.
    proc = subprocess.run(f'"{sys.executable}" -m vibe_check.cli features --describe | head -1', shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("name,group,description")
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr


# -- the commands' surface: options checked early, clear messages, one output shape -----------------
def _clips_of_one_actor(trained_models, n: int) -> list[str]:
    manifest = trained_models["manifest"]
    return manifest.loc[manifest["actor"] == manifest["actor"].iloc[0], "path"].tolist()[:n]


def _folder_of_clips(trained_models, folder: Path, n: int = 2) -> Path:
    """``folder`` holding copies of ``n`` clips of one actor of the fixture's corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    for clip in _clips_of_one_actor(trained_models, n):
        shutil.copy(clip, folder / Path(clip).name)
    return folder


def _copy_bundle(bundle: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in (bundle, bundle.with_suffix(".json")):
        shutil.copy(p, folder / p.name)
    return folder / bundle.name


@pytest.fixture(scope="module")
def speaker_bundle(trained_models, tmp_path_factory) -> Path:
    """A speaker-normalised LDA bundle trained on the shared generated corpus."""
    from vibe_check.training import EmotionTrainer

    trainer = EmotionTrainer(models=["lda"], n_splits=3, speaker_normalization=True).fit(trained_models["manifest"])
    return trainer.save_bundles(tmp_path_factory.mktemp("cli_speaker"), command="pytest")["best"]


@pytest.fixture(scope="module")
def tta_bundle(trained_models, tmp_path_factory) -> Path:
    """An LDA bundle whose training data had speed copies (each row the clip's own features), so
    that it can be used with test-time augmentation."""
    from vibe_check.training import EmotionTrainer

    manifest = trained_models["manifest"]
    copies = [manifest.assign(augmentation=kind) for kind in ("speed_0.9", "speed_1.1")]
    with_copies = pd.concat([manifest, *copies], ignore_index=True)
    with_copies.attrs = dict(manifest.attrs)
    trainer = EmotionTrainer(models=["lda"], n_splits=3).fit(with_copies)
    return trainer.save_bundles(tmp_path_factory.mktemp("cli_tta"), command="pytest")["best"]


# serve: the environment (surface review 2, 22)
@pytest.fixture
def clean_env(monkeypatch):
    import os

    for name in [v for v in os.environ if v.startswith("VIBE_CHECK_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_serve_settings_read_the_variables_named_after_the_options():
    from vibe_check.serving import ServeSettings

    s = ServeSettings.from_env({"VIBE_CHECK_TIMEOUT": "5", "VIBE_CHECK_MAX_UPLOAD_MB": "1", "VIBE_CHECK_NO_DRIFT": "1",
                                "VIBE_CHECK_MAX_BATCH_FILES": "4", "VIBE_CHECK_EXPLAIN_TOP_K": "3"})
    assert (s.request_timeout_s, s.max_upload_bytes, s.drift, s.max_batch_files, s.explain_top_k) == (5.0, 1024 * 1024, False, 4, 3)
    # The fields' own names still work; flags take the usual words and refuse others.
    assert ServeSettings.from_env({"VIBE_CHECK_REQUEST_TIMEOUT_S": "6", "VIBE_CHECK_DRIFT": "off"}).drift is False
    with pytest.raises(ValueError, match="VIBE_CHECK_NO_DRIFT='maybe'"):
        ServeSettings.from_env({"VIBE_CHECK_NO_DRIFT": "maybe"})
    with pytest.raises(ValueError, match="VIBE_CHECK_REQUEST_TIMEOUT_S and VIBE_CHECK_TIMEOUT both set"):
        ServeSettings.from_env({"VIBE_CHECK_TIMEOUT": "5", "VIBE_CHECK_REQUEST_TIMEOUT_S": "6"})
    with pytest.raises(ValueError, match="VIBE_CHECK_MAX_UPLOAD_MB='0' must be positive"):
        ServeSettings.from_env({"VIBE_CHECK_MAX_UPLOAD_MB": "0"})


def test_serve_takes_every_option_from_the_environment_and_the_command_line_wins(trained_models, clean_env, capsys):
    pytest.importorskip("uvicorn", reason="serving needs the 'serve' extra")
    import uvicorn

    import vibe_check.serving._app as app_module

    started = {}
    real_create_app = app_module.create_app

    def create_app(model, settings):
        started["settings"] = settings
        return real_create_app(model, settings=settings)

    clean_env.setattr(app_module, "create_app", create_app)
    clean_env.setattr(uvicorn, "run", lambda app, **kwargs: started.update(kwargs))
    for name, value in {"MODEL": str(trained_models["best"]), "LOG_LEVEL": "warning", "TIMEOUT": "5",
                        "MAX_UPLOAD_MB": "1", "NO_DRIFT": "1", "QUEUE_SIZE": "3", "PORT": "0", "TIMEOUTS": "9"}.items():
        clean_env.setenv(f"VIBE_CHECK_{name}", value)
    assert main(["serve", "--timeout", "7"]) == 0
    s = started["settings"]
    assert (s.request_timeout_s, s.max_upload_bytes, s.drift, s.queue_size) == (7.0, 1024 * 1024, False, 3)
    assert started["log_level"] == "warning"
    err = capsys.readouterr().err
    assert "warning: VIBE_CHECK_TIMEOUTS is not a vibe-check setting and is ignored (did you mean VIBE_CHECK_TIMEOUT?" in err


def test_serve_help_lists_variables_that_are_all_read(clean_env, capsys):
    import re

    from vibe_check.serving._cli import unknown_env_variables

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    listed = set(re.findall(r"VIBE_CHECK_[A-Z_]+", out))
    options = set(re.findall(r"^  (--[a-z-]+)", out, flags=re.M)) - {"--help"}
    assert {"VIBE_CHECK_" + o[2:].replace("-", "_").upper() for o in options} <= listed
    assert {"VIBE_CHECK_MAX_BATCH_FILES", "VIBE_CHECK_EXPLAIN_TOP_K", "VIBE_CHECK_MODEL", "VIBE_CHECK_LOG_LEVEL"} <= listed
    assert unknown_env_variables({name: "1" for name in listed}) == {}


def test_serve_setting_errors_name_the_option(trained_models, clean_env, capsys):
    assert main(["serve", "--model", "m.pkl", "--max-upload-mb", "0"]) == 2
    err = capsys.readouterr().err
    assert "--max-upload-mb: must be positive" in err and "max_upload_bytes" not in err
    assert main(["serve", "--model", "m.pkl", "--timeout", "-1"]) == 2
    assert "--timeout: must be positive" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "--model (or VIBE_CHECK_MODEL)" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use_before_starting(trained_models, clean_env, capsys):
    pytest.importorskip("uvicorn", reason="serving needs the 'serve' extra")
    import socket

    import uvicorn

    clean_env.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server was started on a port in use"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(trained_models["best"]), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "serving" not in err


def test_serve_settings_docstring_quotes_no_stale_figure():
    from vibe_check.serving import ServeSettings

    assert "0.811" not in ServeSettings.__doc__ and "0.794" not in ServeSettings.__doc__


# train: options checked before any work (3)
@pytest.mark.parametrize("option, value, message", [
    ("--formats", "pkl,zip", "unknown bundle format 'zip'"),
    ("--models", "lda,bogus", "unknown model 'bogus'"),
    ("--models", ",", "give at least one model"),
    ("--folds", "1", "at least 2 folds"),
    ("--augment", "noise,bogus", "unknown augmentation 'bogus'"),
])
def test_train_refuses_bad_options_before_any_work(option, value, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("vibe_check.features.build_manifest", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), option, value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# evaluate (4, 10, 21, 23, 30)
def _unnamed_clips(trained_models, folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    for i, clip in enumerate(_clips_of_one_actor(trained_models, n)):
        shutil.copy(clip, folder / f"clip{i}.wav")
    return folder


def test_evaluate_with_nothing_scorable_quotes_the_reasons_and_suggests_labels(trained_models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default feature cache is under the working directory
    data = _unnamed_clips(trained_models, tmp_path / "my_clips")
    code = main(["evaluate", "--model", str(trained_models["best"]), "--data-dir", str(data)])
    err = capsys.readouterr().err
    assert code == 1
    assert "3 file(s) skipped" in err and "expected 7 dash-separated fields" in err
    assert "--labels" in err and "errors table" not in err


def test_evaluate_json_always_has_per_gender_and_per_actor(trained_models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _unnamed_clips(trained_models, tmp_path / "my_clips")
    # Two of the eight classes: the model also answers with others, which sklearn would warn about.
    files = sorted(p.name for p in data.iterdir())
    pd.DataFrame({"file": files, "emotion": ["angry", "sad", "angry"]}).to_csv(tmp_path / "labels.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["evaluate", "--model", str(trained_models["best"]), "--data-dir", str(data), "--labels",
                     str(tmp_path / "labels.csv"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["per_gender"] is None and result["per_actor"] is None
    assert not [w for w in caught if "y_pred contains classes" in str(w.message)]


def test_evaluate_takes_a_cache_dir(trained_models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _folder_of_clips(trained_models, tmp_path / "clips")
    assert main(["evaluate", "--model", str(trained_models["best"]), "--data-dir", "clips", "--cache-dir", "cache"]) == 0
    assert (tmp_path / "cache").is_dir() and not (tmp_path / "data").exists()


def test_evaluate_notes_a_bundle_trained_on_generated_speech(trained_models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from vibe_check.data import GENERATED_SOURCE

    demo = trained_models["trainer"].save_bundles(tmp_path / "demo", command="pytest", data_source=GENERATED_SOURCE)["best"]
    clips = _folder_of_clips(trained_models, tmp_path / "clips")
    assert main(["evaluate", "--model", str(demo), "--data-dir", str(clips)]) == 0
    assert "trained by the demo on generated speech" in capsys.readouterr().err


# predict and explain share their model options (5, 6, 19, 20, 21)
def test_explain_takes_speaker_references_like_predict(speaker_bundle, trained_models, capsys):
    clips = _clips_of_one_actor(trained_models, 6)
    assert main(["explain", "--model", str(speaker_bundle), clips[0]]) == 1
    err = capsys.readouterr().err
    assert "give --speaker-reference" in err and "for_speaker(" not in err
    assert main(["explain", "--model", str(speaker_bundle), "--json", clips[0], "--speaker-reference", *clips[1:6]]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["file"] == clips[0]
    assert all("from the speaker's average" in item["sentence"] for item in explained["towards"] + explained["away"])


def test_explain_takes_test_time_augmentation_like_predict(tta_bundle, trained_models, capsys):
    clip = _clips_of_one_actor(trained_models, 1)[0]
    assert main(["predict", "--model", str(tta_bundle), "--test-time-augmentation", "--json", clip]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert main(["explain", "--model", str(tta_bundle), "--test-time-augmentation", "--json", clip]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["predicted"] == predicted["emotion"]
    assert explained["probability"] == pytest.approx(predicted["confidence"], abs=1e-9)


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_speaker_reference_does_not_silently_take_the_files(command, speaker_bundle, trained_models, capsys):
    clips = _clips_of_one_actor(trained_models, 6)
    assert main([command, "--model", str(speaker_bundle), "--speaker-reference", *clips]) == 2
    err = capsys.readouterr().err
    assert "--speaker-reference took every path after it" in err and "-- FILE" in err
    # `--` ends the references; the files may also come first (the README's order).
    assert main([command, "--model", str(speaker_bundle), "--speaker-reference", *clips[1:6], "--", clips[0]]) == 0
    assert main([command, "--model", str(speaker_bundle), clips[0], "--speaker-reference", *clips[1:6]]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "-- FILE" in capsys.readouterr().out


def test_skipped_reference_clips_are_a_cli_warning(speaker_bundle, trained_models, tmp_path, capsys):
    clips = _clips_of_one_actor(trained_models, 6)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning escaping the command would fail here
        assert main(["predict", "--model", str(speaker_bundle), clips[0], "--speaker-reference", *clips[1:6], str(bad)]) == 0
    assert "warning: skipped 1 reference clip(s): " in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_a_wrong_model_path_says_what_it_is(command, trained_models, capsys):
    best, clip = trained_models["best"], _clips_of_one_actor(trained_models, 1)[0]
    assert main([command, "--model", str(best.parent), clip]) == 1
    assert f"is a folder, not a bundle; did you mean {best.parent / 'best_emotion_model'}" in capsys.readouterr().err
    assert main([command, "--model", str(best.with_suffix(".json")), clip]) == 1
    err = capsys.readouterr().err
    assert f"metadata sidecar, not the bundle; did you mean {best}?" in err and ".json.json" not in err
    assert main([command, "--model", clip, clip]) == 1
    assert "is an audio file, not a model bundle" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_too_long_files_point_to_max_duration(command, trained_models, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    long = tmp_path / "long.wav"  # refused from its header, before decoding: silence will do
    sf.write(long, np.zeros(16000 * 61, dtype=np.int16), 16000, subtype="PCM_16")
    assert main([command, "--model", str(trained_models["best"]), str(long)]) == 1
    captured = capsys.readouterr()
    said = captured.out + captured.err  # predict's table is on stdout, explain's errors on stderr
    assert "longer than the maximum of 60 s; split it into utterances" in said
    assert "max_duration" not in said  # a Python parameter the command line user cannot set
    assert "--max-duration SECONDS raises the limit" in captured.err
    clip = _clips_of_one_actor(trained_models, 1)[0]
    assert main([command, "--model", str(trained_models["best"]), "--max-duration", "0.5", clip]) == 1
    assert "longer than the maximum of" in "".join(capsys.readouterr())
    assert main([command, "--model", str(trained_models["best"]), "--max-duration", "100", clip]) == 0


def test_explain_json_is_one_line_per_file_with_its_name(trained_models, tmp_path, capsys):
    clip = _clips_of_one_actor(trained_models, 1)[0]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for files in ([clip], [clip, str(empty)], [str(empty)]):
        main(["explain", "--model", str(trained_models["best"]), "--json", *files])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [line["file"] for line in lines] == files
        assert ("predicted" in lines[0]) is (files[0] == clip)
    assert lines[0]["error"]["type"] == "EmptyAudioError"


# features (7, 23, 24)
def test_features_fails_when_nothing_was_extracted(trained_models, tmp_path, capsys):
    data = _unnamed_clips(trained_models, tmp_path / "my_clips")
    out = str(tmp_path / "m.parquet")
    assert main(["features", "--data-dir", str(data), "--out", out, "--cache-dir", str(tmp_path / "c"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error: no features extracted" in err and "expected 7 dash-separated fields" in err
    assert "RAVDESS file name" in err and "--labels" in err
    clip = _clips_of_one_actor(trained_models, 1)[0]
    assert main(["features", "--data-dir", clip, "--out", out, "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_features_writes_only_parquet(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["features", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.csv")])
    assert exit_.value.code == 2 and "must end in .parquet" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_features_caches_where_train_and_evaluate_do(trained_models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _folder_of_clips(trained_models, tmp_path / "clips")
    assert main(["features", "--data-dir", "clips", "--out", "feat/m.parquet", "--no-progress"]) == 0
    assert (tmp_path / "data" / ".feature_cache").is_dir() and not (tmp_path / "feat" / ".feature_cache").exists()
