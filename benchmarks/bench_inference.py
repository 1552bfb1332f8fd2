"""Inference speed of a bundle: single-clip latency and batch throughput.

Run from the repository root::

    python benchmarks/bench_inference.py --model models/custom/best_emotion_model.pkl
    python benchmarks/bench_inference.py            # trains a quick logreg bundle on generated audio first

Reported:

* single-clip latency -- a ~3.7 s clip, file path in, result dict out (decode, features,
  prediction), median and 95th percentile over ``--calls`` calls after a warm-up;
* batch throughput -- ``predict_batch`` on ``--batch`` clips with ``n_jobs`` 1 and 2: clips per
  second and seconds of audio per wall-clock second (x real time), also per core.

Clips are RAVDESS files from ``../shared/data/ravdess16k`` when present, generated otherwise.
Targets: median latency < 50 ms, batch >= 40x real time per core.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vibe_check.data import generate_corpus, list_audio_files, synthesize_utterance, write_audio
from vibe_check.models import CustomEmotionModel

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess16k"


def train_quick_bundle(workdir: Path) -> Path:
    """A logistic-regression bundle trained on a small generated corpus (about half a minute)."""
    from vibe_check.features import build_manifest
    from vibe_check.training import EmotionTrainer

    corpus = workdir / "corpus"
    generate_corpus(corpus, n_speakers=4, takes=1, seed=0, n_jobs=2)
    manifest = build_manifest(corpus, workdir / "manifest.parquet", n_jobs=2, progress=False)
    trainer = EmotionTrainer(models=("logreg",), n_splits=2).fit(manifest)
    return trainer.save_bundles(workdir / "models", command="bench_inference")["logreg"]


def pick_clips(data_dir: Path, n: int, workdir: Path) -> tuple[list[Path], str]:
    """``n`` clips spread over the RAVDESS folder, or generated ones when it is missing."""
    files = list_audio_files(data_dir) if data_dir.is_dir() else []
    if files:
        idx = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
        chosen = [files[i] for i in idx]
        return [chosen[i % len(chosen)] for i in range(n)], f"RAVDESS ({data_dir})"
    out = workdir / "clips"
    emotions = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    unique = [write_audio(out / f"clip{i:03d}.wav", synthesize_utterance(emotions[i % 8], speaker=1 + i % 6, seed=i), 16000)
              for i in range(min(n, 48))]
    return [unique[i % len(unique)] for i in range(n)], "generated"


def latency_clip(files: list[Path], workdir: Path) -> Path:
    """The clip closest to 3.7 s among ``files`` (or a generated one of exactly 3.7 s)."""
    durations = [sf.info(str(f)).duration for f in files[:200]]
    best = int(np.argmin(np.abs(np.array(durations) - 3.7)))
    if abs(durations[best] - 3.7) < 0.3:
        return files[best]
    return write_audio(workdir / "clip_3.7s.wav", synthesize_utterance("happy", seed=7, duration=3.7), 16000)


def bench_latency(model: CustomEmotionModel, clip: Path, calls: int) -> np.ndarray:
    for _ in range(10):  # warm-up: first-call caches, numba
        model.predict_emotion_from_file(clip)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        model.predict_emotion_from_file(clip)
        times[i] = time.perf_counter() - start
    return times * 1000.0


def bench_batch(model: CustomEmotionModel, files: list[Path], n_jobs: int) -> tuple[float, int]:
    model.predict_batch(files[: 4 * n_jobs], n_jobs=n_jobs)  # warm-up: start and warm the workers
    start = time.perf_counter()
    results = model.predict_batch(files, n_jobs=n_jobs)
    return time.perf_counter() - start, sum("error" in r for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="bundle to time (default: train a quick logreg bundle on generated audio)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="RAVDESS folder (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=200, help="single-clip calls timed (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=500, help="clips per batch (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2], help="batch workers to try (default: 1 2)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_inference_") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        model_path = Path(args.model) if args.model else train_quick_bundle(workdir)
        if not args.model:
            print(f"trained a quick bundle in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        model = CustomEmotionModel(model_path)
        print(f"{model!r} loaded in {1000 * (time.perf_counter() - t0):.0f} ms")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")

        files, source = pick_clips(Path(args.data_dir), args.batch, workdir)
        clip = latency_clip(files, workdir)
        ms = bench_latency(model, clip, args.calls)
        print(f"\nsingle clip ({sf.info(str(clip)).duration:.2f} s, {source}), file -> result, {args.calls} calls:")
        print(f"  median {np.median(ms):.1f} ms   p95 {np.percentile(ms, 95):.1f} ms   "
              f"(target: median < 50 ms)  {'OK' if np.median(ms) < 50 else 'MISSED'}")

        audio_s = sum(sf.info(str(f)).duration for f in files)
        print(f"\nbatch of {len(files)} clips ({audio_s:.0f} s of audio, {source}):")
        for n_jobs in args.n_jobs:
            wall, failed = bench_batch(model, files, n_jobs)
            rt = audio_s / wall
            print(f"  n_jobs={n_jobs}: {wall:.1f} s   {len(files) / wall:.1f} clips/s   {rt:.0f}x real time   "
                  f"{rt / n_jobs:.0f}x per core   failed {failed}   "
                  f"(target: >= 40x per core)  {'OK' if rt / n_jobs >= 40 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
