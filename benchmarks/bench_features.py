"""Feature extraction speed: vibe-check's extractor against openSMILE eGeMAPS v02 on the same files.

Run from the repository root::

    python benchmarks/bench_features.py                    # 300 RAVDESS clips spread over all actors
    python benchmarks/bench_features.py --limit 0          # all files
    python benchmarks/bench_features.py --data-dir DIR --limit 50 --blas-default

Reported for each setup: files per second, milliseconds per file and the real-time factor (seconds
of audio processed per wall-clock second). Every setup is warmed up first, so that numba
compilation, first-call caches and worker start-up are not counted:

* vibe-check in one process, BLAS limited to one thread (threadpoolctl): the per-core cost;
* vibe-check with ``n_jobs`` worker processes (joblib/loky, which gives each worker one BLAS thread);
* openSMILE eGeMAPS v02 functionals (``Smile.process_file``), one process, when installed.

The ratio of our single-process files/s to eGeMAPS's says whether our named features cost less
than the 88 eGeMAPS ones (target: >= 1.0).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from vibe_check.data import list_audio_files
from vibe_check.features import FeatureExtractor

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess16k"
EGEMAPS_N_FEATURES = 88


@dataclass
class Result:
    """One timed setup."""

    label: str
    n_features: int
    files: int
    failed: int
    wall_s: float
    audio_s: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s

    @property
    def ms_per_file(self) -> float:
        return 1000.0 * self.wall_s / self.files

    @property
    def realtime(self) -> float:
        return self.audio_s / self.wall_s


def pick_files(data_dir: Path, limit: int) -> list[Path]:
    """``limit`` files spread evenly over the sorted list (so every actor is represented); 0 = all."""
    files = list_audio_files(data_dir)
    if not files:
        raise SystemExit(f"no audio files under {data_dir}")
    if 0 < limit < len(files):
        idx = np.unique(np.linspace(0, len(files) - 1, limit).round().astype(int))
        files = [files[i] for i in idx]
    return files


def timed(label: str, n_features: int, run: Callable[[], int], files: Sequence[Path], audio_s: float) -> Result:
    """Time ``run()`` (which returns the number of failed files) over ``files``."""
    start = time.perf_counter()
    failed = run()
    return Result(label, n_features, len(files), failed, time.perf_counter() - start, audio_s)


def bench_ours(files: list[Path], audio_s: float, *, n_jobs: int, warmup: int, blas_default: bool) -> list[Result]:
    fx = FeatureExtractor()
    n = len(fx.feature_names)
    results = []

    def serial() -> int:
        fx.process_files(files, n_jobs=1, errors="skip")
        return len(fx.failures_)

    with threadpool_limits(limits=1):
        fx.process_files(files[:warmup], n_jobs=1, errors="skip")  # numba compilation, filter caches
        results.append(timed("vibe-check, 1 process (BLAS 1 thread)", n, serial, files, audio_s))
    if blas_default:  # what a caller gets without limiting BLAS threads (oversubscription on small matrices)
        results.append(timed("vibe-check, 1 process (BLAS default threads)", n, serial, files, audio_s))
    if n_jobs != 1:
        def parallel() -> int:
            fx.process_files(files, n_jobs=n_jobs, errors="skip")
            return len(fx.failures_)

        # loky keeps its workers between calls: this starts them and loads numba's cache in each.
        fx.process_files(files[: max(warmup, 2 * abs(n_jobs))], n_jobs=n_jobs, errors="skip")
        results.append(timed(f"vibe-check, n_jobs={n_jobs} (processes)", n, parallel, files, audio_s))
    return results


def bench_egemaps(files: list[Path], audio_s: float, *, warmup: int) -> Result | None:
    try:
        import opensmile
    except ImportError:
        print("note: opensmile is not installed (pip install 'vibe-check[bench]'); skipping the eGeMAPS comparison")
        return None
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)

    def run() -> int:
        failed = 0
        for p in files:
            try:
                smile.process_file(str(p))
            except Exception:  # count, don't stop: the comparison is about speed
                failed += 1
        return failed

    with threadpool_limits(limits=1):
        for p in files[:warmup]:
            smile.process_file(str(p))
        return timed("openSMILE eGeMAPSv02 functionals, 1 process", len(smile.feature_names), run, files, audio_s)


def print_table(results: list[Result]) -> None:
    header = ("setup", "features", "files", "failed", "wall s", "files/s", "ms/file", "x realtime")
    rows = [
        (r.label, f"{r.n_features}", f"{r.files}", f"{r.failed}", f"{r.wall_s:.2f}", f"{r.files_per_s:.1f}",
         f"{r.ms_per_file:.1f}", f"{r.realtime:.0f}")
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="audio folder (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=300, help="number of files, spread over the folder; 0 = all (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers for the parallel run; 1 skips it (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="files processed before timing each setup (default: %(default)s)")
    parser.add_argument("--no-opensmile", action="store_true", help="skip the openSMILE eGeMAPS comparison")
    parser.add_argument("--blas-default", action="store_true", help="also time one process with BLAS's default thread count")
    args = parser.parse_args(argv)

    if not args.data_dir.is_dir():
        print(f"error: data folder not found: {args.data_dir} (use --data-dir)", file=sys.stderr)
        return 1
    files = pick_files(args.data_dir, args.limit)
    audio_s = float(sum(sf.info(str(p)).duration for p in files))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{len(files)} files from {args.data_dir}: {audio_s:.0f} s of audio (mean {audio_s / len(files):.2f} s); "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start; Python {platform.python_version()}"
    )

    results = bench_ours(files, audio_s, n_jobs=args.n_jobs, warmup=args.warmup, blas_default=args.blas_default)
    egemaps = None if args.no_opensmile else bench_egemaps(files, audio_s, warmup=args.warmup)
    if egemaps is not None:
        results.append(egemaps)
    print()
    print_table(results)
    if egemaps is not None:
        ratio = results[0].files_per_s / egemaps.files_per_s
        verdict = "meets" if ratio >= 1.0 else "MISSES"
        print(f"\nratio vibe-check (1 process) / eGeMAPS files/s: {ratio:.2f} ({verdict} the target >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
