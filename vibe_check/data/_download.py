"""Download and safely extract the RAVDESS speech corpus (Audio_Speech_Actors_01-24.zip).

The archive (about 200 MB) is streamed into ``<data_home>/Audio_Speech_Actors_01-24.zip.part``,
resumed with an HTTP ``Range`` request after an interruption, checked against its published MD5,
renamed into place, and extracted into a temporary sibling folder that is renamed to
``<data_home>/ravdess`` only once complete. Every step is skipped when its result already exists,
so a second call does no network I/O.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd
import requests
from tqdm.auto import tqdm

from .._argtypes import int_at_least
from ..exceptions import (
    ChecksumError,
    DatasetError,
    DownloadError,
    FilenameError,
    UnsafeArchiveError,
    VibeCheckError,
)
from ._ravdess import list_audio_files, parse_filename, scan_dataset

__all__ = [
    "DEFAULT_URL",
    "DEFAULT_MD5",
    "ZIP_NAME",
    "EXTRACTED_DIRNAME",
    "fetch_ravdess",
    "add_download_arguments",
    "run_download",
]

log = logging.getLogger(__name__)

#: Zenodo record 1188976, the official RAVDESS distribution.
RECORD_URL = "https://zenodo.org/records/1188976"
#: The speech-only audio archive of the record.
DEFAULT_URL = f"{RECORD_URL}/files/Audio_Speech_Actors_01-24.zip?download=1"
#: The MD5 Zenodo publishes for Audio_Speech_Actors_01-24.zip.
DEFAULT_MD5 = "bc696df654c87fed845eb13823edef8a"
ZIP_NAME = "Audio_Speech_Actors_01-24.zip"
EXTRACTED_DIRNAME = "ravdess"
ENV_URL = "VIBE_CHECK_RAVDESS_URL"
ENV_MD5 = "VIBE_CHECK_RAVDESS_MD5"
ENV_DATA_HOME = "VIBE_CHECK_DATA"
#: Extensions a RAVDESS folder may hold (the original .wav, or a .flac re-encoding).
RAVDESS_EXTENSIONS = (".wav", ".flac")
#: Values of ``md5`` that turn the checksum off (custom URLs only).
SKIP_MD5 = ("", "skip")

_CHUNK_SIZE = 1 << 20  # module level so tests can shrink it
_DRIVE = re.compile(r"^[A-Za-z]:")
_ACTOR_DIR = re.compile(r"^Actor_\d+$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


class _RetryableError(Exception):
    """A failure worth another attempt (5xx, 429, short body, wrong range); ``wait`` is the
    server's Retry-After in seconds, when it gave one."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


_RETRYABLE = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    _RetryableError,
)


def _manual_hint() -> str:
    return (
        f"To supply the data by hand: download {ZIP_NAME} in a browser from {RECORD_URL}, then run "
        f"`vibe-check download --source path/to/{ZIP_NAME}`, or point --data-dir to an already "
        "extracted folder."
    )


