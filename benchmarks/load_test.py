"""Load test of the HTTP service: throughput, latency percentiles, and how malformed uploads fare.

Sends N requests (default 500) from C concurrent clients (default 8) to ``POST /predict``; about
10% are malformed (not audio, empty, longer than the service's limit). Prints throughput and
p50/p95/p99 latency, checks that every good request succeeded, that every malformed one got a 4xx
and that the service counted each in ``vibe_check_errors_total``. Exits 1 when a check fails.

Usage::

    python benchmarks/load_test.py                       # trains a small demo bundle, starts the service
    python benchmarks/load_test.py --model models/custom/best_emotion_model.pkl
    python benchmarks/load_test.py --url http://127.0.0.1:8000   # a service already running
    python benchmarks/load_test.py --requests 200 --tracking both  # drift/SHAP monitoring on vs off (default)
    python benchmarks/load_test.py --model models/custom/best_emotion_model.pkl --test-time-augmentation

Traffic goes to 127.0.0.1 (or the ``--url`` given) only; the run is bounded by ``--requests``
and ``--deadline``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

SR = 16000


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def demo_bundle(folder: Path) -> Path:
    """A logistic-regression bundle trained on a small generated corpus (about 20 s)."""
    from vibe_check.data import generate_corpus
    from vibe_check.features import build_manifest
    from vibe_check.training import EmotionTrainer

    generate_corpus(folder / "corpus", n_speakers=4, takes=1, seed=7)
    manifest = build_manifest(folder / "corpus", folder / "manifest.parquet", progress=False)
    trainer = EmotionTrainer(models=("logreg",), n_splits=2, random_state=0).fit(manifest)
    return trainer.save_bundles(folder / "models", command="load_test demo bundle")["best"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(model: Path, port: int, max_audio_seconds: float, workers: int, extra: tuple = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vibe_check.cli", "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--max-audio-seconds", str(max_audio_seconds), "--workers", str(workers), "--log-level", "warning", *extra]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the service exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service at {url} was not ready after {timeout:.0f} s")


def scrape(url: str) -> dict[tuple, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in text_string_to_metric_families(text) for s in fam.samples}


def total(samples: dict, name: str, **labels) -> float:
    return sum(v for (n, lab), v in samples.items() if n == name and all(dict(lab).get(k) == w for k, w in labels.items()))


def payloads(max_audio_seconds: float) -> tuple[list[bytes], dict[str, bytes]]:
    from vibe_check.data import make_noise, synthesize_utterance

    good = [wav_bytes(synthesize_utterance(e, speaker=s, seed=100 + s))
            for s, e in enumerate(("neutral", "happy", "sad", "angry", "fearful", "surprised"), start=1)]
    bad = {
        "not_audio": b"%PDF-1.4 this is not audio\n" * 50,
        "empty": b"",
        "too_long": wav_bytes(make_noise(duration=max_audio_seconds + 2.0, amplitude=0.05)),
    }
    return good, bad


async def run_load(url: str, plan: list[tuple[str, bytes]], concurrency: int, deadline_s: float) -> list[tuple[str, int, float]]:
    """Send every planned request; returns ``(kind, status, seconds)`` per request (status 0: transport error)."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    results: list[tuple[str, int, float]] = []
    stop_at = time.monotonic() + deadline_s

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty() and time.monotonic() < stop_at:
            kind, data = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                r = await client.post("/predict", content=data, headers={"content-type": "audio/wav"})
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            results.append((kind, status, time.perf_counter() - t0))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return results


def percentile_ms(values: list[float], q: float) -> float:
    return 1000 * float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running service (default: start one on 127.0.0.1)")
    p.add_argument("--model", help="bundle to serve (default: train a small demo bundle)")
    p.add_argument("--requests", type=int, default=500, help="requests to send (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default: %(default)s)")
    p.add_argument("--bad-share", type=float, default=0.1, help="share of malformed uploads (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="worker threads of a started service (default: %(default)s)")
    p.add_argument("--max-audio-seconds", type=float, default=10.0, help="limit of a started service (default: %(default)s)")
    p.add_argument("--deadline", type=float, default=600.0, help="stop sending after this many seconds (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-time-augmentation", action="store_true",
                   help="start the service with --test-time-augmentation (the bundle must have speed copies)")
    p.add_argument("--tracking", choices=["on", "off", "both"], default="both",
                   help="drift/SHAP monitoring of a started service; 'both' runs the test twice and compares (default: %(default)s)")
    args = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="vibe-check-load-")
    try:
        model = Path(args.model) if args.model else None
        if model is None and not args.url:
            print("training a small demo bundle (use --model to serve your own)...", flush=True)
            model = demo_bundle(Path(tmp.name))
        modes = ["on"] if args.url else (["on", "off"] if args.tracking == "both" else [args.tracking])
        runs = {mode: run_once(args, model, tracking=mode == "on") for mode in modes}
    finally:
        tmp.cleanup()
    if len(runs) > 1:
        print("\ntracking (drift + input + SHAP monitoring) on vs off:")
        print(f"  {'':22}{'on':>12}{'off':>12}")
        for key, fmt in (("throughput", "{:10.1f}/s"), ("p50_ms", "{:9.1f} ms"), ("p95_ms", "{:9.1f} ms"), ("p99_ms", "{:9.1f} ms")):
            print(f"  {key:22}" + "".join(f"{fmt.format(runs[m][key]):>12}" for m in ("on", "off")))
    return 0 if all(r["ok"] for r in runs.values()) else 1


