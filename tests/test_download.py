"""Tests of the RAVDESS downloader against a local HTTP server (offline, a few seconds)."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import shutil
import socket
import stat
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf

from vibe_check.data import DEFAULT_MD5, DEFAULT_URL, fetch_ravdess, scan_dataset
from vibe_check.data import _download
from vibe_check.data._download import ZIP_NAME, add_download_arguments, run_download
from vibe_check.exceptions import ChecksumError, DatasetError, DownloadError, UnsafeArchiveError

# Two actors, mixed emotions/intensities; the names fix the metadata the tests check.
MEMBERS = [
    "Actor_01/03-01-01-01-01-01-01.wav",
    "Actor_01/03-01-05-02-01-01-01.wav",
    "Actor_01/03-01-03-01-02-02-01.wav",
    "Actor_02/03-01-04-02-01-01-02.wav",
    "Actor_02/03-01-05-01-02-01-02.wav",
    "Actor_02/03-01-08-02-02-02-02.wav",
]


def _wav_bytes(seed: int) -> bytes:
    # Noise, not a tone: it barely compresses, so the zip is large enough to cut in half.
    samples = np.random.default_rng(seed).uniform(-0.5, 0.5, 3200).astype(np.float32)  # 0.2 s
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _zip_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so the mode bits are meaningful
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="session")
def wavs() -> dict[str, bytes]:
    return {name: _wav_bytes(i) for i, name in enumerate(MEMBERS)}


@pytest.fixture(scope="session")
def payload(wavs) -> bytes:
    return _zip_bytes(wavs)


@pytest.fixture()
def zip_file(tmp_path, payload) -> Path:
    path = tmp_path / "downloads" / ZIP_NAME
    path.parent.mkdir()
    path.write_bytes(payload)
    return path


@pytest.fixture()
def home(tmp_path) -> Path:
    return tmp_path / "home"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state
        range_header = self.headers.get("Range")
        with state.lock:
            state.ranges.append(range_header)
            mode = state.plan.pop(0) if state.plan else state.default
        body = state.payload
        if mode in ("404", "500"):
            self.send_error(int(mode))
            return
        if mode == "429":  # rate limited: come back in 7 s
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(range_header.split("=")[1].rstrip("-")) if range_header and mode != "ignore_range" else None
        if start is not None and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is not None:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "drop":  # promise the whole body, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class ServerState:
    """What the server serves, how it fails, and the Range header of every request it saw."""

    def __init__(self, payload: bytes, url: str) -> None:
        self.payload = payload
        self.url = url
        self.plan: list[str] = []  # modes for the next requests, then `default`
        self.default = "ok"
        self.ranges: list[str | None] = []
        self.lock = threading.Lock()

    @property
    def requests(self) -> int:
        return len(self.ranges)


@pytest.fixture()
def server(payload):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState(payload, f"http://127.0.0.1:{httpd.server_port}/{ZIP_NAME}?download=1")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    # Small chunks so an interrupted transfer leaves a partial file; no env leaking in; no waits.
    monkeypatch.setattr(_download, "_CHUNK_SIZE", 4096)
    for name in (_download.ENV_URL, _download.ENV_MD5, _download.ENV_DATA_HOME):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


class NoNetworkSession(requests.Session):
    """Fails the test on any request."""

    def request(self, *args, **kwargs):
        raise AssertionError(f"unexpected network I/O: {args}")


def _fetch(server: ServerState, home: Path, **kwargs) -> Path:
    kwargs = {"data_home": home, "md5": _md5(server.payload), "progress": False, "backoff": 0, **kwargs}
    return fetch_ravdess(server.url, **kwargs)


def _leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


# -- downloads ------------------------------------------------------------------------------------
def test_clean_download_extracts_and_scans(server, home, wavs):
    root = _fetch(server, home)
    assert root == home / "ravdess"
    assert sorted(p.name for p in root.iterdir()) == ["Actor_01", "Actor_02"]
    assert (root / MEMBERS[1]).read_bytes() == wavs[MEMBERS[1]]
    files, skipped = scan_dataset(root)
    assert len(files) == len(MEMBERS) and skipped.empty
    row = files.set_index("file").loc["03-01-05-02-01-01-01.wav"]
    assert (row.emotion, row.intensity, row.actor, row.gender) == ("angry", "strong", 1, "male")
    assert sorted(files.groupby("actor").size().items()) == [(1, 3), (2, 3)]
    assert server.ranges == [None]
    assert _leftovers(home) == [ZIP_NAME, "ravdess"]  # no .part, no temporary folder


def test_dropped_connection_resumes_with_range(server, home, payload):
    server.plan = ["drop"]
    root = _fetch(server, home)
    assert server.requests == 2
    assert server.ranges[0] is None
    resumed_from = int(server.ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from < len(payload)
    assert (home / ZIP_NAME).read_bytes() == payload
    assert len(scan_dataset(root)[0]) == len(MEMBERS)


def test_server_ignoring_range_restarts_from_zero(server, home, payload):
    server.plan = ["drop", "ignore_range"]
    _fetch(server, home)
    assert server.ranges[1] is not None  # asked to resume, got a 200 with the whole file
    assert (home / ZIP_NAME).read_bytes() == payload


def test_complete_partial_file_answered_416_is_used(server, home, payload):
    home.mkdir()
    (home / (ZIP_NAME + ".part")).write_bytes(payload)
    _fetch(server, home)
    assert server.ranges == [f"bytes={len(payload)}-"]
    assert (home / ZIP_NAME).read_bytes() == payload


def test_oversized_partial_file_answered_416_restarts(server, home, payload):
    home.mkdir()
    (home / (ZIP_NAME + ".part")).write_bytes(payload + b"junk")
    _fetch(server, home)
    assert server.ranges == [f"bytes={len(payload) + 4}-", None]
    assert (home / ZIP_NAME).read_bytes() == payload


def test_progress_bar_shows_the_file(server, home, capsys):
    _fetch(server, home, progress=True)
    assert ZIP_NAME in capsys.readouterr().err


def test_404_fails_at_once_naming_url_and_status(server, home):
    server.default = "404"
    with pytest.raises(DownloadError) as err:
        _fetch(server, home, retries=5)
    assert server.requests == 1
    assert server.url in str(err.value) and "404" in str(err.value)
    assert not (home / "ravdess").exists() and not (home / ZIP_NAME).exists()


def test_500_every_time_gives_up_after_retries(server, home):
    server.default = "500"
    with pytest.raises(DownloadError, match="after 3 attempt") as err:
        _fetch(server, home, retries=3)
    assert server.requests == 3
    assert "HTTP 500" in str(err.value)


def test_500_once_then_ok(server, home, payload):
    server.plan = ["500"]
    _fetch(server, home, retries=2)
    assert server.requests == 2
    assert (home / ZIP_NAME).read_bytes() == payload


def test_rate_limited_waits_as_told_then_downloads(monkeypatch, server, home, payload):
    server.plan = ["429"]
    sleeps: list[float] = []
    monkeypatch.setattr(_download.time, "sleep", sleeps.append)
    _fetch(server, home, retries=2)
    assert sleeps == [7.0] and (home / ZIP_NAME).read_bytes() == payload


def test_backoff_is_exponential(monkeypatch, server, home):
    server.default = "500"
    sleeps: list[float] = []
    monkeypatch.setattr(_download.time, "sleep", sleeps.append)
    with pytest.raises(DownloadError):
        _fetch(server, home, retries=4, backoff=0.5)
    assert sleeps == [0.5, 1.0, 2.0]  # no wait after the last attempt


def test_timeouts_are_retried(server, home):
    class FlakySession(requests.Session):
        calls = 0

        def request(self, *args, **kwargs):
            FlakySession.calls += 1
            if FlakySession.calls == 1:
                raise requests.ReadTimeout("read timed out")
            return super().request(*args, **kwargs)

    with FlakySession() as session:
        root = _fetch(server, home, session=session)
    assert FlakySession.calls == 2 and server.requests == 1
    assert len(scan_dataset(root)[0]) == len(MEMBERS)


def test_wrong_checksum_leaves_nothing(server, home, payload):
    with pytest.raises(ChecksumError) as err:
        _fetch(server, home, md5="0" * 32)
    assert "0" * 32 in str(err.value) and _md5(payload) in str(err.value)
    assert _leftovers(home) == []


def test_no_network_explains_manual_route(home):
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        fetch_ravdess(f"http://127.0.0.1:{port}/{ZIP_NAME}", data_home=home, md5="skip", retries=1,
                      backoff=0, progress=False)
    message = str(err.value)
    assert "records/1188976" in message
    assert f"vibe-check download --source path/to/{ZIP_NAME}" in message and "--data-dir" in message
    assert "HTTPConnectionPool" not in message  # a sentence, not requests' nested repr
    assert not isinstance(err.value, requests.RequestException)


def test_interrupted_download_keeps_part_then_resumes(server, home, payload):
    class InterruptedSession(requests.Session):
        """Lets one chunk through, then fails the way Ctrl-C would."""

        def request(self, *args, **kwargs):
            response = super().request(*args, **kwargs)
            chunks = response.iter_content

            def one_chunk_then_interrupt(*a, **k):
                yield next(chunks(*a, **k))
                raise KeyboardInterrupt

            response.iter_content = one_chunk_then_interrupt
            return response

    with InterruptedSession() as session, pytest.raises(KeyboardInterrupt):
        _fetch(server, home, session=session)
    part = home / (ZIP_NAME + ".part")
    assert _leftovers(home) == [part.name]  # no final zip, no (half) extracted folder
    assert part.stat().st_size == 4096

    root = _fetch(server, home)
    assert server.ranges[-1] == "bytes=4096-"
    assert (home / ZIP_NAME).read_bytes() == payload
    assert len(scan_dataset(root)[0]) == len(MEMBERS)


# -- idempotence, defaults and the environment ----------------------------------------------------
def test_second_call_does_no_network_io(server, home):
    first = _fetch(server, home)
    with NoNetworkSession() as session:
        assert _fetch(server, home, session=session) == first
    assert server.requests == 1


def test_verified_zip_is_extracted_without_download(server, home):
    _fetch(server, home)
    shutil.rmtree(home / "ravdess")
    with NoNetworkSession() as session:
        root = _fetch(server, home, session=session)
    assert len(scan_dataset(root)[0]) == len(MEMBERS)


def test_corrupt_cached_zip_is_downloaded_again(server, home, payload):
    home.mkdir()
    (home / ZIP_NAME).write_bytes(payload[:100])
    _fetch(server, home)
    assert server.requests == 1
    assert (home / ZIP_NAME).read_bytes() == payload


def test_defaults_and_environment(monkeypatch, server, home, payload):
    seen: list[str] = []

    class RecordingSession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            seen.append(url)
            raise requests.ConnectionError("offline")

    with pytest.raises(DownloadError):
        fetch_ravdess(data_home=home, session=RecordingSession(), retries=2, backoff=0, progress=False)
    assert seen == [DEFAULT_URL, DEFAULT_URL]

    # The environment replaces the defaults ...
    monkeypatch.setenv(_download.ENV_URL, server.url)
    monkeypatch.setenv(_download.ENV_MD5, _md5(payload))
    monkeypatch.setenv(_download.ENV_DATA_HOME, str(home))
    assert fetch_ravdess(progress=False) == home / "ravdess"
    # ... and explicit arguments replace the environment.
    monkeypatch.setenv(_download.ENV_MD5, "0" * 32)
    other = home.parent / "other"
    assert _fetch(server, other) == other / "ravdess"


def test_data_home_defaults_to_cwd_data(server, tmp_path):
    root = fetch_ravdess(server.url, md5=_md5(server.payload), progress=False)
    assert root == tmp_path / "data" / "ravdess"


def test_md5_skip_only_for_custom_url(server, home):
    assert _fetch(server, home, md5="skip").is_dir()
    with NoNetworkSession() as session, pytest.raises(DownloadError, match="custom URL"):
        fetch_ravdess(DEFAULT_URL, data_home=home / "x", md5="", session=session)
    with pytest.raises(DownloadError, match="32 hexadecimal"):
        fetch_ravdess(DEFAULT_URL, data_home=home / "x", md5="abc")


def test_default_md5_is_the_published_one():
    assert DEFAULT_MD5 == "bc696df654c87fed845eb13823edef8a"
    assert DEFAULT_URL.startswith("https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip")


# -- local sources --------------------------------------------------------------------------------
def test_local_zip_source(zip_file, home):
    root = fetch_ravdess(zip_file, data_home=home)
    assert root == home / "ravdess"
    assert len(scan_dataset(root)[0]) == len(MEMBERS)
    assert zip_file.exists()  # the user's file is left alone


def test_extraction_finished_first_by_another_process_is_fine(zip_file, home, tmp_path):
    # Two runs extract at once: the slower one finds the corpus already in place.
    done = fetch_ravdess(zip_file, data_home=home)
    mine = tmp_path / "mine"
    shutil.copytree(done, mine)
    _download._move_into_place(mine, done)  # the final folder is not empty: nothing to move, no error
    assert len(scan_dataset(done)[0]) == len(MEMBERS)


def test_local_zip_with_wrong_explicit_md5(zip_file, home):
    with pytest.raises(ChecksumError):
        fetch_ravdess(zip_file, data_home=home, md5="0" * 32)
    assert not (home / "ravdess").exists()


def test_nested_zip_layout_returns_actor_parent(tmp_path, home, wavs):
    nested = tmp_path / "nested.zip"
    nested.write_bytes(_zip_bytes({f"Audio_Speech_Actors_01-24/{n}": d for n, d in wavs.items()}))
    root = fetch_ravdess(nested, data_home=home)
    assert root == home / "ravdess"
    assert (root / "Actor_01").is_dir()


def test_local_folder_source_returned_as_is(zip_file, home):
    extracted = fetch_ravdess(zip_file, data_home=home)
    assert fetch_ravdess(extracted, data_home=home / "unused") == extracted
    assert not (home / "unused").exists()


def test_flac_folder_is_accepted(tmp_path, wavs):
    folder = tmp_path / "flac" / "Actor_01"
    folder.mkdir(parents=True)
    sf.write(folder / "03-01-05-02-01-01-01.flac", np.zeros(1600, np.float32), 16000)
    assert fetch_ravdess(tmp_path / "flac") == tmp_path / "flac"


@pytest.mark.parametrize("files", [{}, {"notes.txt": b"hi", "hello.wav": b"RIFF"}])
def test_folder_without_ravdess_files(tmp_path, files):
    folder = tmp_path / "empty"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with pytest.raises(DatasetError, match="no RAVDESS audio"):
        fetch_ravdess(folder)


def test_missing_and_non_zip_sources(tmp_path, home):
    with pytest.raises(DatasetError, match="not found"):
        fetch_ravdess(tmp_path / "nope.zip", data_home=home)
    text = tmp_path / "file.zip"
    text.write_text("not a zip")
    with pytest.raises(DatasetError, match="neither a folder nor a zip"):
        fetch_ravdess(text, data_home=home)


def test_zip_without_ravdess_files(tmp_path, home):
    other = tmp_path / "other.zip"
    other.write_bytes(_zip_bytes({"docs/readme.txt": b"hello"}))
    with pytest.raises(DatasetError, match="holds no RAVDESS audio"):
        fetch_ravdess(other, data_home=home)
    assert _leftovers(home) == []  # the temporary folder is gone too


def test_foreign_folder_under_final_name_is_not_touched(zip_file, home):
    (home / "ravdess").mkdir(parents=True)
    (home / "ravdess" / "mine.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="move it away"):
        fetch_ravdess(zip_file, data_home=home)
    assert [p.name for p in (home / "ravdess").iterdir()] == ["mine.txt"]


# -- unsafe archives ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "drive", "symlink"])
def test_unsafe_archive_is_refused_whole(tmp_path, home, wavs, kind):
    outside = tmp_path / "outside" / "evil.wav"
    members = dict(wavs)  # legitimate members first: none of them may be extracted either
    symlinks = {}
    if kind == "dotdot":
        members["../evil.wav"] = b"x"
    elif kind == "absolute":
        members[str(outside)] = b"x"
    elif kind == "drive":
        members["C:/evil.wav"] = b"x"
    else:
        symlinks["Actor_01/link.wav"] = "../../../outside/evil.wav"
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip_bytes(members, symlinks))
    with pytest.raises(UnsafeArchiveError, match="nothing was extracted"):
        fetch_ravdess(evil, data_home=home)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".wav"]
    assert written == [], written
    assert _leftovers(home) == []


def test_unsafe_archive_refused_when_downloaded(server, home, wavs):
    server.payload = _zip_bytes({**wavs, "../evil.wav": b"x"})
    with pytest.raises(UnsafeArchiveError):
        _fetch(server, home)
    assert not (home.parent / "evil.wav").exists()
    assert not (home / "ravdess").exists()


# -- command line ---------------------------------------------------------------------------------
def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_download_arguments(parser)
    return run_download(parser.parse_args(list(argv)))


def test_cli_success_prints_folder_and_counts(zip_file, home, capsys):
    assert _cli("--source", str(zip_file), "--data-home", str(home), "--no-progress") == 0
    out = capsys.readouterr().out
    assert str(home / "ravdess") in out
    assert "6 speech files from 2 actors" in out
    assert "angry" in out and "surprised" in out


def test_cli_failure_prints_error_and_returns_1(server, home, capsys):
    server.default = "404"
    assert _cli("--url", server.url, "--md5", "skip", "--data-home", str(home), "--no-progress") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: cannot download") and "HTTP 404" in captured.err
    assert "Traceback" not in captured.err


def test_cli_rejects_zero_retries(capsys):
    with pytest.raises(SystemExit):
        _cli("--retries", "0")
    assert "at least 1" in capsys.readouterr().err