# -- public API ---------------------------------------------------------------------------------
def fetch_ravdess(
    source: str | os.PathLike | None = None,
    *,
    data_home: str | os.PathLike | None = None,
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    backoff: float = 1.0,
    progress: bool = True,
    session: requests.Session | None = None,
) -> Path:
    """Make the RAVDESS speech corpus available locally and return its folder.

    Parameters
    ----------
    source : str or path-like, optional
        Where the data comes from: ``None`` downloads from ``url`` (or the default); an
        ``http(s)://`` URL downloads from there (e.g. a mirror); a local ``.zip`` file is
        extracted; an already-extracted folder is returned as is once it is found to hold
        RAVDESS ``.wav``/``.flac`` files.
    data_home : str or path-like, optional
        Folder for the archive and the extracted ``ravdess/`` folder. Default: the environment
        variable ``VIBE_CHECK_DATA``, else ``<cwd>/data``.
    url : str, optional
        Download URL when ``source`` is None. Default: ``VIBE_CHECK_RAVDESS_URL``, else
        :data:`DEFAULT_URL`.
    md5 : str, optional
        Expected MD5 of the archive. Default: ``VIBE_CHECK_RAVDESS_MD5``, else
        :data:`DEFAULT_MD5` (a mirror is expected to serve the same file). ``""`` or ``"skip"``
        turns the check off, which is allowed only for a URL other than :data:`DEFAULT_URL`.
        For a local ``.zip`` source only an explicit ``md5`` is enforced; otherwise a
        mismatch with :data:`DEFAULT_MD5` is only logged (a hand-made zip is fine).
    timeout : float
        Seconds to wait for the connection and for each read.
    retries : int
        Attempts in all (at least 1) against connection errors, timeouts, dropped
        connections and 5xx answers; an attempt after the first resumes the partial file.
    backoff : float
        Wait ``backoff * 2**attempt`` seconds after failed attempt ``attempt`` (0, 1, ...).
    progress : bool
        Show a tqdm progress bar while downloading.
    session : requests.Session, optional
        Session to use (proxies, auth, tests); a private one is opened and closed otherwise.

    Returns
    -------
    Path
        The folder holding the ``Actor_XX/`` directories, ready for
        :func:`~vibe_check.data.scan_dataset`.

    Raises
    ------
    DownloadError
        The archive could not be downloaded (the message says how to supply it by hand).
    ChecksumError
        The downloaded archive has the wrong MD5 (the partial file is deleted).
    UnsafeArchiveError
        The archive holds an absolute path, a ``..`` component or a symbolic link (nothing is
        extracted).
    DatasetError
        A local source is missing, is not a zip archive, or holds no RAVDESS audio.

    Examples
    --------
    Download from Zenodo (or reuse what an earlier call left in ``data/``):

    >>> fetch_ravdess(data_home="data")  # doctest: +SKIP
    PosixPath('data/ravdess')

    Extract a zip downloaded in a browser, or use an extracted copy as is:

    >>> fetch_ravdess("Downloads/Audio_Speech_Actors_01-24.zip", data_home="data")  # doctest: +SKIP
    PosixPath('data/ravdess')
    >>> fetch_ravdess("../shared/data/ravdess16k")  # doctest: +SKIP
    PosixPath('../shared/data/ravdess16k')
    """
    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}")
    if source is not None and not _is_url(source):
        return _from_local(Path(source).expanduser(), data_home, md5)
    if source is not None:
        if url is not None and url != str(source):
            raise DownloadError(f"two URLs given ({source} and {url}); give only one")
        url = str(source)
    url = url or os.environ.get(ENV_URL) or DEFAULT_URL
    if "://" in url and not _is_url(url):
        raise DownloadError(f"unsupported URL scheme in {url}: only http and https are handled")
    expected_md5 = _resolve_md5(md5, url)
    home = _data_home(data_home)
    final_dir = home / EXTRACTED_DIRNAME
    if _holds_ravdess(final_dir):
        log.info("RAVDESS already extracted at %s", final_dir)
        return _actor_root(final_dir)
    zip_path = home / ZIP_NAME
    if zip_path.is_file() and not _cached_zip_ok(zip_path, expected_md5):
        zip_path.unlink()
    if not zip_path.is_file():
        own_session = session is None
        session = session or requests.Session()
        try:
            _download(url, zip_path, md5=expected_md5, timeout=timeout, retries=retries, backoff=backoff,
                      progress=progress, session=session)
        finally:
            if own_session:
                session.close()
    try:
        return _extract(zip_path, final_dir)
    except DatasetError as exc:
        if not isinstance(exc.__cause__, zipfile.BadZipFile):
            raise
        # A corrupt archive we fetched ourselves would block every later run: drop it.
        zip_path.unlink(missing_ok=True)
        raise DatasetError(f"{exc}; it was deleted, run again to download it afresh") from exc


# -- sources ------------------------------------------------------------------------------------
def _is_url(source: str | os.PathLike) -> bool:
    return str(source).lower().startswith(("http://", "https://"))


def _data_home(data_home: str | os.PathLike | None) -> Path:
    home = Path(data_home or os.environ.get(ENV_DATA_HOME) or Path.cwd() / "data").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def _resolve_md5(md5: str | None, url: str) -> str | None:
    """The expected MD5 (lower-case hex), or None when checking is turned off."""
    if md5 is None:
        md5 = os.environ.get(ENV_MD5) or DEFAULT_MD5  # an empty variable counts as unset
    value = md5.strip().lower()
    if value in SKIP_MD5:
        if url == DEFAULT_URL:
            raise DownloadError(
                "the checksum can only be skipped for a custom URL; the official archive is always checked"
            )
        log.warning("not checking the MD5 of %s", url)
        return None
    if not _MD5_HEX.match(value):
        raise DownloadError(f"invalid MD5 {md5!r}: expected 32 hexadecimal digits, '' or 'skip'")
    return value


def _from_local(path: Path, data_home: str | os.PathLike | None, md5: str | None) -> Path:
    if not path.exists():
        raise DatasetError(f"source not found: {path}")
    if path.is_dir():
        if not _holds_ravdess(path):
            raise DatasetError(
                f"{path} holds no RAVDESS audio (.wav/.flac files named like 03-01-05-02-01-01-12.wav)"
            )
        return path
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is neither a folder nor a zip archive")
    final_dir = _data_home(data_home) / EXTRACTED_DIRNAME
    if _holds_ravdess(final_dir):
        log.info("RAVDESS already extracted at %s (delete it to extract %s again)", final_dir, path)
        return _actor_root(final_dir)
    expected = None if md5 is None else md5.strip().lower()
    if expected not in SKIP_MD5:
        got = _md5_of(path)
        if expected is not None and got != expected:
            raise ChecksumError(f"{path}: MD5 mismatch: expected {expected}, got {got}")
        if expected is None and got != DEFAULT_MD5:
            # A hand-made or re-packed zip is fine; the content check below still applies.
            log.warning("%s is not the published archive (MD5 %s, expected %s); extracting it anyway",
                        path, got, DEFAULT_MD5)
    return _extract(path, final_dir)