def run_once(args, model: Path | None, *, tracking: bool) -> dict:
    """One load test against ``--url`` or a service started on ``model``; prints its report."""
    proc = None
    try:
        if args.url:
            url = args.url.rstrip("/")
            wait_ready(url, None, timeout=30)
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            extra = (() if tracking else ("--no-drift",)) + (("--test-time-augmentation",) if args.test_time_augmentation else ())
            proc = start_service(model, port, args.max_audio_seconds, args.workers, extra)
            wait_ready(url, proc)
        info = httpx.get(f"{url}/model", timeout=10).json()
        max_seconds = float(info.get("limits", {}).get("max_audio_seconds", args.max_audio_seconds))
        good, bad = payloads(max_seconds)

        rng = np.random.default_rng(args.seed)
        n_bad = int(round(args.requests * args.bad_share))
        kinds = ["good"] * (args.requests - n_bad) + [list(bad)[i % len(bad)] for i in range(n_bad)]
        rng.shuffle(kinds)
        plan = [(k, good[i % len(good)] if k == "good" else bad[k]) for i, k in enumerate(kinds)]

        # One warm request per client, so the figures are of a warm service.
        asyncio.run(run_load(url, [("good", good[0])] * args.concurrency, args.concurrency, 60))
        before = scrape(url)
        t0 = time.perf_counter()
        results = asyncio.run(run_load(url, plan, args.concurrency, args.deadline))
        wall = time.perf_counter() - t0
        after = scrape(url)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    good_res = [r for r in results if r[0] == "good"]
    bad_res = [r for r in results if r[0] != "good"]
    lat_good = [s for _, _, s in good_res]
    good_errors = sum(1 for _, status, _ in good_res if status != 200)
    bad_status = Counter((kind, status) for kind, status, _ in bad_res)
    bad_not_4xx = sum(1 for _, status, _ in bad_res if not 400 <= status < 500)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    counted = {t: delta("vibe_check_errors_total", endpoint="/predict", error_type=t)
               for t in ("AudioDecodeError", "EmptyAudioError", "AudioTooLongError")}
    expected = {"AudioDecodeError": sum(k == "not_audio" for k, _, _ in bad_res),
                "EmptyAudioError": sum(k == "empty" for k, _, _ in bad_res),
                "AudioTooLongError": sum(k == "too_long" for k, _, _ in bad_res)}

    print(f"\nvibe-check load test: {len(results)} requests ({len(good_res)} good, {len(bad_res)} malformed), "
          f"{args.concurrency} concurrent clients, {url}, tracking {'on' if tracking else 'off'}")
    print(f"  wall time            {wall:8.2f} s")
    print(f"  throughput           {len(results) / wall:8.1f} req/s ({len(good_res) / wall:.1f} predictions/s)")
    print(f"  latency, good        p50 {percentile_ms(lat_good, 50):7.1f} ms   p95 {percentile_ms(lat_good, 95):7.1f} ms   "
          f"p99 {percentile_ms(lat_good, 99):7.1f} ms")
    lat_bad = [s for _, _, s in bad_res]
    print(f"  latency, malformed   p50 {percentile_ms(lat_bad, 50):7.1f} ms   p95 {percentile_ms(lat_bad, 95):7.1f} ms   "
          f"p99 {percentile_ms(lat_bad, 99):7.1f} ms")
    print(f"  good-request errors  {good_errors} (target 0)")
    print("  malformed responses  " + ", ".join(f"{k} -> {s}: {n}" for (k, s), n in sorted(bad_status.items())))
    print(f"  malformed not 4xx    {bad_not_4xx} (target 0)")
    print("  counted in /metrics  " + ", ".join(f"{t}: +{counted[t]:.0f} (sent {expected[t]})" for t in counted))
    print(f"  /metrics predictions +{delta('vibe_check_predictions_total'):.0f}, "
          f"audio +{delta('vibe_check_audio_seconds_total'):.1f} s, "
          f"mean features stage {1000 * delta('vibe_check_latency_seconds_sum', stage='features') / max(1, delta('vibe_check_latency_seconds_count', stage='features')):.1f} ms")
    ok = (len(results) == len(plan) and good_errors == 0 and bad_not_4xx == 0
          and all(counted[t] == expected[t] for t in counted))
    print("  result               " + ("PASS" if ok else "FAIL"))
    return {"ok": ok, "throughput": len(results) / wall, "p50_ms": percentile_ms(lat_good, 50),
            "p95_ms": percentile_ms(lat_good, 95), "p99_ms": percentile_ms(lat_good, 99)}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