def _holds_ravdess(root: Path) -> bool:
    """True when ``root`` is a folder with at least one parseable RAVDESS .wav/.flac file."""
    if not root.is_dir():
        return False
    for path in list_audio_files(root, RAVDESS_EXTENSIONS):
        try:
            parse_filename(path)
        except FilenameError:
            continue
        return True
    return False


def _actor_root(folder: Path) -> Path:
    """``folder`` or its child that holds the ``Actor_XX`` directories (zips may nest one level)."""
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    for candidate in candidates:
        if any(p.is_dir() and _ACTOR_DIR.match(p.name) for p in candidate.iterdir()):
            return candidate
    return folder


# -- download -----------------------------------------------------------------------------------
def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached_zip_ok(zip_path: Path, expected_md5: str | None) -> bool:
    if expected_md5 is None:
        return True
    got = _md5_of(zip_path)
    if got != expected_md5:
        log.warning("%s has MD5 %s, expected %s: downloading it again", zip_path, got, expected_md5)
    return got == expected_md5


def _download(url: str, dest: Path, *, md5: str | None, timeout: float, retries: int, backoff: float,
              progress: bool, session: requests.Session) -> None:
    """Download ``url`` into ``dest`` through ``dest.part``, resuming and retrying."""
    part = dest.with_name(dest.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(retries):
        try:
            _fetch_once(session, url, part, timeout=timeout, progress=progress)
            break
        except _RETRYABLE as exc:
            last_error = exc
            log.warning("download attempt %d/%d failed: %s", attempt + 1, retries, _describe(exc, timeout))
            if attempt + 1 < retries:
                # A server that says how long to wait (429) is believed, up to a minute.
                wait = getattr(exc, "wait", None)
                time.sleep(min(60.0, wait) if wait is not None else backoff * 2**attempt)
        except requests.RequestException as exc:  # an invalid URL and the like: retrying cannot help
            raise DownloadError(f"cannot download {url}: {exc}. {_manual_hint()}") from exc
    else:
        kept = f" The {part.stat().st_size} bytes received are kept in {part} to resume." if part.exists() else ""
        raise DownloadError(
            f"cannot download {url} after {retries} attempt(s): {_describe(last_error, timeout)}.{kept} "
            f"{_manual_hint()}"
        ) from last_error
    if md5 is not None:
        got = _md5_of(part)
        if got != md5:
            part.unlink()
            raise ChecksumError(
                f"{url}: MD5 mismatch: expected {md5}, got {got}; the download was deleted, run again to retry"
            )
    os.replace(part, dest)  # atomic: a file under the final name is always complete
    log.info("downloaded %s to %s", url, dest)


def _get(session: requests.Session, url: str, offset: int, timeout: float) -> requests.Response:
    # identity encoding: byte offsets in Range must count the file's bytes, not gzip's
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return session.get(url, headers=headers, stream=True, timeout=timeout)


def _fetch_once(session: requests.Session, url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """One attempt: append the rest of the body to ``part`` (or restart it); raise on failure."""
    offset = part.stat().st_size if part.exists() else 0
    response = _get(session, url, offset, timeout)
    if response.status_code == 416:
        response.close()
        if _content_range(response.headers.get("Content-Range"))[1] == offset:
            log.info("%s already holds the whole file", part)
            return
        log.warning("server cannot resume from byte %d; starting again", offset)
        part.unlink(missing_ok=True)
        offset = 0
        response = _get(session, url, offset, timeout)
    with response:
        status = response.status_code
        if status >= 500 or status == 429:  # 429: rate limited, which passes
            after = response.headers.get("Retry-After", "")
            raise _RetryableError(f"HTTP {status} {response.reason}", wait=float(after) if after.isdigit() else None)
        if status not in (200, 206):
            raise DownloadError(f"cannot download {url}: HTTP {status} {response.reason}. {_manual_hint()}")
        if status == 206:
            start = _content_range(response.headers.get("Content-Range"))[0]
            if start != offset:
                part.unlink(missing_ok=True)  # the body does not continue our file: restart next time
                raise _RetryableError(f"server sent bytes from {start} instead of {offset}")
        elif offset:
            log.info("server ignored the Range request; restarting from byte 0")
            offset = 0
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        written = 0
        with open(part, "ab" if offset else "wb") as fh, tqdm(
            total=None if length is None else offset + length, initial=offset, unit="B", unit_scale=True,
            unit_divisor=1024, desc=ZIP_NAME, disable=not progress, leave=False,
        ) as bar:
            for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
                fh.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        if length is not None and written < length:
            raise _RetryableError(f"connection closed after {written} of {length} bytes")


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/n`` or ``bytes */n`` header."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", header or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total.isdigit() else None)


def _describe(exc: BaseException | None, timeout: float) -> str:
    """A one-line reason for a failed attempt, without requests' nested reprs."""
    if isinstance(exc, _RetryableError):
        return str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"could not connect within {timeout:g} s"
    if isinstance(exc, requests.Timeout):
        return f"no data for {timeout:g} s"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped in the middle of the file"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (no network, DNS failure, connection refused or reset)"
    return type(exc).__name__


# -- extraction ---------------------------------------------------------------------------------
def _check_members(zf: zipfile.ZipFile, zip_path: Path) -> None:
    """Refuse the whole archive when one member could land outside the target folder."""
    for info in zf.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or _DRIVE.match(name):
            reason = "an absolute path"
        elif ".." in name.replace("\\", "/").split("/"):
            reason = "a path with a '..' component"
        elif stat.S_ISLNK(info.external_attr >> 16):
            reason = "a symbolic link"
        else:
            continue
        raise UnsafeArchiveError(f"{zip_path}: member {name!r} is {reason}; nothing was extracted")


def _extract(zip_path: Path, final_dir: Path) -> Path:
    """Extract ``zip_path`` to ``final_dir`` atomically and return the folder holding ``Actor_XX``."""
    if final_dir.is_dir() and any(final_dir.iterdir()):
        raise DatasetError(f"{final_dir} exists but holds no RAVDESS audio; move it away or delete it")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            _check_members(zf, zip_path)
            # A sibling of the final folder, so the closing rename stays on one file system.
            tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}-extract-", dir=final_dir.parent))
            try:
                zf.extractall(tmp)
                root = _actor_root(tmp)
                if not _holds_ravdess(root):
                    raise DatasetError(f"{zip_path} holds no RAVDESS audio")
                _move_into_place(root, final_dir)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{zip_path} is not a valid zip archive ({exc})") from exc
    log.info("extracted %s to %s", zip_path, final_dir)
    return _actor_root(final_dir)


def _move_into_place(src: Path, final_dir: Path) -> None:
    try:
        if final_dir.is_dir():
            final_dir.rmdir()  # empty (checked before extracting); rename cannot replace it everywhere
        os.rename(src, final_dir)
    except OSError:
        if not _holds_ravdess(final_dir):  # another process may have finished first: that is fine
            raise


# -- command line -------------------------------------------------------------------------------

def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``vibe-check download`` options to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_download_arguments(parser)
    >>> parser.parse_args(["--source", "a.zip", "--no-progress"]).progress
    False
    """
    parser.add_argument("--source", help="URL, local Audio_Speech_Actors_01-24.zip or extracted folder "
                        "(default: download from Zenodo)")
    parser.add_argument("--data-home", help=f"folder for the archive and its extraction "
                        f"(default: ${ENV_DATA_HOME} or ./data)")
    parser.add_argument("--url", help=f"download URL, e.g. a mirror (default: ${ENV_URL} or Zenodo)")
    parser.add_argument("--md5", help="expected MD5 of the archive; '' or 'skip' disables the check "
                        "(custom URLs only)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    parser.add_argument("--retries", type=int_at_least(1), default=5, help="download attempts in all (default: 5)")


def run_download(args: argparse.Namespace) -> int:
    """Run ``vibe-check download``: fetch the corpus, print where it is and what it holds.

    Returns
    -------
    int
        0 on success; 1 after printing the error to stderr.

    Examples
    --------
    >>> run_download(argparse.Namespace(source="data/ravdess"))  # doctest: +SKIP
    RAVDESS ready at data/ravdess
    ...
    0
    """
    try:
        root = fetch_ravdess(
            getattr(args, "source", None),
            data_home=getattr(args, "data_home", None),
            url=getattr(args, "url", None),
            md5=getattr(args, "md5", None),
            retries=getattr(args, "retries", 5),
            progress=getattr(args, "progress", True),
        )
        files, skipped = scan_dataset(root)
    except VibeCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"RAVDESS ready at {root}")
    print(f"{len(files)} speech files from {files['actor'].nunique()} actors"
          + (f" ({len(skipped)} skipped)" if len(skipped) else ""))
    print(pd.crosstab(files["actor"], files["emotion"], margins=True, margins_name="total").to_string())
    return 0
